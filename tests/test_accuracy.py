"""The accuracy promise, against correctly rounded mpmath references.

Every float16 and float32 output within 1 ulp, every float64 output within
2 ulp, for softmax, log_softmax and logsumexp over the seeded families of
tests/ulp_report.py (float16 rows run in float32 lanes: these families are
the proof that they keep the bound; tests/test_fast_mode.py holds the fast
mode to its own bound on the same families). The one documented exception, logsumexp whose result
cancels against a negative max, is held to its own documented bound
(2 ulp of max(x) for float64, 1 for float32). ``pytest -rA`` or the terminal
summary prints the max-ulp table; ``python -m tests.ulp_report`` reproduces it.
"""

import functools
import math

import mpmath
import numpy as np
import pytest

import softmax as sm
from softmax._arguments import parse_scale

import ulp_reference as ur
import ulp_report as rep

FAST_FAMILIES = [
    pytest.param(fam, id=f"{fam.dtype}-{fam.label()}")
    for dtype in rep.ALL_DTYPES
    for fam in rep.families(dtype, long_rows=False)
]


# float64 softmax and log_softmax measure within 1 ulp on every family (the
# documented promise stays 2): held here so that a regression shows
TIGHT = {(np.dtype(np.float64), "softmax"): 1, (np.dtype(np.float64), "log_softmax"): 1}


def _check(results, what):
    lines = []
    for r in results:
        bound = TIGHT.get((r.dtype, r.func), rep.BOUND[r.dtype])
        if r.max_ulp > bound:
            lines.append(f"{r.func}: {r.max_ulp:g} ulp > {bound}, e.g. {r.worst}")
        if r.cancel_rows and r.cancel_max_ulp_of_max > rep.CANCEL_BOUND[r.dtype]:
            lines.append(
                f"{r.func} (cancellation): {r.cancel_max_ulp_of_max:.3g} ulp of max(x) "
                f"> {rep.CANCEL_BOUND[r.dtype]}"
            )
    assert not lines, f"{what}:\n" + "\n".join(lines)


@pytest.mark.parametrize("fam", FAST_FAMILIES)
def test_family_within_bound(fam, ulp_results):
    results = rep.measure(fam)
    ulp_results.extend(results)
    assert all(r.n_outputs + r.cancel_rows > 0 for r in results)
    _check(results, f"{fam.dtype} {fam.label()}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", rep.ALL_DTYPES, ids=str)
def test_long_row_within_bound(dtype, ulp_results):
    (fam,) = [f for f in rep.families(dtype) if f.name.startswith("long (")]
    assert fam.rows[0].size == 10**6
    results = rep.measure(fam)
    ulp_results.extend(results)
    assert {r.func: r.n_outputs for r in results} == {
        "softmax": 10**6, "log_softmax": 10**6, "logsumexp": 1}
    _check(results, f"{dtype} long row")


