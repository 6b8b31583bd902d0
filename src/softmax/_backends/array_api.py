"""The array-API backend: PyTorch, JAX, CuPy, array-api-strict.

The same math as the C core, written against the array API standard in the
input's own namespace (``merge``): the result is an array of the input's
type on the input's device, and a PyTorch tensor that requires grad keeps
its graph.

float32 inputs are computed in float64 when the device has it (PyTorch CPU,
array-api-strict; JAX only with ``jax_enable_x64``, switched on for the
call); otherwise in float32 with the double-single steps of the float64
path, and the library's own ``exp`` decides the last ulp.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, ContextManager, cast

from . import groups as grouping
from . import merge
from .._typing import Array, Namespace

if TYPE_CHECKING:  # a type only: backends never import the plan's module at run time
    from .._plan import Plan

__all__ = [
    "as_library",
    "default_float_for_ints",
    "device_of",
    "has_float64",
    "namespace",
    "run",
    "wide",
]


def namespace(x: Any) -> Namespace:
    """The array-API namespace of x (array-api-compat for PyTorch, CuPy and Dask)."""
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__()
    try:
        import array_api_compat
    except ImportError:
        kind = f"{type(x).__module__}.{type(x).__qualname__}"
        raise ImportError(
            f"softmax on {kind} arrays needs array-api-compat: pip install array-api-compat"
        ) from None
    return array_api_compat.array_namespace(x)


def _is_jax(xp: Namespace) -> bool:
    return getattr(xp, "__name__", "") == "jax.numpy"


def default_float_for_ints(xp: Namespace) -> Any:
    """Integers promote to float64 (the package's rule), except in a library
    that has no float64 for the user (JAX without x64): its default float."""
    if _is_jax(xp):
        import jax

        if not jax.config.jax_enable_x64:
            return xp.float32
    return None


def wide(xp: Namespace) -> ContextManager[Any]:
    """JAX has float64 only under ``jax_enable_x64``: switch it on for this
    call (a thread-local context), so float32 is computed in float64 as on
    every other path. Other libraries: nothing to do."""
    if _is_jax(xp):
        import jax

        if not jax.config.jax_enable_x64:
            return cast(ContextManager[Any], jax.enable_x64(True))
    return contextlib.nullcontext()


def device_of(x: Array) -> Any:
    dev = getattr(x, "device", None)
    if dev is None or callable(dev):
        import array_api_compat

        return array_api_compat.device(x)
    return dev


def has_float64(xp: Namespace, device: Any) -> bool:
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    try:
        return "float64" in info().dtypes(kind="real floating", device=device)
    except (TypeError, ValueError):
        return "float64" in info().dtypes(kind="real floating")


def _astype(xp: Namespace, x: Array, dtype: Any) -> Array:
    return x if x.dtype == dtype else merge._astype(xp, x, dtype)


def as_library(a: Any, xp: Namespace, device: Any) -> Array:
    """`a` as an array of xp on `device` (from NumPy, lists or scalars)."""
    try:
        if namespace(a) is xp:
            return a
    except (TypeError, ImportError):
        pass
    import numpy as np

    return xp.asarray(np.asarray(a), device=device)


def _deliver(result: Array, out: Array | None) -> Array:
    """Return result, or copy it into the caller's `out` (shape and dtype checked)."""
    if out is None:
        return result
    try:
        out[...] = result
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"out must be a writeable array, got an immutable {type(out).__name__} ({exc})"
        ) from None
    return out


def run(x: Any, plan: Plan) -> Any:
    xp = plan.xp
    with wide(xp), merge.quiet():
        if plan.groups is not None:
            return _grouped(xp, x, plan)
        if plan.op == "logsumexp":
            return _logsumexp(xp, x, plan)
        return _softmax_family(xp, x, plan)


