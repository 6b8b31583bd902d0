"""Temperature scaling on logits of published networks (see shared/data/calibration/SOURCE.md).

For each set, T is fitted on the validation split and judged on the test
split, against scipy and against a plain ECE loop written here. Skipped when
the data folder is absent (set SOFTMAX_CALIBRATION_DATA to point at it).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

scipy_special = pytest.importorskip("scipy.special")
scipy_optimize = pytest.importorskip("scipy.optimize")

from softmax import calibration as cal  # noqa: E402


def _data_dir() -> Path:
    env = os.environ.get("SOFTMAX_CALIBRATION_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "calibration"


DATA = _data_dir()
SETS = ["resnet110_cifar10", "resnet56_cifar100", "repvgg_a2_cifar100"]

pytestmark = pytest.mark.skipif(
    not (DATA / "resnet110_cifar10" / "logits_val.npy").exists(),
    reason=f"calibration data not found at {DATA} (set SOFTMAX_CALIBRATION_DATA)",
)


def load(name):
    d = DATA / name
    return tuple(np.load(d / f) for f in ("logits_val.npy", "labels_val.npy", "logits_test.npy", "labels_test.npy"))


def scipy_nll(z, y, t):
    lp = scipy_special.log_softmax(z.astype(np.float64) / t, axis=1)
    return -lp[np.arange(len(y)), y].mean()


def scipy_temperature(z, y):
    res = scipy_optimize.minimize_scalar(
        lambda u: scipy_nll(z, y, math.exp(u)), bounds=(-4.6, 4.6), method="bounded",
        options={"xatol": 1e-10},
    )
    return math.exp(res.x)


def plain_ece(z, y, n_bins=15):
    """Guo et al.'s loop over bins (lo, hi], in float64 from scipy's softmax."""
    p = scipy_special.softmax(z.astype(np.float64), axis=1)
    conf, correct = p.max(1), p.argmax(1) == y
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return total


@pytest.fixture(scope="module", params=SETS)
def fitted(request):
    zv, yv, zt, yt = load(request.param)
    return request.param, cal.fit_temperature(zv, yv), (zv, yv, zt, yt)


def test_temperature_matches_scipy(fitted):
    name, ts, (zv, yv, _, _) = fitted
    assert ts.converged and not ts.at_bound, ts.message
    assert ts.temperature == pytest.approx(scipy_temperature(zv, yv), rel=1e-4)
    assert ts.nll_before == pytest.approx(scipy_nll(zv, yv, 1.0), rel=1e-10)
    assert ts.nll_after == pytest.approx(scipy_nll(zv, yv, ts.temperature), rel=1e-10)


def test_ece_matches_plain_loop(fitted):
    _, ts, (_, _, zt, yt) = fitted
    assert cal.ece(zt, yt) == pytest.approx(plain_ece(zt, yt), abs=1e-12)
    scaled = zt.astype(np.float64) / ts.temperature
    assert cal.ece(zt / np.float32(ts.temperature), yt) == pytest.approx(plain_ece(scaled, yt), abs=1e-6)


# Test-split numbers measured with this package and checked against the
# plain loops above; the point here is the direction and size of the change.
EXPECTED_T = {"resnet110_cifar10": 2.3950, "resnet56_cifar100": 1.7387, "repvgg_a2_cifar100": 1.0581}


def test_nll_and_ece_drop_on_the_test_split(fitted):
    name, ts, (_, _, zt, yt) = fitted
    assert ts.temperature == pytest.approx(EXPECTED_T[name], abs=1e-4)
    after = zt / np.float32(ts.temperature)
    nll_before, nll_after = scipy_nll(zt, yt, 1.0), scipy_nll(zt, yt, ts.temperature)
    ece_before, ece_after = plain_ece(zt, yt), plain_ece(zt.astype(np.float64) / ts.temperature, yt)
    assert cal.nll(after, yt) == pytest.approx(nll_after, rel=1e-6)
    if name == "repvgg_a2_cifar100":
        # SOURCE.md: nearly calibrated already (T = 1.06). Scaling barely
        # helps: NLL 0.9095 -> 0.9067, ECE 0.0591 -> 0.0515.
        assert 0 < nll_before - nll_after < 0.01
        assert 0 < ece_before - ece_after < 0.02
    else:
        # Overconfident nets: both drop a lot (NLL by > 15 %, ECE by > 3x).
        assert nll_after < 0.85 * nll_before
        assert ece_after < ece_before / 3
    # Temperature scaling keeps every arg max, so accuracy is unchanged.
    assert cal.accuracy(after, yt) == cal.accuracy(zt, yt)


def test_published_numbers_resnet110():
    # markus93/NN_calibration notebook, uncalibrated test split (SOURCE.md).
    _, _, zt, yt = load("resnet110_cifar10")
    assert cal.accuracy(zt, yt) == pytest.approx(0.9356, abs=1e-12)
    assert cal.ece(zt, yt, n_bins=15) == pytest.approx(0.047503518641, abs=1e-7)
    assert cal.nll(zt, yt) == pytest.approx(0.358274134971, abs=1e-7)
