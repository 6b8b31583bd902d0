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

import numbers

import numpy as np

from ._validation import as_float_array, normalize_axis, where_mask

__all__ = ["log_softmax_vjp", "softmax_jacobian", "softmax_vjp"]


def _one_axis(axis, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int (the axis of the classes), got {axis!r}")
    return np.lib.array_utils.normalize_axis_index(int(axis), ndim)


def _prepare(p, g, axis, where):
    """p and g in float64 over a common shape, the axes, the mask, the dtype."""
    p_arr = as_float_array(p, "p")
    g_arr = as_float_array(g, "g")
    try:
        g_b = np.broadcast_to(g_arr, p_arr.shape)
    except ValueError:
        raise ValueError(
            f"g must broadcast to p.shape {p_arr.shape}, got shape {g_arr.shape}"
        ) from None
    axes = normalize_axis(axis, p_arr.ndim)
    mask = where_mask(where, p_arr.shape)
    keep = np.ones(p_arr.shape, dtype=bool) if mask is None else mask
    dtype = np.result_type(p_arr.dtype, g_arr.dtype)
    return (
        p_arr.astype(np.float64, copy=False),
        g_b.astype(np.float64, copy=False),
        axes,
        keep,
        dtype,
    )


def _finish(result: np.ndarray, dtype):
    result = result.astype(dtype, copy=False)
    return result[()] if result.ndim == 0 else result


def softmax_jacobian(p, axis=-1, *, where=None):
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
    >>> from softmax._derivatives import softmax_jacobian
    >>> p = sm.softmax([1.0, 1.0])
    >>> softmax_jacobian(p)
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    >>> softmax_jacobian(sm.softmax([[0.0, 1.0, 2.0]] * 4)).shape
    (4, 3, 3)
    """
    arr = as_float_array(p, "p")
    ax = _one_axis(axis, arr.ndim)
    mask = where_mask(where, arr.shape)
    p_last = np.moveaxis(arr, ax, -1).astype(np.float64)
    if mask is not None:
        p_last = np.where(np.moveaxis(mask, ax, -1), p_last, 0.0)
    with np.errstate(all="ignore"):
        jac = -(p_last[..., :, np.newaxis] * p_last[..., np.newaxis, :])
        diag = np.arange(p_last.shape[-1])
        jac[..., diag, diag] = p_last * (1.0 - p_last)
    return jac.astype(arr.dtype, copy=False)


def softmax_vjp(p, g, axis=-1, *, where=None):
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
    >>> from softmax._derivatives import softmax_jacobian, softmax_vjp
    >>> p = sm.softmax([2.0, 1.0, 0.1])
    >>> g = np.array([1.0, 0.0, 0.0])  # gradient of p[0]
    >>> softmax_vjp(p, g).round(4)
    array([ 0.2247, -0.1598, -0.065 ])
    >>> bool(np.allclose(softmax_vjp(p, g), softmax_jacobian(p).T @ g))
    True
    """
    p64, g64, axes, keep, dtype = _prepare(p, g, axis, where)
    with np.errstate(all="ignore"):
        pe = np.where(keep, p64, 0.0)
        live = pe != 0
        s = np.sum(np.where(live, pe * g64, 0.0), axis=axes, keepdims=True)
        result = np.where(live, pe * (g64 - s), 0.0)
    return _finish(result, dtype)


def log_softmax_vjp(p, g, axis=-1, *, where=None):
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
    >>> from softmax._derivatives import log_softmax_vjp
    >>> p = sm.softmax([2.0, 1.0, 0.1])
    >>> log_softmax_vjp(p, np.array([-1.0, 0.0, 0.0])).round(4)  # NLL of class 0
    array([-0.341 ,  0.2424,  0.0986])
    """
    p64, g64, axes, keep, dtype = _prepare(p, g, axis, where)
    with np.errstate(all="ignore"):
        pe = np.where(keep, p64, 0.0)
        ge = np.where(keep, g64, 0.0)
        total = np.sum(ge, axis=axes, keepdims=True)
        mass = np.sum(pe, axis=axes, keepdims=True)
        result = ge - np.where(pe == 0, 0.0, pe * total)
        # mass == 0 is an empty slice; a NaN mass keeps its NaN.
        result = np.where(keep & ~(mass == 0), result, 0.0)
    return _finish(result, dtype)
