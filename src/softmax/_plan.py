"""The immutable plan of one softmax / log_softmax / logsumexp call.

A public function turns its arguments into a `Plan` exactly once
(``plan_softmax`` / ``plan_logsumexp``, which call ``_arguments`` for every
check) and hands the laid-out input and the plan to exactly one backend
(``_backends.run``). A plan holds everything a backend needs and nothing it
has to check: the reduced axes, the scale, the mask broadcast to the input's
shape, the result dtype, `b`, `out`. Dask blocks and file blocks run the
NumPy backend with a copy of the plan whose arrays are the block's
(`dataclasses.replace`), never the public function again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Literal

import numpy as np

from . import _arguments as args
from ._arguments import Scale
from ._typing import Array, Axis, Namespace

__all__ = ["Operand", "Plan", "operand", "plan_groups", "plan_logsumexp", "plan_softmax"]

Library = Literal["numpy", "array_api", "dask"]
Op = Literal["softmax", "log_softmax", "logsumexp"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to compute, checked and laid out; backends trust every field.

    Attributes
    ----------
    library : {"numpy", "array_api", "dask"}
        The one backend that runs the call.
    op : {"softmax", "log_softmax", "logsumexp"}
    axes : tuple of int
        Reduced axes, sorted and non-negative; ``()`` means each element is
        a slice of its own (a 0-d input, or ``axis=()``).
    scale : Scale
        Temperature and base folded into one multiplier.
    result_dtype : dtype
        The dtype of the result, in the input's library.
    mask : array or None
        Entries to keep, broadcast to the input's shape, in its library.
    out : array or None
        The caller's output array (shape and dtype checked).
    b : array or None
        logsumexp weights, broadcast to the input's shape.
    keepdims, return_sign : bool
        logsumexp's flags.
    xp : namespace or None
        The array-API namespace (array_api and dask backends).
    accuracy : int
        The C core's accuracy code (-1: the process default, 0 high, 1
        fast); the other backends compute in float64 either way.
    groups : Groups or None
        For the ``segment_*`` functions: how the entries of the one reduced
        axis form groups (``_backends.groups``); logsumexp then gives one
        value per group along that axis.
    """

    library: Library
    op: Op
    axes: tuple[int, ...]
    scale: Scale
    result_dtype: Any
    mask: Any = None
    out: Any = None
    b: Any = None
    keepdims: bool = False
    return_sign: bool = False
    xp: Any = None
    accuracy: int = -1  # the core's code: -1 the process default, 0 high, 1 fast
    groups: Any = None

    @property
    def log(self) -> bool:
        return self.op == "log_softmax"

    def replace(self, **changes: Any) -> Plan:
        """A copy with some fields changed (a block's mask, no `out`)."""
        return dataclasses.replace(self, **changes)


def plan_softmax(x: Any, axis: Axis, temperature: float, base: float | None, where: Any, out: Any,
                 *, log: bool, accuracy: Any = None) -> tuple[Array, Plan]:
    """Check softmax's arguments once; return the input as the backend wants it, and the plan."""
    op: Op = "log_softmax" if log else "softmax"
    code = args.accuracy_code(accuracy)
    x, where = args.unmask(x, where)
    library = args.library_of(x)
    scale = args.parse_scale(temperature, base)
    if library == "numpy":
        arr = args.as_float_array(x)
        axes = args.reduction_axes(axis, arr.ndim)
        mask = args.where_mask(where, arr.shape)
        out = args.check_out(out, arr.shape, arr.dtype)
        return arr, Plan("numpy", op, axes, scale, arr.dtype, mask=mask, out=out, accuracy=code)
    if library == "dask":
        x, dtype = args.dask_float_array(x)
        if out is not None:
            raise TypeError(
                f"out must be None for a Dask array (results are lazy), got {type(out).__name__}"
            )
        axes = args.reduction_axes(axis, x.ndim)
        mask = args.dask_mask(where, x)
        return x, Plan("dask", op, axes, scale, dtype, mask=mask, accuracy=code)
    from ._backends import array_api

    xp = array_api.namespace(x)
    ints = array_api.default_float_for_ints(xp)
    with array_api.wide(xp):
        dtypes = args.array_api_dtypes(xp, x, int_result=ints)
        axes = args.reduction_axes(axis, x.ndim)
        mask = args.array_api_mask(xp, where, tuple(x.shape), dtypes.device)
        out = args.array_api_out(out, tuple(x.shape), dtypes.result)
    return x, Plan("array_api", op, axes, scale, dtypes, mask=mask, out=out, xp=xp, accuracy=code)