def _softmax_family(xp: Namespace, x: Array, plan: Plan) -> Array:
    dt = plan.result_dtype
    axes, keep = plan.axes, plan.mask
    shape = tuple(x.shape)
    if not axes:
        # Every element is a slice of its own: give it a length-1 axis.
        x = xp.reshape(x, shape + (1,))
        keep = None if keep is None else xp.reshape(keep, shape + (1,))
        axes = (len(shape),)
    empty_value = -math.inf if plan.log else 0.0
    if math.prod(x.shape[i] for i in axes) == 0 or math.prod(x.shape) == 0:
        result = xp.full(shape, empty_value, dtype=dt.result, device=dt.device)
        return _deliver(result, plan.out)
    v = merge.orient(xp, _astype(xp, x, dt.work), plan.scale, keep)
    ps = merge.positive_scale(plan.scale)
    state = merge.chunk_state(xp, v, axes, ps, exact=dt.exact, eps=dt.eps)
    res = merge.finish(xp, v, state, ps, log=plan.log, exact=dt.exact, eps=dt.eps)
    if keep is not None:
        res = xp.where(keep, res, empty_value)
    res = xp.reshape(_astype(xp, res, dt.result), shape)
    return _deliver(res, plan.out)


def _logsumexp(xp: Namespace, x: Array, plan: Plan) -> Any:
    dt = plan.result_dtype
    axes, keep, b = plan.axes, plan.mask, plan.b
    shape = tuple(x.shape)
    lone = not axes
    if lone:
        # Every element is a slice of its own: give it a length-1 axis.
        x, keep, b = (None if a is None else xp.reshape(a, shape + (1,)) for a in (x, keep, b))
        axes = (len(shape),)
    v = _astype(xp, x, dt.work)
    if math.prod(x.shape[i] for i in axes) == 0:
        kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        value = xp.full(kept, -math.inf, dtype=dt.work, device=dt.device)
        sign = xp.zeros(kept, dtype=dt.work, device=dt.device)
    elif b is None:
        if keep is not None:
            v = xp.where(keep, v, -math.inf)
        state = merge.chunk_state(xp, v, axes, merge.PositiveScale(), exact=dt.exact, eps=dt.eps)
        hi, lo = merge.log_total(xp, state)
        value = hi + lo
        sign = xp.where(value == -math.inf, 0.0, xp.ones_like(value))
        sign = xp.where(xp.isnan(value), math.nan, sign)
    else:
        m, s = merge.weighted_state(xp, v, _astype(xp, b, dt.work), keep, axes)
        value, sign = merge.weighted_value(xp, m, s)
    if not plan.return_sign:
        value = xp.where(sign < 0, math.nan, value)
    if lone or not plan.keepdims:
        value, sign = xp.squeeze(value, axis=axes), xp.squeeze(sign, axis=axes)
    value = _astype(xp, value, dt.result)
    sign = _astype(xp, sign, dt.result)
    return (value, sign) if plan.return_sign else value


def _grouped(xp: Namespace, x: Array, plan: Plan) -> Array:
    """The ``segment_*`` functions: group states from padded buckets, then one gather."""
    dt, axis = plan.result_dtype, plan.axes[0]
    last = x.ndim - 1
    perm = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    back = tuple(perm.index(i) for i in range(x.ndim))

    def moved(a: Array) -> Array:
        return a if axis == last else xp.permute_dims(a, perm)

    keep = None if plan.mask is None else moved(plan.mask)
    v = merge.orient(xp, moved(_astype(xp, x, dt.work)), plan.scale, keep)
    ps = merge.positive_scale(plan.scale)
    state = grouping.group_state(xp, v, plan.groups, ps, exact=dt.exact, eps=dt.eps,
                                 device=dt.device)
    if plan.op == "logsumexp":
        hi, lo = merge.log_total(xp, state)
        res = hi + lo
    else:
        res = grouping.group_finish(xp, v, state, plan.groups, ps, log=plan.log,
                                    exact=dt.exact, eps=dt.eps, device=dt.device)
        if keep is not None:
            res = xp.where(keep, res, -math.inf if plan.log else 0.0)
    res = _astype(xp, res if axis == last else xp.permute_dims(res, back), dt.result)
    return _deliver(res, plan.out)
