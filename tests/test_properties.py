"""Properties of softmax that hold for every input (hypothesis).

Example counts are bounded in conftest.py so the file runs in seconds.
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softmax as sm

import ulp_reference as ur

BOUND = {np.dtype(np.float32): 1, np.dtype(np.float64): 2}
DTYPES = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def rows(dtype, lo=-300.0, hi=300.0, min_size=1, max_size=24):
    return hnp.arrays(
        dtype,
        st.integers(min_size, max_size),
        elements=st.floats(lo, hi, allow_nan=False, width=8 * dtype.itemsize),
    )


@st.composite
def row_of_any_float_dtype(draw, **kw):
    dtype = draw(DTYPES)
    return draw(rows(dtype, **kw))


@given(row_of_any_float_dtype())
def test_sums_to_one_within_a_few_ulp(x):
    p = sm.softmax(x)
    assert p.dtype == x.dtype
    assert ((p >= 0) & (p <= 1)).all()
    eps = float(np.finfo(x.dtype).eps)
    # each p_i is within BOUND ulp of exact; fsum adds no error of its own
    assert abs(math.fsum(p.astype(np.float64)) - 1) <= (BOUND[x.dtype] + 1) * eps


@given(row_of_any_float_dtype(lo=-60.0, hi=60.0))
def test_log_softmax_is_log_of_softmax(x):
    lp = sm.log_softmax(x).astype(np.float64)
    p = sm.softmax(x).astype(np.float64)
    eps = float(np.finfo(x.dtype).eps)
    big = p > 1e-30
    # exp magnifies the rounding of lp by |lp|: allow for it
    tol = p[big] * (np.abs(lp[big]) + 4) * eps
    assert (np.abs(np.exp(lp[big]) - p[big]) <= tol).all()
    assert (lp <= 0).all()


@given(
    hnp.arrays(np.float64, st.integers(1, 20), elements=st.integers(-2**20, 2**20)),
    st.integers(-2**30, 2**30),
    st.sampled_from([2.0**-10, 2.0**-3, 1.0, 3.0]),
)
def test_invariant_to_adding_a_constant(k, c, step):
    # x = k * step and x + c are exact, so the exact results are identical
    # and so must the computed ones be, bit for bit
    x = k * step
    shifted = x + float(c)
    assert np.array_equal(shifted - float(c), x)
    assert np.array_equal(sm.softmax(shifted), sm.softmax(x))
    assert np.array_equal(sm.log_softmax(shifted), sm.log_softmax(x))
    # logsumexp shifts by c, each within the documented bound of its exact value
    with mpmath.workprec(200):
        exact = ur.ref_logsumexp(x)
        for xs, want in ((x, exact), (shifted, exact + c)):
            assert _lse_within_bound(sm.logsumexp(xs), want, float(np.max(xs)))


def _lse_within_bound(got, exact, m):
    """2 ulp of the result; 2 ulp of max(x) when the result cancels max(x)."""
    if m < 0 and abs(exact) < abs(m) / 2:
        with mpmath.workprec(200):
            return abs(mpmath.mpf(float(got)) - exact) <= 2 * ur.ulp_of(m, np.float64)
    want = np.float64(ur.round_to(exact, np.float64))
    return ur.ulp_distance(np.float64(got), want) <= 2


@given(row_of_any_float_dtype(min_size=2), st.sampled_from(["softmax", "log_softmax"]))
def test_order_is_preserved(x, name):
    y = getattr(sm, name)(x)
    order = np.argsort(x, kind="stable")
    assert (np.diff(y[order]) >= 0).all()  # weakly: rounding and underflow may tie
    for i in range(len(x)):
        same = x == x[i]
        assert (y[same] == y[i]).all()  # equal scores, equal bits


@given(
    hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-15, 15)),
    st.floats(1.05, 50.0) | st.floats(0.02, 0.95),
)
def test_base_equals_temperature_one_over_ln_base(x, a):
    ln_a = math.log(a)
    with mpmath.workprec(200):
        c = mpmath.log(mpmath.mpf(a))
    p_exact, lp_exact = ur.ref_softmax(x, c=c)
    p_base = sm.softmax(x, base=a)
    # a < 1 is a negative temperature, which is spelled as softmax of -x
    p_temp = sm.softmax(x if ln_a > 0 else -x, temperature=1 / abs(ln_a))
    # base a is held to the promise against the exact softmax(x ln a) ...
    assert ur.ulp_distance(p_base, p_exact).max() <= 2
    assert ur.ulp_distance(sm.log_softmax(x, base=a), lp_exact).max() <= 2
    # ... and T = fl(1 / ln a) differs from 1 / ln a by half an ulp, which moves
    # the exact result by at most (score range) * 2**-53 relative
    spread = float(np.ptp(x)) * abs(ln_a)
    allowed = 4 + math.ceil(2 * spread)
    assert ur.ulp_distance(p_temp, p_base).max() <= allowed


@given(st.floats(-700, 700), st.floats(-700, 700), DTYPES)
def test_two_classes_are_the_sigmoid(z0, z1, dtype):
    x = np.array([z0, z1]).astype(dtype)
    z0, z1 = float(x[0]), float(x[1])
    with mpmath.workprec(200):
        d = mpmath.mpf(z1) - mpmath.mpf(z0)  # exact difference, no rounding
        exact = 1 / (1 + mpmath.exp(-d))
        exact0 = 1 / (1 + mpmath.exp(d))
    p = sm.softmax(x)
    want = np.array([ur.round_to(exact0, dtype), ur.round_to(exact, dtype)], dtype=dtype)
    assert ur.ulp_distance(p, want).max() <= BOUND[np.dtype(dtype)]


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 8)),
               elements=st.floats(-1e3, 1e3) | st.sampled_from([np.inf, -np.inf, np.nan])),
    st.data(),
)
def test_where_mask_is_the_function_of_the_kept_entries(x, data):
    m = data.draw(hnp.arrays(np.bool_, x.shape))
    for name in ("softmax", "log_softmax"):
        got = getattr(sm, name)(x, where=m)
        empty = 0.0 if name == "softmax" else -np.inf
        for i in range(x.shape[0]):
            kept = x[i][m[i]]
            if kept.size:
                assert np.array_equal(got[i][m[i]], getattr(sm, name)(kept), equal_nan=True)
            assert (got[i][~m[i]] == empty).all()
    lse = sm.logsumexp(x, axis=1, where=m)
    for i in range(x.shape[0]):
        kept = x[i][m[i]]
        want = sm.logsumexp(kept) if kept.size else -np.inf
        assert np.array_equal(lse[i], want, equal_nan=True)


@given(rows(np.dtype(np.float64), lo=-50, hi=50, min_size=2), st.floats(0.05, 20.0))
def test_temperature_is_softmax_of_x_over_t(x, t):
    with mpmath.workprec(200):
        c = 1 / mpmath.mpf(t)
    p, lp = ur.ref_softmax(x, c=c)
    assert ur.ulp_distance(sm.softmax(x, temperature=t), p).max() <= 2
    assert ur.ulp_distance(sm.log_softmax(x, temperature=t), lp).max() <= 2


@given(rows(np.dtype(np.float16), lo=-20, hi=20))
def test_float16_within_one_ulp(x):
    assume(np.isfinite(x).all())
    p, lp = ur.ref_softmax(x)
    assert ur.ulp_distance(sm.softmax(x), p).max() <= 1
    assert ur.ulp_distance(sm.log_softmax(x), lp).max() <= 1


@pytest.mark.parametrize("n", [2, 3, 10])
def test_uniform_scores_are_exactly_uniform(n):
    for v in (0.0, -1e300, 1e300, 5e-324):
        p = sm.softmax(np.full(n, v))
        assert (p == np.float64(1) / n).all()
