"""Run-time configuration of the C core: SIMD target report and threads.

The SIMD target is chosen once, when the core is imported, from the CPU's
features; ``SOFTMAX_DISABLE_CPU_FEATURES`` (a comma list: ``AVX512F``,
``AVX2``, ``FMA``, ``F16C``) rules targets out before that. The thread
count defaults to the cores this process may run on
(``os.sched_getaffinity``), or ``SOFTMAX_NUM_THREADS`` when set.
"""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any, TextIO

from . import _core

__all__ = ["config", "get_num_threads", "set_num_threads", "show_config"]

_ENV_THREADS = "SOFTMAX_NUM_THREADS"
_ENV_DISABLE = "SOFTMAX_DISABLE_CPU_FEATURES"


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
    info["env"] = {k: os.environ.get(k) for k in (_ENV_DISABLE, _ENV_THREADS)}
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
    print("\n".join(lines), file=out)


_core.set_num_threads(_threads_from_env() or _available_cores())
