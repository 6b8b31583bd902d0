"""softmax.calibration: no confident wrong answers (issue 13), masks and edges (issue 15).

References are written here: scipy.special, scikit-learn's
calibration_curve / brier_score_loss, and hand computations.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

scipy_special = pytest.importorskip("scipy.special")
scipy_optimize = pytest.importorskip("scipy.optimize")

from softmax import calibration as cal  # noqa: E402
from softmax.calibration import TemperatureScaling, fit_temperature  # noqa: E402


def make_data(n, k, t_true, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    p = scipy_special.softmax(z / t_true, axis=1)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(0, k - 1)
    return z, y


def reference_temperature(z, y, w=None):
    """Root of the NLL's u-derivative, written with scipy's softmax (to ~1e-15)."""
    z = np.asarray(z, np.float64)
    rows = np.arange(len(y))

    def slope(u):
        b = z / math.exp(u)
        p = scipy_special.softmax(b, axis=1)
        return np.average(b[rows, y] - (p * b).sum(axis=1), weights=w)

    return math.exp(scipy_optimize.brentq(slope, math.log(1e-2), math.log(1e2), xtol=1e-15))


def hand_ece(p, y, n_bins=15):
    """Binary ECE by hand: bins (lo, hi] of p(class 1), 0 in the first, against y == 1."""
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for i in range(n_bins):
        inside = (p > edges[i]) & (p <= edges[i + 1])
        if i == 0:
            inside |= p == 0
        if inside.any():
            total += inside.mean() * abs((y[inside] == 1).mean() - p[inside].mean())
    return total


# ------------------------------------------- probabilities passed as logits


def test_probabilities_as_logits_are_refused_everywhere():
    # Issue 13: ece(probs, y) gave 0.707 where the truth is 0.139, and
    # fit_temperature(softmax(z), y) a T of 0.147: now a clear error.
    z, y = make_data(500, 10, 2.0, seed=1)
    probs = scipy_special.softmax(z, axis=1)
    for fn in (cal.nll, cal.brier, cal.accuracy, cal.ece, cal.mce, cal.classwise_ece,
               cal.reliability_curve, fit_temperature):
        with pytest.raises(ValueError, match=r'logits must not be probabilities.*input="probs"'):
            fn(probs, y)
    with pytest.raises(ValueError, match='input="probs"'):
        TemperatureScaling().fit(probs, y)
    with pytest.raises(ValueError, match='input="probs"'):
        TemperatureScaling(2.0).predict_proba(probs)
    # The same numbers with input="probs" are right: the ECE of the
    # probabilities equals that of the logits they came from.
    assert cal.ece(probs, y, input="probs") == pytest.approx(cal.ece(z, y), rel=1e-12)


@pytest.mark.parametrize("dtype, k", [(np.float16, 10), (np.float32, 10), (np.float32, 1000),
                                      (np.float64, 100)])
def test_detection_tolerance_follows_the_dtype(dtype, k):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(50, k)) * 2
    probs = scipy_special.softmax(z, axis=1).astype(dtype)  # sums off by the dtype's rounding
    y = rng.integers(0, k, 50)
    with pytest.raises(ValueError, match="logits must not be probabilities"):
        cal.ece(probs, y)
    assert cal.nll(probs, y, input="probs") == pytest.approx(
        cal.nll(z, y), rel=50 * float(np.finfo(dtype).eps) + 1e-12)


def test_logits_in_the_unit_interval_that_do_not_sum_to_one_are_logits():
    z = np.array([[0.2, 0.3, 0.1], [0.9, 0.0, 0.05]])  # in [0, 1], sums 0.6 and 0.95
    y = np.array([1, 0])
    ref = -scipy_special.log_softmax(z, axis=1)[[0, 1], y].mean()
    assert cal.nll(z, y) == pytest.approx(ref, rel=1e-14)


def test_one_row_that_is_not_a_distribution_is_enough():
    probs = np.array([[0.5, 0.5], [0.25, 0.75], [3.0, -1.0]])
    assert cal.nll(probs, [0, 1, 0]) > 0  # read as logits: no error


@pytest.mark.parametrize(
    "scores, match",
    [
        ([[0.5, 0.6]], r"probs must sum to 1 along the class axis \(within 1.0e-06\), got 1.1"),
        ([[1.2, -0.2]], r"probs must lie in \[0, 1\], got -0.2 in sample 0"),
        ([[np.nan, 1.0]], r"probs must be finite, got nan in sample 0"),
        ([0.5, 1.5], r"probs must lie in \[0, 1\], got 1.5 in sample 1"),
    ],
)
def test_probabilities_must_be_distributions(scores, match):
    labels = [0] * len(scores)
    for fn in (cal.ece, cal.nll, fit_temperature):
        with pytest.raises(ValueError, match=match):
            fn(scores, labels, input="probs")


def test_fit_on_probabilities_is_the_fit_on_their_logarithm():
    z, y = make_data(3000, 8, 1.8, seed=3)
    probs = scipy_special.softmax(z, axis=1)
    ts = fit_temperature(probs, y, input="probs")
    assert ts.temperature == pytest.approx(reference_temperature(np.log(probs), y), rel=1e-10)
    assert ts.temperature == pytest.approx(reference_temperature(z, y), rel=1e-9)
    est = TemperatureScaling(input="probs").fit(probs, y)
    assert est.temperature_ == ts.temperature
    np.testing.assert_allclose(est.predict_proba(probs),
                               scipy_special.softmax(z / ts.temperature, axis=1), rtol=1e-9,
                               atol=1e-300)


def test_probability_zero_on_a_label_cannot_be_fitted_but_elsewhere_is_fine():
    probs = np.array([[0.7, 0.3, 0.0], [0.1, 0.9, 0.0], [0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    y = np.array([0, 1, 2, 1])
    ts = fit_temperature(probs, y, input="probs")
    ref = reference_temperature(np.log(probs[:, :2]).clip(-800), np.array([0, 1, 0, 1]))
    assert np.isfinite(ts.temperature) and ts.converged
    del ref  # the 0s are excluded classes; checked against the masked fit below
    masked = np.ma.masked_array(np.log(np.where(probs > 0, probs, 1.0)), probs == 0)
    assert ts.temperature == pytest.approx(fit_temperature(masked, y).temperature, rel=1e-12)
    with pytest.raises(ValueError, match="probs must give each label a probability > 0"):
        fit_temperature(probs, [2, 1, 2, 1], input="probs")


# ------------------------------------------------------------------ binary


def test_binary_ece_from_the_issue():
    # Issue 13: "labels must have shape ()" before.
    got = cal.ece(np.array([0.2, 0.9, 0.7]), [0, 1, 1], input="probs")
    assert got == pytest.approx((0.2 + 0.1 + 0.3) / 3, rel=1e-15)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_binary_metrics_against_hand_computation(n_bins):
    rng = np.random.default_rng(4)
    p = rng.beta(0.7, 0.7, 3000)
    y = (rng.random(3000) < p ** 1.5).astype(int)
    assert cal.ece(p, y, input="probs", n_bins=n_bins) == pytest.approx(hand_ece(p, y, n_bins),
                                                                        rel=1e-12)
    assert cal.brier(p, y, input="probs") == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    nll = -np.mean(np.where(y == 1, np.log(p), np.log1p(-p)))
    assert cal.nll(p, y, input="probs") == pytest.approx(nll, rel=1e-12)
    assert cal.accuracy(p, y, input="probs") == np.mean((p > 0.5) == y)
    # Bool labels are 0/1; logits are the log-odds of the same probabilities.
    logit = np.log(p) - np.log1p(-p)
    assert cal.ece(logit, y.astype(bool), n_bins=n_bins) == pytest.approx(
        hand_ece(p, y, n_bins), rel=1e-9)


def test_binary_against_scikit_learn():
    calibration = pytest.importorskip("sklearn.calibration")
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    p = rng.random(2000)
    y = rng.random(2000) < p ** 2
    prob_true, prob_pred = calibration.calibration_curve(y, p, n_bins=10)
    curve = cal.reliability_curve(p, y, input="probs", n_bins=10)
    full = curve.counts > 0
    np.testing.assert_allclose(curve.accuracy[full], prob_true, rtol=1e-12)
    np.testing.assert_allclose(curve.confidence[full], prob_pred, rtol=1e-12)
    weights = curve.counts[full] / len(p)
    assert cal.ece(p, y, input="probs", n_bins=10) == pytest.approx(
        float(weights @ np.abs(prob_true - prob_pred)), rel=1e-12)
    assert cal.brier(p, y, input="probs") == pytest.approx(metrics.brier_score_loss(y, p),
                                                           rel=1e-12)
    assert cal.nll(p, y, input="probs") == pytest.approx(metrics.log_loss(y, p), rel=1e-12)


def test_binary_fit_is_the_two_class_fit():
    rng = np.random.default_rng(6)
    z = rng.normal(size=4000) * 4
    y = (rng.random(4000) < scipy_special.expit(z / 2.5)).astype(int)
    two = np.stack([np.zeros_like(z), z], axis=1)
    ts = fit_temperature(z, y)
    assert ts.temperature == pytest.approx(reference_temperature(two, y), rel=1e-10)
    est = TemperatureScaling().fit(z, y)
    assert est.n_features_in_ == 1 and list(est.classes_) == [0, 1]
    proba = est.predict_proba(z[:5])
    np.testing.assert_allclose(proba[:, 1], scipy_special.expit(z[:5] / est.temperature_),
                               rtol=1e-14)
    np.testing.assert_array_equal(est.predict(z[:5]), (z[:5] > 0).astype(int))
    np.testing.assert_array_equal(est.transform(z[:5]), z[:5] / est.temperature_)
    # Probabilities of the positive class: the same T.
    p = scipy_special.expit(z)
    assert fit_temperature(p, y, input="probs").temperature == pytest.approx(ts.temperature,
                                                                             rel=1e-9)


def test_binary_labels_and_logits_checks():
    with pytest.raises(ValueError, match=r"labels must be 0 or 1 \(or bool\) for binary scores, got 2"):
        cal.ece(np.array([0.2, 0.9]), [0, 2], input="probs")
    with pytest.raises(ValueError, match=r'logits must not all lie in \[0, 1\].*input="probs"'):
        cal.ece(np.array([0.2, 0.9, 0.7]), [0, 1, 1])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        cal.ece(np.array([0.2, 0.9, 0.7]), 1, input="probs")


# -------------------------------------------------------------------- masks


def test_masked_classes_are_excluded_like_where():
    # Issue 15 section 3: masks were ignored by fit_temperature/ece/nll.
    z, y = make_data(2000, 6, 1.7, seed=7)
    mask = np.zeros(z.shape, bool)
    mask[:, 4] = True
    mask[::3, 2] = True
    y = np.where(mask[np.arange(len(y)), y], 0, y)
    m = np.ma.masked_array(z, mask)
    sub = np.where(mask, -np.inf, z)
    p_ref = scipy_special.softmax(sub, axis=1)
    nll_ref = -np.log(p_ref[np.arange(len(y)), y]).mean()
    assert cal.nll(m, y) == pytest.approx(nll_ref, rel=1e-12)
    assert cal.nll(z, y, where=~mask) == cal.nll(m, y)
    conf, correct = p_ref.max(1), p_ref.argmax(1) == y
    ref_ece = 0.0
    edges = np.linspace(0, 1, 16)
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ref_ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    assert cal.ece(m, y) == pytest.approx(ref_ece, rel=1e-12)
    # The fit: as if the masked logits were -inf, against the derivative root.
    rows = np.arange(len(y))

    def slope(u):
        b = sub / math.exp(u)
        p = scipy_special.softmax(b, axis=1)
        return np.mean(b[rows, y] - np.where(p > 0, p * np.where(np.isfinite(b), b, 0), 0).sum(1))

    t_ref = math.exp(scipy_optimize.brentq(slope, -2, 3, xtol=1e-15))
    assert fit_temperature(m, y).temperature == pytest.approx(t_ref, rel=1e-10)
    # where combines with the mask.
    also = np.ones(z.shape, bool)
    also[:, 5] = False
    y2 = np.where(y == 5, 0, y)
    both = fit_temperature(m, y2, where=also).temperature
    assert both == pytest.approx(fit_temperature(z, y2, where=also & ~mask).temperature, rel=1e-14)
    assert both != pytest.approx(fit_temperature(m, y2).temperature, rel=1e-6)


def test_masked_rows_and_labels_are_dropped():
    z, y = make_data(600, 4, 1.5, seed=8)
    drop = np.zeros(600, bool)
    drop[::5] = True
    y_masked = np.ma.masked_array(y, drop)
    kept_t = fit_temperature(z[~drop], y[~drop]).temperature
    assert fit_temperature(z, y_masked).temperature == kept_t
    assert cal.ece(z, y_masked) == cal.ece(z[~drop], y[~drop])
    # A row with every class masked is dropped too.
    rows_masked = np.ma.masked_array(z, np.repeat(drop[:, None], 4, axis=1))
    assert fit_temperature(rows_masked, y).temperature == kept_t
    assert fit_temperature(rows_masked, y).n_samples == (~drop).sum()
    # A masked weight drops its row.
    w = np.ma.masked_array(np.ones(600), drop)
    assert fit_temperature(z, y, weights=w).temperature == pytest.approx(kept_t, rel=1e-14)
    with pytest.raises(ValueError, match="must keep at least one sample"):
        cal.nll(z, np.ma.masked_array(y, np.ones(600, bool)))


def test_label_on_a_masked_class_is_an_error():
    m = np.ma.masked_array([[1.0, 100.0, 2.0]], mask=[[0, 1, 0]])
    with pytest.raises(ValueError, match=r"labels must name a class that is not masked, got class 1"):
        cal.nll(m, [1])
    # The issue's example: the masked 100 is ignored.
    assert cal.nll(m, [0]) == pytest.approx(math.log1p(math.exp(1.0)), rel=1e-14)


def test_where_shape_and_dtype_errors():
    z = np.zeros((3, 4))
    z[:, 0] = 1
    with pytest.raises(ValueError, match=r"where must broadcast to the scores' shape \(3, 4\)"):
        cal.nll(z, [0, 0, 0], where=np.ones(3, bool))
    with pytest.raises(TypeError, match="where must be a boolean array"):
        cal.nll(z, [0, 0, 0], where=np.ones(4))


# ------------------------------------------------------------- weights/edges


@pytest.mark.parametrize("scale", [1e-320, 1e-300, 1.0, 1e300, 1.5e308])
def test_uniform_weights_of_any_size_fit_the_same_t(scale):
    # Issue 15 section 6: weights of 1e-320 gave another T; weights summing
    # to inf blamed the logits.
    z, y = make_data(100, 5, 2.0, seed=9)
    t = fit_temperature(z, y).temperature
    ts = fit_temperature(z, y, weights=np.full(100, scale))
    assert ts.temperature == t
    assert ts.nll_before == pytest.approx(fit_temperature(z, y).nll_before, rel=1e-15)


def test_weight_errors_name_weights():
    z = np.array([[1.0, 2.0], [0.0, 1.0]])
    for bad, match in [([1.0, np.inf], "weights must be finite and >= 0, got inf at index 1"),
                       ([1.0, -1.0], "weights must be finite and >= 0, got -1.0 at index 1"),
                       ([0.0, 0.0], "weights must not all be 0")]:
        with pytest.raises(ValueError, match=match):
            fit_temperature(z, [0, 1], weights=bad)


def test_tiny_and_huge_temperatures_raise_no_runtime_warning():
    # Issue 15 section 6: TemperatureScaling(1e-320) leaked RuntimeWarnings
    # (the suite turns them into errors; this checks without relying on that).
    z = np.array([[1.0, 2.0, -3.0], [0.0, 0.0, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in (1e-320, 5e-324, 1e-300, 1e300, 1.7e308):
            ts = TemperatureScaling(t)
            p = ts.predict_proba(z)
            assert np.isfinite(p).all() and np.allclose(p.sum(1), 1)
            scaled = ts.transform(z)
            scaled32 = ts.transform(z.astype(np.float32))
            scaled16 = ts.transform(z.astype(np.float16))
            assert ts.predict(z).tolist() == [1, 2]
            ts.to_dict()
            fit = TemperatureScaling(t).fit(z, [1, 2])
            assert fit.temperature_ == t
        tiny = TemperatureScaling(1e-320)
        np.testing.assert_array_equal(tiny.predict_proba(z), [[0, 1, 0], [0, 0, 1]])
        np.testing.assert_array_equal(scaled, z / 1.7e308)
    assert np.isinf(TemperatureScaling(1e-320).transform(z)[0, 0])
    # float32 / float16: T is not rounded to the dtype (1e-320 would be 0).
    np.testing.assert_array_equal(np.sign(TemperatureScaling(1e-320).transform(
        z.astype(np.float32))), np.sign(z))
    del scaled32, scaled16


# ---------------------------------------------------------------- estimator


def test_estimator_convention():
    z, y = make_data(2000, 5, 2.2, seed=10)
    est = TemperatureScaling()
    assert not hasattr(est, "temperature_")
    with pytest.raises(cal._estimator.NotFittedError, match="not fitted: call fit"):
        est.predict_proba(z)
    assert est.fit(z, y) is est
    assert est.temperature_ == pytest.approx(reference_temperature(z, y), rel=1e-10)
    assert est.converged_ and not est.at_bound_ and est.n_iter_ >= 1
    assert est.n_features_in_ == 5 and list(est.classes_) == list(range(5))
    assert est.temperature is None  # the constructor's parameter is left alone
    assert est.get_params() == {"temperature": None, "bounds": (0.01, 100.0), "input": "logits",
                                "axis": -1}
    np.testing.assert_array_equal(est.transform(z), z / est.temperature_)
    np.testing.assert_allclose(est.predict_proba(z),
                               scipy_special.softmax(z / est.temperature_, axis=1), rtol=1e-13)
    np.testing.assert_array_equal(est.predict(z), z.argmax(1))
    with pytest.raises(ValueError, match=r"X must have 5 classes along axis -1 \(as fitted\), got 4"):
        est.predict_proba(z[:, :4])
    # The same as the functional form, and as sklearn.base.clone expects.
    assert fit_temperature(z, y).temperature_ == est.temperature_
    clone = TemperatureScaling(**est.get_params())
    assert clone.fit(z, y).temperature_ == est.temperature_


def test_estimator_with_scikit_learn_clone():
    base = pytest.importorskip("sklearn.base")
    est = TemperatureScaling(bounds=(0.1, 10))
    copy = base.clone(est)
    assert copy.get_params() == est.get_params() and copy is not est


def test_estimator_round_trip(tmp_path):
    z, y = make_data(800, 4, 1.6, seed=11)
    est = TemperatureScaling().fit(z, y)
    path = tmp_path / "t.json"
    est.save(path)
    back = TemperatureScaling.load(path)
    assert back == est
    assert back.temperature_ == est.temperature_ and back.n_features_in_ == 4
    np.testing.assert_array_equal(back.predict_proba(z), est.predict_proba(z))
    assert back.nll_before == est.nll_before_ and back.iterations == est.n_iter_
    # A dict written before the estimator API (version 1, no input/axis keys) loads.
    old = {"format": "softmax.calibration.TemperatureScaling", "version": 1, "temperature": 2.0,
           "nll_before": 0.4, "nll_after": 0.3, "converged": True, "iterations": 3,
           "at_bound": False, "message": "converged", "bounds": [0.01, 100.0], "n_samples": 10}
    ts = TemperatureScaling.from_dict(old)
    assert ts.temperature == ts.temperature_ == 2.0 and ts.n_samples == 10


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("converged", "no", r"converged must be true or false, got 'no'"),
        ("at_bound", 1, r"at_bound must be true or false, got 1"),
        ("bounds", [1], r"bounds must be a pair \(low, high\) of temperatures, got \[1\]"),
        ("bounds", [2, 3], r"bounds must satisfy 0 < low <= 1 <= high"),
        ("bounds", ["a", "b"], r"bounds must be a pair"),
        ("iterations", -1, r"iterations must be an integer >= 0, got -1"),
        ("iterations", 2.5, r"iterations must be an integer >= 0, got 2.5"),
        ("n_samples", True, r"n_samples must be an integer >= 0, got True"),
        ("nll_before", "0.4", r"nll_before must be a finite number >= 0 or None, got '0.4'"),
        ("message", 3, r"message must be a string, got 3"),
        ("temperature", "2", r"temperature must be a finite number > 0, got '2'"),
        ("input", "prob", r"input must be 'logits' or 'probs', got 'prob'"),
        ("version", 2, r"version must be an integer from 1 to 1, got 2"),
        ("format", "x", r"data must be in format"),
    ],
)
def test_from_dict_is_strict(key, value, match):
    data = TemperatureScaling(1.5).to_dict()
    data[key] = value
    with pytest.raises(ValueError, match=match):
        TemperatureScaling.from_dict(data)
