"""Calibration: temperature scaling and the metrics that judge it.

The article's last point: softmax outputs are not guaranteed to be true
probabilities (modern networks are overconfident), so use them as
probabilities and calibrate when needed. Temperature scaling (Guo, Pleiss,
Sun, Weinberger, ICML 2017) divides every logit by one number T > 0 fitted on
held-out data; it never changes the predicted class.

- `fit_temperature` and the estimator `TemperatureScaling`
  (``TemperatureScaling().fit(logits, labels).predict_proba(test_logits)``);
- metrics: `nll`, `brier`, `accuracy`, `ece` (equal-width or equal-mass
  bins, l1/l2/max norms, the debiased l2 estimator of Kumar et al. 2019),
  `mce`, `classwise_ece`, `reliability_curve`, and `reliability_diagram`
  (needs matplotlib).

Everything takes logits (default) or probabilities (``input="probs"``);
logits that are really probabilities are refused with an error that says
so. 1-D scores are binary: the logit (or probability) of the positive
class, with 0/1 labels. A ``numpy.ma`` mask (or ``where=``) excludes
classes; masked labels drop their samples.

Layout: ``_inputs`` (every argument check), ``_objective`` (the NLL as a
function of log T, NumPy and Dask), ``_solver`` (the 1-D minimizer),
``_estimator`` (`TemperatureScaling`), ``_fit`` (`fit_temperature`),
``_metrics``, ``_plot``.
"""

from __future__ import annotations

from ._estimator import TemperatureScaling
from ._fit import fit_temperature
from ._metrics import (
    ReliabilityCurve,
    accuracy,
    brier,
    classwise_ece,
    ece,
    mce,
    nll,
    reliability_curve,
)
from ._metrics import summary as _summary  # used by the command line
from ._plot import reliability_diagram

__all__ = [
    "ReliabilityCurve",
    "TemperatureScaling",
    "accuracy",
    "brier",
    "classwise_ece",
    "ece",
    "fit_temperature",
    "mce",
    "nll",
    "reliability_curve",
    "reliability_diagram",
]
