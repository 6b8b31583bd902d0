"""The hard max: the limit of softmax as the temperature goes to 0.

The article calls softmax a "soft" max because it tends to this function as
the score differences grow; `hardmax` is the end point of that limit.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

from .._arguments import reduction_axes, unmask
from .._backends import merge
from .._plan import operand, operand_mask
from .._typing import (
    ArrayAPIArray,
    ArrayLike,
    Axis,
    DaskArray,
    FloatArray,
    FloatScalar,
    Mask,
    NDArray,
    NumpyScalar,
)

__all__ = ["hardmax"]

_TIES = ("split", "first")


Ties = Literal["split", "first"]


@overload
def hardmax(x: DaskArray, axis: Axis = -1, *, ties: Ties = "split",
            where: Mask = None) -> DaskArray: ...
@overload
def hardmax(x: ArrayAPIArray, axis: Axis = -1, *, ties: Ties = "split",
            where: Mask = None) -> ArrayAPIArray: ...
@overload
def hardmax(x: NDArray[Any], axis: Axis = -1, *, ties: Ties = "split",
            where: Mask = None) -> FloatArray: ...
@overload
def hardmax(x: NumpyScalar, axis: Axis = -1, *, ties: Ties = "split",
            where: Mask = None) -> FloatScalar: ...
@overload
def hardmax(x: ArrayLike, axis: Axis = -1, *, ties: Ties = "split",
            where: Mask = None) -> FloatArray: ...


def hardmax(x: Any, axis: Axis = -1, *, ties: Ties = "split", where: Any = None) -> Any:
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
    >>> from softmax import hardmax
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
    x, where = unmask(x, where)
    op = operand(x)
    shape = tuple(op.data.shape)
    axes = reduction_axes(axis, len(shape))
    keep = operand_mask(op, where, shape)
    xp = op.xp
    with op.computing():
        a, k = op.work_array(), keep
        if not axes:
            # One-element slices: the element itself is the maximum.
            a = xp.reshape(a, shape + (1,))
            k = None if k is None else xp.reshape(k, shape + (1,))
            axes = (len(shape),)
        if math.prod(a.shape[i] for i in axes) == 0:
            return op.deliver(xp.zeros(shape, dtype=op.work, device=op.device))
        winners, result, kept_nan = merge.hard_max(xp, a, k, axes, op.work)
        if ties == "first":
            # The first winner in C order over the reduced axes: a running
            # count along them (laid out last) that is 1 at a winner.
            w = xp.astype(winners, op.work)
            moved = xp.moveaxis(w, axes, tuple(range(w.ndim - len(axes), w.ndim)))
            flat = xp.reshape(moved, tuple(moved.shape[: w.ndim - len(axes)]) + (-1,))
            first = (xp.cumulative_sum(flat, axis=-1) == 1.0) & (flat == 1.0)
            back = xp.reshape(xp.astype(first, op.work), tuple(moved.shape))
            result = xp.moveaxis(back, tuple(range(w.ndim - len(axes), w.ndim)), axes)
            result = xp.where(kept_nan, math.nan, result)
        return op.deliver(xp.reshape(result, shape))
