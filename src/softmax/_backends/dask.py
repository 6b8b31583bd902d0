"""The Dask backend: a checked plan run lazily, block by block.

A reduced axis may be split into any number of chunks; it is never rechunked:

1. each chunk gives its ``(max, sum)`` state (``merge.chunk_state``),
2. ``dask.array.reduction`` merges the states in a tree (the same rule as
   the streaming accumulator; dask's own ``mean`` works this way),
3. one blockwise map writes ``exp(x - max) / sum`` for each chunk.

When the reduced axes are not split, each block goes through the NumPy
backend (the C core) with the plan already built: bit for bit what NumPy
would give. States travel between workers as structured NumPy arrays with
fields ``m``, ``r_hi``, ``r_lo``. The calibration objective for Dask arrays
(`temperature_objective`) runs the same kind of map-reduce.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from . import merge
from . import numpy as numpy_backend

__all__ = ["run", "temperature_objective"]

_EPS = float(np.finfo(np.float64).eps)
STATE_DTYPE = np.dtype([("m", "f8"), ("r_hi", "f8"), ("r_lo", "f8")])


def _da():
    import dask.array as da  # the plan was built from a Dask array: dask is there

    return da


def _pack(state: merge.State) -> np.ndarray:
    packed = np.empty(np.shape(state.m), dtype=STATE_DTYPE)
    packed["m"], packed["r_hi"], packed["r_lo"] = state
    return packed


def _unpack(packed: np.ndarray) -> merge.State:
    return merge.State(packed["m"], packed["r_hi"], packed["r_lo"])


def _state_chunk(v, axis, keepdims, *, ps, exact, computing_meta=False, **kwargs):
    """Reduction step 1: the state of one chunk (axes kept as length 1)."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(v.shape))
    if computing_meta or math.prod(v.shape[i] for i in axis) == 0:
        return _pack(merge.identity(np, kept))
    with merge.quiet():
        state = merge.chunk_state(np, v.astype(np.float64), axis, ps, exact=exact, eps=_EPS)
    return _pack(state)


def _state_combine(packed, axis, keepdims, *, ps, computing_meta=False, **kwargs):
    """Reduction steps 2 and 3: merge the states laid side by side along `axis`."""
    if computing_meta:
        return packed
    state = _unpack(packed)
    with merge.quiet():
        for ax in axis:
            state = merge.merge_along(np, state, ax, ps, _EPS)
    packed = _pack(state)
    return packed if keepdims else np.squeeze(packed, axis=axis)


def _states(da, v, axes, ps, exact, name="softmax-state"):
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


def _finish_block(v, packed, keep=None, *, ps, log, exact, dtype):
    with merge.quiet():
        out = merge.finish(np, v, _unpack(packed), ps, log=log, exact=exact, eps=_EPS)
    if keep is not None:
        out = np.where(keep, out, -np.inf if log else 0.0)
    return out.astype(dtype)


def _orient(da, x, scale, keep):
    v = x.astype(np.float64)
    if scale.sign < 0:
        v = -v
    if keep is not None:
        v = da.where(keep, v, -np.inf)
    if scale.kind == "uniform":
        v = da.where(da.isfinite(v), 0.0, v)
    return v


def _aligned(block: np.ndarray) -> np.ndarray:
    """A block as the C core reads it: a block unpickled on a worker may sit at
    any offset of a received buffer (unaligned); layout, not checking."""
    return block if block.flags.aligned else block.copy()


def _block(plan, block, keep=None):
    """One block through the NumPy backend with the call's plan (no re-checking)."""
    return numpy_backend.run(_aligned(block),
                             plan.replace(library="numpy", mask=keep, out=None, b=None))


def run(x, plan):
    if plan.op == "logsumexp":
        return _logsumexp(x, plan)
    return _softmax_family(x, plan)


def _softmax_family(x, plan):
    da = _da()
    dtype, axes, keep, log = plan.result_dtype, plan.axes, plan.mask, plan.log
    meta = np.empty((0,) * x.ndim, dtype)
    if not axes or all(len(x.chunks[i]) == 1 for i in axes):
        # Whole slices in every block: the C core, bit for bit as NumPy.
        fn = partial(_block, plan)
        args = (x,) if keep is None else (x, keep)
        return da.map_blocks(fn, *args, dtype=dtype, meta=meta)
    exact = dtype == np.float64
    ps = merge.positive_scale(plan.scale)
    v = _orient(da, x, plan.scale, keep)
    states = _states(da, v, axes, ps, exact)
    finish = partial(_finish_block, ps=ps, log=log, exact=exact, dtype=dtype)
    args = (v, states) if keep is None else (v, states, keep)
    return da.map_blocks(finish, *args, dtype=dtype, meta=meta, token="softmax-finish")


# ---------------------------------------------------------------- logsumexp


def _lse_block(packed, *, dtype):
    with merge.quiet():
        hi, lo = merge.log_total(np, _unpack(packed))
        return (hi + lo).astype(dtype)


