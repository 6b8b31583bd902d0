"""softmax: scores into probabilities, exactly and fast.

The article's softmax, its logarithm and log-sum-exp on NumPy arrays with a
compiled core, plus the rest of its mathematics, calibration, streaming and
a command line. See the README for the tour.
"""

from importlib import metadata as _metadata

from . import calibration, datasets, stream
from ._math.activations import (
    base_from_temperature,
    log_sigmoid,
    logit,
    sigmoid,
    temperature_from_base,
)
from ._functions import log_softmax, logsumexp, softmax
from ._groups import (
    segment_log_softmax,
    segment_log_softmax_vjp,
    segment_logsumexp,
    segment_softmax,
    segment_softmax_vjp,
    sparse_log_softmax,
    sparse_softmax,
)
from ._config import (
    config,
    get_accuracy,
    get_memory_cache,
    get_num_threads,
    set_accuracy,
    set_memory_cache,
    set_num_threads,
    show_config,
)
from ._math.derivatives import log_softmax_vjp, softmax_jacobian, softmax_vjp
from ._math.hardmax import hardmax
from ._math.losses import cross_entropy, cross_entropy_grad, entropy
from ._math.sampling import sample

__version__ = _metadata.version("softmax")  # one place: meson.build's project version

__all__ = [
    "__version__",
    "base_from_temperature",
    "calibration",
    "config",
    "cross_entropy",
    "cross_entropy_grad",
    "datasets",
    "entropy",
    "get_accuracy",
    "get_memory_cache",
    "get_num_threads",
    "hardmax",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_vjp",
    "logit",
    "logsumexp",
    "sample",
    "segment_log_softmax",
    "segment_log_softmax_vjp",
    "segment_logsumexp",
    "segment_softmax",
    "segment_softmax_vjp",
    "set_accuracy",
    "set_memory_cache",
    "set_num_threads",
    "show_config",
    "sigmoid",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "sparse_log_softmax",
    "sparse_softmax",
    "stream",
    "temperature_from_base",
]
