"""The NumPy backend: a checked plan run on the C core.

The reduction axes are moved last (a view when one axis is reduced, a copy
only for a tuple of axes that cannot be merged) and the C core walks the
rows (or, for a non-last axis, panels of columns read in place). What the
core does not take -- temperature 0, logsumexp weights `b` -- is computed
here with NumPy, by the same rules.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from .scale import UNIT_SCALE
from . import groups as grouping
from . import merge
from .._typing import NDArray

if TYPE_CHECKING:  # a type only: backends never import the plan's module at run time
    from .._plan import Plan

__all__ = ["axes_back", "axes_last", "run"]


# The C core reads and writes these natively (float16 is computed in double
# inside the kernels, never widened in memory); others go through float64.
_CORE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _core_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float16/32/64 natively; longdouble (beyond the core) in float64."""
    return dtype if dtype in _CORE_DTYPES else np.dtype(np.float64)


def axes_last(a: NDArray[Any], axes: tuple[int, ...]) -> NDArray[Any]:
    """View (or, for several axes, possibly a copy) with `axes` merged last."""
    if axes == (a.ndim - 1,):  # already last (np.moveaxis alone costs some 5 us)
        return a
    moved = np.moveaxis(a, axes, range(a.ndim - len(axes), a.ndim))
    if len(axes) == 1:
        return moved
    # An explicit length, not -1: with a 0-length outer axis, -1 is ambiguous.
    outer = moved.shape[: a.ndim - len(axes)]
    return moved.reshape(outer + (math.prod(moved.shape[len(outer):]),))


def axes_back(a_last: NDArray[Any], like_shape: tuple[int, ...], axes: tuple[int, ...]
              ) -> NDArray[Any]:
    """Inverse of `axes_last` for an array shaped like the moved one."""
    ndim = len(like_shape)
    if axes == (ndim - 1,) and a_last.shape == like_shape:
        return a_last
    moved_shape = tuple(like_shape[i] for i in range(ndim) if i not in axes) + tuple(
        like_shape[i] for i in axes
    )
    return np.moveaxis(a_last.reshape(moved_shape), range(ndim - len(axes), ndim), axes)


def _no_internal_overlap(a: NDArray[Any]) -> bool:
    """True if no two elements of `a` share memory (sufficient test).

    Sorted by |stride|, each axis must step past everything the smaller
    axes span; what slicing, transposing and reshaping make always passes,
    only as_strided / broadcast views can fail.
    """
    span = a.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1):
        if stride < span:
            return False
        span = stride * (n - 1) + span
    return True


def _writes_in_place(out_last: NDArray[Any], x_last: NDArray[Any],
                     mask_last: NDArray[Any] | None) -> bool:
    """Can the core write straight into `out_last`?

    Only when it is a view of out (no copy was needed to lay it out) and it
    does not overlap x or the mask except by being exactly x, element for
    element: the core reads x_j before it writes out_j, never after.
    """
    if np.may_share_memory(out_last, x_last):
        same = (
            out_last.__array_interface__["data"][0] == x_last.__array_interface__["data"][0]
            and out_last.strides == x_last.strides
        )
        # Exactly x is fine only if no two elements share memory: else a
        # write lands on an entry that is still to be read.
        if not same or not _no_internal_overlap(out_last):
            return False
    return mask_last is None or not np.may_share_memory(out_last, mask_last)


def _hard(x_last: NDArray[Any], mask_last: NDArray[Any] | None, sign: float,
          log: bool) -> NDArray[Any]:
    """Temperature 0 on the last axis: the hard max of sign * x (`merge.hard_max`)."""
    if x_last.shape[-1] == 0:
        return np.empty(x_last.shape)
    with merge.quiet():  # a signaling NaN raises the flag in sign * x
        _, p, _ = merge.hard_max(np, sign * x_last, mask_last, (-1,), np.float64)
        result: NDArray[Any] = np.log(p) if log else p
        return result


def accuracy_now(code: int) -> int:
    """A plan's accuracy code with the process default (-1) read now: a lazy
    Dask graph keeps the mode of the call, wherever and whenever it computes."""
    return code if code >= 0 else int(_core.get_accuracy())