def _block_logsumexp(plan, block, keep=None):
    lone = plan.replace(library="numpy", mask=keep, keepdims=True, return_sign=False, b=None)
    return np.asarray(numpy_backend.run(_aligned(block), lone))


WEIGHTED_DTYPE = np.dtype([("m", "f8"), ("s", "f8")])


def _weighted_chunk(xb, bb=None, axis=None, keepdims=True, computing_meta=False, **kwargs):
    """The weighted (max log-term, sum) state of one chunk (`merge.weighted_state`)."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(xb.shape))
    packed = np.empty(kept, dtype=WEIGHTED_DTYPE)
    if computing_meta or math.prod(xb.shape[i] for i in axis) == 0:
        packed["m"], packed["s"] = -np.inf, 0.0
        return packed
    with merge.quiet():
        packed["m"], packed["s"] = merge.weighted_state(np, xb, bb, None, axis)
    return packed


def _weighted_combine(packed, axis, keepdims, computing_meta=False, **kwargs):
    if computing_meta:
        return packed
    out = np.empty(tuple(1 if i in axis else n for i, n in enumerate(packed.shape)),
                   dtype=WEIGHTED_DTYPE)
    with merge.quiet():
        out["m"], out["s"] = merge.weighted_merge(np, packed["m"], packed["s"], axis)
    return out


def _weighted_value(packed, *, dtype, sign=False):
    with merge.quiet():
        value, sgn = merge.weighted_value(np, packed["m"], packed["s"])
    return (sgn if sign else value).astype(dtype)


def _logsumexp(x, plan):
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


# ------------------------------------------------------ temperature scaling

MOMENTS_DTYPE = np.dtype([("m", "f8"), ("s0", "f8"), ("s1", "f8"), ("s2", "f8")])
SUMS_DTYPE = np.dtype([("f", "f8"), ("df", "f8"), ("d2f", "f8"), ("w", "f8")])


def _moments_chunk(xb, axis, keepdims, *, t, computing_meta=False, **kwargs):
    """Per row of one chunk: m = max x and, with e = exp(t (x - m)) and
    d = t (x - m), the sums s0 = sum e, s1 = sum e d, s2 = sum e d^2."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(xb.shape))
    packed = np.zeros(kept, dtype=MOMENTS_DTYPE)
    packed["m"] = -np.inf
    if computing_meta or math.prod(xb.shape[i] for i in axis) == 0:
        return packed
    with merge.quiet():
        m = np.max(xb, axis=axis, keepdims=True)
        m_safe = np.where(np.isfinite(m), m, 0.0)
        # -inf logits (impossible classes) weigh 0 whatever t is
        d = np.where(xb > -np.inf, t * (xb - m_safe), -np.inf)
        e = np.exp(d)
        d = np.where(e > 0, d, 0.0)
        packed["m"] = m
        packed["s0"] = np.sum(e, axis=axis, keepdims=True)
        packed["s1"] = np.sum(e * d, axis=axis, keepdims=True)
        packed["s2"] = np.sum(e * d * d, axis=axis, keepdims=True)
    return packed


def _moments_merge(packed, axis, *, t):
    """Shift every state to the common max M: with delta = t (m - M) <= 0 and
    g = exp(delta): s0 g, (s1 + delta s0) g, (s2 + 2 delta s1 + delta^2 s0) g."""
    m = packed["m"]
    with merge.quiet():
        big = np.max(m, axis=axis, keepdims=True)
        delta = np.where(m == big, 0.0, t * (m - np.where(np.isfinite(big), big, 0.0)))
        g = np.exp(delta)
        live = packed["s0"] > 0
        delta = np.where(live, delta, 0.0)
        g = np.where(live, g, 0.0)
        s0, s1, s2 = packed["s0"], packed["s1"], packed["s2"]
        out = np.empty(big.shape, dtype=MOMENTS_DTYPE)
        out["m"] = big
        out["s0"] = np.sum(g * s0, axis=axis, keepdims=True)
        out["s1"] = np.sum(g * (s1 + delta * s0), axis=axis, keepdims=True)
        out["s2"] = np.sum(g * (s2 + 2 * delta * s1 + delta * delta * s0), axis=axis, keepdims=True)
    return out


def _moments_combine(packed, axis, keepdims, *, t, computing_meta=False, **kwargs):
    if computing_meta:
        return packed
    out = _moments_merge(packed, axis, t=t)
    return out if keepdims else np.squeeze(out, axis=axis)


