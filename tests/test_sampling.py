"""sample: Gumbel-max draws from softmax distributions.

References: chi-square tests (scipy.stats.chisquare) at fixed seeds against
exact softmax probabilities computed with mpmath, numpy.argmax for
temperature 0, and the edge rules.
"""

import warnings

import mpmath
import numpy as np
import pytest

import softmax._math.sampling as S

stats = pytest.importorskip("scipy.stats")
# A fixed seed makes each test deterministic; the threshold is the usual
# level for "the draws do not follow the distribution".
ALPHA = 1e-3


@pytest.fixture(autouse=True)
def _mp_precision():
    """200-bit references, without changing mpmath's global state for others."""
    with mpmath.workprec(200):
        yield


def exact_probs(logits, temperature=1.0):
    xs = [mpmath.mpf(float(v)) / temperature for v in logits if v != -np.inf]
    m = max(xs)
    z = sum(mpmath.exp(v - m) for v in xs)
    it = iter(xs)
    return np.array(
        [0.0 if v == -np.inf else float(mpmath.exp(next(it) - m) / z) for v in logits]
    )


def chisquare_pvalue(draws, probs):
    counts = np.bincount(draws.ravel(), minlength=len(probs))
    support = probs > 0
    assert counts[~support].sum() == 0, "a class with probability 0 was drawn"
    expected = probs[support] * draws.size
    return stats.chisquare(counts[support], expected * counts.sum() / expected.sum()).pvalue


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_frequencies_match_softmax(temperature):
    logits = np.array([2.0, 1.0, 0.1, -1.0, 0.5])
    draws = S.sample(logits, temperature=temperature, size=20_000, rng=12345)
    assert draws.shape == (20_000,)
    assert chisquare_pvalue(draws, exact_probs(logits, temperature)) > ALPHA


@pytest.mark.parametrize("logits, temperature", [
    ([1.7e308, -1.7e308, 0.0], 1e308),   # x - max beyond a double; (x - max) / T is not
    ([3e-320, 0.0, -2e-320], 1e-320),    # 1/T beyond a double; x / T is [3, 0, -2]
])
def test_frequencies_match_softmax_beyond_the_float_range(logits, temperature):
    draws = S.sample(np.array(logits), temperature=temperature, size=20_000, rng=12345)
    assert chisquare_pvalue(draws, exact_probs(logits, temperature)) > ALPHA


def test_biased_draws_would_be_detected():
    # The test has power: draws from softmax(x) fail against softmax(x / 1.2).
    logits = np.array([2.0, 1.0, 0.1, -1.0, 0.5])
    draws = S.sample(logits, size=20_000, rng=12345)
    assert chisquare_pvalue(draws, exact_probs(logits, 1.2)) < ALPHA


def test_masked_and_minus_inf_classes_never_drawn():
    logits = np.array([0.3, -np.inf, 1.2, 0.0, 5.0])
    where = np.array([True, True, True, True, False])
    draws = S.sample(logits, size=20_000, rng=7, where=where)
    probs = exact_probs(np.where(where, logits, -np.inf))
    assert not np.any(np.isin(draws, [1, 4]))
    assert chisquare_pvalue(draws, probs) > ALPHA


def test_batches_along_another_axis():
    logits = np.array([[0.0, 2.0], [1.0, 2.0], [-1.0, 2.0]])  # 2 distributions on axis 0
    draws = S.sample(logits, axis=0, size=(4000, 3), rng=3)
    assert draws.shape == (4000, 3, 2)
    for j in range(2):
        assert chisquare_pvalue(draws[..., j], exact_probs(logits[:, j])) > ALPHA


def test_huge_logits_and_small_temperature_do_not_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draws = S.sample(np.array([1e308, -1e308, 1e308 * 0.5]), temperature=1e-3, size=100, rng=0)
    np.testing.assert_array_equal(draws, 0)


def test_temperature_zero_is_argmax_first_tie():
    logits = np.random.default_rng(0).integers(-2, 3, size=(40, 6)).astype(float)
    np.testing.assert_array_equal(S.sample(logits, temperature=0), np.argmax(logits, axis=1))
    draws = S.sample(logits, temperature=0, size=3, rng=1)
    np.testing.assert_array_equal(draws, np.broadcast_to(np.argmax(logits, axis=1), (3, 40)))
    where = np.ones(6, dtype=bool)
    where[np.argmax(logits[0])] = False
    expected = np.argmax(np.where(where, logits[0], -np.inf))
    assert S.sample(logits[0], temperature=0, where=where) == expected


