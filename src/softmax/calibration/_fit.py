"""`fit_temperature`: fit T in one call (the functional face of `TemperatureScaling`)."""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np

from . import _solver
from ._estimator import TemperatureScaling
from .._typing import AnyArray, ArrayLike, Mask
from ._inputs import (
    DaskScores,
    Scores,
    check_bounds,
    check_dask_scores,
    check_input,
    check_scores,
    is_dask,
)


def fit_temperature(logits: ArrayLike | AnyArray, labels: ArrayLike | AnyArray, *,
                    input: Literal["logits", "probs"] = "logits", axis: int = -1,
                    bounds: tuple[float, float] = (1e-2, 1e2),
                    weights: ArrayLike | AnyArray | None = None,
                    where: Mask = None) -> TemperatureScaling:
    """Fit the temperature T that minimizes the NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al. 2017): one T > 0 for all samples,
    fitted on held-out data. It never changes the predicted class.

    Parameters
    ----------
    logits : array_like or dask array
        Pre-softmax scores, classes along `axis`, finite where not masked;
        or a 1-D array of binary scores, the logit of the positive class
        (``z`` stands for the two-class logits ``[0, z]``). A
        ``numpy.ma.MaskedArray`` excludes its masked classes. Rows that all
        lie in [0, 1] and sum to 1 are refused: they are probabilities.
    labels : array_like of int or bool
        True class of each sample, shaped like `logits` without `axis`
        (0/1 or bool for binary scores). Masked labels drop their samples.
    input : {"logits", "probs"}, optional
        ``"probs"``: `logits` holds probabilities (rows in [0, 1] summing to
        1, or the positive class's probability); T is fitted on their
        logarithm, which are valid logits.
    axis : int, optional
        The class axis. Default: the last.
    bounds : (float, float), optional
        Range searched for T, with ``low <= 1 <= high``. Default (0.01, 100).
    weights : array_like, optional
        Non-negative weight per sample (default: all 1). Only their ratios
        matter: they are divided by the largest first, so weights of 1e-320
        or 1e308 fit the same T as weights of 1. A masked weight drops its
        sample.
    where : array_like of bool, optional
        Classes to include (broadcast to `logits`); combines with a mask of
        `logits`. A sample with no class left is dropped; a label on an
        excluded class is an error.

    Returns
    -------
    TemperatureScaling
        Fitted: `temperature_` (also `temperature`), `nll_before_`,
        `nll_after_`, `converged_`, `n_iter_`, `at_bound_`, `message_`.

    Raises
    ------
    ValueError
        Labels out of range, non-finite logits, probabilities passed as
        logits, mismatched shapes, fewer than two classes, no samples.

    Notes
    -----
    The objective is convex in 1/T, so it has a single minimum. The fit
    runs a safeguarded Newton iteration on u = log T with exact
    derivatives (float64 sums over row blocks: memory O(N), no float64
    copy of the logits), bisecting when a step is unsafe, to 1e-6
    relative on T or better (the last Halley step usually lands within
    1e-9); there is no learning rate or iteration count to tune.
    Perfectly separable data have no finite minimum (the NLL keeps
    shrinking as T -> 0): the fit stops at the lower bound and says so
    (``at_bound=True``). The returned T never has a larger NLL on the
    fitted data than T = 1.

    Dask arrays are fitted by one map-reduce over the chunks per
    iteration (the class axis may be split); masked rows are not dropped
    there (a row with every class excluded is an error).

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern
    Neural Networks", ICML 2017.

    Examples
    --------
    Logits from a calibrated model, made three times too confident:

    >>> import numpy as np
    >>> from softmax.calibration import fit_temperature
    >>> rng = np.random.default_rng(0)
    >>> calibrated = rng.normal(size=(2000, 5))
    >>> p = np.exp(calibrated) / np.exp(calibrated).sum(1, keepdims=True)
    >>> labels = (rng.random((2000, 1)) > p.cumsum(1)).sum(1)
    >>> ts = fit_temperature(3.0 * calibrated, labels)
    >>> round(ts.temperature, 1), ts.converged
    (3.0, True)
    >>> bool(ts.nll_after < ts.nll_before)
    True
    >>> ts.predict_proba(3.0 * calibrated[:1]).round(3)
    array([[0.202, 0.156, 0.341, 0.198, 0.103]])

    Probabilities are fitted on their logarithm; passing them as logits
    is an error:

    >>> probs = p ** 3 / (p ** 3).sum(1, keepdims=True)     # softmax(3 * calibrated)
    >>> round(fit_temperature(probs, labels, input="probs").temperature, 1)
    3.0
    >>> fit_temperature(probs, labels)
    Traceback (most recent call last):
    ...
    ValueError: logits must not be probabilities, got rows that all lie in [0, 1] and sum to 1 (within 1.0e-06); pass input="probs" (if they really are logits, subtract each row's max first: softmax does not change)

    Separable data: T runs to the lower bound, and the result says so.

    >>> ts = fit_temperature([[5.0, 0.0], [0.0, 5.0]], [0, 1])
    >>> ts.temperature, ts.at_bound
    (0.01, True)
    """
    bounds = check_bounds(bounds)
    input = check_input(input)
    checked: Scores | DaskScores
    if is_dask(logits):
        checked = check_dask_scores(logits, labels, input=input, axis=axis, where=where,
                                    weights=weights)
        n_features = 1 if cast(Any, logits).ndim == 1 else checked.n_classes  # a Dask array
    else:
        checked = check_scores(logits, labels, input=input, axis=axis, where=where,
                               weights=weights)
        n_features = checked.n_features
    fit = _solver.fit(checked, bounds)
    ts = TemperatureScaling(fit.temperature, bounds=bounds, input=input, axis=axis)
    ts._record(fit)
    ts.n_features_in_ = n_features
    ts.classes_ = np.arange(max(n_features, 2))
    return ts
