"""softmax, log_softmax and logsumexp for arrays of other libraries.

Any array that brings an array-API namespace (JAX, CuPy, array-api-strict,
PyTorch through array-api-compat, ...) is computed here with the same math
as the C core, written in that namespace (``_merge``): the result is an
array of the input's type on the input's device. Dask arrays go to
``_dask``, which runs the same state through a tree reduction.

float32 inputs are computed in float64 when the device has it (PyTorch CPU,
array-api-strict; JAX only with ``jax_enable_x64``); otherwise in float32
with the double-single tricks of the float64 path, and the library's own
``exp`` decides the last ulp (see the README, "Accuracy per scale").
"""

from __future__ import annotations

import contextlib
import math
import sys

from . import _merge
from ._validation import normalize_axis, parse_scale

__all__ = ["is_dask", "log_softmax", "logsumexp", "namespace", "softmax"]


def reduction_axes(axis, ndim: int) -> tuple[int, ...]:
    """normalize_axis, except that a 0-d array is one slice of one element
    (axis 0 or -1 accepted), as on the NumPy path."""
    if ndim == 0:
        normalize_axis(axis, 1)
        return ()
    return normalize_axis(axis, ndim)


def is_dask(x) -> bool:
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def namespace(x):
    """The array-API namespace of x (array-api-compat for PyTorch and CuPy)."""
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__()
    try:
        import array_api_compat
    except ImportError:
        kind = f"{type(x).__module__}.{type(x).__qualname__}"
        raise ImportError(
            f"softmax on {kind} arrays needs array-api-compat: "
            "pip install 'softmax[array-api]'"
        ) from None
    return array_api_compat.array_namespace(x)


def _int_result(xp):
    """Integers promote to float64 (the package's rule), except in a library
    that has no float64 for the user (JAX without x64): its default float."""
    if getattr(xp, "__name__", "") == "jax.numpy":
        import jax

        if not jax.config.jax_enable_x64:
            return xp.float32
    return None


def _wide(xp):
    """JAX has float64 only under ``jax_enable_x64``: switch it on for this
    call (a thread-local context), so float32 is computed in float64 as on
    every other path. Other libraries: nothing to do."""
    if getattr(xp, "__name__", "") == "jax.numpy":
        import jax

        if not jax.config.jax_enable_x64:
            return jax.enable_x64(True)
    return contextlib.nullcontext()


def _device(x):
    dev = getattr(x, "device", None)
    if dev is None or callable(dev):
        import array_api_compat

        return array_api_compat.device(x)
    return dev


class _Plan:
    """Dtypes for one call: the result's, the one computed in, and its eps."""

    def __init__(self, xp, x, name: str = "x", int_result=None):
        self.xp = xp
        self.device = _device(x)
        dt = x.dtype
        if xp.isdtype(dt, "complex floating"):
            raise TypeError(
                f"{name} must be real-valued, got complex dtype {dt}; "
                "take .real or abs() first if that is what you mean"
            )
        has64 = _has_float64(xp, self.device)
        if xp.isdtype(dt, "real floating"):
            self.result = dt
        elif xp.isdtype(dt, ("integral", "bool")):
            self.result = int_result or (xp.float64 if has64 else xp.float32)
        else:
            raise TypeError(f"{name} must be an array of real numbers, got dtype {dt}")
        self.work = xp.float64 if has64 else xp.float32
        # Double-double steps are needed only when nothing wider is at hand.
        self.exact = self.result == self.work
        self.eps = float(xp.finfo(self.work).eps)


def _has_float64(xp, device) -> bool:
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    try:
        return "float64" in info().dtypes(kind="real floating", device=device)
    except (TypeError, ValueError):
        return "float64" in info().dtypes(kind="real floating")


def _astype(xp, x, dtype):
    return x if x.dtype == dtype else _merge._astype(xp, x, dtype)


def _same_library(a, xp) -> bool:
    try:
        return namespace(a) is xp
    except (TypeError, ImportError):
        return False


def _as_library(a, xp, device):
    """`a` as an array of xp on `device` (from NumPy, lists or scalars)."""
    if _same_library(a, xp):
        return a
    import numpy as np

    return xp.asarray(np.asarray(a), device=device)


def _mask(xp, where, shape, device):
    if where is None:
        return None
    keep = _as_library(where, xp, device)
    if not xp.isdtype(keep.dtype, "bool"):
        raise TypeError(f"where must be a boolean array, got dtype {keep.dtype}")
    try:
        return xp.broadcast_to(keep, shape)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"where must broadcast to x.shape {tuple(shape)}, got shape {tuple(keep.shape)}"
        ) from None


def _is_numpy(a) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(a, (np.ndarray, np.generic))


def _deliver(xp, result, out, shape):
    """Return result, or copy it into a user's `out` array of the same library."""
    if out is None:
        return result
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got shape {tuple(out.shape)}")
    if out.dtype != result.dtype:
        raise TypeError(f"out must have dtype {result.dtype}, got dtype {out.dtype}")
    try:
        out[...] = result
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"out must be a writeable array, got an immutable {type(out).__name__} ({exc})"
        ) from None
    return out


def _softmax_family(x, axis, temperature, base, where, out, *, log):
    if is_dask(x):
        from . import _dask

        return _dask.softmax_family(x, axis, temperature, base, where, out, log=log)
    xp = namespace(x)
    int_result = _int_result(xp)
    with _wide(xp):
        return _softmax_family_in(xp, x, axis, temperature, base, where, out, log, int_result)


