r"""Cross-entropy (with its gradient) and entropy of the softmax distribution.

Both are built on the package's exact `log_softmax`: a loss is never the log
of a rounded probability, so a confident right answer keeps its tiny loss
(``-log_softmax([40, 0])[0] = 4.2e-18``, not 0) and a confident wrong answer
keeps its large one instead of ``-log(0) = inf``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

from .. import _arguments as args
from .._backends import run
from .._plan import Op, Operand, operand, operand_mask
from .._typing import (
    AnyArray,
    Array,
    ArrayAPIArray,
    ArrayLike,
    Axis,
    DaskArray,
    FloatArray,
    FloatResult,
    FloatScalar,
    Input,
    Mask,
    Namespace,
    NDArray,
    Reduction,
)

__all__ = ["cross_entropy", "cross_entropy_grad", "entropy"]

_REDUCTIONS = ("mean", "sum", "none")


class _Problem:
    """The checked arguments of a cross-entropy call, laid out classes-last."""

    def __init__(self, logits: Any, labels: Any, axis: int, reduction: str, temperature: float,
                 label_smoothing: float, where: Any) -> None:
        logits, where = args.unmask(logits, where, "logits")
        labels = args.refuse_mask(labels, "labels")
        op = operand(logits, "logits")
        shape = tuple(op.data.shape)
        if not shape:
            raise ValueError("logits must have at least one axis (the classes), got a scalar")
        self.op, self.xp, self.shape = op, op.xp, shape
        self.k_kept: float | Array
        self.axis = args.one_axis(axis, len(shape))
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.temperature = args.positive_temperature(temperature)
        self.scale = args.parse_scale(self.temperature, None)
        eps = args.real_number(label_smoothing, "label_smoothing")
        if not (0 <= eps <= 1):
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.eps = eps
        self.mask = operand_mask(op, where, shape, "logits")
        self.batch_shape = shape[: self.axis] + shape[self.axis + 1:]
        self.n_classes = shape[self.axis]
        self.keep = None if self.mask is None else self.xp.moveaxis(self.mask, self.axis, -1)
        self.onehot, self.target = self._targets(labels)
        xp = self.xp
        # Label smoothing spreads eps over the classes that are in play.
        if self.keep is None:
            self.k_kept = float(self.n_classes)
        else:
            self.k_kept = xp.sum(xp.astype(self.keep, op.work), axis=-1, keepdims=True)

    def _targets(self, labels: Any) -> tuple[Array | None, Array | None]:
        xp, op = self.xp, self.op
        lab = args.labels_array(labels, op.library)
        kind = args.label_kind(lab)
        if kind == "index":
            args.check_class_indices(lab, self.batch_shape, self.shape, self.axis,
                                     self.n_classes, lazy=op.lazy)
            lab = op.asarray(lab)
            classes = xp.arange(self.n_classes, device=op.device)
            return classes == xp.astype(lab, classes.dtype)[..., None], None
        if tuple(lab.shape) != self.shape:
            raise ValueError(
                f"labels of float dtype are probability targets and must have "
                f"logits.shape {self.shape}, got shape {tuple(lab.shape)} (class indices "
                f"must be an integer array of shape {self.batch_shape})"
            )
        return None, xp.moveaxis(op.work_array(op.asarray(lab)), self.axis, -1)

    def run(self, name: Op) -> Array:
        """softmax or log_softmax of the logits in the working dtype, classes last."""
        op = self.op
        out = run(op.work_array(), op.plan(name, (self.axis,), self.scale, self.mask))
        return self.xp.moveaxis(out, self.axis, -1)

    def share(self) -> Array:
        """eps / K_kept on the kept classes, 0 elsewhere (classes last)."""
        xp = self.xp
        k = self.k_kept
        share = self.eps / (xp.where(k > 0, k, 1.0) if not isinstance(k, float) else max(k, 1.0))
        if self.keep is None:
            return share
        return xp.where(self.keep, share, 0.0)

    def smoothed_target(self) -> Array:
        """(1 - eps) * target + eps / K_kept on the kept classes."""
        t: Array = self.onehot if self.target is None else self.target
        if self.target is None:
            t = self.xp.astype(t, self.op.work)
        return (1.0 - self.eps) * t + self.share()

    def reduce(self, per_sample: Array) -> Any:
        xp, op = self.xp, self.op
        if self.reduction == "none":
            return op.deliver(per_sample)
        total = xp.sum(per_sample)
        if self.reduction == "mean":
            n = math.prod(self.batch_shape)
            total = total / n if n else total * math.nan
        return op.deliver(total)

    def grad_scale(self) -> float:
        n = math.prod(self.batch_shape)
        scale = 1.0 / self.temperature
        if self.reduction == "mean" and n > 0:
            scale /= n
        return scale


def _strong_product(xp: Namespace, coef: Array, logp: Array) -> Array:
    """coef * logp with 0 * (-inf) = 0: a zero weight ignores an impossible class."""
    return xp.where(coef == 0, 0.0, coef * logp)


@overload
def cross_entropy(logits: DaskArray, labels: ArrayLike | AnyArray, axis: int = -1, *,
                  reduction: Reduction = "mean", temperature: float = 1.0,
                  label_smoothing: float = 0.0, where: Mask = None) -> DaskArray: ...
@overload
def cross_entropy(logits: ArrayAPIArray, labels: ArrayLike | AnyArray, axis: int = -1, *,
                  reduction: Reduction = "mean", temperature: float = 1.0,
                  label_smoothing: float = 0.0, where: Mask = None) -> ArrayAPIArray: ...
@overload
def cross_entropy(logits: NDArray[Any], labels: ArrayLike | AnyArray, axis: int = -1, *,
                  reduction: Literal["mean", "sum"] = "mean", temperature: float = 1.0,
                  label_smoothing: float = 0.0, where: Mask = None) -> FloatScalar: ...
@overload
def cross_entropy(logits: NDArray[Any], labels: ArrayLike | AnyArray, axis: int = -1, *,
                  reduction: Reduction, temperature: float = 1.0,
                  label_smoothing: float = 0.0, where: Mask = None) -> FloatResult: ...
@overload
def cross_entropy(logits: ArrayLike, labels: ArrayLike | AnyArray, axis: int = -1, *,
                  reduction: Literal["mean", "sum"] = "mean", temperature: float = 1.0,
                  label_smoothing: float = 0.0, where: Mask = None) -> FloatScalar: ...
@overload
def cross_entropy(logits: ArrayLike, labels: ArrayLike | AnyArray, axis: int = -1, *,
                  reduction: Reduction, temperature: float = 1.0,
                  label_smoothing: float = 0.0, where: Mask = None) -> FloatResult: ...


def cross_entropy(
    logits: Any,
    labels: Any,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    temperature: float = 1.0,
    label_smoothing: float = 0.0,
    where: Any = None,
) -> Any:
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
    >>> from softmax import cross_entropy
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
    xp = prob.xp
    with prob.op.computing():
        logp = prob.run("log_softmax")
        if prob.target is None and prob.eps == 0:
            # Class indices: the label's log-probability (exactly one class matches).
            loss = -xp.sum(xp.where(prob.onehot, logp, 0.0), axis=-1)
        else:
            loss = -xp.sum(_strong_product(xp, prob.smoothed_target(), logp), axis=-1)
        return prob.reduce(loss)


@overload
def cross_entropy_grad(logits: DaskArray, labels: ArrayLike | AnyArray, axis: int = -1, *,
                       reduction: Reduction = "mean", temperature: float = 1.0,
                       label_smoothing: float = 0.0, where: Mask = None) -> DaskArray: ...
@overload
def cross_entropy_grad(logits: ArrayAPIArray, labels: ArrayLike | AnyArray, axis: int = -1, *,
                       reduction: Reduction = "mean", temperature: float = 1.0,
                       label_smoothing: float = 0.0, where: Mask = None) -> ArrayAPIArray: ...
@overload
def cross_entropy_grad(logits: NDArray[Any], labels: ArrayLike | AnyArray, axis: int = -1, *,
                       reduction: Reduction = "mean", temperature: float = 1.0,
                       label_smoothing: float = 0.0,
                       where: Mask = None) -> FloatArray: ...
@overload
def cross_entropy_grad(logits: ArrayLike, labels: ArrayLike | AnyArray, axis: int = -1, *,
                       reduction: Reduction = "mean", temperature: float = 1.0,
                       label_smoothing: float = 0.0,
                       where: Mask = None) -> FloatArray: ...


def cross_entropy_grad(
    logits: Any,
    labels: Any,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    temperature: float = 1.0,
    label_smoothing: float = 0.0,
    where: Any = None,
) -> Any:
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
    >>> from softmax import cross_entropy_grad
    >>> cross_entropy_grad(np.array([[2.0, 1.0, 0.1]]), [0]).round(4)
    array([[-0.341 ,  0.2424,  0.0986]])
    """
    prob = _Problem(logits, labels, axis, reduction, temperature, label_smoothing, where)
    xp = prob.xp
    with prob.op.computing():
        grad = prob.run("softmax") - prob.smoothed_target()
        if prob.keep is not None:
            grad = xp.where(prob.keep, grad, 0.0)
        grad = grad * prob.grad_scale()
        return prob.op.deliver(xp.moveaxis(grad, -1, prob.axis))


