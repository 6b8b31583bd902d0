"""softmax, log_softmax and logsumexp on Dask arrays.

Every function builds a lazy graph and returns a Dask array. A reduced
axis may be split into any number of chunks; it is never rechunked:

1. each chunk gives its ``(max, sum)`` state (``_merge.chunk_state``),
2. ``dask.array.reduction`` merges the states in a tree (the same rule as
   the streaming accumulator; dask's own ``mean`` works this way),
3. one blockwise map writes ``exp(x - max) / sum`` for each chunk.

When the reduced axes are not split, each block simply goes through the C
core (``softmax.softmax``), bit for bit what NumPy would give.

States travel between workers as structured NumPy arrays with fields
``m``, ``r_hi``, ``r_lo``.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from . import _merge
from ._generic import reduction_axes
from ._validation import as_float_array, normalize_axis, parse_scale

__all__ = ["log_softmax", "logsumexp", "softmax", "softmax_family"]

_EPS = float(np.finfo(np.float64).eps)
STATE_DTYPE = np.dtype([("m", "f8"), ("r_hi", "f8"), ("r_lo", "f8")])


def _da():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError("softmax on Dask arrays needs dask: pip install 'softmax[dask]'") from None
    return da


def _result_dtype(x) -> np.dtype:
    """As for NumPy input: float16/32/64 kept, integers and bool to float64."""
    return as_float_array(np.empty(0, dtype=x.dtype)).dtype


def _pack(state: _merge.State) -> np.ndarray:
    packed = np.empty(np.shape(state.m), dtype=STATE_DTYPE)
    packed["m"], packed["r_hi"], packed["r_lo"] = state
    return packed


def _unpack(packed: np.ndarray) -> _merge.State:
    return _merge.State(packed["m"], packed["r_hi"], packed["r_lo"])


def _state_chunk(v, axis, keepdims, *, ps, exact, computing_meta=False, **kwargs):
    """Reduction step 1: the state of one chunk (axes kept as length 1)."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(v.shape))
    if computing_meta or math.prod(v.shape[i] for i in axis) == 0:
        return _pack(_merge.identity(np, kept))
    with _merge.quiet():
        state = _merge.chunk_state(np, v.astype(np.float64), axis, ps, exact=exact, eps=_EPS)
    return _pack(state)


def _state_combine(packed, axis, keepdims, *, ps, computing_meta=False, **kwargs):
    """Reduction steps 2 and 3: merge the states laid side by side along `axis`."""
    if computing_meta:
        return packed
    state = _unpack(packed)
    with _merge.quiet():
        for ax in axis:
            state = _merge.merge_along(np, state, ax, ps, _EPS)
    packed = _pack(state)
    return packed if keepdims else np.squeeze(packed, axis=axis)


def _orient(da, x, scale, keep):
    v = x.astype(np.float64)
    if scale.sign < 0:
        v = -v
    if keep is not None:
        v = da.where(keep, v, -np.inf)
    if scale.kind == "uniform":
        v = da.where(da.isfinite(v), 0.0, v)
    return v


def _states(da, v, axes, ps, exact, split_every=None, name="softmax-state"):
    return da.reduction(
        v,
        partial(_state_chunk, ps=ps, exact=exact),
        partial(_state_combine, ps=ps),
        combine=partial(_state_combine, ps=ps),
        axis=axes,
        keepdims=True,
        dtype=STATE_DTYPE,
        split_every=split_every,
        concatenate=True,
        meta=np.empty((0,) * v.ndim, dtype=STATE_DTYPE),
        name=name,
    )


def _finish_block(v, packed, keep=None, *, ps, log, exact, dtype):
    with _merge.quiet():
        out = _merge.finish(np, v, _unpack(packed), ps, log=log, exact=exact, eps=_EPS)
    if keep is not None:
        out = np.where(keep, out, -np.inf if log else 0.0)
    return out.astype(dtype)


def _mask(da, where, x):
    """where as a Dask bool array shaped and chunked like x (None if absent)."""
    if where is None:
        return None
    keep = where if isinstance(where, da.Array) else da.from_array(np.asarray(where))
    if keep.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {keep.dtype}")
    try:
        keep = da.broadcast_to(keep, x.shape)
    except ValueError:
        raise ValueError(
            f"where must broadcast to x.shape {x.shape}, got shape {keep.shape}"
        ) from None
    # The mask follows x's chunks (x itself is never rechunked).
    return keep.rechunk(x.chunks)


