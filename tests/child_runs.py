"""Test runs again in a child process, with another SIMD target forced.

The target is chosen once, at import, so a test of another target reruns a
test file (or a suite) in a child Python with SOFTMAX_DISABLE_CPU_FEATURES
set. The child runs its pytest in one process (``-n 0``); meanwhile
pytest-xdist keeps the parent's other worker busy with the other files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Command(NamedTuple):
    """A child run: its arguments after ``python`` and its extra environment."""
    args: list[str]
    env: dict[str, str]


def run(command: Command, timeout: float) -> tuple[int, str, str]:
    """(returncode, stdout, stderr) of the child run.

    A run that does not finish in `timeout` seconds is killed; its
    returncode is then -9 and its stderr ends by saying so.
    """
    env = dict(os.environ, **command.env)
    try:
        proc = subprocess.run([sys.executable, *command.args], env=env, capture_output=True,
                              text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        # what was captured before the kill comes as bytes whatever `text` says
        def text(b: bytes | str | None) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return -9, text(exc.stdout), text(exc.stderr) + f"\n[did not finish in {timeout:.0f} s]"
    return proc.returncode, proc.stdout, proc.stderr
