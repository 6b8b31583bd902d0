"""Types: the user-style script runs, and `mypy --strict` passes on it and on the package.

``tests/typing/user_script.py`` calls every public function the way a user
would and pins the promised result types with ``typing.assert_type``. Here it
is run (the promises hold at run time) and, when mypy is installed (the
``test`` and ``typecheck`` extras install it; CI has it), type-checked together
with ``src/softmax`` under ``[tool.mypy]`` of pyproject.toml (strict).
"""

import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "typing" / "user_script.py"


def test_user_script_runs():
    runpy.run_path(str(SCRIPT), run_name="__main__")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
@pytest.mark.skipif(not (ROOT / "src" / "softmax").is_dir(), reason="needs the source tree")
def test_mypy_strict():
    # The package's source tree and the script, with pyproject's [tool.mypy]
    # (strict; mypy_path = "src", so the tree is checked, not an install).
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "src/softmax", str(SCRIPT.relative_to(ROOT))]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
    assert "Success: no issues found" in proc.stdout
