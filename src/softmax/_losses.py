r"""Cross-entropy (with its gradient) and entropy of the softmax distribution.

Both are built on the package's exact `log_softmax`: a loss is never the log
of a rounded probability, so a confident right answer keeps its tiny loss
(``-log_softmax([40, 0])[0] = 4.2e-18``, not 0) and a confident wrong answer
keeps its large one instead of ``-log(0) = inf``.
"""

from __future__ import annotations

import math

import numpy as np

from ._api import log_softmax, softmax
from ._derivatives import _one_axis
from ._validation import _real_number, as_float_array, normalize_axis, where_mask

__all__ = ["cross_entropy", "cross_entropy_grad", "entropy"]

_REDUCTIONS = ("mean", "sum", "none")


class _Problem:
    """The checked arguments of a cross-entropy call, laid out classes-last."""

    def __init__(self, logits, labels, axis, reduction, temperature, label_smoothing, where):
        arr = as_float_array(logits, "logits")
        if arr.ndim == 0:
            raise ValueError("logits must have at least one axis (the classes), got a scalar")
        self.dtype = arr.dtype
        self.axis = _one_axis(axis, arr.ndim)
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        t = _real_number(temperature, "temperature")
        if not (0 < t < math.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.temperature = t
        eps = _real_number(label_smoothing, "label_smoothing")
        if not (0 <= eps <= 1):
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.eps = eps
        mask = where_mask(where, arr.shape)
        self.mask = mask
        self.x = arr.astype(np.float64, copy=False)
        self.shape = arr.shape
        self.batch_shape = arr.shape[: self.axis] + arr.shape[self.axis + 1 :]
        self.n_classes = arr.shape[self.axis]
        self.index, self.target = self._targets(labels)
        self.keep = None if mask is None else np.moveaxis(mask, self.axis, -1)
        # Label smoothing spreads eps over the classes that are in play.
        if self.keep is None:
            self.k_kept = np.full(self.batch_shape, float(self.n_classes))
        else:
            self.k_kept = np.count_nonzero(self.keep, axis=-1).astype(np.float64)

    def _targets(self, labels):
        lab = np.asarray(labels)
        kind = lab.dtype.kind
        if kind in "iu":
            if lab.shape != self.batch_shape:
                raise ValueError(
                    f"labels must have shape {self.batch_shape} (logits.shape {self.shape} "
                    f"without axis {self.axis}) for class indices, got shape {lab.shape}"
                )
            bad = (lab < 0) | (lab >= self.n_classes)
            if np.any(bad):
                where_bad = tuple(int(i) for i in np.argwhere(bad)[0])
                index = ", ".join(map(str, where_bad))
                raise ValueError(
                    f"labels must be class indices in [0, {self.n_classes}), "
                    f"got labels[{index}] = {lab[where_bad]}"
                )
            return lab.astype(np.intp, copy=False), None
        if kind == "f":
            if lab.shape != self.shape:
                raise ValueError(
                    f"labels of float dtype are probability targets and must have "
                    f"logits.shape {self.shape}, got shape {lab.shape} (class indices "
                    f"must be an integer array of shape {self.batch_shape})"
                )
            return None, np.moveaxis(lab.astype(np.float64, copy=False), self.axis, -1)
        raise TypeError(
            f"labels must be integer class indices or float probabilities, got dtype {lab.dtype}"
        )

    def smoothed_target(self):
        """(1 - eps) * target + eps / K_kept on the kept classes (probability targets)."""
        share = self.eps / np.maximum(self.k_kept, 1.0)
        t = (1.0 - self.eps) * self.target + share[..., np.newaxis]
        if self.keep is not None:
            t = t - np.where(self.keep, 0.0, share[..., np.newaxis])
        return t

    def reduce(self, per_sample):
        if self.reduction == "none":
            out = per_sample.astype(self.dtype, copy=False)
            return out[()] if out.ndim == 0 else out
        total = float(np.sum(per_sample))
        if self.reduction == "mean":
            total = total / per_sample.size if per_sample.size else math.nan
        return self.dtype.type(total)

    def grad_scale(self) -> float:
        n = math.prod(self.batch_shape)
        scale = 1.0 / self.temperature
        if self.reduction == "mean" and n > 0:
            scale /= n
        return scale


def _strong_product(coef, logp):
    """coef * logp with 0 * (-inf) = 0: a zero weight ignores an impossible class."""
    return np.where(coef == 0, 0.0, coef * logp)


def cross_entropy(
    logits,
    labels,
    axis=-1,
    *,
    reduction="mean",
    temperature=1.0,
    label_smoothing=0.0,
    where=None,
):
    r"""Cross-entropy between a target and ``softmax(logits / temperature)``.

    .. math:: \ell = -\sum_k t_k \log \mathrm{softmax}(x / T)_k,
              \qquad t = (1 - \varepsilon)\, y + \varepsilon / K

    The same quantity as ``torch.nn.functional.cross_entropy`` (for class
    indices and for probability targets, with its label smoothing), computed
    from the exact `log_softmax` in float64.

    Parameters
    ----------
    logits : array_like
        Scores. float16, float32 and float64 keep their dtype in the result;
        integers promote to float64. Computed in float64 throughout.
    labels : array_like
        Either integer class indices of shape ``logits.shape`` without
        `axis` (no one-hot matrix is built), or float probability targets
        of shape ``logits.shape`` (not checked to sum to 1).
    axis : int, optional
        The axis of the classes. Default: the last axis.
    reduction : {"mean", "sum", "none"}, optional
        Average over samples, their sum, or the loss of every sample
        (shape ``logits.shape`` without `axis`). The mean of no samples is
        NaN.
    temperature : float, optional
        Divides the logits (finite, > 0).
    label_smoothing : float, optional
        ``eps`` in [0, 1]: the target becomes ``(1 - eps) * y + eps / K``
        (PyTorch's rule). With `where`, K counts the kept classes only and
        excluded classes get no smoothing mass.
    where : array_like of bool, optional
        Classes to include (as for `softmax`). A target with mass on an
        excluded class, or on a ``-inf`` logit, has infinite loss.

    Returns
    -------
    ndarray or scalar
        The loss, in the logits' dtype.

    Raises
    ------
    ValueError
        For labels of the wrong shape, class indices out of range (the
        message names the first bad index), a bad `reduction`,
        `temperature` or `label_smoothing`.

    See Also
    --------
    cross_entropy_grad, entropy

    Examples
    --------
    >>> import numpy as np
    >>> from softmax._losses import cross_entropy
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    >>> float(cross_entropy(logits, [0, 1]))
    0.3068820565987253
    >>> cross_entropy(logits, [0, 1], reduction="none").round(4)
    array([0.417 , 0.1967])

    A confident right answer keeps its tiny loss:

    >>> float(cross_entropy([40.0, 0.0], 0))
    4.248354255291589e-18
    """
    prob = _Problem(logits, labels, axis, reduction, temperature, label_smoothing, where)
    logp = log_softmax(prob.x, prob.axis, temperature=prob.temperature, where=prob.mask)
    logp = np.moveaxis(logp, prob.axis, -1)
    eps = prob.eps
    with np.errstate(invalid="ignore", over="ignore"):
        if prob.index is not None:
            picked = np.take_along_axis(logp, prob.index[..., np.newaxis], axis=-1)[..., 0]
            loss = -_strong_product(1.0 - eps, picked)
            if eps > 0:
                kept_logp = logp if prob.keep is None else np.where(prob.keep, logp, 0.0)
                mean_logp = np.sum(kept_logp, axis=-1) / np.maximum(prob.k_kept, 1.0)
                loss = loss - eps * mean_logp
        else:
            t = prob.smoothed_target()
            loss = -np.sum(_strong_product(t, logp), axis=-1)
    return prob.reduce(loss)


def cross_entropy_grad(
    logits,
    labels,
    axis=-1,
    *,
    reduction="mean",
    temperature=1.0,
    label_smoothing=0.0,
    where=None,
):
    r"""Gradient of `cross_entropy` with respect to the logits.

    .. math:: \frac{\partial \ell}{\partial x} = \frac{\mathrm{softmax}(x / T) - t}{T}
              \cdot \begin{cases} 1/N & \text{reduction="mean"} \\
              1 & \text{otherwise} \end{cases}

    Parameters
    ----------
    logits, labels, axis, reduction, temperature, label_smoothing, where
        As for `cross_entropy`. With ``reduction="none"`` the result is the
        gradient of the sum of the per-sample losses (each sample's
        gradient sits in its own slice).

    Returns
    -------
    ndarray
        Shaped like `logits`, in its dtype. Excluded classes get exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax._losses import cross_entropy_grad
    >>> cross_entropy_grad(np.array([[2.0, 1.0, 0.1]]), [0]).round(4)
    array([[-0.341 ,  0.2424,  0.0986]])
    """
    prob = _Problem(logits, labels, axis, reduction, temperature, label_smoothing, where)
    p = softmax(prob.x, prob.axis, temperature=prob.temperature, where=prob.mask)
    grad = np.moveaxis(p, prob.axis, -1)  # a view of the fresh array p
    eps = prob.eps
    if prob.index is not None:
        if eps > 0:
            share = (eps / np.maximum(prob.k_kept, 1.0))[..., np.newaxis]
            grad -= share if prob.keep is None else np.where(prob.keep, share, 0.0)
        idx = prob.index[..., np.newaxis]
        at_label = np.take_along_axis(grad, idx, axis=-1)
        np.put_along_axis(grad, idx, at_label - (1.0 - eps), axis=-1)
    else:
        grad -= prob.smoothed_target()
    if prob.keep is not None:
        grad = np.where(prob.keep, grad, 0.0)
    grad *= prob.grad_scale()
    return np.moveaxis(grad, -1, prob.axis).astype(prob.dtype)


def entropy(logits, axis=-1, *, temperature=1.0, where=None):
    r"""Shannon entropy (in nats) of ``softmax(logits / temperature)``.

    .. math:: H = -\sum_i p_i \log p_i, \qquad p = \mathrm{softmax}(x / T)

    Parameters
    ----------
    logits : array_like
        Scores. float16, float32 and float64 keep their dtype in the result
        (computed in float64); integers promote to float64.
    axis : int, tuple of ints or None, optional
        Axis or axes of each distribution. Default: the last axis.
    temperature : float, optional
        As for `softmax`; 0 gives the entropy of the hard max (``log k``
        for k tied maxima), inf of the uniform distribution.
    where : array_like of bool, optional
        Classes to include; excluded classes contribute nothing.

    Returns
    -------
    ndarray or scalar
        Entropies, shaped like `logits` without `axis`. Between 0 (one-hot)
        and ``log K`` (equal logits).

    Notes
    -----
    Computed as ``-sum(p * log_softmax(x))`` with ``0 * (-inf) = 0``: every
    term is >= 0, so there is no cancellation (the textbook
    ``logsumexp - sum(p * x)`` cancels to noise for huge logits). An empty
    slice has entropy 0; a slice with NaN has entropy NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax._losses import entropy
    >>> float(entropy([2.0, 1.0, 0.1]))
    0.846738178760252
    >>> float(entropy([5.0, 5.0, 5.0, 5.0])), float(np.log(4))  # equal: log K
    (1.3862943611198906, 1.3862943611198906)
    >>> float(entropy([1e300, 0.0]))  # the one-hot limit
    0.0
    """
    arr = as_float_array(logits, "logits")
    axes = normalize_axis(axis, arr.ndim)
    x = arr.astype(np.float64, copy=False)
    p = softmax(x, axis, temperature=temperature, where=where)
    logp = log_softmax(x, axis, temperature=temperature, where=where)
    with np.errstate(invalid="ignore"):
        terms = np.where(p == 0, 0.0, p * -logp)
    h = np.sum(terms, axis=axes) + 0.0  # + 0.0 turns a -0.0 into 0.0
    h = np.asarray(h).astype(arr.dtype, copy=False)
    return h[()] if h.ndim == 0 else h
