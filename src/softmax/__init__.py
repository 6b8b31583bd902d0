"""softmax: scores into probabilities, exactly and fast.

The article's softmax, its logarithm and log-sum-exp on NumPy arrays with a
compiled core, plus the rest of its mathematics, calibration, streaming and
a command line. See the README for the tour.
"""

from ._api import log_softmax, logsumexp, softmax

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "log_softmax",
    "logsumexp",
    "softmax",
]
