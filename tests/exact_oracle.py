"""The exact answer for any row, edge rows included: the differential tests' oracle.

Shares no code with the package. Each row is reduced to its distinct kept
values with their multiplicities (so a row of 152,064 entries built from a
few hundred values costs a few hundred mpmath exponentials), then

* edge rows (a kept NaN, a kept +inf after the sign of ln(base), nothing
  kept above -inf, temperature 0) get the package's written rules, exactly;
* every other row gets softmax / log_softmax / logsumexp of ``c * x`` with
  ``c = |ln base| / T`` carried in mpmath (T and base as the floats the
  caller passes), differences of scores taken exactly, the sum split as
  ``1 + rest`` with its log taken as ``log1p(rest)``, and each output
  rounded once, correctly, to the result dtype (tests/ulp_reference.py).

Comparisons (``check_softmax_rows``, ``check_logsumexp_rows``) hold finite
rows to the accuracy promise (1 ulp float16/float32, 2 ulp float64; a
logsumexp that cancels against a negative max to 1 or 2 ulp of the max, the
README's documented exception) and edge rows to the exact rule (0 ulp; +0
and -0 count as one value, two NaNs as equal).

Every temperature in (0, inf) is taken exactly, however far ``ln(a) / T``
lies outside float64 (``softmax([3e-320, 0], temperature=1e-320)`` is the
softmax of [3, 0], not the hard max); only T = 0 and T = inf are limits.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

import ulp_reference as ur

__all__ = ["BOUND", "CANCEL_BOUND", "Scale", "scale_of", "row_reference",
           "check_softmax_rows", "check_logsumexp_rows"]

BOUND = {np.dtype(np.float16): 1, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
CANCEL_BOUND = {np.dtype(np.float16): 1, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
# Fixed (tests/test_differential.py::test_score_gap_beyond_float64_with_temperature_above_one):
# with c = |ln a| / T < 1, an entry whose gap to the row's max overflows float64
# (x_j - max = -inf, e.g. [1.7e308, -1.7e308]) got p = 0 / log p = -inf on every
# path, where the exact c * (x_j - max) is finite. True tolerates exactly that
# answer on those entries; nothing is tolerated any more.
ALLOW_GAP_OVERFLOW = False
_EXACT = 2200  # bits: any difference of two float64 values is exact at this precision
_DROP = -3000  # exp(y) for y below this rounds to 0 in every dtype, in every sum


class Scale:
    """kind ('hard' | 'finite'), sign of ln(base), c = |ln base| / T (mpf; 0 = uniform)."""

    def __init__(self, kind, sign, c):
        self.kind, self.sign, self.c = kind, sign, c

    def __repr__(self):
        return f"Scale({self.kind}, sign={self.sign}, c={self.c})"


def scale_of(temperature=1.0, base=None) -> Scale:
    t = float(temperature)
    with mpmath.workprec(ur.PREC + 40):
        ln = mpmath.mpf(1) if base is None else mpmath.log(mpmath.mpf(float(base)))
        sign = 1.0 if ln > 0 else -1.0
        if t == 0:
            return Scale("hard", sign, None)
        if math.isinf(t):
            return Scale("finite", sign, mpmath.mpf(0))
        c = abs(ln) / mpmath.mpf(t)
    return Scale("finite", sign, c)


def _share(win: np.ndarray, n: int, dtype):
    """Equal shares 1/k among the winners: (p, logp), correctly rounded."""
    k = int(win.sum())
    p = np.zeros(n, dtype)
    logp = np.full(n, -np.inf, dtype)
    with mpmath.workprec(ur.PREC):
        p[win] = ur.round_to(mpmath.mpf(1) / k, dtype)
        logp[win] = ur.round_to(-mpmath.log(k), dtype)
    return p, logp


def row_reference(row, keep, scale: Scale, dtype):
    """(p, logp, lse, edge) of one row.

    p and logp are arrays of `dtype`, correctly rounded; lse is the exact
    log-sum-exp of ``c * x`` as an mpf (or a float for edge rows); edge says
    whether the row falls under an exact rule rather than the ulp promise.
    """
    dtype = np.dtype(dtype)
    row = np.asarray(row, np.float64)
    n = row.size
    keep = np.ones(n, bool) if keep is None else np.asarray(keep, bool)
    p = np.zeros(n, dtype)
    logp = np.full(n, -np.inf, dtype)
    if np.isnan(row[keep]).any():
        p[keep] = np.nan
        logp[keep] = np.nan
        return p, logp, math.nan, True, None
    w = scale.sign * row
    wk = np.where(keep, w, -np.inf)
    top = float(np.max(wk, initial=-np.inf))
    if top == -np.inf:
        return p, logp, -math.inf, True, None
    if top == np.inf:
        p, logp = _share(wk == np.inf, n, dtype)
        return p, logp, math.inf, True, None
    if scale.kind == "hard":
        p, logp = _share(wk == top, n, dtype)
        return p, logp, math.nan, True, None
    live = wk > -np.inf
    values, inverse, counts = np.unique(wk[live], return_inverse=True, return_counts=True)
    c = scale.c
    with mpmath.workprec(_EXACT):
        mtop = mpmath.mpf(top)
        diffs = [mpmath.mpf(float(v)) - mtop for v in values]  # exact
    with mpmath.workprec(ur.PREC):
        ys = [c * d for d in diffs]
        es = [mpmath.exp(y) if y > _DROP else mpmath.mpf(0) for y in ys]
        rest = mpmath.fsum(int(k) * e for k, e in zip(counts[:-1], es[:-1])) + int(counts[-1] - 1)
        log_s = mpmath.log1p(rest)
        s = 1 + rest
        p_u = ur.round_all([e / s for e in es], dtype)
        logp_u = ur.round_all([y - log_s for y in ys], dtype)
        lse = c * mpmath.mpf(top) + log_s
    p[live] = p_u[inverse.ravel()]
    logp[live] = logp_u[inverse.ravel()]
    gap = None
    if ALLOW_GAP_OVERFLOW and c < 1:
        with np.errstate(over="ignore"):
            gap = keep & (w - top == -np.inf) & (w > -np.inf)
    return p, logp, lse, False, gap


def _rows(a):
    a = np.asarray(a)
    n = a.shape[-1] if a.ndim else 1
    return a.reshape(-1, n) if a.size else a.reshape(math.prod(a.shape[:-1]), n)


def references(x, keep, scale: Scale, dtype) -> list:
    """row_reference of every row (rows on the last axis), to reuse across several checks."""
    x_rows = _rows(np.asarray(x, np.float64))
    keep_rows = None if keep is None else _rows(np.broadcast_to(keep, np.shape(x)))
    return [row_reference(x_rows[r], None if keep_rows is None else keep_rows[r], scale, dtype)
            for r in range(x_rows.shape[0])]


def check_softmax_rows(got, x, keep=None, *, log: bool, scale: Scale, dtype, what: str = "",
                       bound=None, refs=None):
    """Every row of `got` (rows on the last axis) against the exact answer for `x`.

    Raises AssertionError naming the row, the position, both values and the
    ulp distance. Returns the worst ulp distance over finite rows. `refs`
    (from `references`) skips recomputing the exact answers.
    """
    dtype = np.dtype(dtype)
    bound = BOUND[dtype] if bound is None else bound
    got_rows = _rows(np.asarray(got).astype(dtype))
    x_rows = _rows(np.asarray(x, np.float64))
    keep_rows = None if keep is None else _rows(np.broadcast_to(keep, np.shape(x)))
    if refs is None:
        refs = references(x, keep, scale, dtype)
    worst = 0.0
    for r in range(x_rows.shape[0]):
        p, logp, _, edge, gap = refs[r]
        want = logp if log else p
        d = ur.ulp_distance(got_rows[r], want)
        if gap is not None and gap.any():  # the known product bug (ALLOW_GAP_OVERFLOW)
            d = np.where(gap & (got_rows[r] == (-np.inf if log else 0.0)), 0.0, d)
        limit = 0 if edge else bound
        if d.size and d.max() > limit:
            j = int(np.argmax(d))
            raise AssertionError(
                f"{'log_softmax' if log else 'softmax'} {what}: row {r} ({'edge' if edge else 'finite'}"
                f" row, n={x_rows.shape[1]}, {scale}) position {j}: got {got_rows[r][j]!r}, "
                f"exact {want[j]!r} ({d.max():g} ulp > {limit}); x[{j}] = {x_rows[r][j]!r}, "
                f"kept {None if keep_rows is None else bool(keep_rows[r][j])}")
        if not edge and d.size:
            worst = max(worst, float(d.max()))
    return worst


UNIT = Scale("finite", 1.0, mpmath.mpf(1))


def check_logsumexp_rows(got, x, keep=None, *, dtype, what: str = "", refs=None, bound=None,
                         cancel_bound=None):
    """Each value of `got` (one per row of `x`) against the exact logsumexp.

    `refs`: ``references(x, keep, UNIT, dtype)``, to reuse. `bound` (ulp of
    the result) and `cancel_bound` (ulp of the max, for a result that cancels
    against a negative max) default to the accuracy promise of the default mode.
    """
    dtype = np.dtype(dtype)
    bound = BOUND[dtype] if bound is None else bound
    cancel_bound = CANCEL_BOUND[dtype] if cancel_bound is None else cancel_bound
    got_v = np.asarray(got).astype(dtype).reshape(-1)
    x_rows = _rows(np.asarray(x, np.float64))
    keep_rows = None if keep is None else _rows(np.broadcast_to(keep, np.shape(x)))
    if refs is None:
        refs = references(x, keep, UNIT, dtype)
    for r in range(x_rows.shape[0]):
        k = None if keep_rows is None else keep_rows[r]
        _, _, exact, edge, _ = refs[r]
        have = got_v[r]
        if edge:
            want = np.asarray(exact, dtype)
            if ur.ulp_distance(np.asarray(have), want) != 0:
                raise AssertionError(f"logsumexp {what}: edge row {r}: got {have!r}, want {want!r}")
            continue
        want = np.asarray(ur.round_to(exact, dtype), dtype)
        d = float(ur.ulp_distance(np.asarray(have), want))
        if d <= bound:
            continue
        kept = x_rows[r] if k is None else x_rows[r][k]
        m = float(np.max(kept))
        with mpmath.workprec(ur.PREC):
            err = abs(ur.mp_value(have) - exact)
        if m < 0 and abs(exact) < abs(m) / 2 and err <= cancel_bound * ur.ulp_of(m, dtype):
            continue  # the documented cancellation bound
        raise AssertionError(f"logsumexp {what}: row {r} (n={x_rows.shape[1]}): got {have!r}, "
                             f"exact {want!r} ({d:g} ulp > {bound})")


def _axes(ndim: int, axis):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        return (axis % max(ndim, 1),)
    return tuple(sorted(a % ndim for a in axis))


def as_rows(a, axis):
    """`a` with the reduced axes merged last: (rows, n)."""
    a = np.asarray(a)
    axes = _axes(a.ndim, axis)
    if a.ndim == 0:
        return a.reshape(1, 1)
    moved = np.moveaxis(a, axes, range(a.ndim - len(axes), a.ndim))
    n = math.prod(moved.shape[a.ndim - len(axes):])
    return moved.reshape(math.prod(moved.shape[: a.ndim - len(axes)]), n)


def result_dtype(x) -> np.dtype:
    dtype = np.asarray(x).dtype
    return dtype if dtype in BOUND else np.dtype(np.float64)


def check_softmax(got, x, axis=-1, *, log=False, temperature=1.0, base=None, where=None,
                  what=""):
    """softmax / log_softmax of a whole array along `axis` (int, tuple or None)."""
    dtype = result_dtype(x)
    got = np.asarray(got)
    assert got.shape == np.shape(x), f"{what}: shape {got.shape} != {np.shape(x)}"
    keep = None if where is None else as_rows(np.broadcast_to(where, np.shape(x)), axis)
    return check_softmax_rows(as_rows(got, axis), as_rows(np.asarray(x, np.float64), axis), keep,
                              log=log, scale=scale_of(temperature, base), dtype=dtype, what=what)


def check_logsumexp(got, x, axis=None, *, where=None, what=""):
    """logsumexp of a whole array along `axis` (any keepdims: values are taken in order)."""
    dtype = result_dtype(x)
    keep = None if where is None else as_rows(np.broadcast_to(where, np.shape(x)), axis)
    rows = as_rows(np.asarray(x, np.float64), axis)
    got = np.asarray(got)
    assert got.size == rows.shape[0], f"{what}: {got.size} values for {rows.shape[0]} rows"
    check_logsumexp_rows(got, rows, keep, dtype=dtype, what=what)
