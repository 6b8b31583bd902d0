"""The Dask backend: a checked plan run lazily, block by block.

A reduced axis may be split into any number of chunks; it is never rechunked:

1. each chunk gives its ``(max, sum)`` state (``merge.chunk_state``),
2. ``dask.array.reduction`` merges the states in a tree (the same rule as
   the streaming accumulator; dask's own ``mean`` works this way),
3. one blockwise map writes ``exp(x - max) / sum`` for each chunk.

When the reduced axes are not split, each block goes through the NumPy
backend (the C core) with the plan already built: bit for bit what NumPy
would give. States travel between workers as structured NumPy arrays with
fields ``m``, ``r_hi``, ``r_lo``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from . import groups as grouping
from . import merge
from . import numpy as numpy_backend
from .._typing import Array, NDArray
from .scale import Scale

if TYPE_CHECKING:  # a type only: backends never import the plan's module at run time
    from .._plan import Plan

__all__ = ["run"]

_EPS = float(np.finfo(np.float64).eps)
STATE_DTYPE = np.dtype([("m", "f8"), ("r_hi", "f8"), ("r_lo", "f8")])


def _da() -> Any:
    import dask.array as da  # the plan was built from a Dask array: dask is there

    return da


def _pack(state: merge.State) -> NDArray[np.void]:
    packed = np.empty(np.shape(state.m), dtype=STATE_DTYPE)
    packed["m"], packed["r_hi"], packed["r_lo"] = state
    return packed


def _unpack(packed: NDArray[np.void]) -> merge.State:
    return merge.State(packed["m"], packed["r_hi"], packed["r_lo"])


def _state_chunk(v: NDArray[Any], axis: tuple[int, ...], keepdims: bool, *, ps: merge.PositiveScale,
                 exact: bool, computing_meta: bool = False, **kwargs: Any) -> NDArray[np.void]:
    """Reduction step 1: the state of one chunk (axes kept as length 1)."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(v.shape))
    if computing_meta or math.prod(v.shape[i] for i in axis) == 0:
        return _pack(merge.identity(np, kept))
    with merge.quiet():
        state = merge.chunk_state(np, v.astype(np.float64), axis, ps, exact=exact, eps=_EPS)
    return _pack(state)


def _state_combine(packed: NDArray[np.void], axis: tuple[int, ...], keepdims: bool, *,
                   ps: merge.PositiveScale, computing_meta: bool = False,
                   **kwargs: Any) -> NDArray[np.void]:
    """Reduction steps 2 and 3: merge the states laid side by side along `axis`."""
    if computing_meta:
        return packed
    state = _unpack(packed)
    with merge.quiet():
        for ax in axis:
            state = merge.merge_along(np, state, ax, ps, _EPS)
    packed = _pack(state)
    return packed if keepdims else np.squeeze(packed, axis=axis)


def _states(da: Any, v: Array, axes: tuple[int, ...], ps: merge.PositiveScale, exact: bool,
            name: str = "softmax-state") -> Array:
    return da.reduction(
        v,
        partial(_state_chunk, ps=ps, exact=exact),
        partial(_state_combine, ps=ps),
        combine=partial(_state_combine, ps=ps),
        axis=axes,
        keepdims=True,
        dtype=STATE_DTYPE,
        concatenate=True,
        meta=np.empty((0,) * v.ndim, dtype=STATE_DTYPE),
        name=name,
    )


def _finish_block(v: NDArray[Any], packed: NDArray[np.void], keep: NDArray[Any] | None = None, *,
                  ps: merge.PositiveScale, log: bool, exact: bool,
                  dtype: np.dtype[Any]) -> Array:
    with merge.quiet():
        out = merge.finish(np, v, _unpack(packed), ps, log=log, exact=exact, eps=_EPS)
    if keep is not None:
        out = np.where(keep, out, -np.inf if log else 0.0)
    # over: a float64 result beyond float16's range rounds to +-inf, its correct
    # rounding (the NumPy backend's _finish says the same)
    with np.errstate(over="ignore"):
        return out.astype(dtype)