def softmax_family(x, axis, temperature, base, where, out, *, log, split_every=None):
    """softmax (log=False) or log_softmax of a Dask array, lazily."""
    da = _da()
    if out is not None:
        raise TypeError(f"out must be None for a Dask array (results are lazy), got {type(out).__name__}")
    dtype = _result_dtype(x)
    axes = reduction_axes(axis, x.ndim)
    scale = parse_scale(temperature, base)
    keep = _mask(da, where, x)
    if not axes:
        # Each element is its own slice: a length-1 axis makes that a reduction.
        lone = softmax_family(x[..., None], -1, temperature, base,
                              None if keep is None else keep[..., None], None, log=log)
        return lone[..., 0]
    if all(len(x.chunks[i]) == 1 for i in axes):
        from . import _api

        fn = _api.log_softmax if log else _api.softmax
        kw = {"axis": axes, "temperature": temperature, "base": base}
        if keep is None:
            return x.map_blocks(partial(_block_softmax, fn, kw), dtype=dtype, meta=np.empty((0,) * x.ndim, dtype))
        return da.map_blocks(partial(_block_softmax, fn, kw), x, keep, dtype=dtype,
                             meta=np.empty((0,) * x.ndim, dtype))
    exact = dtype == np.float64
    ps = _merge.positive_scale(scale)
    v = _orient(da, x, scale, keep)
    states = _states(da, v, axes, ps, exact, split_every)
    finish = partial(_finish_block, ps=ps, log=log, exact=exact, dtype=dtype)
    args = (v, states) if keep is None else (v, states, keep)
    return da.map_blocks(finish, *args, dtype=dtype, meta=np.empty((0,) * x.ndim, dtype),
                         token="softmax-finish")


def _block_softmax(fn, kw, block, keep=None):
    return fn(block, where=keep, **kw)


def _block_logsumexp(axes, block, keep=None):
    from . import _api

    return np.asarray(_api.logsumexp(block, axis=axes, keepdims=True, where=keep))


def softmax(x, axis=-1, *, temperature=1.0, base=None, where=None, out=None):
    """`softmax.softmax` of a Dask array, as a Dask array."""
    return softmax_family(x, axis, temperature, base, where, out, log=False)


def log_softmax(x, axis=-1, *, temperature=1.0, base=None, where=None, out=None):
    """`softmax.log_softmax` of a Dask array, as a Dask array."""
    return softmax_family(x, axis, temperature, base, where, out, log=True)


# ---------------------------------------------------------------- logsumexp


def _lse_block(packed, *, dtype):
    with _merge.quiet():
        hi, lo = _merge.log_total(np, _unpack(packed))
        return (hi + lo).astype(dtype)


WEIGHTED_DTYPE = np.dtype([("m", "f8"), ("s", "f8")])