def test_temperature_inf_is_uniform_over_finite_logits():
    logits = np.array([10.0, -np.inf, 0.0, -5.0])
    draws = S.sample(logits, temperature=np.inf, size=12_000, rng=9)
    assert chisquare_pvalue(draws, np.array([1 / 3, 0, 1 / 3, 1 / 3])) > ALPHA


def test_plus_inf_classes_share_the_mass():
    logits = np.array([np.inf, 3.0, np.inf, np.inf])
    draws = S.sample(logits, size=9000, rng=4)
    assert chisquare_pvalue(draws, np.array([1 / 3, 0, 1 / 3, 1 / 3])) > ALPHA
    assert S.sample(logits, temperature=0) == 0


def test_reproducible_with_seed_and_generator():
    logits = np.array([0.1, 0.2, 0.3, 0.4])
    a = S.sample(logits, size=50, rng=2024)
    np.testing.assert_array_equal(a, S.sample(logits, size=50, rng=2024))
    gen = np.random.default_rng(2024)
    first = S.sample(logits, size=50, rng=gen)
    second = S.sample(logits, size=50, rng=gen)
    np.testing.assert_array_equal(first, a)  # a seed is a fresh Generator
    assert not np.array_equal(first, second)  # the Generator's state advanced
    gen2 = np.random.default_rng(2024)
    np.testing.assert_array_equal(
        np.concatenate([first, second]),
        np.concatenate([S.sample(logits, size=50, rng=gen2), S.sample(logits, size=50, rng=gen2)]),
    )


def test_size_semantics_and_result_type():
    logits = np.zeros((2, 3, 5))
    assert S.sample(logits, rng=0).shape == (2, 3)
    assert S.sample(logits, size=4, rng=0).shape == (4, 2, 3)
    assert S.sample(logits, size=(4, 6), rng=0).shape == (4, 6, 2, 3)
    assert S.sample(logits, size=(), rng=0).shape == (2, 3)
    assert S.sample(logits, axis=1, size=7, rng=0).shape == (7, 2, 5)
    assert S.sample(logits, size=0, rng=0).shape == (0, 2, 3)
    one = S.sample(np.zeros(5), rng=0)
    assert np.ndim(one) == 0 and 0 <= one < 5
    draws = S.sample(np.zeros(5, dtype=np.float16), size=10, rng=0)
    assert draws.dtype == np.intp
    assert S.sample(np.array([0, 5, 1]), temperature=0) == 1


def test_errors_name_the_slice():
    logits = np.zeros((3, 4))
    logits[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"logits must not contain NaN, got NaN in the slice at index \(1,\)"):
        S.sample(logits, rng=0)
    logits = np.zeros((2, 3, 4))
    logits[1, 2, :] = -np.inf
    with pytest.raises(ValueError, match=r"all -inf or excluded at index \(1, 2\)"):
        S.sample(logits, rng=0)
    where = np.ones((2, 3, 4), dtype=bool)
    where[0, 1, :] = False
    with pytest.raises(ValueError, match=r"at index \(0, 1\)"):
        S.sample(np.zeros((2, 3, 4)), where=where, temperature=0)
    # A NaN in an excluded entry does not count.
    x = np.array([np.nan, 1.0])
    assert S.sample(x, where=np.array([False, True]), rng=0) == 1


def test_argument_errors():
    x = np.zeros(3)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        S.sample(x, temperature=-1.0)
    with pytest.raises(ValueError, match=r"size must be None, a non-negative int or a tuple of them, got -1"):
        S.sample(x, size=-1)
    with pytest.raises(ValueError, match="size must be"):
        S.sample(x, size=(2, 1.5))
    with pytest.raises(TypeError, match="rng must be None, a non-negative int seed or a numpy.random.Generator"):
        S.sample(x, rng="seed")
    with pytest.raises(TypeError, match="rng must be"):
        S.sample(x, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="rng must be"):
        S.sample(x, rng=-5)
    with pytest.raises(TypeError, match="axis must be an int"):
        S.sample(np.zeros((2, 2)), axis=(0, 1))
    with pytest.raises(ValueError, match="logits must have at least one axis"):
        S.sample(1.0)
    with pytest.raises(TypeError):
        S.sample(x, 1.0)  # temperature is keyword-only
