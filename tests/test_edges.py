"""Edge semantics: limits, never a surprise NaN, never a RuntimeWarning.

Expected values are the mathematical limits, written out by hand (see
the "Edge cases" section of docs/hardening.md for the table and what PyTorch, JAX and SciPy do).
"""

import math
import warnings

import numpy as np
import pytest

import softmax as sm

inf, nan = np.inf, np.nan
LN2 = math.log(2)
FLOATS = [np.float16, np.float32, np.float64]
FUNCS = ["softmax", "log_softmax", "logsumexp"]


@pytest.fixture(autouse=True)
def _no_warnings():
    # every warning is an error here, not only RuntimeWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def call(name, x, **kw):
    if name == "logsumexp":
        kw.setdefault("axis", -1)
    return getattr(sm, name)(x, **kw)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


# ---- NaN -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("pos", [0, 1, 3])
def test_nan_makes_its_slice_nan_and_only_it(dtype, pos):
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], dtype=dtype)
    x[0, pos] = nan
    p = sm.softmax(x)
    lp = sm.log_softmax(x)
    lse = sm.logsumexp(x, axis=1)
    assert np.isnan(p[0]).all() and np.isnan(lp[0]).all() and np.isnan(lse[0])
    assert np.isfinite(p[1]).all() and np.isfinite(lp[1]).all() and np.isfinite(lse[1])
    assert p.dtype == lp.dtype == lse.dtype == dtype


@pytest.mark.parametrize("name", FUNCS)
def test_nan_beside_infinities_is_still_nan(name):
    for row in ([inf, nan], [-inf, nan], [inf, -inf, nan]):
        assert np.isnan(call(name, np.array(row))).all()


# ---- +inf and -inf ----------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_posinf_entries_share_the_mass(dtype):
    x = np.array([inf, 1.0, inf, -inf, 0.0], dtype=dtype)
    assert same(sm.softmax(x), np.array([0.5, 0, 0.5, 0, 0], dtype=dtype))
    assert same(sm.log_softmax(x), np.array([-LN2, -inf, -LN2, -inf, -inf], dtype=dtype))
    assert sm.logsumexp(x) == inf
    three = sm.softmax(np.array([inf, inf, 5.0, inf], dtype=dtype))
    assert same(three, np.array([1 / 3, 1 / 3, 0, 1 / 3], dtype=dtype))


def test_lone_posinf_is_certain():
    lp = sm.log_softmax(np.array([inf, 1e308, -inf]))
    assert same(lp, [0.0, -inf, -inf])
    assert not np.signbit(lp[0])  # log 1 = +0
    assert same(sm.softmax([-inf, inf]), [0.0, 1.0])


def test_base_below_one_reverses_the_roles_of_infinities():
    # a < 1: a**x is largest at x = -inf
    assert same(sm.softmax([-inf, 0.0, -inf], base=0.5), [0.5, 0.0, 0.5])
    assert same(sm.softmax([inf, 0.0], base=0.5), [0.0, 1.0])


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_all_neg_inf_is_an_empty_distribution(dtype):
    x = np.full((2, 3), -inf, dtype=dtype)
    assert same(sm.softmax(x), np.zeros((2, 3), dtype))
    assert same(sm.log_softmax(x), np.full((2, 3), -inf, dtype))
    assert same(sm.logsumexp(x, axis=1), np.full(2, -inf, dtype))
    value, sign = sm.logsumexp(x, axis=1, return_sign=True)
    assert same(value, [-inf, -inf]) and same(sign, [0.0, 0.0])


def test_huge_finite_scores_do_not_overflow():
    big = np.finfo(np.float64).max
    assert same(sm.softmax([big, -big]), [1.0, 0.0])
    assert same(sm.softmax([big, big]), [0.5, 0.5])
    assert sm.logsumexp([big, big]) == big  # big + ln 2 rounds back to big
    f = np.finfo(np.float32).max
    assert same(sm.log_softmax(np.float32([f, -f])), np.float32([0.0, -inf]))


def _gap_rows(dtype):
    """Rows whose x_j - max overflows dtype (or, in float lanes, float32) for some j."""
    top = float(np.finfo(dtype).max)
    # below top / 2, gaps beyond top all the same (float lanes overflow from 2**103)
    mid = {np.float64: 2.0**1000, np.float32: 2.0**110, np.float16: 2.0**14}[dtype]
    return np.array([[top, -top, 0.0, 5.0], [mid, -top, 3.0, -1.0], [-top, top, -inf, 1.0],
                     [top, top, -top, -top], [1.0, 2.0, 3.0, 4.0]], dtype)