def run(x: NDArray[Any], plan: Plan) -> Any:
    if plan.groups is not None:
        return _grouped(x, plan)
    if x.dtype.itemsize > 8 and plan.b is None:
        # longdouble: beyond what the core computes in (float64 would overflow
        # at 1e4000); the merge formulas in NumPy's own longdouble arithmetic.
        return _by_merge(x, plan, exact=False)
    if plan.op == "logsumexp":
        return _logsumexp(x, plan)
    if plan.scale.c_exp != 0:
        # c = ln(a) / T outside [2**-960, max float] (T below ~5.6e-309 or
        # above ~1e289): the core takes c as hi + lo only; the merge
        # formulas carry its exponent.
        work = x.astype(np.float64, copy=False)
        return _by_merge(work, plan, exact=_core_dtype(plan.result_dtype) == work.dtype)
    return _softmax_family(x, plan)


def _by_merge(x: NDArray[Any], plan: Plan, *, exact: bool) -> Any:
    """The plan by the formulas of `merge` in x's dtype (float64 or longdouble);
    `exact`: carry the steps in double-double (x's dtype is the result's)."""
    axes = plan.axes if plan.axes else (x.ndim,)
    v = x if plan.axes else x[..., np.newaxis]
    keep = plan.mask if plan.axes or plan.mask is None else plan.mask[..., np.newaxis]
    eps = float(np.finfo(x.dtype).eps)
    if math.prod(v.shape[i] for i in axes) == 0:  # empty slices: log 0 = -inf, no shares
        if plan.op != "logsumexp":
            return _finish(np.empty(x.shape, x.dtype), plan.out, plan.result_dtype)
        kept = tuple(1 if i in axes else n for i, n in enumerate(v.shape))
        v, keep = np.full(kept, -np.inf, x.dtype), None
    with merge.quiet():
        if plan.op == "logsumexp":
            v = v if keep is None else np.where(keep, v, -np.inf)
            state = merge.chunk_state(np, v, axes, merge.PositiveScale(), exact=False, eps=eps)
            hi, lo = merge.log_total(np, state)
            value = hi + lo
            sign = np.where(value == -np.inf, 0.0, np.where(np.isnan(value), np.nan, 1.0))
            if not plan.keepdims or not plan.axes:
                value, sign = np.squeeze(value, axis=axes), np.squeeze(sign, axis=axes)
            value = value.astype(x.dtype)[()] if value.ndim == 0 else value.astype(x.dtype)
            sign = sign.astype(x.dtype)[()] if sign.ndim == 0 else sign.astype(x.dtype)
            return (value, sign) if plan.return_sign else value
        vv = merge.orient(np, v, plan.scale, keep)
        ps = merge.positive_scale(plan.scale)
        state = merge.chunk_state(np, vv, axes, ps, exact=exact, eps=eps)
        res = merge.finish(np, vv, state, ps, log=plan.log, exact=exact, eps=eps)
        if keep is not None:
            res = np.where(keep, res, -np.inf if plan.log else 0.0)
    if not plan.axes:
        res = res[..., 0]
    return _finish(res, plan.out, plan.result_dtype)


def _uniform(x_last: NDArray[Any], scale: Any, work_dtype: np.dtype[Any]
             ) -> tuple[NDArray[Any], Any]:
    """Temperature inf: every finite score counts the same (0); +-inf and NaN
    keep their roles. Returns the scores and the unit scale to run them with."""
    finite = np.isfinite(x_last)
    with np.errstate(invalid="ignore"):
        return np.where(finite, 0.0, scale.sign * x_last).astype(work_dtype), UNIT_SCALE


