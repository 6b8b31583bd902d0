"""The (max, sum) state of softmax and its merge rule: one algorithm, three scales.

Softmax of a slice needs two global numbers: the maximum ``m`` of the
(oriented) scores and ``s = sum_j exp(c (v_j - m))``. Two partial states
merge exactly (Milakov & Gimelshein 2018)::

    (m, s) + (m', s') = (M, s exp(c (m - M)) + s' exp(c (m' - M))),  M = max(m, m')

The streaming accumulator (``stream``), the Dask reduction (``_dask``) and the
array-API path (``_generic``) all use the functions below. They are written
against the array API standard with an explicit namespace ``xp``; NumPy 2's
own namespace is one such ``xp`` (that is the "NumPy form").

How the state is kept, and why
------------------------------
A state is ``(m, r_hi, r_lo)`` with ``r = s - 1`` as an unevaluated sum
``r_hi + r_lo`` (double-double). The entries equal to the maximum contribute
exactly 1 each, so they are counted, not exponentiated, and the "1" of the
first one is left out: ``log_softmax`` of a dominant entry is
``-log1p(r)``, which keeps its tiny value when ``r`` is 1e-40 (a plain ``s``
would round it to 1 and the answer to 0). The same bookkeeping gives the
package's edge semantics without special cases:

* ``m = +inf``: the "ties" are the +inf entries, ``s`` counts them, so they
  share the mass equally and every finite entry gets 0;
* ``m = -inf`` (all -inf, or fully masked): ``s = 0``, ``r = -1``: softmax
  0, log_softmax and logsumexp ``-inf``;
* ``m = NaN``: the slice is NaN; ``max`` propagates it through merges;
* temperature 0 (``kind == "hard"``): only ties count, ``s`` is their number.

Sums of exponentials are exact before the final rounding (Rump-Ogita-Oishi
extraction, two levels), so a state does not depend on how the terms were
grouped except through the rounding of each ``exp``; a merge multiplies by
one more rounded ``exp`` and adds in double-double.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, NamedTuple

import numpy as np

from .._typing import Array, Namespace
from .scale import Scale

__all__ = [
    "PositiveScale",
    "State",
    "chunk_state",
    "dd_add",
    "exact_sum",
    "finish",
    "hard_max",
    "identity",
    "log_total",
    "merge",
    "merge_along",
    "orient",
    "positive_scale",
    "quiet",
    "shift",
    "two_prod",
    "two_sum",
    "weighted_merge",
    "weighted_state",
    "weighted_value",
]


class State(NamedTuple):
    """Partial (max, sum) of some slices; arrays broadcastable to each other.

    ``m`` is the maximum of the oriented scores, ``r_hi + r_lo`` is
    ``s - 1`` with ``s = sum exp(c (v - m))``.
    """

    m: Any
    r_hi: Any
    r_lo: Any


class PositiveScale(NamedTuple):
    """|c| as (hi + lo) * 2**c_exp, and whether only the ties count (temperature 0)."""

    c_hi: float = 1.0
    c_lo: float = 0.0
    hard: bool = False
    c_exp: int = 0

    @property
    def unit(self) -> bool:
        return self.c_hi == 1.0 and self.c_lo == 0.0 and self.c_exp == 0 and not self.hard

    @property
    def below_one(self) -> bool:
        """|c| < 1: a difference of scores beyond the float range can still
        give a finite c (v - m) (see `_shifted`)."""
        if self.hard:
            return False
        return self.c_exp < 0 or (self.c_exp == 0 and (self.c_hi, self.c_lo) < (1.0, 0.0))


def positive_scale(scale: Scale) -> PositiveScale:
    """The multiplier of ``v - m`` once the sign of c is folded into v."""
    if scale.kind == "hard":
        return PositiveScale(hard=True)
    if scale.kind == "uniform" or (scale.c_hi == 1.0 and scale.c_lo == 0.0 and scale.c_exp == 0):
        return PositiveScale()
    if scale.c_hi < 0:
        return PositiveScale(-scale.c_hi, -scale.c_lo, c_exp=scale.c_exp)
    return PositiveScale(scale.c_hi, scale.c_lo, c_exp=scale.c_exp)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """NumPy warns about inf - inf and exp overflow that the code masks out."""
    with np.errstate(all="ignore"):
        yield


def _astype(xp: Namespace, x: Array, dtype: Any) -> Array:
    astype = getattr(xp, "astype", None)
    return astype(x, dtype) if astype is not None else x.astype(dtype)


def _split_constants(eps: float) -> tuple[float, float]:
    """Veltkamp's splitter 2^ceil(p/2) + 1 and the largest input it can split.

    p is the precision of the working dtype (53 or 24 bits); above the
    bound, multiplying by the splitter would overflow.
    """
    p = 1 - round(math.log2(eps))
    half = (p + 1) // 2
    max_exponent = 1023 if p > 24 else 127
    return 2.0**half + 1.0, 2.0 ** (max_exponent - half - 1)


def two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """a + b = s + e exactly (Knuth); commutative bit for bit."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def _split(a: Any, splitter: float) -> tuple[Any, Any]:
    """Veltkamp's split of a into a_hi + a_lo, each with half the bits."""
    t = a * splitter
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a: Any, b: Any) -> tuple[Any, Any]:
    """a * b = p + err exactly, for float64 a and b (Dekker; no fused multiply-add
    in the array API). Products beyond 2^996 would overflow the split."""
    p = a * b
    a_hi, a_lo = _split(a, 134217729.0)  # 2^27 + 1
    b_hi, b_lo = _split(b, 134217729.0)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _two_prod_err(xp: Namespace, a: Array, b: float, eps: float) -> Array:
    """The rounding error of a * b (Dekker), for an array a and a float b.

    Where |a| is so large that splitting would overflow the error is taken
    as 0; those products are far outside the range where exp is not 0 or
    inf anyway. The same for a huge multiplier b (1/T beyond ~2^996, for a
    temperature below ~1e-300): splitting it would overflow to inf - inf.
    """
    splitter, big = _split_constants(eps)
    if not abs(b) < big:
        return xp.zeros_like(a)
    safe = xp.where(xp.abs(a) < big, a, 0.0)
    a_hi, a_lo = _split(safe, splitter)
    b_hi, b_lo = _split(b, splitter)
    p = safe * b
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _ldexp(x: Array, k: int, eps: float) -> Array:
    """x * 2**k in steps whose factors the working dtype holds (2**k itself may not).

    Exact unless the result overflows (to the infinity its exact value
    rounds to) or is subnormal.
    """
    step = 1022 if eps < 1e-10 else 126
    while k != 0:
        j = max(-step, min(step, k))
        x = x * 2.0**j
        k -= j
    return x