def plan_logsumexp(x: Any, axis: Axis, b: Any, keepdims: bool, return_sign: bool,
                   where: Any, accuracy: Any = None) -> tuple[Array, Plan]:
    """Check logsumexp's arguments once (SciPy's rules: `a` and `b` broadcast, then `axis`)."""
    code = args.accuracy_code(accuracy)
    x, where = args.unmask(x, where)
    keepdims = args.check_bool(keepdims, "keepdims")
    return_sign = args.check_bool(return_sign, "return_sign")
    library = args.library_of(x)
    if b is not None:
        b, b_where = args.unmask(b, None, name="b")
        if b_where is not None:
            # A masked weight is a weight that is not there.
            b = args.masked_weights_as_zero(b, b_where)
    if library == "numpy":
        arr = args.as_float_array(x)
        dtype = arr.dtype
        if b is not None:
            arr, b, dtype = args.broadcast_weights(arr, b)
        axes = args.reduction_axes(axis, arr.ndim)
        mask = args.where_mask(where, arr.shape)
        return arr, Plan("numpy", "logsumexp", axes, args.UNIT_SCALE, dtype, mask=mask, b=b,
                         keepdims=keepdims, return_sign=return_sign, accuracy=code)
    if library == "dask":
        x, dtype = args.dask_float_array(x)
        if b is not None:
            x, b, dtype = args.dask_broadcast_weights(x, b, dtype)
        axes = args.reduction_axes(axis, x.ndim)
        mask = args.dask_mask(where, x)
        return x, Plan("dask", "logsumexp", axes, args.UNIT_SCALE, dtype, mask=mask, b=b,
                       keepdims=keepdims, return_sign=return_sign, accuracy=code)
    from ._backends import array_api

    xp = array_api.namespace(x)
    ints = array_api.default_float_for_ints(xp)
    with array_api.wide(xp):
        dtypes = args.array_api_dtypes(xp, x, int_result=ints)
        if b is not None:
            x, b, dtypes = args.array_api_broadcast_weights(xp, x, b, dtypes)
        axes = args.reduction_axes(axis, x.ndim)
        mask = args.array_api_mask(xp, where, tuple(x.shape), dtypes.device)
    return x, Plan("array_api", "logsumexp", axes, args.UNIT_SCALE, dtypes, mask=mask, b=b,
                   keepdims=keepdims, return_sign=return_sign, xp=xp, accuracy=code)


def plan_groups(x: Any, segment_ids: Any, offsets: Any, num_segments: Any, axis: Any,
                temperature: float, base: float | None, where: Any, out: Any, *, op: Op,
                accuracy: Any = None) -> tuple[Array, Plan]:
    """Check a ``segment_*`` call once: softmax's checks, one int axis, and the groups."""
    code = args.accuracy_code(accuracy)
    x, where = args.unmask(x, where)
    library = args.library_of(x)
    scale = args.UNIT_SCALE if op == "logsumexp" else args.parse_scale(temperature, base)
    if library == "numpy":
        arr = args.as_float_array(x)
        ax = args.one_axis(axis, arr.ndim, what="the grouped axis")
        grouped = args.groups(segment_ids, offsets, num_segments, arr.shape[ax] if arr.ndim else -1, ax)
        mask = args.where_mask(where, arr.shape)
        if out is not None and op == "logsumexp":
            raise TypeError("out is not supported by segment_logsumexp")
        out = args.check_out(out, arr.shape, arr.dtype)
        return arr, Plan("numpy", op, (ax,), scale, arr.dtype, mask=mask, out=out,
                         accuracy=code, groups=grouped)
    if out is not None and library == "dask":
        raise TypeError(
            f"out must be None for a Dask array (results are lazy), got {type(out).__name__}"
        )
    if out is not None and op == "logsumexp":
        raise TypeError("out is not supported by segment_logsumexp")
    if library == "dask":
        x, dtype = args.dask_float_array(x)
        ax = args.one_axis(axis, x.ndim, what="the grouped axis")
        grouped = args.groups(segment_ids, offsets, num_segments, x.shape[ax] if x.ndim else -1, ax)
        mask = args.dask_mask(where, x)
        return x, Plan("dask", op, (ax,), scale, dtype, mask=mask, accuracy=code, groups=grouped)
    from ._backends import array_api

    xp = array_api.namespace(x)
    ints = array_api.default_float_for_ints(xp)
    with array_api.wide(xp):
        dtypes = args.array_api_dtypes(xp, x, int_result=ints)
        ax = args.one_axis(axis, x.ndim, what="the grouped axis")
        grouped = args.groups(segment_ids, offsets, num_segments, x.shape[ax] if x.ndim else -1, ax)
        mask = args.array_api_mask(xp, where, tuple(x.shape), dtypes.device)
        out = args.array_api_out(out, tuple(x.shape), dtypes.result)
    return x, Plan("array_api", op, (ax,), scale, dtypes, mask=mask, out=out, xp=xp,
                   accuracy=code, groups=grouped)