@pytest.mark.parametrize("dtype", rep.DTYPES, ids=str)
def test_cancellation_family_is_exercised(dtype):
    """The cancel family really lands in the zone, and tiny results occur."""
    (fam,) = [f for f in rep.families(dtype, long_rows=False) if f.name == "cancel"]
    (res,) = rep.measure(fam)
    assert res.cancel_rows >= 100
    # results far smaller than the max: a plain 2-ulp-of-result bound would not hold
    tiny = 0
    for row in fam.rows:
        exact = ur.ref_logsumexp(row)
        if abs(exact) < abs(float(row.max())) * 1e-6:
            tiny += 1
    assert tiny >= 20
    assert res.cancel_max_ulp_of_max <= rep.CANCEL_BOUND[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", rep.DTYPES, ids=str)
def test_dominant_log_softmax_keeps_tiny_negative(dtype):
    # p = 1 - 1e-13: log p = -1e-13, which log(p) of a rounded p loses
    x = np.array([0.0, -30.0, -31.0, -29.9], dtype=dtype)
    got = sm.log_softmax(x)
    exact = ur.ref_softmax(x)[1]
    assert got[0] < 0
    assert float(got[0]) == pytest.approx(-(math.exp(-30) + math.exp(-31) + math.exp(-29.9)),
                                          rel=1e-6)
    assert ur.ulp_distance(got, exact).max() <= rep.BOUND[np.dtype(dtype)]
    p = sm.softmax(x)
    assert 1 - 1e-12 < float(p[0]) <= 1.0


def test_subnormal_rest_sum_in_float64():
    """Sums of subnormal terms are rounded once, not once per term."""
    x = np.concatenate([[0.0], -np.linspace(709.0, 740.0, 40)])
    exact_p, exact_logp = ur.ref_softmax(x)
    assert 0 < -float(exact_logp[0]) < np.finfo(np.float64).smallest_normal
    assert ur.ulp_distance(sm.log_softmax(x), exact_logp).max() <= 1
    lse = np.asarray(sm.logsumexp(x))
    assert ur.ulp_distance(lse, np.asarray(ur.round_to(ur.ref_logsumexp(x), np.float64))) <= 1


@pytest.mark.parametrize("base", [2.0, 10.0, 0.5, 1.0001, 1e-3, 7.389, 1 + 2**-40, 1e300])
@pytest.mark.parametrize("temperature", [1.0, 0.37, 3.0])
def test_scale_multiplier_is_exact_to_100_bits(base, temperature):
    """c = ln(a) / T is carried as hi + lo; its error is multiplied by |x|."""
    s = parse_scale(temperature, base)
    with mpmath.workprec(300):
        exact = mpmath.log(mpmath.mpf(base)) / mpmath.mpf(temperature)
        rel = abs(mpmath.mpf(s.c_hi) + mpmath.mpf(s.c_lo) - exact) / abs(exact)
    assert rel < mpmath.mpf(2) ** -100


def test_base_scaled_scores_near_minus_700():
    """The reference is softmax of x * ln(a) in mpmath, not of a rounded product."""
    a = 10.0
    x = np.array([0.0, -300.0, -303.5, -304.1, -250.25])  # scores x ln 10 down to -700
    with mpmath.workprec(200):
        c = mpmath.log(mpmath.mpf(a))
    p, logp = ur.ref_softmax(x, c=c)
    assert ur.ulp_distance(sm.softmax(x, base=a), p).max() <= 2
    assert ur.ulp_distance(sm.log_softmax(x, base=a), logp).max() <= 2
    # base a is temperature 1 / ln(a) with the same exact reference
    t = 1 / math.log(a)
    with mpmath.workprec(200):
        ct = 1 / mpmath.mpf(t)
    assert ur.ulp_distance(sm.softmax(x, temperature=t), ur.ref_softmax(x, c=ct)[0]).max() <= 2


# The oracle itself: rounding and ulp counting checked against NumPy's casts
# (which round correctly, subnormals included) and hand-counted cases.

@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=lambda d: np.dtype(d).name)
def test_round_to_matches_numpy_cast(dtype):
    rng = np.random.default_rng(7)
    x = np.concatenate([
        rng.standard_normal(3000) * 10.0 ** rng.integers(-50, 45, 3000),
        rng.standard_normal(300) * float(np.finfo(dtype).smallest_subnormal) * 5,
        [float(np.finfo(dtype).max) * (1 + 2.0**-30), 0.0, -0.0],
    ])
    with np.errstate(over="ignore"):
        want = x.astype(dtype)
    got = ur.round_all([ur.mp_value(v) for v in x], dtype)
    assert np.array_equal(got, want)


def test_round_to_float64_subnormal_ties_to_even():
    q = mpmath.mpf(2) ** -1074
    assert ur.round_to(q * mpmath.mpf("2.5"), np.float64) == 2 * 5e-324
    assert ur.round_to(q * mpmath.mpf("3.5"), np.float64) == 4 * 5e-324
    assert ur.round_to(q * mpmath.mpf("0.5"), np.float64) == 0.0
    assert ur.round_to(q * mpmath.mpf("0.50001"), np.float64) == 5e-324
    assert ur.round_to(mpmath.mpf(2) ** 1024, np.float64) == math.inf


def test_ulp_distance_counts_through_zero_and_subnormals():
    a = np.array([0.0, -0.0, 5e-324, -5e-324, np.inf, np.nan, 1.0, np.nan])
    b = np.array([-0.0, 5e-324, -5e-324, 1e-323, np.finfo(float).max, np.nan,
                  np.nextafter(1.0, 0), 1.0])
    assert ur.ulp_distance(a, b).tolist() == [0, 1, 2, 3, 1, 0, 1, math.inf]
    f = np.float32
    assert ur.ulp_distance(f([1.0]), f([1.0 + 2**-22]))[0] == 2


# ---- segmented rows with extreme gaps ----------------------------------------
# Rows longer than the C core's row cache (131,072 elements) are summed in
# segments whose (max, sum) pairs are merged with factors exp((m_seg - M) / T).
# A segment whose max lies far below the row's (banned tokens set to the
# smallest float, or a gap that only overflows once divided by a tiny T) must
# contribute exactly 0, never NaN, and the scaling by 1/T must be applied to
# every merge factor. The reference below shares no code with the package:
# live entries and one banned value with its multiplicity, in mpmath.

SEGMENTED_N = 152_064  # an LLM vocabulary: > 131,072, not a multiple of 4096


