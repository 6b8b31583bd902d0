"""softmax.calibration: temperature fit and metrics against independent references.

References are scipy (minimize_scalar on a plain log_softmax NLL), loops
written out here from the papers' definitions, and hand-derivable values.
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

scipy_special = pytest.importorskip("scipy.special")
scipy_optimize = pytest.importorskip("scipy.optimize")

from softmax import calibration as cal  # noqa: E402
from softmax.calibration import TemperatureScaling, fit_temperature  # noqa: E402


# ------------------------------------------------------------------ helpers


def make_data(n, k, t_true, seed=0, dtype=np.float32):
    """Logits z whose labels are drawn from softmax(z / t_true)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    z[np.arange(n), rng.integers(0, k, n)] += 4.0
    p = scipy_special.softmax(z / t_true, axis=1)
    labels = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(0, k - 1)
    return z.astype(dtype), labels


def scipy_nll(z, y, t, w=None):
    lp = scipy_special.log_softmax(np.asarray(z, np.float64) / t, axis=1)[np.arange(len(y)), y]
    return -np.average(lp, weights=w)


def scipy_temperature(z, y, w=None, bounds=(1e-2, 1e2)):
    res = scipy_optimize.minimize_scalar(
        lambda u: scipy_nll(z, y, math.exp(u), w),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return math.exp(res.x)


def reference_ece(conf, correct, n_bins=15, norm="l1"):
    """Guo et al.'s loop: bins (lo, hi] over linspace(0, 1, n_bins + 1), 0 in the first."""
    edges = np.linspace(0, 1, n_bins + 1)
    gaps, weights = [], []
    for i in range(n_bins):
        lo, hi = edges[i], edges[i + 1]
        inside = (conf > lo) & (conf <= hi)
        if i == 0:
            inside |= conf == 0
        if inside.any():
            gaps.append(abs(correct[inside].mean() - conf[inside].mean()))
            weights.append(inside.mean())
    gaps, weights = np.array(gaps), np.array(weights)
    if norm == "l1":
        return float(weights @ gaps)
    if norm == "l2":
        return float(np.sqrt(weights @ gaps**2))
    return float(gaps.max())


# ------------------------------------------------------------- fit_temperature


@pytest.mark.parametrize(
    "n, k, t_true, seed",
    [(3000, 10, 2.5, 0), (2000, 100, 1.7, 1), (4000, 3, 0.6, 2), (500, 2, 1.0, 3)],
)
def test_fit_matches_scipy(n, k, t_true, seed):
    z, y = make_data(n, k, t_true, seed)
    ts = fit_temperature(z, y)
    t_ref = scipy_temperature(z, y)
    assert ts.converged and not ts.at_bound
    assert ts.temperature == pytest.approx(t_ref, rel=1e-6)
    assert ts.nll_before == pytest.approx(scipy_nll(z, y, 1.0), rel=1e-12)
    assert ts.nll_after == pytest.approx(scipy_nll(z, y, ts.temperature), rel=1e-12)
    assert ts.nll_after <= ts.nll_before
    assert 1 <= ts.iterations <= 10


def test_fit_recovers_a_known_temperature():
    # Labels drawn from softmax(z / 2.5) over 40,000 samples: the MLE is
    # within a few percent of the truth.
    z, y = make_data(40_000, 10, 2.5, seed=7)
    assert fit_temperature(z, y).temperature == pytest.approx(2.5, rel=0.05)


def test_weights_equal_repeated_rows():
    z, y = make_data(600, 5, 1.8, seed=4)
    w = np.random.default_rng(0).integers(0, 4, size=600)
    repeated = fit_temperature(np.repeat(z, w, axis=0), np.repeat(y, w))
    weighted = fit_temperature(z, y, weights=w)
    assert weighted.temperature == pytest.approx(repeated.temperature, rel=1e-9)
    assert weighted.nll_before == pytest.approx(repeated.nll_before, rel=1e-12)
    assert weighted.temperature == pytest.approx(scipy_temperature(z, y, w), rel=1e-6)


def test_axis_and_batch_shape():
    z, y = make_data(400, 6, 2.0, seed=5)
    t = fit_temperature(z, y).temperature
    assert fit_temperature(z.T, y, axis=0).temperature == pytest.approx(t, rel=1e-12)
    z3 = z.reshape(20, 20, 6).transpose(0, 2, 1)  # classes on axis 1
    assert fit_temperature(z3, y.reshape(20, 20), axis=1).temperature == pytest.approx(t, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_dtypes_fit_the_same_values(dtype):
    z, y = make_data(500, 4, 1.5, seed=6, dtype=np.float64)
    z = np.round(z).astype(dtype)  # exactly representable in every dtype
    t = fit_temperature(z, y).temperature
    assert t == pytest.approx(scipy_temperature(z.astype(np.float64), y), rel=1e-6)


def test_separable_data_stops_at_the_lower_bound():
    z = np.array([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0], [-2.0, 0.0, 1.0]] * 5)
    y = np.array([0, 1, 2] * 5)
    ts = fit_temperature(z, y, bounds=(0.05, 20))
    assert ts.temperature == 0.05
    assert ts.at_bound and ts.converged
    assert "lower bound" in ts.message and "separable" in ts.message
    assert ts.nll_after == pytest.approx(scipy_nll(z, y, 0.05), rel=1e-9)
    assert ts.nll_after < ts.nll_before
    assert ts.iterations <= 6


def test_anti_informative_logits_stop_at_the_upper_bound():
    # The label is always the lowest logit: flatter is always better.
    rng = np.random.default_rng(8)
    z = rng.normal(size=(300, 4))
    y = z.argmin(axis=1)
    ts = fit_temperature(z, y)
    assert ts.temperature == 100.0 and ts.at_bound
    assert "upper bound" in ts.message
    assert ts.nll_after == pytest.approx(scipy_nll(z, y, 100.0), rel=1e-9)


def test_never_worse_than_no_scaling():
    # Nearly calibrated: T close to 1, and the NLL at T is <= the NLL at 1.
    z, y = make_data(2000, 10, 1.0, seed=9)
    ts = fit_temperature(z, y)
    assert ts.temperature == pytest.approx(scipy_temperature(z, y), rel=1e-6)
    assert scipy_nll(z, y, ts.temperature) <= scipy_nll(z, y, 1.0)


def test_confident_rows_keep_their_tiny_nll():
    # p(label) = 1 - e^-60: the NLL e^-60 ~ 8.8e-27 must not round to 0.
    z = np.array([[60.0, 0.0], [0.0, 60.0]])
    assert cal.nll(z, [0, 1]) == pytest.approx(math.exp(-60), rel=1e-12)


@pytest.mark.parametrize(
    "logits, labels, kwargs, match",
    [
        ([[1.0, 2.0], [0.0, 1.0]], [0, 2], {}, r"labels must be class indices in \[0, 2\), got 2 at index 1"),
        ([[1.0, 2.0], [0.0, 1.0]], [-1, 0], {}, r"labels must be class indices .* got -1 at index 0"),
        ([[1.0, np.nan], [0.0, 1.0]], [0, 1], {}, r"logits must be finite, got nan in sample 0"),
        ([[1.0, 2.0], [np.inf, 1.0]], [0, 1], {}, r"logits must be finite, got inf in sample 1"),
        ([[1.0, 2.0], [-np.inf, 1.0]], [0, 1], {}, r"logits must be finite, got -inf in sample 1"),
        ([[1.0, 2.0], [0.0, 1.0]], [0, 1, 1], {}, r"labels must have shape \(2,\)"),
        ([[1.0], [2.0]], [0, 0], {}, r"at least 2 classes"),
        (np.zeros((0, 3)), np.zeros(0, int), {}, r"at least one sample"),
        ([[1.0, 2.0]], [0], {"bounds": (2.0, 10.0)}, r"bounds must satisfy"),
        ([[1.0, 2.0]], [0], {"bounds": 3}, r"bounds must be a pair"),
        ([[1.0, 2.0]], [0], {"weights": [-1.0]}, r"weights must be finite and >= 0, got -1.0"),
        ([[1.0, 2.0]], [0], {"weights": [0.0]}, r"weights must not all be 0"),
        ([[1.0, 2.0]], [0], {"weights": [1.0, 2.0]}, r"weights must have shape \(1,\)"),
    ],
)
def test_bad_input_is_a_value_error(logits, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels, **kwargs)


def test_float_labels_are_a_type_error():
    with pytest.raises(TypeError, match="labels must be an array of integers, got dtype float64"):
        fit_temperature([[1.0, 2.0]], [0.0])


# ---------------------------------------------------------- TemperatureScaling


def test_predict_proba_is_softmax_of_scaled_logits():
    z, _ = make_data(50, 7, 1.0, seed=11, dtype=np.float64)
    ts = TemperatureScaling(1.7)
    np.testing.assert_allclose(ts.predict_proba(z), scipy_special.softmax(z / 1.7, axis=1), rtol=1e-13)
    np.testing.assert_allclose(TemperatureScaling(1.7, axis=0).predict_proba(z.T),
                               scipy_special.softmax(z.T / 1.7, axis=0), rtol=1e-13)
    np.testing.assert_array_equal(ts.predict(z), z.argmax(axis=1))


def test_transform_divides_by_t_rounding_once():
    z, _ = make_data(50, 7, 1.0, seed=11, dtype=np.float64)
    ts = TemperatureScaling(1.7)
    np.testing.assert_array_equal(ts.transform(z), z / 1.7)
    z32 = z.astype(np.float32)
    for scaled in (ts.transform(z32), ts.transform_logits(z32)):
        assert scaled.dtype == np.float32
        # The float64 quotient rounded once to float32 (T itself is not
        # rounded to float32 first).
        np.testing.assert_array_equal(scaled, (z32.astype(np.float64) / 1.7).astype(np.float32))


def test_json_round_trip(tmp_path):
    z, y = make_data(300, 4, 2.0, seed=12)
    ts = fit_temperature(z, y)
    text = json.dumps(ts.to_dict(), allow_nan=False)
    assert TemperatureScaling.from_dict(json.loads(text)) == ts
    path = tmp_path / "t.json"
    ts.save(path)
    loaded = TemperatureScaling.load(path)
    assert loaded == ts and loaded.temperature == ts.temperature
    assert json.loads(path.read_text())["temperature"] == ts.temperature


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a temperature file"):
        TemperatureScaling.load(bad)
    neg = tmp_path / "neg.json"
    neg.write_text('{"temperature": -2}')
    with pytest.raises(ValueError, match=r"neg.json: temperature must be a finite number > 0, got -2"):
        TemperatureScaling.load(neg)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something else", "temperature": 2}')
    with pytest.raises(ValueError, match="other.json: data must be in format"):
        TemperatureScaling.load(other)


@pytest.mark.parametrize("t", [0.0, -1.0, math.inf, math.nan, True, "2"])
def test_temperature_must_be_positive_finite(t):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        TemperatureScaling(t)


# ---------------------------------------------------------------- metrics


def _reference_rows(z, y, input):
    p = scipy_special.softmax(np.asarray(z, np.float64), axis=1) if input == "logits" else np.asarray(z, np.float64)
    rows = np.arange(len(y))
    conf = p.max(1)
    correct = p.argmax(1) == y
    onehot = np.eye(p.shape[1])[y]
    return p, conf, correct, -np.log(p[rows, y]), ((p - onehot) ** 2).sum(1)


@pytest.mark.parametrize("input", ["logits", "probs"])
def test_nll_brier_accuracy(input):
    z, y = make_data(700, 6, 1.3, seed=13, dtype=np.float64)
    scores = z if input == "logits" else scipy_special.softmax(z, axis=1)
    p, conf, correct, nll_rows, brier_rows = _reference_rows(scores, y, input)
    assert cal.nll(scores, y, input=input) == pytest.approx(nll_rows.mean(), rel=1e-12)
    assert cal.brier(scores, y, input=input) == pytest.approx(brier_rows.mean(), rel=1e-12)
    assert cal.accuracy(scores, y, input=input) == correct.mean()


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_guo_loop(norm, n_bins):
    z, y = make_data(1500, 10, 2.0, seed=14, dtype=np.float64)
    _, conf, correct, _, _ = _reference_rows(z, y, "logits")
    got = cal.ece(z, y, n_bins=n_bins, norm=norm)
    assert got == pytest.approx(reference_ece(conf, correct, n_bins, norm), rel=1e-12)
    if norm == "max":
        assert cal.mce(z, y, n_bins=n_bins) == got


def test_ece_hand_values():
    probs = [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]
    labels = [0, 1, 0, 1]
    # bins of 0.1: {0.9, 0.9} acc 0.5 gap 0.4; {0.6} acc 1 gap 0.4; {0.7} acc 1 gap 0.3
    assert cal.ece(probs, labels, input="probs", n_bins=10) == pytest.approx(0.5 * 0.4 + 0.25 * 0.4 + 0.25 * 0.3)
    assert cal.mce(probs, labels, input="probs", n_bins=10) == pytest.approx(0.4)


def test_confidence_one_and_zero_land_in_the_end_bins():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    labels = np.array([0, 0, 1])
    curve = cal.reliability_curve(probs, labels, input="probs", n_bins=4)
    np.testing.assert_array_equal(curve.counts, [0, 1, 0, 2])  # 0.5 -> (0.25, 0.5]
    np.testing.assert_array_equal(curve.accuracy[[1, 3]], [0.0, 0.5])
    # Class-wise, p = 0 lands in the first bin. Class 0: p = (1, 0, 0.5)
    # against label==0 = (1, 1, 0), three bins of one sample each.
    cw = cal.classwise_ece(probs, labels, input="probs", n_bins=4)
    c0 = (abs(1 - 1) + abs(1 - 0) + abs(0 - 0.5)) / 3
    c1 = (abs(0 - 0) + abs(0 - 1) + abs(1 - 0.5)) / 3  # p = (0, 1, 0.5) vs (0, 0, 1)
    assert cw == pytest.approx((c0 + c1) / 2)


def test_quantile_bins_with_many_ties():
    # 90 samples at confidence 0.8 and 10 at 0.6: ties are never split, so
    # equal-mass binning gives the bins {0.6} and {0.8} whatever n_bins is.
    probs = np.array([[0.8, 0.2]] * 90 + [[0.6, 0.4]] * 10)
    labels = np.array([0] * 63 + [1] * 27 + [0] * 9 + [1])
    expected = 0.9 * abs(63 / 90 - 0.8) + 0.1 * abs(0.9 - 0.6)
    for n_bins in (2, 5, 15, 100):
        got = cal.ece(probs, labels, input="probs", n_bins=n_bins, strategy="quantile")
        assert got == pytest.approx(expected, rel=1e-12)
        curve = cal.reliability_curve(probs, labels, input="probs", n_bins=n_bins, strategy="quantile")
        assert curve.counts.sum() == 100 and set(curve.counts[curve.counts > 0]) == {10, 90}
    # All tied: one bin.
    same = cal.ece(probs[:90], labels[:90], input="probs", strategy="quantile")
    assert same == pytest.approx(abs(0.7 - 0.8))


def test_quantile_bins_have_equal_mass_without_ties():
    z, y = make_data(1500, 10, 2.0, seed=15, dtype=np.float64)
    curve = cal.reliability_curve(z, y, n_bins=15, strategy="quantile")
    np.testing.assert_array_equal(curve.counts, np.full(15, 100))
    _, conf, correct, _, _ = _reference_rows(z, y, "logits")
    order = np.argsort(conf)
    groups = np.array_split(order, 15)
    ref = sum(len(g) / 1500 * abs(correct[g].mean() - conf[g].mean()) for g in groups)
    assert cal.ece(z, y, strategy="quantile") == pytest.approx(ref, rel=1e-12)


def test_debiased_l2_matches_kumar_formula():
    z, y = make_data(2000, 10, 2.0, seed=16, dtype=np.float64)
    _, conf, correct, _, _ = _reference_rows(z, y, "logits")
    order = np.argsort(conf)
    total = 0.0
    for g in np.array_split(order, 10):
        acc, mean_conf, n_b = correct[g].mean(), conf[g].mean(), len(g)
        total += n_b / len(y) * ((acc - mean_conf) ** 2 - acc * (1 - acc) / (n_b - 1))
    ref = math.sqrt(max(total, 0.0))
    got = cal.ece(z, y, n_bins=10, strategy="quantile", norm="l2", debias=True)
    assert got == pytest.approx(ref, rel=1e-12)
    assert got < cal.ece(z, y, n_bins=10, strategy="quantile", norm="l2")


def test_debiased_is_near_zero_for_calibrated_probabilities():
    # Labels drawn from the probabilities themselves: the plug-in l2 error is
    # biased upward; the debiased one is much closer to the true 0.
    rng = np.random.default_rng(17)
    conf = rng.uniform(0.5, 1.0, 20_000)
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = (rng.random(20_000) > conf).astype(int)
    plug_in = cal.ece(probs, labels, input="probs", n_bins=50, norm="l2")
    debiased = cal.ece(probs, labels, input="probs", n_bins=50, norm="l2", debias=True)
    assert debiased < 0.5 * plug_in


def test_classwise_ece_matches_loop():
    z, y = make_data(900, 5, 1.5, seed=18, dtype=np.float64)
    p = scipy_special.softmax(z, axis=1)
    ref = np.mean([reference_ece(p[:, k], (y == k).astype(float), 15) for k in range(5)])
    assert cal.classwise_ece(z, y) == pytest.approx(ref, rel=1e-12)


def test_reliability_curve_values():
    z, y = make_data(1000, 4, 2.0, seed=19, dtype=np.float64)
    _, conf, correct, _, _ = _reference_rows(z, y, "logits")
    curve = cal.reliability_curve(z, y, n_bins=5)
    np.testing.assert_allclose(curve.edges, np.linspace(0, 1, 6))
    for i in range(5):
        lo, hi = curve.edges[i], curve.edges[i + 1]
        inside = (conf > lo) & (conf <= hi)
        assert curve.counts[i] == inside.sum()
        if inside.any():
            assert curve.confidence[i] == pytest.approx(conf[inside].mean(), rel=1e-12)
            assert curve.accuracy[i] == pytest.approx(correct[inside].mean(), rel=1e-12)
        else:
            assert np.isnan(curve.confidence[i]) and np.isnan(curve.accuracy[i])


@pytest.mark.parametrize(
    "scores, labels, kwargs, match",
    [
        ([[0.5, 0.6]], [0], {"input": "probs"}, r"probs must sum to 1 .* got 1.1"),
        ([[1.2, -0.2]], [0], {"input": "probs"}, r"probs must lie in \[0, 1\], got -0.2"),
        ([[0.5, 0.5]], [0], {"input": "prob"}, r"input must be 'logits' or 'probs', got 'prob'"),
        ([[0.5, 0.5]], [0], {"n_bins": 0}, r"n_bins must be a positive integer, got 0"),
        ([[0.5, 0.5]], [0], {"strategy": "equal"}, r"strategy must be 'uniform' or 'quantile'"),
        ([[0.5, 0.5]], [0], {"norm": "l3"}, r"norm must be 'l1' or 'l2' or 'max'"),
        ([[0.5, 0.5]], [0], {"debias": True}, r"debias=True needs norm='l2'"),
        ([[0.5, np.nan]], [0], {}, r"logits must be finite, got nan in sample 0"),
        ([[0.5, 0.5]], [3], {}, r"labels must be class indices in \[0, 2\), got 3"),
        (np.zeros((0, 2)), np.zeros(0, int), {}, r"at least one sample"),
    ],
)
def test_metric_bad_input(scores, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cal.ece(scores, labels, **kwargs)


def test_float32_probabilities_within_rounding_are_accepted():
    z, y = make_data(200, 100, 1.0, seed=20, dtype=np.float64)
    p32 = scipy_special.softmax(z, axis=1).astype(np.float32)
    assert cal.nll(p32, y, input="probs") == pytest.approx(cal.nll(z, y), rel=1e-5)


def test_docstring_examples_run():
    pytest.importorskip("matplotlib")
    import importlib

    attempted = 0
    for name in ("_estimator", "_fit", "_metrics", "_plot"):
        module = importlib.import_module(f"softmax.calibration.{name}")
        with np.printoptions(legacy=False):
            result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted > 60


def test_real_dask_arrays_fit_the_same_temperature():
    da = pytest.importorskip("dask.array")
    z, y = make_data(3000, 10, 2.2, seed=21)
    ts = fit_temperature(da.from_array(z, chunks=(700, 10)), da.from_array(y, chunks=700))
    assert ts.converged and not ts.at_bound
    assert ts.temperature == pytest.approx(scipy_temperature(z, y), rel=1e-6)
    assert ts.temperature == pytest.approx(fit_temperature(z, y).temperature, rel=1e-9)
    assert ts.nll_before == pytest.approx(scipy_nll(z, y, 1.0), rel=1e-10)
    # Classes split across chunks too: the (max, moments) merge along axis.
    split = fit_temperature(da.from_array(z, chunks=(1000, 4)), da.from_array(y, chunks=1000))
    assert split.temperature == pytest.approx(ts.temperature, rel=1e-9)