@dataclasses.dataclass(frozen=True)
class Operand:
    """An array argument of the article's other functions, checked once.

    The functions of ``_math`` are written once against the array API
    standard: `xp` is NumPy itself for NumPy input, the library's namespace
    for PyTorch/JAX/CuPy/array-api-strict (through array-api-compat), and
    array-api-compat's lazy Dask namespace for Dask arrays, so a result
    comes back as the caller's array type (a tensor that requires grad keeps
    its graph; Dask stays lazy).
    """

    library: Library
    xp: Namespace
    data: Array        # the array in its library, real floating or integer
    result: Any        # result dtype
    work: Any          # dtype computed in: float64 where the device has it
    device: Any = None

    def computing(self) -> contextlib.ExitStack[bool | None]:
        """The context of a computation: JAX's float64 switched on, no NumPy warnings."""
        from ._backends import array_api, merge

        stack = contextlib.ExitStack()
        if self.library == "array_api":
            stack.enter_context(array_api.wide(self.xp))
        stack.enter_context(merge.quiet())
        return stack

    @property
    def eps(self) -> float:
        """The machine epsilon of the result dtype."""
        return float(self.xp.finfo(self.result).eps)

    @property
    def lazy(self) -> bool:
        return self.library == "dask"

    def work_array(self, a: Array | None = None) -> Array:
        """`a` (default: the data) in the working dtype."""
        a = self.data if a is None else a
        return a if a.dtype == self.work else self.xp.astype(a, self.work)

    def deliver(self, result: Array, dtype: Any = None) -> Any:
        """`result` in the result dtype; a 0-d NumPy result as a NumPy scalar."""
        dtype = self.result if dtype is None else dtype
        if result.dtype != dtype:
            result = self.xp.astype(result, dtype)
        if self.library == "numpy" and result.ndim == 0:
            return result[()]
        return result

    def plan(self, op: Op, axes: tuple[int, ...], scale: Scale, mask: Array | None = None) -> Plan:
        """The plan of a softmax/log_softmax of this operand's data in the working dtype."""
        if self.library == "array_api":
            work = args.ArrayDtypes(self.work, self.work, True,
                                    float(self.xp.finfo(self.work).eps), self.device)
            return Plan("array_api", op, axes, scale, work, mask=mask, xp=self.xp)
        return Plan(self.library, op, axes, scale, self.work, mask=mask, xp=self.xp)

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Another argument (list, NumPy array, ...) as an array of this library."""
        xp = self.xp
        if self.library == "numpy":
            return np.asarray(a, dtype=dtype)
        if self.library == "dask":
            import dask.array as da

            arr = a if isinstance(a, da.Array) else da.from_array(np.asarray(a))
            return arr if dtype is None else arr.astype(dtype)
        from ._backends import array_api

        arr = array_api.as_library(a, xp, self.device)
        return arr if dtype is None else xp.astype(arr, dtype)


def operand(x: Any, name: str = "x") -> Operand:
    """Check an array argument once and choose its library's namespace."""
    library = args.library_of(x)
    if library == "numpy":
        arr = args.as_float_array(x, name)
        return Operand("numpy", np, arr, arr.dtype, np.dtype(np.float64))
    if library == "dask":
        import array_api_compat

        arr, dtype = args.dask_float_array(x, name)
        return Operand("dask", array_api_compat.array_namespace(arr), arr, dtype,
                       np.dtype(np.float64))
    from ._backends import array_api

    xp = array_api.namespace(x)
    ints = array_api.default_float_for_ints(xp)
    with array_api.wide(xp):
        d = args.array_api_dtypes(xp, x, name, int_result=ints)
    data = x if x.dtype == d.result else xp.astype(x, d.result)
    return Operand("array_api", xp, data, d.result, d.work, d.device)


def operand_mask(op: Operand, where: Any, shape: tuple[int, ...], name: str = "x") -> Array | None:
    """`where` checked and broadcast to `shape` in the operand's library (or None)."""
    if where is None:
        return None
    if op.library == "numpy":
        return args.where_mask(where, shape, name)
    if op.library == "dask":
        return args.dask_mask(where, op.data)
    return args.array_api_mask(op.xp, where, shape, op.device, name)