@pytest.mark.parametrize("accuracy", ["high", "fast"])
@pytest.mark.parametrize("log", [False, True])
def test_score_gap_beyond_the_float_range_with_a_multiplier_below_one(log, accuracy):
    """With |c| < 1 (T > 1, or |ln a| < 1), c (x_j - max) is finite where x_j - max
    overflows: log p is that value, not -inf. Every layout of the C core (rows,
    strided, masked, column panels, segmented rows on one or two threads), the
    float64 and float32 lanes; float16 cannot overflow, but is checked too."""
    import exact_oracle as eo
    from softmax import _config

    assert same(sm.log_softmax([1.7e308, -1.7e308], temperature=2), [0.0, -1.7e308])
    assert same(sm.log_softmax(np.float32([3e38, -3e38]), temperature=2, accuracy="fast"),
                np.float32([0.0, -3e38]))
    f = sm.log_softmax if log else sm.softmax
    threads = _config.get_num_threads()
    try:
        for dtype in FLOATS:
            x = _gap_rows(dtype)
            keep = np.ones(x.shape, bool)
            keep[0, 3] = keep[2, 1] = False
            long_x = np.resize(x[[0, 1]].ravel(), (2, 140_000)).astype(dtype)
            for t, base in ((2.0, None), (1.0, 1 + 2**-30), (3.7, 0.5)):
                kw = dict(temperature=t, base=base, accuracy=accuracy)

                def check(got, want_x, k=None, what=""):
                    eo.check_softmax_rows(got, want_x, k, log=log, scale=eo.scale_of(t, base),
                                          dtype=dtype, what=f"{what} {dtype.__name__} T={t}")

                check(f(x, **kw), x, what="rows")
                check(f(np.repeat(x, 2, axis=1)[:, ::2], **kw), x, what="strided")
                check(f(x, where=keep, **kw), x, keep, what="masked")
                cols = np.ascontiguousarray(np.tile(x, (40, 1)).T)
                check(f(cols, axis=0, **kw).T, cols.T, what="columns")
                for n_threads in (1, 2):
                    _config.set_num_threads(n_threads)
                    check(f(long_x, **kw), long_x, what="segments")
                    check(f(long_x[:1], **kw), long_x[:1], what="one segmented row")
    finally:
        _config.set_num_threads(threads)


# ---- where -----------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
def test_nan_and_inf_at_masked_out_positions_are_ignored(name):
    x = np.array([1.0, nan, 2.0, inf, -inf])
    m = np.array([True, False, True, False, True])
    got = call(name, x, where=m)
    want = call(name, np.array([1.0, 2.0, -inf]))
    if name == "logsumexp":
        assert got == want
    else:
        assert same(got[m], want)
        assert same(got[~m], np.full(2, 0.0 if name == "softmax" else -inf))


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_fully_masked_slice_is_an_empty_distribution(dtype):
    x = np.array([[1.0, 2.0], [3.0, nan]], dtype=dtype)
    m = np.array([[False, False], [True, False]])
    assert same(sm.softmax(x, where=m), np.array([[0, 0], [1, 0]], dtype))
    assert same(sm.log_softmax(x, where=m), np.array([[-inf, -inf], [0, -inf]], dtype))
    assert same(sm.logsumexp(x, axis=1, where=m), np.array([-inf, 3.0], dtype))


def test_masked_out_entries_of_a_nan_slice_stay_empty():
    x = np.array([nan, 1.0, 2.0])
    m = np.array([True, True, False])
    assert same(sm.softmax(x, where=m), [nan, nan, 0.0])
    assert same(sm.log_softmax(x, where=m), [nan, nan, -inf])


# ---- empty axes, scalars ----------------------------------------------------

def test_empty_reduction_axis():
    e = np.empty((3, 0))
    assert same(sm.logsumexp(e, axis=1), np.full(3, -inf))
    assert same(sm.logsumexp(e), -inf)
    assert sm.softmax(e, axis=1).shape == (3, 0)
    assert sm.log_softmax(e, axis=1).shape == (3, 0)
    assert sm.softmax(np.empty((0, 4))).shape == (0, 4)
    assert same(sm.logsumexp(np.empty((0, 4)), axis=1), np.empty(0))
    value, sign = sm.logsumexp(e, axis=1, return_sign=True)
    assert same(sign, np.zeros(3))


def test_single_element_slices():
    assert sm.softmax(7.5) == 1.0
    assert sm.log_softmax(-3.0) == 0.0
    assert sm.logsumexp(4.25) == 4.25
    assert same(sm.softmax([[2.0], [-inf], [inf], [nan]], axis=1), [[1.0], [0.0], [1.0], [nan]])


# ---- temperature limits ----------------------------------------------------

