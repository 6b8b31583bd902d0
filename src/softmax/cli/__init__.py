"""The `softmax` command line.

``softmax cat=2.0 dog=1.0 rabbit=0.1`` (the scores table, ``--explain``),
``softmax apply``, ``softmax sweep`` and ``softmax calibrate``. The entry
point is `main` (``[project.scripts] softmax = "softmax.cli:main"``, and
``python -m softmax``); it takes its streams as arguments, so tests and
programs can run a command in-process.

Modules: `core` (command table, parsing, the error handler), `status` (exit
statuses and errors), `args` (argument types, scores, formatting), `fileio`
(tables, arrays, outputs written whole or not at all), and one module per
command: `scores` and `explain`, `apply`, `sweep`, `calibrate`. They use
only the public library: `softmax`, `softmax.stream`, `softmax.calibration`.
"""

from .core import main
from .status import ExitStatus

__all__ = ["ExitStatus", "main"]