def _softmax_family(arr: NDArray[Any], plan: Plan) -> Any:
    result_dtype = plan.result_dtype
    work_dtype = _core_dtype(result_dtype)
    axes, mask, out, scale, log = plan.axes, plan.mask, plan.out, plan.scale, plan.log
    if not axes:
        # A slice of one element (a 0-d input, or no reduction at all):
        # nothing to normalize against; lay it out as rows of length 1.
        lone = plan.replace(axes=(arr.ndim,), out=None,
                            mask=None if mask is None else mask[..., np.newaxis])
        result = _softmax_family(arr[..., np.newaxis], lone)[..., 0]
        return _finish(result, out, result_dtype)

    x_last = axes_last(arr, axes).astype(work_dtype, copy=False)
    mask_last = None if mask is None else axes_last(mask, axes)

    if scale.kind == "hard":
        result_last = _hard(x_last, mask_last, scale.sign, log)
        return _finish(axes_back(result_last, arr.shape, axes), out, result_dtype)
    if scale.kind == "uniform":
        x_last, scale = _uniform(x_last, scale, work_dtype)

    # Write straight into the result's memory when the layout allows it; a
    # temporary is needed only for merged tuple axes or an out that overlaps x.
    # The core writes only aligned native memory: any other out gets a
    # temporary and a copy (np.copyto swaps bytes and handles alignment).
    use_out = out is not None and out.dtype == work_dtype and out.flags.aligned
    full = out if use_out else _core.empty(arr.shape, work_dtype)
    target = axes_last(full, axes)
    direct = np.may_share_memory(target, full) and (
        not use_out or _writes_in_place(target, x_last, mask_last)
    )
    if not direct:
        target = _core.empty(x_last.shape, work_dtype)

    _core.softmax(x_last, target, mask_last, scale.c_hi, scale.c_lo, log, plan.accuracy)

    result = full if direct else axes_back(target, arr.shape, axes)
    return result if result is out else _finish(result, out, result_dtype)


def _finish(result: NDArray[Any], out: NDArray[Any] | None, dtype: np.dtype[Any]) -> Any:
    """Deliver `result` in the caller's dtype: into `out`, or as a new array."""
    # over: a float64 result beyond float16's range rounds to +-inf, which is
    # its correct rounding, not an accident to warn about.
    with np.errstate(over="ignore"):
        if out is not None:
            np.copyto(out, result, casting="unsafe")
            return out
        result = result.astype(dtype, copy=False)
    return result[()] if result.ndim == 0 else result


def _logsumexp(arr: NDArray[Any], plan: Plan) -> Any:
    result_dtype = plan.result_dtype
    work_dtype = _core_dtype(result_dtype)
    axes, mask, b = plan.axes, plan.mask, plan.b

    def last(a: NDArray[Any]) -> NDArray[Any]:
        return axes_last(a, axes) if axes else a[..., np.newaxis]

    x_last = last(arr)
    mask_last = None if mask is None else last(mask)
    if b is not None and x_last.shape[-1] == 0:  # an empty sum: log 0, sign 0
        value = np.full(x_last.shape[:-1], -np.inf)
        sign = np.zeros(x_last.shape[:-1])
    elif b is not None:
        with merge.quiet():
            m, s = merge.weighted_state(np, x_last.astype(np.float64, copy=False),
                                        last(b), mask_last, (-1,))
            value, sign = merge.weighted_value(np, m, s)
        value, sign = value[..., 0], sign[..., 0]
    else:
        x_last = x_last.astype(work_dtype, copy=False)
        value = _core.empty(x_last.shape[:-1], work_dtype)
        _core.logsumexp(x_last, value, mask_last, plan.accuracy)
        sign = np.where(value == -np.inf, 0.0, 1.0)
        sign = np.where(np.isnan(value), np.nan, sign)

    if not plan.return_sign:
        value = np.where(sign < 0, np.nan, value)
    with np.errstate(over="ignore"):
        value = value.astype(result_dtype, copy=False)
    sign = sign.astype(result_dtype, copy=False)
    if plan.keepdims:
        value = np.expand_dims(value, axes)
        sign = np.expand_dims(sign, axes)
    value = value[()] if value.ndim == 0 else value
    sign = sign[()] if sign.ndim == 0 else sign
    return (value, sign) if plan.return_sign else value


# ---- groups (segment_* functions) ---------------------------------------------