@pytest.mark.parametrize("log", [False, True])
def test_temperature_zero_is_hard_max_with_ties_split(log):
    x = np.array([[2.0, 5.0, 5.0, 1.0], [0.0, 0.0, 0.0, 0.0], [-inf, 3.0, -inf, -inf]])
    f = sm.log_softmax if log else sm.softmax
    want = np.array([[0, 0.5, 0.5, 0], [0.25] * 4, [0, 1, 0, 0]])
    if log:
        with np.errstate(divide="ignore"):
            want = np.log(want)
    assert same(f(x, temperature=0), want)


def test_temperature_zero_edges():
    assert same(sm.softmax([1.0, nan], temperature=0), [nan, nan])
    assert same(sm.softmax([-inf, -inf], temperature=0), [0.0, 0.0])
    assert same(sm.softmax([inf, 3.0, inf], temperature=0), [0.5, 0.0, 0.5])
    assert same(sm.softmax([1.0, 2.0, 1.0], temperature=0, base=0.5), [0.5, 0.0, 0.5])
    assert same(sm.softmax([1.0, 9.0, 5.0], temperature=0, where=[True, False, True]), [0, 0, 1])
    # 1/T beyond float64 is not the hard max, but a gap of 2**-52 times it is
    assert same(sm.softmax([1.0, 1.0 + 2**-52], temperature=5e-324), [0.0, 1.0])
    assert same(sm.softmax(np.float32([1, 2, 2]), temperature=0), np.float32([0, 0.5, 0.5]))


@pytest.mark.parametrize("log", [False, True])
def test_temperature_whose_reciprocal_overflows_is_exact(log):
    """T > 0 is never the hard max: x / T of subnormal scores is moderate."""
    import exact_oracle as eo

    f = sm.log_softmax if log else sm.softmax
    x = np.array([[3e-320, 0.0, -inf], [1e300, 1e300 * (1 - 2**-52), 0.0],
                  [5e-321, 5e-321, -5e-321], [-inf, 5e-321, inf], [-inf, -inf, -inf],
                  [5e-321, nan, 0.0], [1.7e308, -1.7e308, 4e-320]])
    for t, base in ((1e-320, None), (5e-324, None), (2e-310, 0.5), (1e-306, 1e300)):
        got = f(x, temperature=t, base=base)
        eo.check_softmax_rows(got, x, log=log, scale=eo.scale_of(t, base), dtype=np.float64,
                              what=f"T={t} base={base}")
        cols = f(np.ascontiguousarray(x.T), axis=0, temperature=t, base=base)
        assert same(cols.T, got)
    e3 = math.exp(3.0)
    assert ur_close(sm.softmax([3e-320, 0.0], temperature=1e-320), [e3 / (1 + e3), 1 / (1 + e3)])
    assert same(sm.softmax([1e300, 1e300 * (1 - 2**-52)], temperature=1e-320), [1.0, 0.0])


def ur_close(got, want):
    """Within 2 ulp (float64)."""
    import ulp_reference as ur

    return ur.ulp_distance(np.asarray(got, np.float64), np.asarray(want, np.float64)).max() <= 2


def test_temperature_inf_is_uniform_over_finite_kept_entries():
    assert same(sm.softmax([1e300, -5.0, 0.0, 7.0], temperature=inf), [0.25] * 4)
    assert same(sm.softmax([1.0, 2.0, 3.0], temperature=inf, where=[True, False, True]),
                [0.5, 0.0, 0.5])
    # infinities keep their role: +inf takes all, -inf gets nothing
    assert same(sm.softmax([inf, 1.0, 2.0], temperature=inf), [1.0, 0.0, 0.0])
    assert same(sm.softmax([-inf, 1.0, 2.0], temperature=inf), [0.0, 0.5, 0.5])
    assert same(sm.log_softmax([3.0, 4.0], temperature=inf), [-LN2, -LN2])
    assert same(sm.softmax([1.0, nan], temperature=inf), [nan, nan])


def test_temperature_extremes_match_the_limits_numerically():
    x = np.array([1.0, 3.0, 3.0, 2.0])
    # exp(-1000) and 1 +- 1e-200 round to 0 and 1: the limits hold exactly, not "close"
    assert same(sm.softmax(x, temperature=1e-3), [0.0, 0.5, 0.5, 0.0])
    assert same(sm.softmax(x, temperature=0), [0.0, 0.5, 0.5, 0.0])
    assert same(sm.softmax(x, temperature=1e200), [0.25] * 4)
    assert same(sm.softmax(x, temperature=inf), [0.25] * 4)
    assert same(sm.log_softmax(x, temperature=1e-3), [-2000 - LN2, -LN2, -LN2, -1000 - LN2])
    assert same(sm.log_softmax(x, temperature=1e200), [-2 * LN2] * 4)


# ---- b and return_sign follow scipy.special.logsumexp ------------------------

