r"""Derivatives of softmax and log_softmax, from the softmax output alone.

The article's reason for the base e: ``d/dx e^x = e^x`` makes the
derivative of ``p = softmax(x)`` a function of p only,

.. math:: \frac{\partial p_i}{\partial x_j} = p_i (\delta_{ij} - p_j),
          \qquad J = \mathrm{diag}(p) - p p^T,

so the backward pass needs no exponential and no logits. Excluded entries
(``where=False``) and entries with ``p = 0`` are strong zeros: their
gradient is exactly 0 whatever the other arrays hold there (even inf or
NaN), so masked attention with ``-inf`` or huge masked scores never turns
into NaN.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from .._arguments import check_distribution, one_axis, reduction_axes, refuse_mask, unmask
from .._arguments import library_of as args_library
from .._backends import merge
from .._plan import Operand, operand, operand_mask
from .._typing import (
    AnyArray,
    Array,
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

__all__ = ["log_softmax_vjp", "softmax_jacobian", "softmax_vjp"]


def _prepare(p: Any, g: Any, axis: Axis, where: Any
             ) -> tuple[Operand, Array, Array, tuple[int, ...], Array | None, Any]:
    """p and g checked once: (operand, p, g in the working dtype, axes, keep, dtype)."""
    p, where = unmask(p, where, "p")
    g = refuse_mask(g, "g")
    op = operand(p, "p")
    shape = tuple(op.data.shape)
    g_op = operand(g if args_library(g) == op.library else op.asarray(g), "g")
    try:
        g_b = op.xp.broadcast_to(g_op.data, shape)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(f"g must broadcast to p.shape {shape}, got shape {tuple(g_op.data.shape)}") from None
    axes = reduction_axes(axis, len(shape))
    keep = operand_mask(op, where, shape, "p")
    check_distribution(op.xp, op.work_array(), axes, keep, op.eps, "p", lazy=op.lazy)
    dtype = op.xp.result_type(op.result, g_op.result)
    return op, op.work_array(), op.work_array(g_b), axes, keep, dtype


def _sum_dd(op: Operand, terms: Array, axes: tuple[int, ...]) -> tuple[Array, Array]:
    """Sum of finite terms of any sign over axes, as hi + lo (accurate to ~eps^2)."""
    xp = op.xp
    eps = float(np.finfo(np.float64).eps)
    pos_hi, pos_lo = merge.exact_sum(xp, xp.where(terms > 0, terms, 0.0), axes, eps)
    neg_hi, neg_lo = merge.exact_sum(xp, xp.where(terms < 0, -terms, 0.0), axes, eps)
    return merge.dd_add(pos_hi, pos_lo, -neg_hi, -neg_lo)


@overload
def softmax_jacobian(p: DaskArray, axis: int = -1, *, where: Mask = None) -> DaskArray: ...
@overload
def softmax_jacobian(p: ArrayAPIArray, axis: int = -1, *,
                     where: Mask = None) -> ArrayAPIArray: ...
@overload
def softmax_jacobian(p: NDArray[Any] | NumpyScalar, axis: int = -1, *,
                     where: Mask = None) -> FloatArray: ...
@overload
def softmax_jacobian(p: ArrayLike, axis: int = -1, *,
                     where: Mask = None) -> FloatArray: ...


def softmax_jacobian(p: Any, axis: int = -1, *, where: Any = None) -> Any:
    r"""The Jacobian of softmax, ``diag(p) - p p^T``, for every slice.

    Parameters
    ----------
    p : array_like
        Softmax output (probabilities along `axis`). float16, float32 and
        float64 keep their dtype; integers promote to float64.
    axis : int, optional
        The axis of the K classes. Default: the last axis.
    where : array_like of bool, optional
        The mask that was given to `softmax`: rows and columns of excluded
        entries are 0, whatever `p` holds there.

    Returns
    -------
    ndarray
        Shape ``(..., K, K)``: the other axes of `p` in order, then
        ``J[..., i, j] = d p_i / d x_j``. Symmetric; each row and column
        sums to 0. It takes K times the memory of `p`: for a
        vector-Jacobian product use `softmax_vjp`.

    Notes
    -----
    The diagonal is computed as ``p (1 - p)``, which keeps its relative
    accuracy when p is close to 1 (``p - p**2`` would not).

    Examples
    --------
    >>> import softmax as sm
    >>> from softmax import softmax_jacobian
    >>> p = sm.softmax([1.0, 1.0])
    >>> softmax_jacobian(p)
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    >>> softmax_jacobian(sm.softmax([[0.0, 1.0, 2.0]] * 4)).shape
    (4, 3, 3)
    """
    p, where = unmask(p, where, "p")
    op = operand(p, "p")
    shape = tuple(op.data.shape)
    ax = one_axis(axis, len(shape))
    keep = operand_mask(op, where, shape, "p")
    check_distribution(op.xp, op.work_array(), (ax,) if shape else (), keep, op.eps, "p",
                       lazy=op.lazy)
    xp = op.xp
    with op.computing():
        pw = op.work_array()
        if not shape:
            pw = xp.reshape(pw, (1,))
            keep = None if keep is None else xp.reshape(keep, (1,))
        if keep is not None:
            pw = xp.where(keep, pw, 0.0)
        p_last = xp.moveaxis(pw, ax, -1)
        k = p_last.shape[-1]
        idx = xp.arange(k, device=op.device)
        eye = idx[:, None] == idx[None, :]
        col = p_last[..., :, None]
        # The diagonal as p (1 - p): keeps its relative accuracy near p = 1.
        jac = xp.where(eye, col * (1.0 - col), -(col * p_last[..., None, :]))
        return op.deliver(jac)


@overload
def softmax_vjp(p: DaskArray, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                where: Mask = None) -> DaskArray: ...
@overload
def softmax_vjp(p: ArrayAPIArray, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                where: Mask = None) -> ArrayAPIArray: ...
@overload
def softmax_vjp(p: NDArray[Any], g: ArrayLike | AnyArray, axis: Axis = -1, *,
                where: Mask = None) -> FloatArray: ...
@overload
def softmax_vjp(p: NumpyScalar, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                where: Mask = None) -> FloatScalar: ...
@overload
def softmax_vjp(p: ArrayLike, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                where: Mask = None) -> FloatArray: ...


def softmax_vjp(p: Any, g: Any, axis: Axis = -1, *, where: Any = None) -> Any:
    r"""Vector-Jacobian product of softmax: the backward pass, ``J^T g``.

    .. math:: \frac{\partial L}{\partial x} = p \odot \Big(g - \sum_j p_j g_j\Big),
              \qquad g = \frac{\partial L}{\partial p}

    Parameters
    ----------
    p : array_like
        Softmax output.
    g : array_like
        Upstream gradient ``dL/dp``, broadcastable to ``p.shape``.
    axis : int, tuple of ints or None, optional
        The axis or axes `softmax` normalized over. Default: the last axis.
    where : array_like of bool, optional
        The mask that was given to `softmax`: excluded entries get gradient
        exactly 0 and their `p` and `g` are ignored.

    Returns
    -------
    ndarray
        ``dL/dx``, shaped like `p`, in the common dtype of `p` and `g`.

    Notes
    -----
    Where ``p == 0`` (an excluded entry, a ``-inf`` score, an empty slice)
    the gradient is exactly 0 and that entry's ``g`` does not enter the sum,
    even if it is inf or NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax as sm
    >>> from softmax import softmax_jacobian, softmax_vjp
    >>> p = sm.softmax([2.0, 1.0, 0.1])
    >>> g = np.array([1.0, 0.0, 0.0])  # gradient of p[0]
    >>> softmax_vjp(p, g).round(4)
    array([ 0.2247, -0.1598, -0.065 ])
    >>> bool(np.allclose(softmax_vjp(p, g), softmax_jacobian(p).T @ g))
    True
    """
    op, pw, gw, axes, keep, dtype = _prepare(p, g, axis, where)
    xp = op.xp
    with op.computing():
        if not axes:
            return op.deliver(xp.zeros_like(pw), dtype)
        pe = pw if keep is None else xp.where(keep, pw, 0.0)
        live = pe != 0
        # dL/dx_i = p_i (g_i S - T) with S = sum p, T = sum p g, both in
        # double-double: S is 1 only up to rounding, and g_i - T alone
        # cancels to 0 where p_i is close to 1 (logits [37.4, 0], g = [1, 0]
        # give [2^-54, -2^-54], not [0, 0]).
        ge = xp.where(live, gw, 0.0)
        bad = ~xp.isfinite(ge)
        pg_hi, pg_lo = merge.two_prod(pe, xp.where(bad, 0.0, ge))
        s_hi, s_lo = merge.exact_sum(xp, pe, axes, float(np.finfo(np.float64).eps))
        t_hi, t_lo = _sum_dd(op, pg_hi, axes)
        t_lo = t_lo + xp.sum(pg_lo, axis=axes, keepdims=True)
        gs_hi, gs_lo = merge.two_prod(ge, s_hi)
        d_hi, d_lo = merge.dd_add(gs_hi, gs_lo + ge * s_lo, -t_hi, -t_lo)
        result = xp.where(live, pe * (d_hi + d_lo), 0.0)
        # A non-finite g at a live entry poisons its slice, as the plain formula would.
        poisoned = xp.any(bad & live, axis=axes, keepdims=True)
        result = xp.where(poisoned & live, pe * (ge - xp.sum(pe * ge, axis=axes, keepdims=True)),
                          result)
        return op.deliver(result, dtype)


@overload
def log_softmax_vjp(p: DaskArray, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                    where: Mask = None) -> DaskArray: ...
@overload
def log_softmax_vjp(p: ArrayAPIArray, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                    where: Mask = None) -> ArrayAPIArray: ...
@overload
def log_softmax_vjp(p: NDArray[Any], g: ArrayLike | AnyArray, axis: Axis = -1, *,
                    where: Mask = None) -> FloatArray: ...
@overload
def log_softmax_vjp(p: NumpyScalar, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                    where: Mask = None) -> FloatScalar: ...
@overload
def log_softmax_vjp(p: ArrayLike, g: ArrayLike | AnyArray, axis: Axis = -1, *,
                    where: Mask = None) -> FloatArray: ...


def log_softmax_vjp(p: Any, g: Any, axis: Axis = -1, *, where: Any = None) -> Any:
    r"""Vector-Jacobian product of log_softmax, from the *softmax* output p.

    .. math:: \frac{\partial L}{\partial x} = g - p \sum_j g_j,
              \qquad g = \frac{\partial L}{\partial \log p}

    The function takes ``p = softmax(x)`` (not ``log_softmax(x)``): p is
    what the formula needs, and taking it avoids an ``exp`` of the log
    probabilities. If you kept ``logp``, pass ``np.exp(logp)``.

    Parameters
    ----------
    p : array_like
        Softmax output (``exp`` of the log_softmax output).
    g : array_like
        Upstream gradient ``dL/d(log p)``, broadcastable to ``p.shape``.
    axis : int, tuple of ints or None, optional
        The axis or axes of the distribution. Default: the last axis.
    where : array_like of bool, optional
        The mask that was given to `log_softmax`: excluded entries get
        gradient exactly 0 and their `g` does not enter the sum.

    Returns
    -------
    ndarray
        ``dL/dx``, shaped like `p`, in the common dtype of `p` and `g`.

    Notes
    -----
    An empty slice (every entry excluded or ``-inf``, so all ``p == 0``)
    gets gradient 0. An entry with a ``-inf`` score in a non-empty slice
    that is *not* excluded by `where` gets ``g_i``, the limit of
    ``d(x_i - logsumexp(x)) / dx_i = 1 - p_i``, as in PyTorch; exclude it
    with `where` to get 0.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax as sm
    >>> from softmax import log_softmax_vjp
    >>> p = sm.softmax([2.0, 1.0, 0.1])
    >>> log_softmax_vjp(p, np.array([-1.0, 0.0, 0.0])).round(4)  # NLL of class 0
    array([-0.341 ,  0.2424,  0.0986])
    """
    op, pw, gw, axes, keep, dtype = _prepare(p, g, axis, where)
    xp = op.xp
    with op.computing():
        if not axes:
            return op.deliver(xp.zeros_like(pw), dtype)
        k = xp.ones_like(pw, dtype=xp.bool) if keep is None else keep
        pe = xp.where(k, pw, 0.0)
        ge = xp.where(k, gw, 0.0)
        total = xp.sum(ge, axis=axes, keepdims=True)
        mass = xp.sum(pe, axis=axes, keepdims=True)
        result = ge - xp.where(pe == 0, 0.0, pe * total)
        # mass == 0 is an empty slice; a NaN mass keeps its NaN.
        result = xp.where(k & ~(mass == 0), result, 0.0)
        return op.deliver(result, dtype)
