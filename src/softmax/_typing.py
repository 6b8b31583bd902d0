"""Type aliases and protocols of the public API (annotations only).

The public functions take NumPy input (arrays, scalars, anything
``numpy.asarray`` accepts) and return NumPy results, or take an array of
another library and return that library's type. Those libraries are
optional, so none is imported here, not even for type checking: an
array-API array (JAX, CuPy, array-api-strict), a PyTorch tensor and a Dask
array are recognized by the protocols below, and a TypeVar bound to them
hands the caller's own type back (``softmax(t: torch.Tensor) ->
torch.Tensor``) whether or not the type checker can see that library.

Overloads list the Dask and array-API forms first and the NumPy forms
(arrays, scalars, anything ``numpy.asarray`` takes) after them, since a
tensor or a Dask array has ``__array__`` and would pass for NumPy input.
The protocols are written so that NumPy's own arrays do not match them
(see below): a NumPy argument then matches NumPy overloads only, and its
result type stays precise even when the array's type holds Any.
"""

from __future__ import annotations

from typing import Optional, Any, Literal, Protocol, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "AnyArray",
    "Array",
    "ArrayAPIArray",
    "ArrayLike",
    "Axis",
    "DaskArray",
    "FloatArray",
    "FloatResult",
    "FloatScalar",
    "Input",
    "IntResult",
    "Mask",
    "NDArray",
    "Namespace",
    "NumpyScalar",
    "Reduction",
    "SupportsArrayNamespace",
    "SupportsDaskGraph",
    "SupportsTensor",
]


# NumPy's own arrays and scalars must not match these protocols: NumPy
# overloads come first, but a NumPy array typed with Any inside (as
# ``np.array([...])`` is) would otherwise match several overloads, and mypy
# would give up on the result type. NumPy 2 implements the array API, so the
# protocols use what NumPy's stubs narrow: ``api_version`` is a Literal of
# versions there, any str in other libraries; and PyTorch is recognized by
# ``requires_grad`` (its tensors have no ``__array_namespace__``).


class SupportsArrayNamespace(Protocol):
    """An array of the array API standard: JAX, CuPy, array-api-strict (not NumPy's)."""

    def __array_namespace__(self, /, *, api_version: str | None = ...) -> Any: ...


class SupportsTensor(Protocol):
    """A PyTorch tensor (or a tensor-like array with autograd)."""

    @property
    def requires_grad(self) -> bool: ...

    def __dlpack_device__(self, /) -> Any: ...


class SupportsDaskGraph(Protocol):
    """A Dask collection (``dask.array.Array``): results stay lazy."""

    def __dask_graph__(self) -> Any: ...


ArrayAPIArray = TypeVar("ArrayAPIArray", bound=Union[SupportsArrayNamespace, SupportsTensor])
"""An array-API array or a tensor: a function returns the same type."""

DaskArray = TypeVar("DaskArray", bound=SupportsDaskGraph)
"""A Dask array: a function returns a (lazy) Dask array."""

AnyArray = Union[SupportsArrayNamespace, SupportsTensor, SupportsDaskGraph]
"""An array of any supported library (for secondary arguments such as `where`)."""

FloatArray = NDArray[np.floating[Any]]
"""A NumPy result: float16, float32, float64 (or longdouble), as the input's dtype decides."""

FloatScalar = np.floating[Any]
"""A 0-d NumPy result is returned as a NumPy scalar."""

FloatResult = Union[FloatArray, FloatScalar]
"""A reduction's NumPy result: an array, or a scalar when nothing is left."""

IntResult = Union[NDArray[np.intp], np.intp]
"""Class indices (`sample`): an array, or a scalar for one draw of one slice."""

NumpyScalar = Union[float, np.number[Any], np.bool]
"""A scalar input (Python or NumPy); its softmax is a NumPy scalar."""

Axis = Union[int, tuple[int, ...], None]
"""An axis, several axes, or ``None`` for all of them."""

Mask = Union[ArrayLike, AnyArray, None]
"""`where`: booleans broadcast to the input, in NumPy or in the input's library."""

Reduction = Literal["mean", "sum", "none"]
Input = Literal["logits", "probs"]
# accuracy= of softmax, log_softmax, logsumexp: None is the process default.
Accuracy = Optional[Literal["high", "fast"]]

Namespace = Any
"""An array-API namespace (``xp``): a module whose functions depend on the library."""

Array = Any
"""Inside the package: an array of whichever library the call runs on (NumPy,
an array-API namespace's, Dask), for code written once against ``xp``."""