@overload
def entropy(logits: DaskArray, axis: Axis = -1, *, temperature: float = 1.0,
            where: Mask = None, input: Input = "logits") -> DaskArray: ...
@overload
def entropy(logits: ArrayAPIArray, axis: Axis = -1, *, temperature: float = 1.0,
            where: Mask = None, input: Input = "logits") -> ArrayAPIArray: ...
@overload
def entropy(logits: NDArray[Any], axis: Axis = -1, *, temperature: float = 1.0,
            where: Mask = None, input: Input = "logits") -> FloatResult: ...
@overload
def entropy(logits: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0,
            where: Mask = None, input: Input = "logits") -> FloatResult: ...


def entropy(logits: Any, axis: Axis = -1, *, temperature: float = 1.0, where: Any = None,
            input: Input = "logits") -> Any:
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
    input : {"logits", "probs"}, optional
        What the first argument holds. ``"logits"`` (default): scores, whose
        softmax is taken; scores that already look like probabilities (every
        slice in [0, 1] and summing to 1) are refused, since reading them as
        logits gives a confident wrong answer; pass ``input="probs"``.
        ``"probs"``: probabilities (as ``scipy.stats.entropy``; checked to be
        distributions, `temperature` must stay 1).

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
    >>> from softmax import entropy
    >>> float(entropy([2.0, 1.0, 0.1]))
    0.846738178760252
    >>> float(entropy([5.0, 5.0, 5.0, 5.0])), float(np.log(4))  # equal: log K
    (1.3862943611198906, 1.3862943611198906)
    >>> float(entropy([1e300, 0.0]))  # the one-hot limit
    0.0
    >>> round(float(entropy([0.9, 0.1], input="probs")), 6)  # as scipy.stats.entropy
    0.325083
    """
    logits, where = args.unmask(logits, where, "logits")
    kind = args.input_kind(input)
    op = operand(logits, "logits")
    shape = tuple(op.data.shape)
    axes = args.reduction_axes(axis, len(shape))
    mask = operand_mask(op, where, shape, "logits")
    xp = op.xp
    with op.computing():
        x = op.work_array()
        if kind == "probs":
            if args.real_number(temperature, "temperature") != 1:
                raise ValueError(
                    f"temperature must be 1 with input='probs' (probabilities have no "
                    f"temperature), got {temperature!r}")
            args.check_distribution(xp, x, axes, mask, op.eps, "logits", lazy=op.lazy)
            p = x if mask is None else xp.where(mask, x, 0.0)
            logp = xp.log(p)
        else:
            args.refuse_probabilities(xp, x, axes, mask, op.eps, "logits", lazy=op.lazy)
            scale = args.parse_scale(temperature, None)
            if not axes:
                x = xp.reshape(x, shape + (1,))
                mask = None if mask is None else xp.reshape(mask, shape + (1,))
                axes = (len(shape),)
            p = run(x, op.plan("softmax", axes, scale, mask))
            logp = run(x, op.plan("log_softmax", axes, scale, mask))
        # -p log p, with 0 log 0 = 0; a subnormal p is never formed first
        # (exp(log p + log(-log p)) rounds the tiny term once).
        tiny = (logp < -700.0) & (logp > -math.inf)
        safe = xp.where(tiny, logp, -1.0)
        plain = xp.where(p == 0, 0.0, p * -logp)
        terms = xp.where(tiny, xp.exp(safe + xp.log(-safe)), plain)
        terms = xp.where(xp.isnan(logp) | xp.isnan(p), math.nan, terms)
        h = xp.sum(terms, axis=axes) + 0.0  # + 0.0 turns a -0.0 into 0.0
        return op.deliver(h)