def _grouped(arr: NDArray[Any], plan: Plan) -> Any:
    """softmax / log_softmax / logsumexp over the groups of one axis.

    The groups' axis goes last, and the C core runs the groups one of two
    ways: ids in any order by its scatter path (three passes over the
    entries in their own order, each reaching its group's record in a
    per-group table: `_grouped_scatter`), groups in order -- or more groups
    than entries -- as rows of their own (`_grouped_sorted`). What the core
    does not take (temperature 0, longdouble) goes through the NumPy form
    of the array-API path (``groups.group_state``).
    """
    groups, axis, scale = plan.groups, plan.axes[0], plan.scale
    work_dtype = _core_dtype(plan.result_dtype)
    x_last = np.moveaxis(arr, axis, -1)
    mask_last = None if plan.mask is None else np.moveaxis(plan.mask, axis, -1)
    if scale.kind == "hard" or scale.c_exp != 0 or arr.dtype.itemsize > 8:
        # beyond the core: the hard max, a multiplier outside float64's
        # range (it carries an exponent), longdouble
        result_last = _grouped_generic(x_last, mask_last, plan)
    else:
        x_last = x_last.astype(work_dtype, copy=False)
        if scale.kind == "uniform":
            x_last, scale = _uniform(x_last, scale, work_dtype)
        # The caller's out is written directly where the core can write it
        # (its dtype, aligned): a new array costs its page faults, about a
        # third of a large call.
        out_last: NDArray[Any] | None = None
        if (plan.op != "logsumexp" and plan.out is not None and plan.out.dtype == work_dtype
                and plan.out.flags.aligned):
            out_last = np.moveaxis(plan.out, axis, -1)
        if _scatters(groups, x_last):
            result_last = _grouped_scatter(x_last, mask_last, groups, plan, scale, out_last)
        else:
            result_last = _grouped_sorted(x_last, mask_last, groups, plan, scale, out_last)
        if out_last is not None and result_last is out_last:
            return plan.out
    result = np.moveaxis(result_last, -1, axis)
    if plan.op == "logsumexp":
        with np.errstate(over="ignore"):
            return result.astype(plan.result_dtype, copy=False)
    return _finish(result, plan.out, plan.result_dtype)


def _scatters(groups: grouping.Groups, x_last: NDArray[Any]) -> bool:
    """Does the core's scatter path take these groups?

    Ids not in order, at most one outer axis, and no more groups than
    entries (its tables hold a record per group, per part of the entries).
    It measured faster than sorting on 10^6 entries in 10^5 groups: 10-25 %
    in float32 and float16 (16-byte records: a table of 10^5 groups stays
    near the size of L2), 3-8 % in float64 (32-byte records).
    """
    return (not groups.ordered and x_last.ndim <= 2 and 0 < groups.num_groups <= groups.n
            and (groups.n < 2**32 or x_last.dtype.itemsize == 8))


def _grouped_scatter(x_last: NDArray[Any], mask_last: NDArray[Any] | None,
                     groups: grouping.Groups, plan: Plan, scale: Any,
                     out_last: NDArray[Any] | None) -> NDArray[Any]:
    """The groups of unsorted ids by the core's scatter path (no sort, no moved copy).

    Groups whose max is NaN or +inf are left by the core (it returns which);
    their entries alone then take the sorted path.
    """
    def rows(a: NDArray[Any]) -> NDArray[Any]:
        return a if a.ndim == 2 else a[None]

    ids, ng = groups.ids, groups.num_groups
    mask2 = None if mask_last is None else rows(mask_last)
    mode = 2 if plan.op == "logsumexp" else int(plan.log)
    target: NDArray[Any]
    if mode == 2:
        target = _core.empty(x_last.shape[:-1] + (ng,), x_last.dtype)
    elif out_last is not None and not any(np.may_share_memory(out_last, a)
                                          for a in (x_last, mask_last) if a is not None):
        target = out_last
    else:
        # the core writes its results while it still reads x and the mask
        target = _core.empty(x_last.shape, x_last.dtype)
    special = _core.segment_scatter(rows(x_last), rows(target), mask2, ids, ng, scale.c_hi,
                                    scale.c_lo, mode)
    if special is not None:
        _fill_special(x_last, mask_last, groups, special, plan, scale, target)
    return target


def _fill_special(x_last: NDArray[Any], mask_last: NDArray[Any] | None,
                  groups: grouping.Groups, special: NDArray[np.uint8], plan: Plan, scale: Any,
                  target: NDArray[Any]) -> None:
    """Writes the groups marked `special` (NaN, +inf) into `target` by the sorted path."""
    which = np.flatnonzero(special)
    take = np.flatnonzero(special[groups.ids])
    # the special groups renumbered 0..k-1, in their order
    sub = grouping.Groups.from_ids(np.searchsorted(which, groups.ids[take]), which.size)
    sub_x = x_last[..., take]
    sub_mask = None if mask_last is None else mask_last[..., take]
    result = _grouped_sorted(sub_x, sub_mask, sub, plan, scale, None)
    if plan.op == "logsumexp":
        target[..., which] = result
    else:
        target[..., take] = result


