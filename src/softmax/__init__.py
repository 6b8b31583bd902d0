"""softmax: scores into probabilities, exactly and fast.

The article's softmax, its logarithm and log-sum-exp on NumPy arrays with a
compiled core, plus the rest of its mathematics, calibration, streaming and
a command line. See the README for the tour.
"""

from . import calibration, stream
from ._activations import (
    base_from_temperature,
    log_sigmoid,
    logit,
    sigmoid,
    temperature_from_base,
)
from ._api import log_softmax, logsumexp, softmax
from ._config import (
    config,
    get_accuracy,
    get_num_threads,
    set_accuracy,
    set_num_threads,
    show_config,
)
from ._derivatives import log_softmax_vjp, softmax_jacobian, softmax_vjp
from ._hardmax import hardmax
from ._losses import cross_entropy, cross_entropy_grad, entropy
from ._sampling import sample

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "base_from_temperature",
    "calibration",
    "config",
    "cross_entropy",
    "cross_entropy_grad",
    "entropy",
    "get_accuracy",
    "get_num_threads",
    "hardmax",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_vjp",
    "logit",
    "logsumexp",
    "sample",
    "set_accuracy",
    "set_num_threads",
    "show_config",
    "sigmoid",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "stream",
    "temperature_from_base",
]
