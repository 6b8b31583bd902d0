"""The `cli-output` directive: the real output of the installed `softmax` command.

    ```{cli-output} apply --help
    ```

runs ``softmax apply --help`` (the console script installed next to the
Python running Sphinx, else the first ``softmax`` on PATH) at build time and
inserts what it printed as a literal block, so the command-line reference
cannot drift from the command. A non-zero exit status (other than the one
given with ``:returncode:``) or a missing command is a build error.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import shutil
import subprocess
import sys

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective


def _command():
    here = pathlib.Path(sys.executable).parent
    for name in ("softmax", "softmax.exe"):
        if (here / name).exists():
            return str(here / name)
    found = shutil.which("softmax")
    if found is None:
        raise ExtensionError("cli-output: the softmax command is not installed")
    return found


class CliOutput(SphinxDirective):
    has_content = False
    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"returncode": directives.nonnegative_int, "prompt": directives.flag}

    def run(self):
        args = shlex.split(self.arguments[0])
        env = dict(os.environ, COLUMNS="88", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
        env.pop("FORCE_COLOR", None)
        proc = subprocess.run(
            [_command(), *args], capture_output=True, text=True, env=env,
            encoding="utf-8", timeout=120,
        )
        expected = self.options.get("returncode", 0)
        if proc.returncode != expected:
            raise self.error(
                f"`softmax {self.arguments[0]}` exited with {proc.returncode}, "
                f"expected {expected}:\n{proc.stderr}"
            )
        text = proc.stdout + proc.stderr
        if "prompt" in self.options:
            text = f"$ softmax {self.arguments[0]}\n{text}"
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("cli-output", CliOutput)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
