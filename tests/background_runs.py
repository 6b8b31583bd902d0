"""Subprocess test runs that start when the session is collected.

Some tests rerun a test file in a child process with another SIMD target
forced (the target is chosen once, at import). Each child is one
single-threaded pytest run of a minute or two; started only when its test
comes up, it would hold the whole suite up while the second core idles.
A test module lists such runs in ``BACKGROUND_RUNS`` (test function name ->
a function of the test's ``target`` parameter that returns the command);
conftest.py starts every selected one as soon as collection ends, and the
test collects its own with `result`, starting it there if it was not
started (a test run on its own, a target added later).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Command(NamedTuple):
    """A child pytest run: its arguments after ``python`` and its extra environment."""
    args: list[str]
    env: dict[str, str]


_started: dict[tuple[str, str], subprocess.Popen] = {}


CHILD = "SOFTMAX_TEST_BACKGROUND_CHILD"  # set in a child: it starts no runs of its own


def _popen(command: Command) -> subprocess.Popen:
    env = dict(os.environ, **command.env, **{CHILD: "1"})
    return subprocess.Popen([sys.executable, *command.args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def start(key: tuple[str, str], command: Command) -> None:
    """Start the run `key` (test name, target) unless it is running."""
    if key not in _started:
        _started[key] = _popen(command)


def result(key: tuple[str, str], make: Callable[[], Command], timeout: float
           ) -> tuple[int, str, str]:
    """(returncode, stdout, stderr) of the run `key`; started now if it was not.

    A run that does not finish in `timeout` seconds is killed; its
    returncode is then -9 and its stderr ends by saying so.
    """
    proc = _started.pop(key, None) or _popen(make())
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return -9, out, err + f"\n[did not finish in {timeout:.0f} s]"
    return proc.returncode, out, err


def stop_all() -> None:
    """Kill the runs no test collected (the session was interrupted)."""
    for proc in _started.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    _started.clear()