def _orient(da: Any, x: Array, scale: Scale, keep: Array | None) -> Array:
    v = x.astype(np.float64)
    if scale.sign < 0:
        v = -v
    if keep is not None:
        v = da.where(keep, v, -np.inf)
    if scale.kind == "uniform":
        v = da.where(da.isfinite(v), 0.0, v)
    return v


def _aligned(block: NDArray[Any]) -> NDArray[Any]:
    """A block as the C core reads it: a block unpickled on a worker may sit at
    any offset of a received buffer (unaligned); layout, not checking."""
    return block if block.flags.aligned else block.copy()


def _block(plan: Plan, block: NDArray[Any], keep: NDArray[Any] | None = None) -> Any:
    """One block through the NumPy backend with the call's plan (no re-checking)."""
    return numpy_backend.run(_aligned(block),
                             plan.replace(library="numpy", mask=keep, out=None, b=None))


def run(x: Array, plan: Plan) -> Any:
    # the process default is the caller's, not a worker's at compute time
    plan = plan.replace(accuracy=numpy_backend.accuracy_now(plan.accuracy))
    if plan.groups is not None:
        return _grouped(x, plan)
    if plan.op == "logsumexp":
        return _logsumexp(x, plan)
    return _softmax_family(x, plan)


def _softmax_family(x: Array, plan: Plan) -> Array:
    da = _da()
    dtype, axes, keep, log = plan.result_dtype, plan.axes, plan.mask, plan.log
    meta = np.empty((0,) * x.ndim, dtype)
    if not axes or all(len(x.chunks[i]) == 1 for i in axes):
        # Whole slices in every block: the C core, bit for bit as NumPy.
        fn = partial(_block, plan)
        args: tuple[Array, ...] = (x,) if keep is None else (x, keep)
        return da.map_blocks(fn, *args, dtype=dtype, meta=meta)
    exact = dtype == np.float64
    ps = merge.positive_scale(plan.scale)
    v = _orient(da, x, plan.scale, keep)
    states = _states(da, v, axes, ps, exact)
    finish = partial(_finish_block, ps=ps, log=log, exact=exact, dtype=dtype)
    args = (v, states) if keep is None else (v, states, keep)
    return da.map_blocks(finish, *args, dtype=dtype, meta=meta, token="softmax-finish")


# ---------------------------------------------------------------- logsumexp


def _lse_block(packed: NDArray[np.void], *, dtype: np.dtype[Any]) -> Array:
    with merge.quiet():
        hi, lo = merge.log_total(np, _unpack(packed))
        return (hi + lo).astype(dtype)


def _block_logsumexp(plan: Plan, block: NDArray[Any], keep: NDArray[Any] | None = None
                     ) -> NDArray[Any]:
    lone = plan.replace(library="numpy", mask=keep, keepdims=True, return_sign=False, b=None)
    return np.asarray(numpy_backend.run(_aligned(block), lone))


WEIGHTED_DTYPE = np.dtype([("m", "f8"), ("s", "f8")])


