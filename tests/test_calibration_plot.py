"""reliability_diagram renders real PNG files (Agg) that hold a drawing."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from softmax import calibration as cal  # noqa: E402


def make_data(n=2000, k=5, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    y = rng.integers(0, k, n)
    z[np.arange(n), y] += 2.0
    return z.astype(np.float32), y


def _check_png(path, min_w, min_h):
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert w >= min_w and h >= min_h and w < 4000 and h < 4000
    rgb = img[..., :3]
    # Not blank: several distinct colours, a fair share of non-white pixels.
    assert rgb.std() > 0.05
    assert (rgb.min(axis=2) < 0.9).mean() > 0.05
    assert len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20
    return img


def test_single_diagram_png(tmp_path):
    z, y = make_data()
    path = tmp_path / "one.png"
    fig = cal.reliability_diagram(z, y, path=path)
    assert isinstance(fig, Figure)
    _check_png(path, 400, 500)
    title = fig.axes[0].get_title()
    assert f"ECE = {100 * cal.ece(z, y):.2f} %" in title


def test_before_after_png(tmp_path):
    z, y = make_data(seed=1)
    ts = cal.fit_temperature(z, y)
    path = tmp_path / "two.png"
    fig = cal.reliability_diagram(z, y, calibrated=ts, path=path, title="demo")
    img = _check_png(path, 900, 500)
    assert img.shape[1] > img.shape[0]  # two panels side by side
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any(f"ECE = {100 * cal.ece(z, y):.2f} %" in t and "before" in t for t in titles)
    after = f"ECE = {100 * cal.ece(ts.transform(z), y):.2f} %"
    assert any(after in t and "after" in t for t in titles)


def test_bars_are_the_reliability_curve():
    z, y = make_data(seed=2)
    fig = cal.reliability_diagram(z, y, n_bins=10)
    curve = cal.reliability_curve(z, y, n_bins=10)
    full = curve.counts > 0
    bars = [p for p in fig.axes[0].patches if p.get_facecolor()[3] == 1.0]
    heights = sorted(round(b.get_height(), 12) for b in bars[: full.sum()])
    assert heights == sorted(np.round(curve.accuracy[full], 12))


def test_probabilities_and_given_axes(tmp_path):
    z, y = make_data(seed=3)
    p = cal.TemperatureScaling(1.0).predict_proba(z)
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = cal.reliability_diagram(p, y, calibrated=cal.TemperatureScaling(2.0).predict_proba(z),
                                  input="probs", ax=axes, strategy="quantile")
    assert out is fig
    fig.savefig(tmp_path / "axes.png")
    _check_png(tmp_path / "axes.png", 300, 200)


def test_errors():
    z, y = make_data(n=50)
    fig = Figure()
    with pytest.raises(ValueError, match="ax must be 2 Axes"):
        cal.reliability_diagram(z, y, calibrated=z, ax=fig.subplots())
    with pytest.raises(ValueError, match="calibrated must be a TemperatureScaling for "
                                         "input='probs' scores, got one with input='logits'"):
        cal.reliability_diagram(cal.TemperatureScaling(1.0).predict_proba(z), y, input="probs",
                                calibrated=cal.TemperatureScaling(2.0))


def test_estimator_on_probabilities_draws_before_and_after(tmp_path):
    # An estimator fitted on probabilities applies to probability scores:
    # the "after" panel is softmax(log p / T), with its ECE in the title.
    z, y = make_data(seed=4)
    p = cal.TemperatureScaling(1.0).predict_proba(z)
    ts = cal.TemperatureScaling(input="probs").fit(p, y)
    fig = cal.reliability_diagram(p, y, input="probs", calibrated=ts, path=tmp_path / "p.png")
    _check_png(tmp_path / "p.png", 900, 500)
    expected = cal.ece(ts.predict_proba(p), y, input="probs")
    assert any(f"ECE = {100 * expected:.2f} %" in ax.get_title() for ax in fig.axes)


def test_binary_diagram_axes_are_labelled_as_positives():
    rng = np.random.default_rng(5)
    p = rng.random(400)
    y = rng.random(400) < p
    fig = cal.reliability_diagram(p, y, input="probs", n_bins=5)
    assert fig.axes[0].get_ylabel() == "fraction of positives"
    assert "class 1" in fig.axes[1].get_xlabel()


def test_missing_matplotlib_names_the_pip_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    z, y = make_data(n=50)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        cal.reliability_diagram(z, y)