def _gapped_row(dtype, kind):
    """(row, live index, banned value, temperature as str) of one family member."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng([SEGMENTED_N, dtype.itemsize, len(kind)])
    fin = np.finfo(dtype)
    row = np.empty(SEGMENTED_N, dtype)
    if kind == "vocab-min":        # banned tail, live head (the reported case)
        live = np.arange(12_000)
        row[:] = fin.min
        row[live] = rng.standard_normal(live.size) * 3
        return row, live, fin.min
    if kind == "scattered-min":    # live entries scattered: every segment merges
        live = np.sort(rng.choice(SEGMENTED_N, 3000, replace=False))
        row[:] = fin.min
        row[live] = rng.standard_normal(live.size) * 3 - live * (40.0 / SEGMENTED_N)
        return row, live, fin.min
    if kind == "opposite-max":     # -max in the first segment, +max elsewhere
        live = np.arange(4096, SEGMENTED_N)
        row[:4096] = -fin.max
        row[live] = fin.max
        return row, live, -fin.max
    if kind == "tiny-gap":         # a gap of -1e9 (or -6e4) that T = 1e-300 overflows
        live = np.arange(4096, SEGMENTED_N)
        row[:4096] = -1e9 if dtype != np.float16 else -6e4
        row[live] = rng.integers(-3, 4, live.size) * (1e-300 if dtype == np.float64 else 1.0)
        return row, live, row[0]
    raise ValueError(kind)


@functools.lru_cache(maxsize=None)
def _gapped_reference(dtype_name, kind, t):
    """Correctly rounded (p, logp) of the gapped row at temperature t, in mpmath."""
    dtype = np.dtype(dtype_name)
    row, live, banned = _gapped_row(dtype, kind)
    prec = ur.PREC
    # T as the float the caller passes (0.7 is not 7/10), 1/T exact
    values, inverse, counts = np.unique(row[live], return_inverse=True, return_counts=True)
    with mpmath.workprec(prec):
        c = 1 / mpmath.mpf(float(t))
        ys = [mpmath.mpf(float(v)) * c for v in values]
        yb = mpmath.mpf(float(banned)) * c
        m = max(ys)
        es = [mpmath.exp(y - m) for y in ys]
        eb = mpmath.exp(yb - m)
        n_banned = SEGMENTED_N - live.size
        # 1 + rest, with the log taken as log1p(rest) (rest can be < 2^-prec)
        top = ys.index(m)
        rest = (mpmath.fsum(int(k) * e for j, (k, e) in enumerate(zip(counts, es)) if j != top)
                + (int(counts[top]) - 1) + n_banned * eb)
        s = 1 + rest
        log_s = mpmath.log1p(rest)
        p = np.full(SEGMENTED_N, ur.round_to(eb / s, dtype), dtype)
        logp = np.full(SEGMENTED_N, ur.round_to(yb - m - log_s, dtype), dtype)
        p[live] = ur.round_all([e / s for e in es], dtype)[inverse]
        logp[live] = ur.round_all([y - m - log_s for y in ys], dtype)[inverse]
        lse = ur.round_to(m + log_s, dtype)
    return p, logp, lse


SEGMENTED_CASES = [
    pytest.param(dtype, kind, t, id=f"{dtype}-{kind}-T{t}")
    for dtype in ("float16", "float32", "float64")
    for kind, temps in (("vocab-min", ("0.7", "1", "2")),
                        ("scattered-min", ("0.7", "3")),
                        ("opposite-max", ("2", "0.5")),
                        ("tiny-gap", ("1e-300", "1")))
    for t in temps
]


@pytest.mark.parametrize("dtype, kind, t", SEGMENTED_CASES)
def test_banned_entries_in_segmented_rows(dtype, kind, t):
    row, _, _ = _gapped_row(dtype, kind)
    p, logp, lse = _gapped_reference(dtype, kind, t)
    bound = rep.BOUND[np.dtype(dtype)]
    temperature = float(t)
    # a batch of two rows, and the same data as columns (axis 0)
    batch = np.stack([row, row[::-1]])
    got_p = sm.softmax(batch, temperature=temperature)
    got_logp = sm.log_softmax(batch, temperature=temperature)
    got_cols = sm.softmax(np.ascontiguousarray(batch.T), axis=0, temperature=temperature).T
    for name, have, want in (("softmax", got_p[0], p), ("softmax reversed", got_p[1], p[::-1]),
                             ("log_softmax", got_logp[0], logp),
                             ("log_softmax reversed", got_logp[1], logp[::-1]),
                             ("softmax axis 0", got_cols[0], p)):
        assert not np.isnan(have).any(), f"{name}: NaN in a finite row"
        d = ur.ulp_distance(have, want)
        worst = int(np.argmax(d))
        assert d.max() <= bound, (
            f"{name} {dtype} {kind} T={t}: {d.max():g} ulp at {worst}: "
            f"{have[worst]!r} vs {want[worst]!r}")
    if t == "1":
        got = sm.logsumexp(row)
        assert ur.ulp_distance(np.asarray(got), np.asarray(lse, dtype=dtype)) <= bound