def _weighted_chunk(xb, bb=None, axis=None, keepdims=True, computing_meta=False, **kwargs):
    """(max over entries with b != 0, sum b exp(x - max)): SciPy's shift, per chunk."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(xb.shape))
    packed = np.empty(kept, dtype=WEIGHTED_DTYPE)
    if computing_meta or math.prod(xb.shape[i] for i in axis) == 0:
        packed["m"], packed["s"] = -np.inf, 0.0
        return packed
    with _merge.quiet():
        live = bb != 0
        v = np.where(live, xb, -np.inf)
        m = np.max(np.where(np.isnan(v), -np.inf, v), axis=axis, keepdims=True)
        m_safe = np.where(np.isfinite(m), m, 0.0)
        s = np.sum(np.where(live, bb * np.exp(v - m_safe), 0.0), axis=axis, keepdims=True)
    packed["m"], packed["s"] = m, s
    return packed


def _weighted_merge(packed, axis):
    m, s = packed["m"], packed["s"]
    with _merge.quiet():
        big = np.max(m, axis=axis, keepdims=True)
        # A +inf max was summed with shift 0 and keeps factor 1; finite
        # states beside it do not count (the sum is infinite anyway).
        factor = np.where(m == big, 1.0, np.where(np.isfinite(big), np.exp(m - big), 0.0))
        total = np.sum(np.where(s == 0, 0.0, s * factor), axis=axis, keepdims=True)
    out = np.empty(big.shape, dtype=WEIGHTED_DTYPE)
    out["m"], out["s"] = big, total
    return out


def _weighted_combine(packed, axis, keepdims, computing_meta=False, **kwargs):
    if computing_meta:
        return packed
    return _weighted_merge(packed, axis)


def _weighted_aggregate(packed, axis, keepdims, computing_meta=False, **kwargs):
    if computing_meta:
        return packed
    return _weighted_merge(packed, axis)


def _weighted_value(packed, *, dtype):
    m, s = packed["m"], packed["s"]
    with _merge.quiet():
        value = np.log(np.abs(s)) + np.where(np.isfinite(m), m, 0.0)
    return value.astype(dtype)


def _weighted_sign(packed, *, dtype):
    return np.sign(packed["s"]).astype(dtype)


def logsumexp(x, axis=None, *, b=None, keepdims=False, return_sign=False, where=None,
              split_every=None):
    """`softmax.logsumexp` of a Dask array, as a Dask array (or a pair)."""
    da = _da()
    dtype = _result_dtype(x)
    if b is not None:
        b = b if isinstance(b, da.Array) else da.from_array(np.asarray(b))
        dtype = np.result_type(dtype, _result_dtype(b))
        try:
            shape = np.broadcast_shapes(x.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"b must broadcast with x.shape {x.shape}, got shape {b.shape}"
            ) from None
        x = da.broadcast_to(x, shape)
    axes = reduction_axes(axis, x.ndim)
    keep = _mask(da, where, x)
    if not axes:
        xs = x[..., None]
        res = logsumexp(xs, -1, b=None if b is None else da.broadcast_to(b, x.shape)[..., None],
                        return_sign=True, where=None if keep is None else keep[..., None])
        value, sign = res
    elif b is None and all(len(x.chunks[i]) == 1 for i in axes):
        # Whole slices in every block: the C core, bit for bit as NumPy.
        chunks = tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))
        args = (x,) if keep is None else (x, keep)
        value = da.map_blocks(partial(_block_logsumexp, axes), *args, chunks=chunks,
                              dtype=dtype, meta=np.empty((0,) * x.ndim, dtype))
        sign = da.where(value == -np.inf, 0.0, 1.0).astype(dtype)
        sign = da.where(da.isnan(value), np.nan, sign).astype(dtype)
    elif b is None:
        v = x.astype(np.float64)
        if keep is not None:
            v = da.where(keep, v, -np.inf)
        states = _states(da, v, axes, _merge.PositiveScale(), dtype == np.float64, split_every,
                         name="logsumexp-state")
        value = states.map_blocks(partial(_lse_block, dtype=dtype), dtype=dtype,
                                  meta=np.empty((0,) * x.ndim, dtype))
        sign = da.where(value == -np.inf, 0.0, 1.0).astype(dtype)
        sign = da.where(da.isnan(value), np.nan, sign).astype(dtype)
    else:
        bw = da.broadcast_to(b, x.shape).astype(np.float64).rechunk(x.chunks)
        if keep is not None:
            bw = da.where(keep, bw, 0.0)
        states = da.reduction(
            x.astype(np.float64),
            _weighted_chunk,
            _weighted_aggregate,
            combine=_weighted_combine,
            axis=axes,
            keepdims=True,
            dtype=WEIGHTED_DTYPE,
            split_every=split_every,
            concatenate=True,
            weights=bw,
            meta=np.empty((0,) * x.ndim, dtype=WEIGHTED_DTYPE),
            name="softmax-logsumexp-b",
        )
        meta = np.empty((0,) * x.ndim, dtype)
        value = states.map_blocks(partial(_weighted_value, dtype=dtype), dtype=dtype, meta=meta)
        sign = states.map_blocks(partial(_weighted_sign, dtype=dtype), dtype=dtype, meta=meta)
    if axes and not keepdims:
        value = da.squeeze(value, axis=axes)
        sign = da.squeeze(sign, axis=axes)
    if not return_sign:
        value = da.where(sign < 0, np.nan, value).astype(dtype)
    return (value, sign) if return_sign else value