def _row_sums(packed, x_label, w, *, t):
    """Partial sums of one block of rows: f = sum w NLL and its u-derivatives.

    With z = t x and z* = t m: NLL = log s0 + t (m - x_y),
    dNLL/du = t (x_y - m) - s1/s0, d2NLL/du2 = t (m - x_y) + s1/s0 + Var,
    Var = s2/s0 - (s1/s0)^2 (the variance of z under the softmax).
    """
    with merge.quiet():
        m, s0, s1, s2 = packed["m"], packed["s0"], packed["s1"], packed["s2"]
        gap = t * (m - x_label)
        gap = np.where(m == x_label, 0.0, gap)
        mean = s1 / s0
        var = np.maximum(s2 / s0 - mean * mean, 0.0)
        nll = np.log(s0) + gap
        out = np.empty((1,) * packed.ndim, dtype=SUMS_DTYPE)
        out["f"] = np.sum(w * nll)
        out["df"] = np.sum(w * (-gap - mean))
        out["d2f"] = np.sum(w * (gap + mean + var))
        out["w"] = np.sum(w)
    return out


def _sums_chunk(packed, axis, keepdims, computing_meta=False, **kwargs):
    return packed


def _sums_combine(packed, axis, keepdims, computing_meta=False, **kwargs):
    if computing_meta:
        return packed
    out = np.empty((1,) * packed.ndim, dtype=SUMS_DTYPE)
    for name in SUMS_DTYPE.names:
        out[name] = np.sum(packed[name])
    return out if keepdims else out.reshape(())


def temperature_objective(logits, labels, *, axis=-1, weights=None, split_every=None):
    """The temperature-scaling NLL of Dask logits as a function of u = log T.

    Returns ``objective(u) -> (f, df/du, d2f/du2, total_weight)`` with
    ``f = sum_i w_i (logsumexp(z_i) - z_{i, y_i})``, ``z = logits * exp(-u)``:
    plain float64 sums (not means). Each call computes one graph: per chunk,
    the (max, moments) state of each row along the class axis, merged in a
    tree when that axis is split, then per-row terms summed in a tree.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        Scores, classes along `axis`. Finite or ``-inf`` (an impossible class).
    labels : dask.array.Array or array_like of int
        True class of each row: logits' shape without `axis`.
    axis : int, optional
        The class axis.
    weights : array_like, optional
        Non-negative weight of each row (default 1).
    """
    da = _da()
    x = logits if isinstance(logits, da.Array) else da.from_array(np.asarray(logits))
    if x.dtype.kind not in "biuf":
        raise TypeError(f"logits must be an array of real numbers, got dtype {x.dtype}")
    if x.ndim < 1:
        raise ValueError(f"logits must have at least one axis, got shape {x.shape}")
    ax = axis % x.ndim  # checked by the caller (calibration)
    x = da.moveaxis(x, ax, -1).astype(np.float64)
    rows, n_classes = x.shape[:-1], x.shape[-1]
    y = labels if isinstance(labels, da.Array) else da.from_array(np.asarray(labels))
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape != rows:
        raise ValueError(f"labels must have shape {rows}, got shape {y.shape}")
    y = y.rechunk(x.chunks[:-1])
    lo, hi = da.compute(y.min(), y.max()) if y.size else (0, 0)
    if y.size and (lo < 0 or hi >= n_classes):
        bad = lo if lo < 0 else hi
        raise ValueError(f"labels must be in [0, {n_classes}), got {int(bad)}")
    if weights is None:
        w = da.ones(rows, chunks=x.chunks[:-1], dtype=np.float64)
    else:
        w = weights if isinstance(weights, da.Array) else da.from_array(np.asarray(weights))
        if w.shape != rows:
            raise ValueError(f"weights must have shape {rows}, got shape {w.shape}")
        w = w.astype(np.float64).rechunk(x.chunks[:-1])
    # The label's logit: exactly one class matches, so the sum is exact.
    classes = da.arange(n_classes, chunks=x.chunks[-1])
    x_label = da.where(classes == y[..., None], x, 0.0).sum(axis=-1)

    def objective(u):
        t = math.exp(-float(u))
        states = da.reduction(
            x,
            partial(_moments_chunk, t=t),
            partial(_moments_combine, t=t),
            combine=partial(_moments_combine, t=t),
            axis=-1,
            keepdims=False,
            dtype=MOMENTS_DTYPE,
            split_every=split_every,
            concatenate=True,
            meta=np.empty((0,) * (x.ndim - 1), dtype=MOMENTS_DTYPE),
            name="softmax-moments",
        )
        if states.ndim == 0:
            states, xl, ww = states[None], x_label[None], w[None]
        else:
            xl, ww = x_label, w
        per_block = da.map_blocks(
            partial(_row_sums, t=t), states, xl, ww,
            dtype=SUMS_DTYPE, chunks=tuple((1,) * len(c) for c in states.chunks),
            meta=np.empty((0,) * states.ndim, dtype=SUMS_DTYPE),
        )
        total = da.reduction(
            per_block,
            _sums_chunk,
            _sums_combine,
            combine=_sums_combine,
            axis=None,
            keepdims=False,
            dtype=SUMS_DTYPE,
            split_every=split_every,
            concatenate=True,
            meta=np.empty((), dtype=SUMS_DTYPE),
            name="softmax-nll-sums",
        ).compute()
        return float(total["f"]), float(total["df"]), float(total["d2f"]), float(total["w"])

    return objective
