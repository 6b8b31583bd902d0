"""Run-time configuration of the C core: SIMD target report, threads, accuracy.

The SIMD target is chosen once, when the core is imported, from the CPU's
features; ``SOFTMAX_DISABLE_CPU_FEATURES`` (a comma list: ``AVX512F``,
``AVX2``, ``FMA``, ``F16C``) rules targets out before that. The thread
count defaults to the cores this process may run on
(``os.sched_getaffinity``), or ``SOFTMAX_NUM_THREADS`` when set. The
accuracy mode (``"high"``, the default, or ``"fast"``) is a process default
set by `set_accuracy` or ``SOFTMAX_ACCURACY``, overridden per call by the
``accuracy=`` keyword; docs/accuracy-modes.md says how to choose. Large
results freed by the caller are kept for reuse up to a limit (256 MiB by
default), set by `set_memory_cache` or ``SOFTMAX_MEMORY_CACHE``.
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
    "get_memory_cache",
    "get_num_threads",
    "set_accuracy",
    "set_memory_cache",
    "set_num_threads",
    "show_config",
]

_ENV_THREADS = "SOFTMAX_NUM_THREADS"
_ENV_DISABLE = "SOFTMAX_DISABLE_CPU_FEATURES"
_ENV_ACCURACY = "SOFTMAX_ACCURACY"
_ENV_MEMORY = "SOFTMAX_MEMORY_CACHE"
_MEMORY_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


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


def set_memory_cache(max_bytes: int) -> None:
    """Set how many bytes of freed results are kept for reuse.

    A new large array costs a page fault per 4 KiB page the first time it
    is written (about 10 ms for 128 MiB on a VM, as long as the softmax
    itself). So results of 1 MiB or more are made from blocks that are kept
    when the array is dropped, and the next result of about the same size
    reuses one, already mapped. Only freed results are kept, never more than
    ``max_bytes`` in all; arrays you still hold are yours as usual.

    Parameters
    ----------
    max_bytes : int
        The most bytes kept, >= 0. 0 keeps none (and hands back what is
        kept now): every result is then an ordinary NumPy allocation. The
        default is 256 MiB, or the ``SOFTMAX_MEMORY_CACHE`` environment
        variable (bytes, or with a ``K``, ``M`` or ``G`` suffix: ``64M``).

    Examples
    --------
    >>> import softmax as sm
    >>> sm.set_memory_cache(64 << 20)
    >>> sm.get_memory_cache()["limit"]
    67108864
    >>> sm.set_memory_cache(256 << 20)
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
    _core.memory_cache(min(int(max_bytes), 2**63 - 1))


def get_memory_cache() -> dict[str, int]:
    """The memory cache's limit and the bytes it keeps now (see `set_memory_cache`).

    Examples
    --------
    >>> import softmax as sm
    >>> info = sm.get_memory_cache()
    >>> sorted(info)
    ['kept', 'limit']
    >>> info["kept"] <= info["limit"]
    True
    """
    limit, kept = _core.memory_cache()
    return {"limit": int(limit), "kept": int(kept)}


def _memory_from_env() -> int | None:
    """SOFTMAX_MEMORY_CACHE in bytes (``64M``, ``1G``, ``0``), or None when unset or unusable."""
    text = os.environ.get(_ENV_MEMORY, "").strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _MEMORY_UNITS else ""
    try:
        n = float(text[: len(text) - len(unit)])
    except ValueError:
        return None
    return int(n * _MEMORY_UNITS[unit]) if 0 <= n < 2**62 else None


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def config() -> dict[str, Any]:
    """The core's configuration as a dict (what `show_config` prints)."""
    info = dict(_core._config())
    info["num_threads"] = _core.get_num_threads()
    info["cores_available"] = _available_cores()
    info["accuracy"] = get_accuracy()
    info["memory_cache"] = get_memory_cache()
    info["env"] = {k: os.environ.get(k)
                   for k in (_ENV_DISABLE, _ENV_THREADS, _ENV_ACCURACY, _ENV_MEMORY)}
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
    memory = info["memory_cache"]
    lines.append(
        f"  memory cache          : {_mib(memory['limit'])}, {_mib(memory['kept'])} kept"
        f"   ({_ENV_MEMORY}={env[_ENV_MEMORY] or '(unset)'})"
    )
    print("\n".join(lines), file=out)


_core.set_num_threads(_threads_from_env() or _available_cores())
_core.set_accuracy(ACCURACY_MODES[_accuracy_from_env() or "high"])
_env_memory = _memory_from_env()
if _env_memory is not None:
    _core.memory_cache(_env_memory)
