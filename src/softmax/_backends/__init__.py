"""The backends: each runs a checked `Plan` on one kind of array.

``numpy``      the C core (rows, columns, long rows), threads, SIMD targets
``array_api``  PyTorch, JAX, CuPy, array-api-strict: the same math in namespace calls
``dask``       blockwise, with a tree reduction of (max, sum) states; its
               blocks run the ``numpy`` backend with the plan already built
``merge``      the one (max, sum) state and merge rule, and the double-double
               helpers, shared by the array API, Dask, the stream and files

Backends never check arguments (the plan is trusted) and never import the
public layer (enforced by import-linter in CI).
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(x: Any, plan) -> Any:
    """Run `plan` on `x` with the backend the plan names: the one dispatch point."""
    if plan.library == "numpy":
        from . import numpy as backend
    elif plan.library == "dask":
        from . import dask as backend
    else:
        from . import array_api as backend
    return backend.run(x, plan)
