"""Calibration metrics: NLL, Brier score, accuracy, ECE/MCE, class-wise ECE, reliability curve.

Every metric checks its arguments once (`softmax.calibration._inputs`) and
then works on row blocks in float64 (memory O(N) beyond the input).

Multiclass scores are judged on the top label (the arg max and its
probability). Binary scores, one number per sample for the positive class,
are judged as scikit-learn's ``calibration_curve`` and netcal judge them:
the probability of class 1 against the fraction of positives.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, cast

import numpy as np

from .._typing import ArrayLike, FloatArray, NDArray
from ._inputs import Input, Scores, Strategy, blocks, check_bins, check_scores, choice

Norm = Literal["l1", "l2", "max"]

__all__ = [
    "ReliabilityCurve",
    "accuracy",
    "brier",
    "classwise_ece",
    "ece",
    "mce",
    "nll",
    "reliability_curve",
]


class _RowStats(NamedTuple):
    confidence: FloatArray  # binned value: top-label probability, or p(class 1) when binary
    correct: NDArray[np.bool]  # its target: arg max == label, or label == 1 when binary
    hit: NDArray[np.bool]  # arg max == label
    nll: FloatArray  # -log p_label
    brier: FloatArray  # sum_k (p_k - [k == label])^2; (p_1 - label)^2 when binary


def _row_stats(s: Scores) -> _RowStats:
    """Per-sample confidence, correctness, NLL and Brier score, by row blocks."""
    rows, y = s.rows, s.labels
    n, k = rows.shape
    conf = np.empty(n)
    hit = np.empty(n, dtype=bool)
    nll_rows = np.empty(n)
    brier_rows = np.empty(n)
    pos = np.empty(n) if s.binary else None
    for start, stop in blocks(n, k):
        block = rows[start:stop]
        r = np.arange(stop - start)
        yb = y[start:stop]
        hi = block.max(axis=1)
        hit[start:stop] = block.argmax(axis=1) == yb
        if s.kind == "logits":
            # -inf (excluded) gives e = 0; hi is finite (a row keeps a class).
            c = np.subtract(block, hi[:, None], dtype=np.float64)
            e = np.exp(c)
            cy = c[r, yb]
            ey = e[r, yb].copy()
            total = e.sum(axis=1)
            sum_p2 = np.einsum("ij,ij->i", e, e) / (total * total)
            if pos is not None:
                pos[start:stop] = e[:, 1] / total
            e[r, yb] = 0.0
            rest = e.sum(axis=1)
            conf[start:stop] = 1.0 / total
            # log(total) - c_y, with log1p accuracy when the label is the max.
            nll_rows[start:stop] = np.log1p(rest + (ey - 1.0)) - cy
            py = ey / total
        else:
            p = block.astype(np.float64)
            py = p[r, yb]
            conf[start:stop] = hi
            if pos is not None:
                pos[start:stop] = p[:, 1]
            sum_p2 = np.einsum("ij,ij->i", p, p)
            with np.errstate(divide="ignore"):
                nll_rows[start:stop] = -np.log(py)
        brier_rows[start:stop] = sum_p2 - 2.0 * py + 1.0
    brier_rows = np.maximum(brier_rows, 0.0)
    if pos is not None:
        # Binary: the positive class against the label, as scikit-learn does.
        return _RowStats(pos, y == 1, hit, nll_rows, 0.5 * brier_rows)
    return _RowStats(conf, hit, hit, nll_rows, brier_rows)


_INPUT_DOC = """scores : array_like
        Logits (default) or probabilities, classes along `axis`; or a 1-D
        array of binary scores: the logit (or, with ``input="probs"``, the
        probability) of the positive class, one per sample. A
        ``numpy.ma.MaskedArray`` excludes its masked classes.
    labels : array_like of int or bool
        True class of each sample, shaped like `scores` without `axis`
        (0/1 or bool for binary scores). Masked labels drop their samples.
    input : {"logits", "probs"}, optional
        What `scores` holds. Probabilities must lie in [0, 1] and sum to 1
        along `axis` (within a few rounding errors per class); they are
        not renormalized. Logits that all look like probabilities are an
        error that names ``input="probs"``.
    axis : int, optional
        The class axis. Default: the last.
    where : array_like of bool, optional
        Classes to include (broadcast to `scores`); the rest get
        probability 0. Combines with a mask of `scores`. A sample with no
        class left is dropped; a label on an excluded class is an error."""


def stats(scores: Any, labels: Any, input: Any, axis: Any, where: Any) -> _RowStats:
    return _row_stats(check_scores(scores, labels, input=input, axis=axis, where=where))


def nll(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits", axis: int = -1,
        where: ArrayLike | None = None) -> float:
    """Mean negative log-likelihood of the labels (natural log, nats).

    Parameters
    ----------
    {input_doc}

    Returns
    -------
    float
        ``mean(-log p[label])``; ``inf`` if some label has probability 0.

    Examples
    --------
    >>> from softmax.calibration import nll
    >>> round(nll([[2.0, 1.0, 0.1]], [0]), 4)   # -log 0.659
    0.417
    >>> round(nll([[0.5, 0.5], [0.25, 0.75]], [0, 1], input="probs"), 4)
    0.4904

    Binary scores: the probability of the positive class.

    >>> round(nll([0.8, 0.3], [1, 0], input="probs"), 4)   # -(log 0.8 + log 0.7) / 2
    0.2899
    """
    return float(stats(scores, labels, input, axis, where).nll.mean())


def brier(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits", axis: int = -1,
          where: ArrayLike | None = None) -> float:
    """Mean Brier score.

    Multiclass: ``mean(sum_k (p_k - [k == label])**2)``, between 0 (certain
    and right) and 2 (certain and wrong). Binary scores: ``mean((p - label)**2)``
    with p the probability of the positive class, between 0 and 1, as
    scikit-learn's ``brier_score_loss``.

    Parameters
    ----------
    {input_doc}

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import brier
    >>> float(brier([[0.5, 0.5], [0.25, 0.75]], [0, 1], input="probs"))
    0.3125
    >>> float(brier([0.5, 0.75], [0, 1], input="probs"))
    0.15625
    """
    return float(stats(scores, labels, input, axis, where).brier.mean())


def accuracy(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits", axis: int = -1,
             where: ArrayLike | None = None) -> float:
    """Fraction of samples whose arg max is the label (ties: the first class).

    Binary scores predict class 1 when p > 0.5 (a logit > 0).

    Parameters
    ----------
    {input_doc}

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import accuracy
    >>> float(accuracy([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]], [0, 1, 1]))
    0.6666666666666666
    """
    return float(stats(scores, labels, input, axis, where).hit.mean())


class ReliabilityCurve(NamedTuple):
    """Per-bin summary behind a reliability diagram.

    For binary scores, `confidence` is the mean predicted probability of
    the positive class and `accuracy` the fraction of positives
    (scikit-learn's ``prob_pred`` and ``prob_true``).

    Attributes
    ----------
    edges : ndarray, shape (n + 1,)
        Bin edges; bin i holds confidences in ``(edges[i], edges[i+1]]``
        (the first bin also holds ``edges[0]``).
    confidence : ndarray, shape (n,)
        Mean confidence in each bin (NaN for an empty bin).
    accuracy : ndarray, shape (n,)
        Fraction correct in each bin (NaN for an empty bin).
    counts : ndarray of int, shape (n,)
        Samples per bin.

    Examples
    --------
    >>> from softmax.calibration import reliability_curve
    >>> reliability_curve([0.2, 0.9], [0, 1], input="probs", n_bins=2).counts
    array([1, 1])
    """

    edges: FloatArray
    confidence: FloatArray
    accuracy: FloatArray
    counts: NDArray[np.intp]


def _bin_edges(conf: FloatArray, n_bins: int, strategy: str) -> FloatArray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    # Equal mass: split the sorted confidences into n_bins runs of sizes as
    # in np.array_split. A bin must be a confidence interval, so a split
    # that falls inside a run of tied values moves to the nearest place
    # where the value changes; splits that meet are merged (fewer bins).
    s = np.sort(conf)
    n = s.size
    sizes = np.full(n_bins, n // n_bins)
    sizes[: n % n_bins] += 1
    targets = np.cumsum(sizes)[:-1]
    changes = np.flatnonzero(s[1:] != s[:-1]) + 1  # s[p - 1] < s[p]
    if changes.size == 0 or targets.size == 0:
        return np.array([0.0, 1.0])
    k = np.searchsorted(changes, targets)
    below = changes[np.maximum(k - 1, 0)]
    above = changes[np.minimum(k, changes.size - 1)]
    nearest = np.where(np.abs(targets - below) <= np.abs(above - targets), below, above)
    inner = s[nearest - 1]  # right-closed bins: the last value of the lower bin
    return np.unique(np.concatenate(([0.0], inner, [1.0])))


def _binned(conf: FloatArray, target: NDArray[np.bool], n_bins: int, strategy: str
            ) -> tuple[FloatArray, NDArray[np.intp], NDArray[Any], NDArray[Any]]:
    """Edges, counts, sums of confidence and of target per bin (options checked)."""
    edges = _bin_edges(conf, n_bins, strategy)
    nb = edges.size - 1
    # Right-closed bins (lo, hi], as in Guo et al.; 0 joins the first bin.
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, nb - 1)
    counts = np.bincount(index, minlength=nb)
    sum_conf = np.bincount(index, weights=conf, minlength=nb)
    sum_target = np.bincount(index, weights=target.astype(np.float64), minlength=nb)
    return edges, counts, sum_conf, sum_target


def _calibration_error(counts: NDArray[np.intp], sum_conf: NDArray[Any], sum_target: NDArray[Any],
                       norm: str, debias: bool) -> float:
    n = counts.sum()
    full = counts > 0
    cnt = counts[full].astype(np.float64)
    conf = sum_conf[full] / cnt
    acc = sum_target[full] / cnt
    gap = np.abs(acc - conf)
    weight = cnt / n
    if norm == "max":
        return float(gap.max())
    if norm == "l1":
        return float(weight @ gap)
    sq = gap * gap
    if debias:
        # Kumar et al. 2019: the plug-in squared gap overestimates by the
        # variance of the bin's mean label, acc (1 - acc) / (n_b - 1).
        many = cnt > 1
        sq = np.where(many, sq - acc * (1.0 - acc) / np.where(many, cnt - 1.0, 1.0), 0.0)
        return math.sqrt(max(float(weight @ sq), 0.0))
    return math.sqrt(float(weight @ sq))


def _check_norm(norm: Any, debias: Any) -> tuple[Norm, bool]:
    norm = cast(Norm, choice(norm, "norm", ("l1", "l2", "max")))
    if not isinstance(debias, (bool, np.bool_)):
        raise TypeError(f"debias must be True or False, got {debias!r}")
    if debias and norm != "l2":
        raise ValueError(
            f"debias=True needs norm='l2' (the estimator is for the squared error), got norm={norm!r}"
        )
    return norm, bool(debias)


def ece(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits", axis: int = -1,
        where: ArrayLike | None = None, n_bins: int = 15, strategy: Strategy = "uniform",
        norm: Norm = "l1", debias: bool = False) -> float:
    """Expected calibration error: top-label for multiclass scores, positive class for binary.

    Samples are binned by confidence (the largest probability); the error
    is the bin-size-weighted gap between accuracy and mean confidence.
    Binary scores are binned by the probability of the positive class and
    compared with the fraction of positives in each bin (the ECE of
    scikit-learn's ``calibration_curve``); this is not the top-label ECE
    of the two-class form.

    Parameters
    ----------
    {input_doc}
    n_bins : int, optional
        Number of bins (default 15, as in Guo et al.).
    strategy : {{"uniform", "quantile"}}, optional
        Equal-width bins on [0, 1], or equal-mass bins (about the same
        number of samples each; tied confidences are never split, so there
        may be fewer bins).
    norm : {{"l1", "l2", "max"}}, optional
        ``l1``: sum_b (n_b/N) |acc_b - conf_b| (the usual ECE);
        ``l2``: sqrt(sum_b (n_b/N) (acc_b - conf_b)^2);
        ``max``: max_b |acc_b - conf_b| (the MCE).
    debias : bool, optional
        With ``norm="l2"``: subtract each bin's sampling variance
        ``acc_b (1 - acc_b) / (n_b - 1)`` from its squared gap before the
        root (Kumar, Liang, Ma 2019), clipped at 0; bins with one sample
        count 0.

    Returns
    -------
    float

    Notes
    -----
    Bins are right-closed, ``(lo, hi]``, as in Guo et al.'s code; a
    confidence of exactly 0 falls in the first bin and 1 in the last.

    References
    ----------
    A. Kumar, P. Liang, T. Ma, "Verified Uncertainty Calibration",
    NeurIPS 2019.

    Examples
    --------
    Two samples at confidence 0.9, one right, one wrong: gap 0.4.

    >>> from softmax.calibration import ece
    >>> float(ece([[0.9, 0.1], [0.9, 0.1]], [0, 1], input="probs"))
    0.4
    >>> float(ece([[0.9, 0.1], [0.6, 0.4]], [0, 1], input="probs", norm="max"))
    0.6

    Binary: probabilities of the positive class, 0/1 labels.

    >>> round(ece([0.2, 0.9, 0.7], [0, 1, 1], input="probs"), 4)   # (0.2 + 0.1 + 0.3) / 3
    0.2
    """
    n_bins, strategy = check_bins(n_bins, strategy)
    norm, debias = _check_norm(norm, debias)
    st = stats(scores, labels, input, axis, where)
    _, counts, sc, sa = _binned(st.confidence, st.correct, n_bins, strategy)
    return _calibration_error(counts, sc, sa, norm, debias)


def mce(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits", axis: int = -1,
        where: ArrayLike | None = None, n_bins: int = 15, strategy: Strategy = "uniform") -> float:
    """Maximum calibration error: the largest per-bin gap (`ece` with ``norm="max"``).

    Parameters
    ----------
    {input_doc}
    n_bins, strategy
        As for `ece`.

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import mce
    >>> float(mce([[0.9, 0.1], [0.6, 0.4]], [0, 1], input="probs"))
    0.6
    """
    return ece(scores, labels, input=input, axis=axis, where=where, n_bins=n_bins,
               strategy=strategy, norm="max")


def classwise_ece(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits", axis: int = -1,
                  where: ArrayLike | None = None, n_bins: int = 15,
                  strategy: Strategy = "uniform") -> float:
    """Class-wise ECE: the mean over classes of each class's ECE.

    For class k every sample counts, binned by p_k, against the indicator
    ``label == k`` (Kull et al. 2019). Needs the full probability matrix
    in float64 (N x K). Binary scores count as their two-class form.

    Parameters
    ----------
    {input_doc}
    n_bins, strategy
        As for `ece`; probabilities of exactly 0 fall in the first bin.

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import classwise_ece
    >>> float(classwise_ece([[0.9, 0.1], [0.9, 0.1]], [0, 1], input="probs"))
    0.4
    """
    n_bins, strategy = check_bins(n_bins, strategy)
    s = check_scores(scores, labels, input=input, axis=axis, where=where)
    rows = s.rows.astype(np.float64)
    if s.kind == "logits":
        from .._functions import softmax as _softmax  # the public function

        p = _softmax(rows, axis=-1)
    else:
        p = rows
    k: int = rows.shape[1]
    total = 0.0
    for cls in range(k):
        _, counts, sc, sa = _binned(p[:, cls], s.labels == cls, n_bins, strategy)
        total += _calibration_error(counts, sc, sa, "l1", False)
    return total / k


def summary(scores: ArrayLike, labels: ArrayLike, *, n_bins: int = 15, strategy: str = "uniform",
            input: str = "logits", axis: int = -1, where: ArrayLike | None = None
            ) -> dict[str, float]:
    """Accuracy, NLL, ECE, MCE and Brier from one pass (for the command line)."""
    n_bins, strategy = check_bins(n_bins, strategy)
    st = stats(scores, labels, input, axis, where)
    _, counts, sc, sa = _binned(st.confidence, st.correct, n_bins, strategy)
    return {
        "accuracy": float(st.hit.mean()),
        "nll": float(st.nll.mean()),
        "ece": _calibration_error(counts, sc, sa, "l1", False),
        "mce": _calibration_error(counts, sc, sa, "max", False),
        "brier": float(st.brier.mean()),
    }


def reliability_curve(scores: ArrayLike, labels: ArrayLike, *, input: Input = "logits",
                      axis: int = -1, where: ArrayLike | None = None, n_bins: int = 15,
                      strategy: Strategy = "uniform") -> ReliabilityCurve:
    """Per-bin mean confidence, accuracy and count of the top label (or of the positive class).

    Parameters
    ----------
    {input_doc}
    n_bins, strategy
        As for `ece`.

    Returns
    -------
    ReliabilityCurve
        ``(edges, confidence, accuracy, counts)``; empty bins have NaN
        confidence and accuracy.

    Examples
    --------
    >>> from softmax.calibration import reliability_curve
    >>> c = reliability_curve([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7]], [0, 1, 1],
    ...                       input="probs", n_bins=2)
    >>> c.counts, c.accuracy
    (array([0, 3]), array([       nan, 0.66666667]))
    """
    n_bins, strategy = check_bins(n_bins, strategy)
    return curve_and_ece(stats(scores, labels, input, axis, where), n_bins, strategy)[0]


def curve_and_ece(st: _RowStats, n_bins: int, strategy: str) -> tuple[ReliabilityCurve, float]:
    """The reliability curve and the (l1) ECE of checked rows, from one binning."""
    edges, counts, sc, sa = _binned(st.confidence, st.correct, n_bins, strategy)
    full = counts > 0
    conf = np.full(counts.shape, np.nan)
    acc = np.full(counts.shape, np.nan)
    conf[full] = sc[full] / counts[full]
    acc[full] = sa[full] / counts[full]
    err = _calibration_error(counts, sc, sa, "l1", False)
    return ReliabilityCurve(edges, conf, acc, counts), err


for _f in (nll, brier, accuracy, ece, mce, classwise_ece, reliability_curve):
    _f.__doc__ = _f.__doc__.format(input_doc=_INPUT_DOC)  # type: ignore[union-attr]  # documented
del _f
