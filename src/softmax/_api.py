"""softmax, log_softmax and logsumexp: validate, lay out, run the C core.

Every call goes the same way: arguments are checked once (``_validation``),
the reduction axes are moved last (a view when one axis is reduced, a copy
only for a tuple of axes that cannot be merged), and the C core walks the
rows. Arrays of other libraries (PyTorch, JAX, Dask, ...) are handed to
``_generic`` before any of this. The plain call (a NumPy float array, an
int axis, no options) skips all of it: ``_core.fast`` checks and runs it.
"""

from __future__ import annotations

import math

import numpy as np

from . import _config, _core, _reference  # _config: sets the thread and accuracy defaults
from ._validation import (
    UNIT_SCALE,
    as_float_array,
    check_out,
    compute_dtype,
    normalize_axis,
    parse_scale,
    unmask,
    where_mask,
)

__all__ = ["log_softmax", "logsumexp", "softmax"]


# The C core reads and writes these natively (float16 is computed in double
# inside the kernels, never widened in memory); others go through float64.
_CORE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _core_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype in _CORE_DTYPES else compute_dtype(dtype)


def _foreign(x) -> bool:
    """True for arrays of other libraries: they take the array-API path.

    NumPy arrays and scalars (which also have ``__array_namespace__``) stay
    on the C path. Dask arrays and PyTorch tensors have no
    ``__array_namespace__``; they are recognized by type, looked up in
    ``sys.modules`` so that nothing is imported here.
    """
    if isinstance(x, (np.ndarray, np.generic)):
        return False
    if hasattr(x, "__array_namespace__"):
        return True
    import sys

    for module, name in (("dask.array", "Array"), ("torch", "Tensor"), ("cupy", "ndarray")):
        lib = sys.modules.get(module)
        if lib is not None and isinstance(x, getattr(lib, name, ())):
            return True
    return False


# The plain call (an aligned native float16/32/64 ndarray, one int axis,
# temperature 1, nothing else) is recognized and run by the C core in one
# call: on a 3-element vector the same checks in Python cost more than the
# computation. It returns None for anything else, including every error
# case, and the general path below takes over with the same bits.
_fast = _core.fast


def _axes_last(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """View (or, for several axes, possibly a copy) with `axes` merged last."""
    moved = np.moveaxis(a, axes, range(a.ndim - len(axes), a.ndim))
    if len(axes) == 1:
        return moved
    # An explicit length, not -1: with a 0-length outer axis, -1 is ambiguous.
    outer = moved.shape[: a.ndim - len(axes)]
    return moved.reshape(outer + (math.prod(moved.shape[len(outer):]),))


def _axes_back(a_last: np.ndarray, like_shape, axes: tuple[int, ...]) -> np.ndarray:
    """Inverse of ``_axes_last`` for an array shaped like the moved one."""
    ndim = len(like_shape)
    moved_shape = tuple(like_shape[i] for i in range(ndim) if i not in axes) + tuple(
        like_shape[i] for i in axes
    )
    return np.moveaxis(a_last.reshape(moved_shape), range(ndim - len(axes), ndim), axes)


def _reduction_axes(axis, arr: np.ndarray) -> tuple[int, ...]:
    """normalize_axis, except that a 0-d array is one slice of one element.

    As in SciPy and PyTorch, ``axis`` 0 or -1 (the default of softmax) is
    accepted for a scalar; an axis that no 1-d array has is still an error.
    """
    if arr.ndim == 0:
        normalize_axis(axis, 1)
        return ()
    return normalize_axis(axis, arr.ndim)


def _no_internal_overlap(a: np.ndarray) -> bool:
    """True if no two elements of `a` share memory (sufficient test).

    Sorted by |stride|, each axis must step past everything the smaller
    axes span; what slicing, transposing and reshaping make always passes,
    only as_strided / broadcast views can fail.
    """
    span = a.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1):
        if stride < span:
            return False
        span = stride * (n - 1) + span
    return True


def _writes_in_place(out_last: np.ndarray, x_last: np.ndarray, mask_last) -> bool:
    """Can the core write straight into `out_last`?

    Only when it is a view of out (no copy was needed to lay it out) and it
    does not overlap x or the mask except by being exactly x, element for
    element: the core reads x_j before it writes out_j, never after.
    """
    if np.may_share_memory(out_last, x_last):
        same = (
            out_last.__array_interface__["data"][0] == x_last.__array_interface__["data"][0]
            and out_last.strides == x_last.strides
        )
        # Exactly x is fine only if no two elements share memory: else a
        # write lands on an entry that is still to be read.
        if not same or not _no_internal_overlap(out_last):
            return False
    return mask_last is None or not np.may_share_memory(out_last, mask_last)