SCIPY_B_CASES = [
    ([1.0, 2.0], [1.0, -1.0]),
    ([1.0, 1.0], [1.0, -1.0]),  # exact zero sum
    ([0.0, 0.0], [0.0, 0.0]),
    ([1.0, 2.0], [-1.0, -1.0]),
    ([-inf, 1.0], [1.0, 0.0]),
    ([3.0, 1.0, 2.0], [0.5, 2.0, -0.25]),
    ([1000.0, 1000.0], [1.0, 1.0]),
    ([1000.0, 999.0], [-2.0, 5.0]),
    ([-inf, -inf], [1.0, 1.0]),
    ([inf, 1.0], [1.0, 1.0]),
    ([5.0], [0.0]),
    ([1.0, nan], [1.0, 1.0]),
    ([1.0, 2.0, 3.0], [2.0]),  # b broadcasts
]


@pytest.mark.parametrize("x,b", SCIPY_B_CASES)
@pytest.mark.parametrize("return_sign", [False, True])
def test_logsumexp_b_matches_scipy(x, b, return_sign):
    special = pytest.importorskip("scipy.special")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy may warn; we may not
        want = special.logsumexp(x, b=b, return_sign=return_sign)
    got = sm.logsumexp(x, b=b, return_sign=return_sign)
    if return_sign:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
        assert same(got[1], want[1])
    else:
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_logsumexp_b_matches_scipy_on_random_arrays():
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(11)
    for trial in range(40):
        shape = tuple(rng.integers(1, 5, size=rng.integers(1, 4)))
        x = rng.normal(0, 30, shape)
        b = rng.normal(0, 1, shape) * (rng.random(shape) < 0.8)
        axes = [None] + list(range(-len(shape), len(shape)))
        axis = axes[trial % len(axes)]
        for keepdims in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = special.logsumexp(x, axis=axis, b=b, keepdims=keepdims, return_sign=True)
            got = sm.logsumexp(x, axis=axis, b=b, keepdims=keepdims, return_sign=True)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
            assert same(got[1], want[1])


def test_negative_sum_without_return_sign_is_nan_without_warning():
    assert np.isnan(sm.logsumexp([1.0, 2.0], b=[1.0, -1.0]))


def test_masked_weights_are_weights_that_are_not_there():
    """issue 15 section 3 (a mutation survivor until this test): a masked b entry drops its term."""
    b = np.ma.masked_array([1.0, 1.0, 2.0], mask=[False, True, False])
    x = np.array([1.0, 100.0, 2.0])
    got = sm.logsumexp(x, b=b)
    # log(e + 2 e^2) = 2 + log(2 + e^-1), exact to float64 rounding of log1p
    assert got == pytest.approx(2.0 + math.log(2.0 + math.exp(-1.0)), rel=4e-16)
    assert same(sm.logsumexp(x, b=b, return_sign=True)[1], 1.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("accuracy", ["high", "fast"])
def test_log_softmax_of_a_lone_score_is_plus_zero_on_every_path(dtype, accuracy, tmp_path):
    # log 1 = +0: a finite score whose companions are all -inf (or masked, or
    # the padding of a short row) has probability exactly 1. The float32 rows
    # once wrote -0.0 here (the -inf terms added e^-708 each), where the
    # two-pass file path wrote +0.0: the same bits everywhere now.
    from softmax.stream import softmax_file

    rows = np.array([[0.0, -np.inf, -np.inf], [-np.inf, 5.0, -np.inf], [7.0, 1.0, 2.0]], dtype)
    keep = np.array([[True] * 3, [True] * 3, [True, False, False]])
    for axis in (-1, 0):
        # the same slices as rows, and as the columns of the transpose (column panels)
        x = rows if axis == -1 else np.ascontiguousarray(rows.T)
        where = keep if axis == -1 else np.ascontiguousarray(keep.T)
        got = sm.log_softmax(x, axis=axis, where=where, accuracy=accuracy)
        for i, j in [(0, 0), (1, 1), (2, 0)]:
            k = (i, j) if axis == -1 else (j, i)
            assert got[k] == 0.0 and not np.signbit(got[k]), (axis, k, got)
        np.save(tmp_path / "x.npy", x)
        memory = sm.log_softmax(x, axis=axis)  # the file path runs the default accuracy
        for block_bytes in (16, 1 << 20):  # two-pass and one-pass
            softmax_file(tmp_path / "x.npy", tmp_path / "y.npy", axis=axis, log=True,
                         block_bytes=block_bytes)
            on_file = np.load(tmp_path / "y.npy")
            np.testing.assert_array_equal(on_file, memory)
            np.testing.assert_array_equal(np.signbit(on_file), np.signbit(memory))
            for i, j in [(0, 0), (1, 1)]:
                k = (i, j) if axis == -1 else (j, i)
                assert on_file[k] == 0.0 and not np.signbit(on_file[k]), (axis, k, on_file)
