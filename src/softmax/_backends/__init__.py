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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: backends never import the plan's module at run time
    from .._plan import Plan

__all__ = ["run"]


def run(x: Any, plan: Plan) -> Any:
    """Run `plan` on `x` with the backend the plan names: the one dispatch point."""
    if plan.library == "numpy":
        from . import numpy as numpy_backend

        return numpy_backend.run(x, plan)
    if plan.library == "dask":
        from . import dask as dask_backend

        return dask_backend.run(x, plan)
    from . import array_api as array_api_backend

    return array_api_backend.run(x, plan)