def _softmax_family(x, axis, temperature, base, where, out, *, log: bool, accuracy: int = -1):
    x, where = unmask(x, where)
    arr = as_float_array(x)
    result_dtype = arr.dtype
    work_dtype = _core_dtype(result_dtype)
    axes = _reduction_axes(axis, arr)
    scale = parse_scale(temperature, base)
    mask = where_mask(where, arr.shape)
    out = check_out(out, arr.shape, result_dtype)

    if arr.ndim == 0 or len(axes) == 0:
        # A slice of one element (or no reduction at all): nothing to
        # normalize against, so lay it out as rows of length 1.
        arr_r = arr[..., np.newaxis]
        mask_r = None if mask is None else mask[..., np.newaxis]
        result = _softmax_family(
            arr_r, -1, temperature, base, mask_r, None, log=log, accuracy=accuracy
        )[..., 0]
        return _finish(result, out, result_dtype)

    x_last = _axes_last(arr, axes).astype(work_dtype, copy=False)
    mask_last = None if mask is None else _axes_last(mask, axes)

    if scale.kind == "hard":
        # invalid: a signaling NaN raises the flag in sign * x; it is a NaN all the same.
        with np.errstate(invalid="ignore"):
            result_last = _reference.hardmax_last(x_last, mask_last, sign=scale.sign, log=log)
        return _finish(_axes_back(result_last, arr.shape, axes), out, result_dtype)
    if scale.kind == "uniform":
        # Every finite score counts the same; +-inf and NaN keep their roles.
        finite = np.isfinite(x_last)
        with np.errstate(invalid="ignore"):
            x_last = np.where(finite, 0.0, scale.sign * x_last).astype(work_dtype)
        scale = UNIT_SCALE

    # Write straight into the result's memory when the layout allows it; a
    # temporary is needed only for merged tuple axes or an out that overlaps x.
    # The core writes only aligned native memory: any other out gets a
    # temporary and a copy (np.copyto swaps bytes and handles alignment).
    use_out = out is not None and out.dtype == work_dtype and out.flags.aligned
    full = out if use_out else np.empty(arr.shape, dtype=work_dtype)
    target = _axes_last(full, axes)
    direct = np.may_share_memory(target, full) and (
        not use_out or _writes_in_place(target, x_last, mask_last)
    )
    if not direct:
        target = np.empty(x_last.shape, dtype=work_dtype)

    _core.softmax(x_last, target, mask_last, scale.c_hi, scale.c_lo, log, accuracy)

    result = full if direct else _axes_back(target, arr.shape, axes)
    return result if result is out else _finish(result, out, result_dtype)


def _finish(result: np.ndarray, out, dtype: np.dtype):
    """Deliver `result` in the caller's dtype: into `out`, or as a new array."""
    # over: a float64 result beyond float16's range rounds to +-inf, which is
    # its correct rounding, not an accident to warn about.
    with np.errstate(over="ignore"):
        if out is not None:
            np.copyto(out, result, casting="unsafe")
            return out
        result = result.astype(dtype, copy=False)
    return result[()] if result.ndim == 0 else result


