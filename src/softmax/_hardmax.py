"""The hard max: the limit of softmax as the temperature goes to 0.

The article calls softmax a "soft" max because it tends to this function as
the score differences grow; `hardmax` is the end point of that limit.
"""

from __future__ import annotations

import numpy as np

from ._api import _axes_back, _axes_last
from ._validation import as_float_array, normalize_axis, where_mask

__all__ = ["hardmax"]

_TIES = ("split", "first")


def hardmax(x, axis=-1, *, ties="split", where=None):
    """One-hot of the maximum: softmax at temperature 0.

    Parameters
    ----------
    x : array_like
        Scores. Integers and booleans promote to float64; float16, float32
        and float64 keep their dtype.
    axis : int, tuple of ints or None, optional
        Axis or axes of each distribution, as for `softmax`. Default: the
        last axis.
    ties : {"split", "first"}, optional
        ``"split"`` (default): tied maxima share the mass equally, exactly
        what ``softmax(x, temperature=0)`` returns. ``"first"``: all the
        mass on the first maximum (in C order over the reduced axes), the
        one-hot of ``argmax``.
    where : array_like of bool, optional
        Entries to include; excluded entries get 0.

    Returns
    -------
    ndarray
        Shaped like `x`, with 1 (or ``1/k`` for `k` tied maxima) at the
        maxima and 0 elsewhere.

    Notes
    -----
    The edge rules are softmax's: NaN in a slice makes the slice NaN,
    ``+inf`` entries are the maxima, and a slice that is all ``-inf`` or
    fully excluded by `where` is an empty distribution (all 0).

    Examples
    --------
    >>> import numpy as np
    >>> import softmax as sm
    >>> from softmax._hardmax import hardmax
    >>> hardmax([2.0, 1.0, 0.1])
    array([1., 0., 0.])
    >>> hardmax([3.0, 1.0, 3.0])
    array([0.5, 0. , 0.5])
    >>> hardmax([3.0, 1.0, 3.0], ties="first")
    array([1., 0., 0.])

    The "soft" max tends to it as the temperature goes to 0:

    >>> for t in [1.0, 0.2, 0.05]:
    ...     print(t, sm.softmax([2.0, 1.0, 0.1], temperature=t).round(4))
    1.0 [0.659  0.2424 0.0986]
    0.2 [9.932e-01 6.700e-03 1.000e-04]
    0.05 [1. 0. 0.]
    """
    if ties not in _TIES:
        raise ValueError(f"ties must be 'split' or 'first', got {ties!r}")
    arr = as_float_array(x)
    dtype = arr.dtype
    axes = normalize_axis(axis, arr.ndim)
    mask = where_mask(where, arr.shape)
    if arr.ndim == 0 or not axes:
        # One-element slices: the element itself is the maximum.
        arr_r = arr[..., np.newaxis]
        mask_r = None if mask is None else mask[..., np.newaxis]
        return hardmax(arr_r, -1, ties=ties, where=mask_r)[..., 0][()]

    x_last = _axes_last(arr, axes).astype(np.float64, copy=False)
    keep = (
        np.ones(x_last.shape, dtype=bool) if mask is None else _axes_last(mask, axes)
    )
    v = np.where(keep, x_last, -np.inf)
    nan = np.isnan(v)
    nan_rows = np.any(nan, axis=-1, keepdims=True)
    v = np.where(nan, -np.inf, v)
    m = np.max(v, axis=-1, keepdims=True, initial=-np.inf)
    winners = keep & (v == m) & (m > -np.inf)
    if ties == "split":
        k = np.count_nonzero(winners, axis=-1, keepdims=True)
        result = np.where(winners, 1.0 / np.maximum(k, 1), 0.0)
    else:
        first = np.argmax(winners, axis=-1)[..., np.newaxis]
        result = np.zeros(x_last.shape)
        np.put_along_axis(result, first, 1.0, axis=-1)
        result = np.where(winners, result, 0.0)
    result = np.where(nan_rows & keep, np.nan, result)
    return _axes_back(result, arr.shape, axes).astype(dtype, copy=False)