# A multiplier below 2**-960 (c_exp < 0) meets differences up to 2**1024:
# those are scaled by 2**-64 first, so that Dekker's split (_two_prod_err)
# still gives the product's error, and by the rest of 2**c_exp after.
_PRE = 64


def _shifted(xp: Namespace, v: Array, m: Array, ps: PositiveScale, exact: bool, eps: float
             ) -> tuple[Array, Array | None]:
    """y = |c| (v - m) as hi + lo, for finite v and m.

    A difference of finite scores can overflow (1.7e308 - -1.7e308). With
    |c| >= 1, y is beyond the range too: y_hi is then -inf, exp(y) is 0,
    and the low part (inf - inf = NaN in TwoSum) is set to 0 so that no NaN
    reaches a sum, a merge or a written entry. With |c| < 1, c (v - m) can
    be finite (log_softmax([1.7e308, -1.7e308], temperature=2) is
    [0, -1.7e308]), so y is taken as 2|c| (v/2 - m/2), whose difference
    cannot overflow. Halving and doubling are exact, so that is |c| (v - m)
    bit for bit wherever v - m is finite, except that a subnormal v or m
    can lose its last bit (y moves by under 2**-1075); it costs one product
    per entry where a test for the overflow would cost more.
    """
    k, c_hi, c_lo = ps.c_exp, ps.c_hi, ps.c_lo
    if ps.below_one:
        v, m = v * 0.5, m * 0.5
        if k:
            k += 1
        else:
            c_hi, c_lo = c_hi * 2.0, c_lo * 2.0
    d_hi = v - m
    d_lo = None
    if exact:
        bb = d_hi - v
        d_lo = (v - (d_hi - bb)) + (-m - bb)
    pre = -_PRE if k < 0 else k  # the part of 2**k applied to the difference
    if pre:
        d_hi = _ldexp(d_hi, pre, eps)
        d_lo = None if d_lo is None else _ldexp(d_lo, pre, eps)
    if c_hi == 1.0 and c_lo == 0.0:
        y_hi, y_lo = d_hi, d_lo
    else:
        y_hi = d_hi * c_hi
        y_lo = None if d_lo is None else (
            _two_prod_err(xp, d_hi, c_hi, eps) + (d_hi * c_lo + d_lo * c_hi))
    if k - pre:
        y_hi = _ldexp(y_hi, k - pre, eps)
        y_lo = None if y_lo is None else _ldexp(y_lo, k - pre, eps)
    if y_lo is None:
        return y_hi, None
    return y_hi, xp.where(xp.isfinite(y_hi), y_lo, 0.0)