def softmax(x, axis=-1, *, temperature=1.0, base=None, where=None, out=None, accuracy=None):
    r"""Softmax: scores into probabilities that are >= 0 and sum to 1.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{x_i / T}}{\sum_j e^{x_j / T}}

    Computed as the article recommends: subtract the maximum first (the
    result does not change, and ``exp`` cannot overflow), exponentiate,
    divide by the sum. Each float64 result is within 2 ulp, each float32
    result within 1 ulp, of the exact value.

    Parameters
    ----------
    x : array_like
        Scores (logits). Integers and booleans promote to float64; float16,
        float32 and float64 keep their dtype.
    axis : int, tuple of ints or None, optional
        Axis or axes along which the probabilities sum to 1. ``None`` means
        all axes, as in ``scipy.special.softmax``. Default: the last axis.
    temperature : float, optional
        Divides the scores: ``softmax(x / T)``. ``T = 0`` is the hard max
        (tied maxima share the mass), ``T = inf`` the uniform distribution.
    base : float, optional
        Use ``base ** x`` instead of ``e ** x``; the same as
        ``temperature = 1 / ln(base)``. Must be > 0 and != 1.
    where : array_like of bool, optional
        Entries to include. Excluded entries get probability 0; a slice with
        nothing included is an empty distribution (all 0).
    out : ndarray, optional
        Array of x's shape and result dtype to write into (may be ``x``).
    accuracy : {"high", "fast"}, optional
        ``"high"``: the promise above. ``"fast"``: float16 and float32 in
        float32 lanes with a float32 exp, within 4 ulp on every measured
        family (docs/accuracy-modes.md), the same edge semantics; float64
        runs as in ``"high"``. Default ``None``: the process default
        (`set_accuracy`, ``SOFTMAX_ACCURACY``; ``"high"`` unless set).

    Returns
    -------
    ndarray
        The probabilities, shaped like `x`.

    Notes
    -----
    NaN in a slice makes the slice NaN. ``+inf`` entries share all the mass
    equally. A slice that is all ``-inf`` is an empty distribution (all 0).
    No RuntimeWarning is raised for any of these.

    Examples
    --------
    The article's example: cat, dog and rabbit scores.

    >>> import softmax as sm
    >>> sm.softmax([2.0, 1.0, 0.1]).round(4)
    array([0.659 , 0.2424, 0.0986])

    Higher temperature flattens, lower sharpens:

    >>> sm.softmax([2.0, 1.0, 0.1], temperature=10).round(3)
    array([0.366, 0.331, 0.303])
    >>> sm.softmax([2.0, 1.0, 0.1], temperature=0)
    array([1., 0., 0.])
    """
    if accuracy is None:
        if (result := _fast(0, x, axis, temperature, base, where, out)) is not None:
            return result
        code = -1
    else:
        code = _config.accuracy_code(accuracy)
        if (result := _fast(0, x, axis, temperature, base, where, out, code)) is not None:
            return result
    if _foreign(x):
        from . import _generic

        return _generic.softmax(x, axis, temperature=temperature, base=base, where=where, out=out)
    return _softmax_family(x, axis, temperature, base, where, out, log=False, accuracy=code)


def log_softmax(x, axis=-1, *, temperature=1.0, base=None, where=None, out=None,
                accuracy=None):
    r"""Logarithm of softmax, computed without ever taking a log of a rounded p.

    .. math:: \log \mathrm{softmax}(x)_i = x_i - \max x - \log\Big(1 + \sum_{j \ne k} e^{x_j - \max x}\Big)

    The sum excludes the largest entry ``k`` and goes through ``log1p``, so
    when one class dominates (p within 1e-12 of 1) its log-probability keeps
    its tiny negative value instead of rounding to 0.

    Parameters
    ----------
    x, axis, temperature, base, where, out
        As for `softmax`. Excluded entries and empty slices give ``-inf``.
    accuracy : {"high", "fast"}, optional
        ``"high"``: the promise above. ``"fast"``: float16 and float32 in
        float32 lanes with a float32 exp, within 4 ulp on every measured
        family (docs/accuracy-modes.md), the same edge semantics; float64
        runs as in ``"high"``. Default ``None``: the process default
        (`set_accuracy`, ``SOFTMAX_ACCURACY``; ``"high"`` unless set).

    Returns
    -------
    ndarray
        Log-probabilities, shaped like `x`.

    Examples
    --------
    >>> import softmax as sm
    >>> sm.log_softmax([2.0, 1.0, 0.1]).round(4)
    array([-0.417, -1.417, -2.317])
    >>> float(sm.log_softmax([40.0, 0.0])[0])  # p = 1 - 4.2e-18, still visible
    -4.248354255291589e-18
    """
    if accuracy is None:
        if (result := _fast(1, x, axis, temperature, base, where, out)) is not None:
            return result
        code = -1
    else:
        code = _config.accuracy_code(accuracy)
        if (result := _fast(1, x, axis, temperature, base, where, out, code)) is not None:
            return result
    if _foreign(x):
        from . import _generic

        return _generic.log_softmax(x, axis, temperature=temperature, base=base, where=where, out=out)
    return _softmax_family(x, axis, temperature, base, where, out, log=True, accuracy=code)