def _softmax_family_in(xp, x, axis, temperature, base, where, out, log, int_result):
    plan = _Plan(xp, x, int_result=int_result)
    axes = reduction_axes(axis, x.ndim)
    scale = parse_scale(temperature, base)
    keep = _mask(xp, where, x.shape, plan.device)
    shape = tuple(x.shape)
    if not axes:
        # Every element is a slice of its own: give it a length-1 axis.
        x = xp.reshape(x, shape + (1,))
        keep = None if keep is None else xp.reshape(keep, shape + (1,))
        axes = (len(shape),)
    empty_value = -math.inf if log else 0.0
    if math.prod(x.shape[i] for i in axes) == 0 or math.prod(x.shape) == 0:
        result = xp.full(shape, empty_value, dtype=plan.result, device=plan.device)
        return _deliver(xp, result, out, shape)
    with _merge.quiet():
        v = _merge.orient(xp, _astype(xp, x, plan.work), scale, keep)
        ps = _merge.positive_scale(scale)
        state = _merge.chunk_state(xp, v, axes, ps, exact=plan.exact, eps=plan.eps)
        res = _merge.finish(xp, v, state, ps, log=log, exact=plan.exact, eps=plan.eps)
        if keep is not None:
            res = xp.where(keep, res, empty_value)
    res = xp.reshape(_astype(xp, res, plan.result), shape)
    return _deliver(xp, res, out, shape)


def softmax(x, axis=-1, *, temperature=1.0, base=None, where=None, out=None):
    """`softmax.softmax` for a foreign array (see there)."""
    return _softmax_family(x, axis, temperature, base, where, out, log=False)


def log_softmax(x, axis=-1, *, temperature=1.0, base=None, where=None, out=None):
    """`softmax.log_softmax` for a foreign array (see there)."""
    return _softmax_family(x, axis, temperature, base, where, out, log=True)


def logsumexp(x, axis=None, *, b=None, keepdims=False, return_sign=False, where=None):
    """`softmax.logsumexp` for a foreign array (see there)."""
    if is_dask(x):
        from . import _dask

        return _dask.logsumexp(
            x, axis, b=b, keepdims=keepdims, return_sign=return_sign, where=where
        )
    xp = namespace(x)
    int_result = _int_result(xp)
    with _wide(xp):
        return _logsumexp_in(xp, x, axis, b, keepdims, return_sign, where, int_result)


def _logsumexp_in(xp, x, axis, b, keepdims, return_sign, where, int_result):
    plan = _Plan(xp, x, int_result=int_result)
    result_dtype = plan.result
    if b is not None:
        b = _as_library(b, xp, plan.device)
        result_dtype = xp.result_type(result_dtype, _Plan(xp, b, "b", int_result).result)
        try:
            x, b = xp.broadcast_arrays(x, b)
        except (ValueError, RuntimeError):
            raise ValueError(
                f"b must broadcast with x.shape {tuple(x.shape)}, got shape {tuple(b.shape)}"
            ) from None
        b = _astype(xp, b, plan.work)
    axes = reduction_axes(axis, x.ndim)
    keep = _mask(xp, where, x.shape, plan.device)
    shape = tuple(x.shape)
    lone = not axes
    if lone:
        # Every element is a slice of its own: give it a length-1 axis.
        x, keep, b = (None if a is None else xp.reshape(a, shape + (1,)) for a in (x, keep, b))
        axes = (len(shape),)
    with _merge.quiet():
        v = _astype(xp, x, plan.work)
        if math.prod(x.shape[i] for i in axes) == 0:
            kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
            value = xp.full(kept, -math.inf, dtype=plan.work, device=plan.device)
            sign = xp.zeros(kept, dtype=plan.work, device=plan.device)
        elif b is None:
            if keep is not None:
                v = xp.where(keep, v, -math.inf)
            state = _merge.chunk_state(
                xp, v, axes, _merge.PositiveScale(), exact=plan.exact, eps=plan.eps
            )
            hi, lo = _merge.log_total(xp, state)
            value = hi + lo
            sign = xp.where(value == -math.inf, 0.0, xp.ones_like(value))
            sign = xp.where(xp.isnan(value), math.nan, sign)
        else:
            value, sign = _weighted(xp, v, b, keep, axes)
        if not return_sign:
            value = xp.where(sign < 0, math.nan, value)
    if lone or not keepdims:
        value, sign = xp.squeeze(value, axis=axes), xp.squeeze(sign, axis=axes)
    value = _astype(xp, value, result_dtype)
    sign = _astype(xp, sign, result_dtype)
    return (value, sign) if return_sign else value


def _weighted(xp, v, b, keep, axes):
    """log|sum b exp(v)| and its sign: SciPy's max shift, in the working dtype."""
    live = b != 0
    if keep is not None:
        live = live & keep
    vv = xp.where(live, v, -math.inf)
    m = xp.max(xp.where(xp.isnan(vv), -math.inf, vv), axis=axes, keepdims=True)
    m_safe = xp.where(xp.isfinite(m), m, 0.0)
    terms = xp.where(live, b * xp.exp(vv - m_safe), 0.0)
    s = xp.sum(terms, axis=axes, keepdims=True)
    value = xp.log(xp.abs(s)) + m_safe
    return value, xp.sign(s)