def shift(xp: Namespace, v: Array, m: Array, ps: PositiveScale, eps: float) -> Array:
    """|c| (v - m), rounded (`_shifted` without the low part): for a caller
    that only compares the scores (sampling)."""
    return _shifted(xp, v, m, ps, False, eps)[0]


def orient(xp: Namespace, x: Array, scale: Scale, keep: Array | None = None) -> Array:
    """Scores as the state sees them: v = sign * x, masked entries -inf.

    For temperature inf every finite score counts the same, so finite
    entries become 0 (infinities and NaN keep their roles).
    """
    v = -x if scale.sign < 0 else x
    if keep is not None:
        v = xp.where(keep, v, -math.inf)
    if scale.kind == "uniform":
        v = xp.where(xp.isfinite(v), 0.0, v)
    return v


def _n_terms(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    n = 1
    for ax in axes:
        n *= shape[ax]
    return n


def exact_sum(xp: Namespace, e: Array, axes: tuple[int, ...], eps: float) -> tuple[Array, Array]:
    """Sum of non-negative e over axes, as hi + lo, accurate to ~eps^2.

    Two error-free extractions (Rump, Ogita, Oishi, "Accurate floating-point
    summation", 2008): q = (sigma + e) - sigma splits each term into a part
    on a grid fine enough for the sum of those parts to be exact in any
    order, and a remainder. Only library sums are used, so the result does
    not depend on the library's summation order.
    """
    n = _n_terms(e.shape, axes)
    big_m = math.ceil(math.log2(n + 2)) + 1
    p = -round(math.log2(eps)) + 1
    emax = xp.max(e, axis=axes, keepdims=True)
    positive = emax > 0
    k = xp.ceil(xp.log2(xp.where(positive, emax, 1.0)))
    sigma1 = xp.where(positive, 2.0 ** (k + big_m), 0.0)
    q1 = (sigma1 + e) - sigma1
    r1 = e - q1
    sigma2 = sigma1 * 2.0 ** (big_m + 1 - p)
    q2 = (sigma2 + r1) - sigma2
    r2 = r1 - q2
    t1 = xp.sum(q1, axis=axes, keepdims=True)
    t2 = xp.sum(q2, axis=axes, keepdims=True)
    t3 = xp.sum(r2, axis=axes, keepdims=True)
    hi, lo = two_sum(t1, t2)
    return _renormalize(hi, lo + t3)


def _renormalize(hi: Array, lo: Array) -> tuple[Array, Array]:
    s = hi + lo
    return s, lo - (s - hi)


def dd_add(a_hi: Array, a_lo: Array, b_hi: Array, b_lo: Array) -> tuple[Array, Array]:
    """(a_hi + a_lo) + (b_hi + b_lo) in double-double; commutative bit for bit."""
    s, e = two_sum(a_hi, b_hi)
    return _renormalize(s, e + (a_lo + b_lo))


def chunk_state(xp: Namespace, v: Array, axes: tuple[int, ...], ps: PositiveScale, *, exact: bool,
                eps: float) -> State:
    """The state of each slice of v (reduced over `axes`, kept as length 1).

    v holds oriented scores in the working dtype, masked entries already
    -inf. `exact` carries v - m and the scaling in double-double (needed
    when v's dtype is the output's dtype; not when it is wider).
    """
    nan = xp.isnan(v)
    any_nan = xp.any(nan, axis=axes, keepdims=True)
    vc = xp.where(nan, -math.inf, v)
    m = xp.max(vc, axis=axes, keepdims=True)
    tie = (vc == m) & (m > -math.inf)
    # The maxima count 1 each, exactly; written as 1 + c (v - m) (v - m is 0
    # there) so that an autograd library sees exp(c (v - m)) to first order.
    finite_tie = tie & (m < math.inf)
    c = 0.0 if ps.hard else ps.c_hi
    k = xp.sum(xp.where(finite_tie,
                        1.0 + _ldexp((vc - xp.where(finite_tie, m, 0.0)) * c, ps.c_exp, eps),
                        _astype(xp, tie, v.dtype)), axis=axes, keepdims=True)
    if ps.hard:
        s_hi, s_lo = xp.zeros_like(k), xp.zeros_like(k)
    else:
        live = ~tie & (vc > -math.inf) & (m < math.inf)
        v_safe = xp.where(live, vc, 0.0)
        m_safe = xp.where(xp.isfinite(m), m, 0.0)
        y_hi, y_lo = _shifted(xp, v_safe, m_safe, ps, exact, eps)
        e = xp.where(live, xp.exp(y_hi), 0.0)
        if exact:
            e = e + e * y_lo
            s_hi, s_lo = exact_sum(xp, e, axes, eps)
        else:
            s_hi, s_lo = xp.sum(e, axis=axes, keepdims=True), xp.zeros_like(k)
    # r = (number of ties - 1) + the other terms; -1 for an empty slice
    r_hi, r_lo = dd_add(k - 1.0, xp.zeros_like(k), s_hi, s_lo)
    m = xp.where(any_nan, math.nan, m)
    return State(m, r_hi, r_lo)


def identity(xp: Namespace, shape: tuple[int, ...] = (), dtype: Any = None,
             device: Any = None) -> State:
    """The state of an empty slice: merging with it changes nothing."""
    kw = {} if device is None else {"device": device}
    dtype = xp.float64 if dtype is None else dtype
    return State(
        xp.full(shape, -math.inf, dtype=dtype, **kw),
        xp.full(shape, -1.0, dtype=dtype, **kw),
        xp.zeros(shape, dtype=dtype, **kw),
    )


def _dd_mul(xp: Namespace, a_hi: Array, a_lo: Array, b_hi: Array, b_lo: Array, eps: float
            ) -> tuple[Array, Array]:
    """(a_hi + a_lo) * (b_hi + b_lo) for non-negative values below 2^500."""
    splitter, _ = _split_constants(eps)
    p = a_hi * b_hi
    ah, al = _split(a_hi, splitter)
    bh, bl = _split(b_hi, splitter)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return _renormalize(p, err + (a_hi * b_lo + a_lo * b_hi))


def merge(xp: Namespace, a: State, b: State, ps: PositiveScale, eps: float) -> State:
    """a + b by the (max, sum) rule, without NaN from -inf/-inf or inf/inf.

    Commutative bit for bit: the state with the larger max is always the
    reference, and equal maxima add symmetrically.
    """
    nan = xp.isnan(a.m) | xp.isnan(b.m)
    a_top = a.m >= b.m
    big = State(*(xp.where(a_top, x, y) for x, y in zip(a, b)))
    small = State(*(xp.where(a_top, y, x) for x, y in zip(a, b)))
    equal = a.m == b.m
    # Equal maxima (finite, both +inf or both -inf): r = r_a + r_b + 1.
    e_hi, e_lo = dd_add(a.r_hi, a.r_lo, b.r_hi, b.r_lo)
    e_hi, e_lo = dd_add(e_hi, e_lo, xp.ones_like(e_hi), xp.zeros_like(e_lo))
    # Otherwise r = r_big + s_small * exp(|c| (m_small - m_big)).
    if ps.hard:
        u_hi, u_lo = big.r_hi, big.r_lo
    else:
        finite = xp.isfinite(small.m) & xp.isfinite(big.m) & ~equal
        ms = xp.where(finite, small.m, 0.0)
        mb = xp.where(finite, big.m, 0.0)
        d_hi, d_lo = _shifted(xp, ms, mb, ps, True, eps)
        f_hi = xp.where(finite, xp.exp(d_hi), 0.0)
        f_lo = f_hi * d_lo
        s_hi, s_lo = dd_add(small.r_hi, small.r_lo, xp.ones_like(small.r_hi), xp.zeros_like(small.r_lo))
        t_hi, t_lo = _dd_mul(xp, s_hi, s_lo, f_hi, f_lo, eps)
        t_hi = xp.where(finite, t_hi, 0.0)
        t_lo = xp.where(finite, t_lo, 0.0)
        u_hi, u_lo = dd_add(big.r_hi, big.r_lo, t_hi, t_lo)
    r_hi = xp.where(equal, e_hi, u_hi)
    r_lo = xp.where(equal, e_lo, u_lo)
    m = xp.where(nan, math.nan, big.m)
    return State(m, r_hi, r_lo)


def merge_along(xp: Namespace, state: State, axis: int, ps: PositiveScale, eps: float) -> State:
    """Merge the states laid side by side along `axis` (kept as length 1)."""
    n = state.m.shape[axis]

    def part(x: Array, i: int) -> Array:
        index = [slice(None)] * x.ndim
        index[axis] = slice(i, i + 1)
        return x[tuple(index)]

    acc = State(*(part(x, 0) for x in state))
    for i in range(1, n):
        acc = merge(xp, acc, State(*(part(x, i) for x in state)), ps, eps)
    return acc


def log_total(xp: Namespace, state: State) -> tuple[Array, Array]:
    """logsumexp of the slices (unit scale) as hi + lo: m + log1p(r)."""
    m, r_hi, r_lo = state
    finite = xp.isfinite(m)
    r_safe = xp.where(finite, r_hi, 0.0)
    l_hi = xp.log1p(r_safe)
    l_lo = xp.where(finite, r_lo, 0.0) / (1.0 + r_safe)
    m_safe = xp.where(finite, m, 0.0)
    t, err = two_sum(m_safe, l_hi)
    overflow = xp.isinf(t)
    hi = xp.where(finite, t, m)
    lo = xp.where(finite & ~overflow, err + l_lo, 0.0)
    return hi, lo


def finish(xp: Namespace, v: Array, state: State, ps: PositiveScale, *, log: bool, exact: bool,
           eps: float) -> Array:
    """softmax (or log_softmax) of v given the state of its whole slice.

    The same arithmetic as the C core's last pass: p = exp(y) / s with one
    correction carrying the low parts of y and s; log p = y - log1p(r).
    Masked entries are the caller's to overwrite.
    """
    m, r_hi, r_lo = state
    nan_slice = xp.isnan(m)
    empty = m == -math.inf
    tie = (v == m) & ~empty
    live = ~tie & (v > -math.inf) & xp.isfinite(m)
    if ps.hard:
        live = xp.zeros_like(live)
    # A maximum's y = c (v - m) is exactly 0, computed rather than set so
    # that an autograd library differentiates it (softmax is invariant to m).
    shift = live | (tie & xp.isfinite(m))
    v_safe = xp.where(shift, v, 0.0)
    m_safe = xp.where(xp.isfinite(m), m, 0.0)
    y_hi, y_lo = _shifted(xp, v_safe, m_safe, ps, exact, eps)
    y_hi = xp.where(shift, y_hi, xp.where(tie, xp.zeros_like(y_hi), -math.inf))
    if y_lo is not None:
        y_lo = xp.where(shift, y_lo, 0.0)
    if log:
        r_safe = xp.where(empty | nan_slice, 0.0, r_hi)
        # k entries at +inf share: log p = -log(k), correctly rounded as the
        # core gives it (log1p(k - 1) is 1 ulp off in some libms: log1p(2))
        l_hi = xp.where(m == math.inf, xp.log(r_safe + 1.0), xp.log1p(r_safe))
        l_lo = xp.where(empty | nan_slice, 0.0, r_lo) / (1.0 + r_safe)
        out = y_hi - l_hi
        if exact:
            out = out + (y_lo - l_lo)
        out = xp.where(y_hi == -math.inf, -math.inf, out)
        out = xp.where(empty, -math.inf, out)
    else:
        s_hi, s_lo = dd_add(r_hi, r_lo, xp.ones_like(r_hi), xp.zeros_like(r_lo))
        s_safe = xp.where(empty | nan_slice, 1.0, s_hi)
        q = xp.exp(y_hi) / s_safe
        if exact:
            rel = xp.where(empty | nan_slice, 0.0, s_lo) / s_safe
            q = q + q * (y_lo - rel)
        out = xp.where(empty, 0.0, q)
    return xp.where(nan_slice, math.nan, out)


# ---- logsumexp with weights b (SciPy's `b`) ----------------------------------
# One formula for every backend. Each live term (b != 0, kept) is written
# sign(b) exp(x + log|b| - m) with m the largest x + log|b|: shifting by the
# largest log-term rather than by max x keeps weights from 1e-308 to 1e308
# (b exp(x - max x) would overflow to inf, or go subnormal and keep only a
# few bits). The log|b| costs one rounding per term: SciPy's accuracy, not
# the ulp promise of the unweighted path.


def weighted_state(xp: Namespace, x: Array, b: Array, keep: Array | None, axes: tuple[int, ...]
                   ) -> tuple[Array, Array]:
    """(m, s): the largest log-term and sum sign(b) exp(x + log|b| - m), per slice.

    +inf entries decide a slice alone: +-inf, or NaN when their weights
    have both signs; NaN in x or b makes the slice NaN.
    """
    live = b != 0
    if keep is not None:
        live = live & keep
    v = xp.where(live, x + xp.log(xp.abs(b)), -math.inf)
    nan = xp.any(xp.isnan(v), axis=axes, keepdims=True)
    vc = xp.where(xp.isnan(v), -math.inf, v)
    m = xp.max(vc, axis=axes, keepdims=True)
    m_safe = xp.where(xp.isfinite(m), m, 0.0)
    sgn = xp.sign(b)
    finite = live & xp.isfinite(vc)
    s = xp.sum(xp.where(finite, sgn * xp.exp(xp.where(finite, vc, 0.0) - m_safe), 0.0),
               axis=axes, keepdims=True)
    s_inf = xp.sum(xp.where(live & (vc == math.inf), sgn * math.inf, 0.0), axis=axes,
                   keepdims=True)
    s = xp.where(m == math.inf, s_inf, s)
    s = xp.where(nan, math.nan, s)
    return m, s


def weighted_merge(xp: Namespace, m: Array, s: Array, axes: tuple[int, ...]) -> tuple[Array, Array]:
    """Merge (m, s) states laid side by side along `axes` (kept as length 1)."""
    big = xp.max(m, axis=axes, keepdims=True)
    factor = xp.where(m == big, 1.0,
                      xp.where(xp.isfinite(big), xp.exp(m - xp.where(xp.isfinite(big), big, 0.0)),
                               0.0))
    total = xp.sum(xp.where(s == 0, 0.0, s * factor), axis=axes, keepdims=True)
    return big, total


def weighted_value(xp: Namespace, m: Array, s: Array) -> tuple[Array, Array]:
    """(log|sum|, sign(sum)) of a weighted state."""
    value = xp.log(xp.abs(s)) + xp.where(xp.isfinite(m), m, 0.0)
    return value, xp.sign(s)


# ---- temperature 0: the hard max --------------------------------------------------


def hard_max(xp: Any, v: Any, keep: Any, axes: tuple[int, ...], dtype: Any) -> tuple[Any, Any, Any]:
    """The temperature -> 0 limit of softmax(v) over `axes`: (winners, shares).

    Tied maxima share the mass equally; NaN in a kept entry makes the kept
    entries of its slice NaN; a slice with nothing kept above -inf is empty
    (all 0). `winners` is the boolean array of the maxima, for callers that
    place the mass differently (``hardmax(ties="first")``).
    """
    if keep is not None:
        v = xp.where(keep, v, -math.inf)
    nan = xp.isnan(v)
    nan_slices = xp.any(nan, axis=axes, keepdims=True)
    v = xp.where(nan, -math.inf, v)
    m = xp.max(v, axis=axes, keepdims=True)
    winners = (v == m) & (m > -math.inf)
    w = _astype(xp, winners, dtype)
    count = xp.sum(w, axis=axes, keepdims=True)
    shares = w / xp.where(count > 0, count, 1.0)
    kept_nan = nan_slices if keep is None else nan_slices & keep
    return winners, xp.where(kept_nan, math.nan, shares), kept_nan