def _grouped_sorted(x_last: NDArray[Any], mask_last: NDArray[Any] | None,
                    groups: grouping.Groups, plan: Plan, scale: Any,
                    out_last: NDArray[Any] | None) -> NDArray[Any]:
    """Each group a row of the core, its entries side by side.

    Entries of unsorted ids are moved into group order first (a copy) and
    the results moved back; the core splits the groups over its threads by
    their weight. Returns out_last when the results were written there.
    """
    work_dtype = x_last.dtype
    # group order: each group's entries side by side. By rank, not by
    # order: the counting sort then writes its result in the entries'
    # order, not at random (one random pass less in all)
    rank = groups.rank
    if rank is not None:
        x_last = _to_group_order(x_last, rank)
        mask_last = None if mask_last is None else _to_group_order(mask_last, rank)
    if plan.op == "logsumexp":
        result_last = _core.empty(x_last.shape[:-1] + (groups.num_groups,), work_dtype)
        _core.segment_logsumexp(x_last, result_last, mask_last, groups.offsets, plan.accuracy)
        return result_last
    if out_last is not None and rank is None and not _writes_in_place(out_last, x_last,
                                                                     mask_last):
        out_last = None
    if out_last is not None and rank is None:
        result_last = out_last
    elif rank is not None:
        # x was moved into a new array of our own: the core works in place
        # (a fresh array costs its page faults)
        result_last = x_last
    else:
        result_last = _core.empty(x_last.shape, work_dtype)
    _core.segment_softmax(x_last, result_last, mask_last, groups.offsets, scale.c_hi,
                          scale.c_lo, plan.log, plan.accuracy)
    if rank is None:
        return result_last
    # x was moved: the results go back apart from it
    back = out_last if out_last is not None else _core.empty(result_last.shape, work_dtype)
    _from_group_order(back, rank, result_last)
    return back


def _as_rows(a: NDArray[Any]) -> NDArray[Any] | None:
    """A C-contiguous `a` as a 2-d view (rows, last axis) for the core, else None."""
    if not a.flags.c_contiguous or a.size == 0 or a.dtype.itemsize not in (1, 2, 4, 8):
        return None
    return a.reshape(-1, a.shape[-1])


def _to_group_order(a: NDArray[Any], rank: NDArray[np.int32] | NDArray[np.int64]
                    ) -> NDArray[Any]:
    """A new array with ``moved[..., rank] = a``, on the core's threads when
    `a` is contiguous."""
    moved = _core.empty(a.shape, a.dtype)
    rows = _as_rows(a)
    if rows is None:
        moved[..., rank] = a
    else:
        _core.group_move(rows, rank, moved.reshape(rows.shape), True)
    return moved


def _from_group_order(back: NDArray[Any], rank: NDArray[np.int32] | NDArray[np.int64],
                      r: NDArray[Any]) -> None:
    """``back[...] = r[..., rank]`` (back of r's dtype), on the core's threads
    when both are contiguous."""
    rows, dst = _as_rows(r), _as_rows(back)
    if rows is None or dst is None:
        back[...] = np.take(r, rank, axis=-1)
        return
    _core.group_move(rows, rank, dst, False)


def _grouped_generic(x_last: NDArray[Any], mask_last: NDArray[Any] | None, plan: Plan
                     ) -> NDArray[Any]:
    wide = x_last.dtype.itemsize > 8
    work = x_last.dtype if wide else np.dtype(np.float64)
    eps = float(np.finfo(work).eps)
    exact = not wide and plan.result_dtype == np.float64
    with merge.quiet():
        v = merge.orient(np, x_last.astype(work), plan.scale, mask_last)
        ps = merge.positive_scale(plan.scale)
        state = grouping.group_state(np, v, plan.groups, ps, exact=exact, eps=eps)
        if plan.op == "logsumexp":
            hi, lo = merge.log_total(np, state)
            total: NDArray[Any] = hi + lo
            return total
        res: NDArray[Any] = grouping.group_finish(np, v, state, plan.groups, ps, log=plan.log,
                                                  exact=exact, eps=eps)
        if mask_last is not None:
            res = np.where(mask_last, res, -np.inf if plan.log else 0.0)
    return res
