"""Run-time configuration of the C core: SIMD target report, threads, accuracy.

The SIMD target is chosen once, when the core is imported, from the CPU's
features; ``SOFTMAX_DISABLE_CPU_FEATURES`` (a comma list: ``AVX512F``,
``AVX2``, ``FMA``, ``F16C``) rules targets out before that. The thread
count defaults to the cores this process may run on
(``os.sched_getaffinity``), or ``SOFTMAX_NUM_THREADS`` when set. The
accuracy mode (``"high"``, the default, or ``"fast"``) is a process default
set by `set_accuracy` or ``SOFTMAX_ACCURACY``, overridden per call by the
``accuracy=`` keyword; docs/accuracy-modes.md says how to choose.
"""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any, TextIO

from . import _core
from ._arguments import ACCURACY_MODES, accuracy_code

__all__ = [
    "config",
    "get_accuracy",
    "get_num_threads",
    "set_accuracy",
    "set_num_threads",
    "show_config",
]

_ENV_THREADS = "SOFTMAX_NUM_THREADS"
_ENV_DISABLE = "SOFTMAX_DISABLE_CPU_FEATURES"
_ENV_ACCURACY = "SOFTMAX_ACCURACY"


def set_accuracy(mode: str) -> None:
    """Set the process default accuracy mode of softmax, log_softmax, logsumexp.

    Parameters
    ----------
    mode : {"high", "fast"}
        ``"high"`` (the default): float16 and float32 results within 1 ulp,
        float64 within 2 ulp of the correctly rounded value. ``"fast"``:
        float32 lanes and a float32 exp for float16 and float32, at most 4
        ulp on every measured family (see docs/accuracy-modes.md), with the
        same edge semantics. A call's ``accuracy=`` keyword overrides it;
        the ``SOFTMAX_ACCURACY`` environment variable sets it at import.

    Examples
    --------
    >>> import softmax as sm
    >>> sm.set_accuracy("fast")
    >>> sm.get_accuracy()
    'fast'
    >>> sm.set_accuracy("high")
    """
    if mode is None:
        raise ValueError("mode must be 'high' or 'fast', got None")
    _core.set_accuracy(accuracy_code(mode, "mode"))


def get_accuracy() -> str:
    """The process default accuracy mode, ``"high"`` or ``"fast"``.

    Examples
    --------
    >>> import softmax as sm
    >>> sm.get_accuracy() in ("high", "fast")
    True
    """
    return "fast" if _core.get_accuracy() else "high"


def _accuracy_from_env() -> str | None:
    """SOFTMAX_ACCURACY when it names a mode (case and spaces ignored)."""
    text = os.environ.get(_ENV_ACCURACY, "").strip().lower()
    return text if text in ACCURACY_MODES else None


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _threads_from_env() -> int | None:
    """SOFTMAX_NUM_THREADS as a positive int, or None when unset or unusable."""
    text = os.environ.get(_ENV_THREADS, "").strip()
    try:
        n = int(text)
    except ValueError:
        return None
    return n if n >= 1 else None


def set_num_threads(n: int) -> None:
    """Set how many threads softmax, log_softmax and logsumexp may use.

    Large inputs are split into row blocks (or, for a few very long rows,
    fixed segments) over a small pool of threads; small inputs always run on
    the calling thread. Results are bit-identical whatever the count.

    Parameters
    ----------
    n : int
        Number of threads, >= 1. The default is the number of cores this
        process may run on, or the ``SOFTMAX_NUM_THREADS`` environment
        variable when it is set.

    Examples
    --------
    >>> import softmax._config as cfg
    >>> old = cfg.get_num_threads()
    >>> cfg.set_num_threads(1)
    >>> cfg.get_num_threads()
    1
    >>> cfg.set_num_threads(old)
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    _core.set_num_threads(min(int(n), _core._config()["max_threads"]))


def get_num_threads() -> int:
    """The number of threads the core may use (see `set_num_threads`).

    Examples
    --------
    >>> import softmax._config as cfg
    >>> cfg.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def config() -> dict[str, Any]:
    """The core's configuration as a dict (what `show_config` prints)."""
    info = dict(_core._config())
    info["num_threads"] = _core.get_num_threads()
    info["cores_available"] = _available_cores()
    info["accuracy"] = get_accuracy()
    info["env"] = {k: os.environ.get(k) for k in (_ENV_DISABLE, _ENV_THREADS, _ENV_ACCURACY)}
    return info


def show_config(file: TextIO | None = None) -> None:
    """Print the SIMD targets compiled in, the one chosen, and the threads.

    Examples
    --------
    >>> import softmax._config as cfg
    >>> cfg.show_config()  # doctest: +ELLIPSIS
    softmax C core
      SIMD targets compiled : ...
    """
    info = config()
    out = sys.stdout if file is None else file
    env = info["env"]
    lines = [
        "softmax C core",
        f"  SIMD targets compiled : {', '.join(info['compiled'])}",
        f"  supported by this CPU : {', '.join(info['supported'])}",
        f"  allowed               : {', '.join(info['allowed'])}"
        f"   ({_ENV_DISABLE}={env[_ENV_DISABLE] or '(unset)'})",
        f"  chosen                : {info['chosen']}",
    ]
    if info["unknown_features"]:
        lines.append(
            f"  ignored names in {_ENV_DISABLE}: {info['unknown_features']}"
            f" (known: {info['known_features']})"
        )
    lines.append(
        f"  threads               : {info['num_threads']}"
        f"   ({_ENV_THREADS}={env[_ENV_THREADS] or '(unset)'};"
        f" cores available: {info['cores_available']})"
    )
    lines.append(
        f"  accuracy              : {info['accuracy']}"
        f"   ({_ENV_ACCURACY}={env[_ENV_ACCURACY] or '(unset)'})"
    )
    print("\n".join(lines), file=out)


_core.set_num_threads(_threads_from_env() or _available_cores())
_core.set_accuracy(ACCURACY_MODES[_accuracy_from_env() or "high"])
