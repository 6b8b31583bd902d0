"""hardmax: the temperature -> 0 limit of softmax.

References: hand-written one-hots, numpy.argmax for ties="first",
softmax(x, temperature=0) for ties="split" (bit for bit), and the bound
|softmax(x / t) - hardmax(x)| <= (K - 1) exp(-gap / t) for the limit.
"""

import warnings

import numpy as np
import pytest

import softmax as sm
import softmax._math.hardmax as hm

RNG = np.random.default_rng(7)


def test_hand_values():
    np.testing.assert_array_equal(hm.hardmax([2.0, 1.0, 0.1]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(hm.hardmax([1.0, 3.0, 3.0, 3.0]), [0, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(
        hm.hardmax([1.0, 3.0, 3.0, 3.0], ties="first"), [0.0, 1.0, 0.0, 0.0]
    )
    np.testing.assert_array_equal(
        hm.hardmax([[1.0, 5.0], [7.0, 2.0]], axis=0), [[0.0, 1.0], [1.0, 0.0]]
    )
    np.testing.assert_array_equal(
        hm.hardmax([[1.0, 5.0], [7.0, 7.0]], axis=None), [[0.0, 0.0], [0.5, 0.5]]
    )
    np.testing.assert_array_equal(
        hm.hardmax([[1.0, 5.0], [7.0, 7.0]], axis=None, ties="first"), [[0, 0], [1, 0]]
    )


def _tied_arrays():
    # Small integers make ties common; +-inf and NaN placed on purpose.
    x = RNG.integers(-2, 3, size=(4, 5, 6)).astype(np.float64)
    x[0, 0, 1] = np.inf
    x[0, 0, 4] = np.inf
    x[1, 1, :] = -np.inf
    x[2, 2, 3] = np.nan
    x[3, 3, 0] = -np.inf
    return x


@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2), (1, 2), None])
@pytest.mark.parametrize("use_where", [False, True])
def test_split_is_softmax_at_temperature_zero(axis, use_where):
    x = _tied_arrays()
    where = RNG.random(x.shape) > 0.3 if use_where else None
    if use_where:
        where[2, 0, :] = False  # a fully excluded slice
    got = hm.hardmax(x, axis, where=where)
    expected = sm.softmax(x, axis, temperature=0, where=where)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_split_equality_per_dtype(dtype):
    x = RNG.integers(-2, 3, size=(30, 7)).astype(dtype)
    got = hm.hardmax(x)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, sm.softmax(x, temperature=0))


def test_first_is_one_hot_of_argmax():
    x = RNG.integers(-3, 3, size=(50, 8)).astype(np.float64)
    expected = np.zeros_like(x)
    expected[np.arange(50), np.argmax(x, axis=1)] = 1.0
    np.testing.assert_array_equal(hm.hardmax(x, ties="first"), expected)
    # Along axis 0 as well.
    expected0 = np.zeros_like(x)
    expected0[np.argmax(x, axis=0), np.arange(8)] = 1.0
    np.testing.assert_array_equal(hm.hardmax(x, axis=0, ties="first"), expected0)


def test_first_with_where_picks_the_first_kept_maximum():
    x = np.array([5.0, 5.0, 5.0, 1.0])
    where = np.array([False, True, True, True])
    np.testing.assert_array_equal(hm.hardmax(x, ties="first", where=where), [0, 1, 0, 0])
    np.testing.assert_array_equal(hm.hardmax(x, where=where), [0, 0.5, 0.5, 0])


@pytest.mark.parametrize("ties", ["split", "first"])
def test_edge_slices(ties):
    x = np.array(
        [
            [1.0, np.nan, 2.0],  # NaN slice -> NaN
            [-np.inf, -np.inf, -np.inf],  # empty -> zeros
            [np.inf, 1.0, np.inf],  # +inf are the maxima
            [1e308, -1e308, 0.0],  # huge, no overflow anywhere
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = hm.hardmax(x, ties=ties)
    assert np.all(np.isnan(r[0]))
    np.testing.assert_array_equal(r[1], [0.0, 0.0, 0.0])
    expected_inf = [0.5, 0.0, 0.5] if ties == "split" else [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(r[2], expected_inf)
    np.testing.assert_array_equal(r[3], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("ties", ["split", "first"])
def test_masked_slices(ties):
    x = np.array([[np.nan, 1.0, 3.0], [4.0, 5.0, 6.0]])
    where = np.array([[False, True, True], [False, False, False]])
    r = hm.hardmax(x, ties=ties, where=where)
    # The NaN is excluded, so it does not poison its slice.
    np.testing.assert_array_equal(r, [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    x[0, 1] = np.nan
    r = hm.hardmax(x, ties=ties, where=where)
    np.testing.assert_array_equal(r[0], [0.0, np.nan, np.nan])


def test_softmax_converges_to_hardmax_as_temperature_goes_to_zero():
    x = np.array([2.0, 1.0, 0.1, -1.0])
    gap = 1.0
    previous = np.inf
    for t in [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]:
        err = np.abs(sm.softmax(x, temperature=t) - hm.hardmax(x)).max()
        assert err <= (x.size - 1) * np.exp(-gap / t)
        assert err < previous
        previous = err
    # Once exp(-gap / t) underflows the two are equal to the last bit.
    np.testing.assert_array_equal(sm.softmax(x, temperature=1e-3), hm.hardmax(x))


def test_tied_maxima_converge_to_equal_shares():
    x = np.array([3.0, 0.0, 3.0, 2.5])
    for t in [0.5, 0.1, 0.01]:
        err = np.abs(sm.softmax(x, temperature=t) - hm.hardmax(x)).max()
        assert err <= (x.size - 2) * np.exp(-0.5 / t)
    np.testing.assert_array_equal(sm.softmax(x, temperature=1e-4), [0.5, 0.0, 0.5, 0.0])


def test_large_gaps_make_softmax_nearly_one_hot():
    # The article's "soft" max: scaling the score differences up.
    base = np.array([2.0, 1.0, 0.1])
    for scale in [1, 5, 10, 20, 40]:
        p = sm.softmax(scale * base)
        # 1 - p0 = s / (1 + s) < s, s = sum of exp(-gap); plus p0's rounding.
        bound = np.exp(-scale * 1.0) + np.exp(-scale * 1.9) + 2.0**-52
        assert 1 - p[0] <= bound
        assert np.abs(p - hm.hardmax(scale * base)).max() <= bound
    assert sm.softmax(800 * base)[0] == 1.0


def test_dtypes_and_shapes():
    assert hm.hardmax(np.array([1, 3, 2])).dtype == np.float64
    assert hm.hardmax(np.array([True, False])).dtype == np.float64
    assert hm.hardmax(np.zeros((3, 0))).shape == (3, 0)
    assert hm.hardmax(np.zeros((0, 3))).shape == (0, 3)
    np.testing.assert_array_equal(hm.hardmax(np.array([[1.0, 2.0]]), axis=()), [[1.0, 1.0]])
    y = np.arange(12.0).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(hm.hardmax(y, axis=0), hm.hardmax(y.copy(), axis=0))


def test_errors():
    with pytest.raises(ValueError, match="ties must be 'split' or 'first', got 'last'"):
        hm.hardmax([1.0, 2.0], ties="last")
    with pytest.raises(ValueError, match=r"where must broadcast to x.shape \(2, 3\)"):
        hm.hardmax(np.zeros((2, 3)), where=np.ones(4, dtype=bool))
    with pytest.raises(np.exceptions.AxisError):
        hm.hardmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="x must be real-valued"):
        hm.hardmax(np.array([1j]))