def logsumexp(x, axis=None, *, b=None, keepdims=False, return_sign=False, where=None,
              accuracy=None):
    r"""Log of the sum of exponentials, without overflow: ``log(sum(b * exp(x)))``.

    Computed as ``max + log1p(sum of the other terms)`` with a compensated
    sum; without `b`, float64 results are within 2 ulp and float32 within
    1 ulp of the exact value (see the README for the one exception: a result
    that cancels to nearly 0, where the bound is 2 ulp of the maximum).

    Parameters
    ----------
    x : array_like
        Input values.
    axis : int, tuple of ints or None, optional
        Axes to reduce. Default ``None``: all of them (SciPy's default).
    b : array_like, optional
        Weights broadcast against `x`, as in ``scipy.special.logsumexp``;
        they may be negative (see `return_sign`). Computed in float64 with
        the usual max shift: SciPy's accuracy, not the ulp promise.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    return_sign : bool, optional
        Return ``(log|s|, sign(s))``. Without it, a negative sum is NaN.
    where : array_like of bool, optional
        Entries to include; a slice with nothing included gives ``-inf``.
    accuracy : {"high", "fast"}, optional
        As for `softmax` (without `b`; weighted sums take SciPy's path in
        either mode). In ``"fast"`` mode a result that cancels against
        max(x) is within 4 ulp of max(x).

    Returns
    -------
    res : ndarray or scalar
        The log-sum-exp, in x's floating dtype.
    sgn : ndarray or scalar
        Only with ``return_sign=True``: the sign of the sum (0 for an empty
        sum).

    References
    ----------
    P. Blanchard, D. J. Higham, N. J. Higham, "Accurately computing the
    log-sum-exp and softmax functions", IMA J. Numer. Anal. 41 (2021).

    Examples
    --------
    The naive formula overflows; this one does not:

    >>> import numpy as np, softmax as sm
    >>> x = np.array([1000.0, 1000.0])
    >>> float(sm.logsumexp(x))  # 1000 + ln 2
    1000.6931471805599
    >>> sm.logsumexp([[0.0, 0.0], [1.0, -np.inf]], axis=1)
    array([0.69314718, 1.        ])
    """
    if accuracy is None:
        if (result := _fast(2, x, axis, b, keepdims, where, return_sign)) is not None:
            return result
        code = -1
    else:
        code = _config.accuracy_code(accuracy)
        if (result := _fast(2, x, axis, b, keepdims, where, return_sign, code)) is not None:
            return result
    if _foreign(x):
        from . import _generic

        return _generic.logsumexp(
            x, axis, b=b, keepdims=keepdims, return_sign=return_sign, where=where
        )
    x, where = unmask(x, where)
    arr = as_float_array(x)
    result_dtype = arr.dtype
    work_dtype = _core_dtype(result_dtype)
    axes = _reduction_axes(axis, arr)
    mask = where_mask(where, arr.shape)
    if b is not None:
        b_arr = as_float_array(b, "b")
        try:
            shape = np.broadcast_shapes(arr.shape, b_arr.shape)
        except ValueError:
            raise ValueError(
                f"b must broadcast with x.shape {arr.shape}, got shape {b_arr.shape}"
            ) from None
        if shape != arr.shape:
            arr = np.broadcast_to(arr, shape)
            mask = where_mask(where, shape)
            axes = _reduction_axes(axis, arr)
        # As in SciPy, the weights take part in the result dtype, whatever
        # the shapes.
        result_dtype = np.result_type(result_dtype, b_arr.dtype)
        work_dtype = _core_dtype(result_dtype)
        b_arr = np.broadcast_to(b_arr, shape)

    x_last = _axes_last(arr, axes) if axes else arr[..., np.newaxis]
    mask_last = None if mask is None else (_axes_last(mask, axes) if axes else mask[..., np.newaxis])

    if b is not None:
        b_last = _axes_last(b_arr, axes) if axes else b_arr[..., np.newaxis]
        value, sign = _reference.logsumexp_weighted_last(x_last, b_last, mask_last)
    else:
        x_last = x_last.astype(work_dtype, copy=False)
        value = np.empty(x_last.shape[:-1], dtype=work_dtype)
        _core.logsumexp(x_last, value, mask_last, code)
        sign = np.where(value == -np.inf, 0.0, 1.0)
        sign = np.where(np.isnan(value), np.nan, sign)

    if not return_sign:
        value = np.where(sign < 0, np.nan, value)
    with np.errstate(over="ignore"):
        value = value.astype(result_dtype, copy=False)
    sign = sign.astype(result_dtype, copy=False)
    if keepdims:
        value = np.expand_dims(value, axes)
        sign = np.expand_dims(sign, axes)
    value = value[()] if value.ndim == 0 else value
    sign = sign[()] if sign.ndim == 0 else sign
    return (value, sign) if return_sign else value