def _weighted_chunk(xb: NDArray[Any], bb: NDArray[Any] | None = None,
                    axis: Any = None, keepdims: bool = True,  # dask passes the axes
                    computing_meta: bool = False, **kwargs: Any) -> NDArray[np.void]:
    """The weighted (max log-term, sum) state of one chunk (`merge.weighted_state`)."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(xb.shape))
    packed = np.empty(kept, dtype=WEIGHTED_DTYPE)
    if computing_meta or math.prod(xb.shape[i] for i in axis) == 0:
        packed["m"], packed["s"] = -np.inf, 0.0
        return packed
    with merge.quiet():
        packed["m"], packed["s"] = merge.weighted_state(np, xb, bb, None, axis)
    return packed


def _weighted_combine(packed: NDArray[np.void], axis: tuple[int, ...], keepdims: bool,
                      computing_meta: bool = False, **kwargs: Any) -> NDArray[np.void]:
    if computing_meta:
        return packed
    out = np.empty(tuple(1 if i in axis else n for i, n in enumerate(packed.shape)),
                   dtype=WEIGHTED_DTYPE)
    with merge.quiet():
        out["m"], out["s"] = merge.weighted_merge(np, packed["m"], packed["s"], axis)
    return out


def _weighted_value(packed: NDArray[np.void], *, dtype: np.dtype[Any], sign: bool = False
                    ) -> Array:
    with merge.quiet():
        value, sgn = merge.weighted_value(np, packed["m"], packed["s"])
        return (sgn if sign else value).astype(dtype)


def _logsumexp(x: Array, plan: Plan) -> Any:
    da = _da()
    dtype, keep, b = plan.result_dtype, plan.mask, plan.b
    axes = plan.axes
    if not axes:
        # Each element is its own slice: a length-1 axis makes that a reduction.
        lone = plan.replace(axes=(x.ndim,), keepdims=False, return_sign=True,
                            mask=None if keep is None else keep[..., None],
                            b=None if b is None else b[..., None])
        value, sign = _logsumexp(x[..., None], lone)
    elif b is None and all(len(x.chunks[i]) == 1 for i in axes):
        # Whole slices in every block: the C core, bit for bit as NumPy.
        chunks = tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))
        args = (x,) if keep is None else (x, keep)
        value = da.map_blocks(partial(_block_logsumexp, plan), *args, chunks=chunks,
                              dtype=dtype, meta=np.empty((0,) * x.ndim, dtype))
        sign = da.where(value == -np.inf, 0.0, 1.0).astype(dtype)
        sign = da.where(da.isnan(value), np.nan, sign).astype(dtype)
    elif b is None:
        v = x.astype(np.float64)
        if keep is not None:
            v = da.where(keep, v, -np.inf)
        states = _states(da, v, axes, merge.PositiveScale(), dtype == np.float64,
                         name="logsumexp-state")
        value = states.map_blocks(partial(_lse_block, dtype=dtype), dtype=dtype,
                                  meta=np.empty((0,) * x.ndim, dtype))
        sign = da.where(value == -np.inf, 0.0, 1.0).astype(dtype)
        sign = da.where(da.isnan(value), np.nan, sign).astype(dtype)
    else:
        bw = b if keep is None else da.where(keep, b, 0.0)
        states = da.reduction(
            x.astype(np.float64),
            _weighted_chunk,
            _weighted_combine,
            combine=_weighted_combine,
            axis=axes,
            keepdims=True,
            dtype=WEIGHTED_DTYPE,
            concatenate=True,
            weights=bw,
            meta=np.empty((0,) * x.ndim, dtype=WEIGHTED_DTYPE),
            name="softmax-logsumexp-b",
        )
        meta = np.empty((0,) * x.ndim, dtype)
        value = states.map_blocks(partial(_weighted_value, dtype=dtype), dtype=dtype, meta=meta)
        sign = states.map_blocks(partial(_weighted_value, dtype=dtype, sign=True), dtype=dtype,
                                 meta=meta)
    if axes and not plan.keepdims:
        value = da.squeeze(value, axis=axes)
        sign = da.squeeze(sign, axis=axes)
    if not plan.return_sign:
        value = da.where(sign < 0, np.nan, value).astype(dtype)
    return (value, sign) if plan.return_sign else value


# ---------------------------------------------------------------- groups
# The grouped axis goes last. If it is one chunk, each block runs the NumPy
# backend (the C core) with the plan. Otherwise a group may cross chunk
# boundaries: each column of blocks gives the states of all groups (groups
# with no entry there get the identity), the columns' states merge in a
# tree by the (max, sum) rule, and each block finishes its entries with the
# merged states of their groups -- the same two passes as an ungrouped axis.


def _group_state_block(v: NDArray[Any], *, groups: grouping.Groups, ps: merge.PositiveScale,
                       exact: bool) -> NDArray[np.void]:
    with merge.quiet():
        return _pack(grouping.group_state(np, v, groups, ps, exact=exact, eps=_EPS))


def _merge_blocks(a: NDArray[np.void], b: NDArray[np.void], *, ps: merge.PositiveScale
                  ) -> NDArray[np.void]:
    with merge.quiet():
        return _pack(merge.merge(np, _unpack(a), _unpack(b), ps, _EPS))


def _group_finish_block(v: NDArray[Any], packed: NDArray[np.void],
                        keep: NDArray[Any] | None = None, *, groups: grouping.Groups,
                        ps: merge.PositiveScale, log: bool, exact: bool,
                        dtype: np.dtype[Any]) -> NDArray[Any]:
    with merge.quiet():
        out: NDArray[Any] = grouping.group_finish(np, v, _unpack(packed), groups, ps, log=log,
                                                  exact=exact, eps=_EPS)
    if keep is not None:
        out = np.where(keep, out, -np.inf if log else 0.0)
    with np.errstate(over="ignore"):
        return out.astype(dtype)


def _grouped(x: Array, plan: Plan) -> Array:
    da = _da()
    # the blocks read the ids when computed: a copy of our own, not the caller's array
    plan = plan.replace(groups=plan.groups.owning_ids())
    dtype, axis, groups = plan.result_dtype, plan.axes[0], plan.groups
    x = da.moveaxis(x, axis, -1)
    keep = None if plan.mask is None else da.moveaxis(plan.mask, axis, -1)
    last = x.ndim - 1
    lse = plan.op == "logsumexp"
    meta = np.empty((0,) * x.ndim, dtype)
    if len(x.chunks[-1]) == 1:
        block = plan.replace(library="numpy", axes=(last,))
        fn = partial(_block, block)
        args: tuple[Array, ...] = (x,) if keep is None else (x, keep)
        chunks = x.chunks[:-1] + ((groups.num_groups,),) if lse else x.chunks
        result = da.map_blocks(fn, *args, chunks=chunks, dtype=dtype, meta=meta)
        return da.moveaxis(result, -1, axis)
    exact = dtype == np.float64
    ps = merge.positive_scale(plan.scale)
    v = _orient(da, x, plan.scale, keep)
    bounds = np.concatenate([[0], np.cumsum(x.chunks[-1])]).tolist()
    columns = [(v[..., a:b], groups.part(a, b), a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    state_chunks = v.chunks[:-1] + ((groups.num_groups,),)
    states = [
        da.map_blocks(partial(_group_state_block, groups=part, ps=ps, exact=exact), col,
                      chunks=state_chunks, dtype=STATE_DTYPE,
                      meta=np.empty((0,) * x.ndim, STATE_DTYPE), token="segment-state")
        for col, part, _, _ in columns
    ]
    while len(states) > 1:  # a tree: pairs of columns, then pairs of pairs
        paired = [
            da.map_blocks(partial(_merge_blocks, ps=ps), a, b, dtype=STATE_DTYPE,
                          meta=np.empty((0,) * x.ndim, STATE_DTYPE), token="segment-merge")
            for a, b in zip(states[::2], states[1::2])
        ]
        states = paired + ([states[-1]] if len(states) % 2 else [])
    total = states[0]
    if lse:
        result = total.map_blocks(partial(_lse_block, dtype=dtype), dtype=dtype, meta=meta)
        return da.moveaxis(result, -1, axis)
    parts = []
    for col, part, a, b in columns:
        fn = partial(_group_finish_block, groups=part, ps=ps, log=plan.log, exact=exact,
                     dtype=dtype)
        args = (col, total) if keep is None else (col, total, keep[..., a:b])
        parts.append(da.map_blocks(fn, *args, chunks=col.chunks, dtype=dtype, meta=meta,
                                   token="segment-finish"))
    return da.moveaxis(da.concatenate(parts, axis=-1), -1, axis)
