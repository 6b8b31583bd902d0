"""The temperature-scaling objective and fit on Dask arrays, on a real distributed LocalCluster.

References: the same sums written here in SciPy, finite differences for
their derivatives, scipy.optimize for T. Moved here with the objective
(from softmax._dask to softmax.calibration._objective).
"""

import math

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
scipy_special = pytest.importorskip("scipy.special")
scipy_optimize = pytest.importorskip("scipy.optimize")

from softmax.calibration import fit_temperature  # noqa: E402
from softmax.calibration._inputs import check_dask_scores  # noqa: E402
from softmax.calibration._objective import DaskObjective, ObjectiveValue  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def temperature_objective(logits, labels, *, axis=-1, weights=None, input="logits", where=None):
    return DaskObjective(check_dask_scores(logits, labels, axis=axis, weights=weights,
                                           input=input, where=where))


def numpy_sums(x, y, w, u):
    """The same sums in plain NumPy/SciPy, derivatives by the closed forms
    written independently: with p = softmax(z), z = x e^-u,
    dNLL/du = z_y - E_p z and d2NLL/du2 = -z_y + E_p z + Var_p z."""
    z = x * np.exp(-u)
    zy = z[np.arange(len(y)), y]
    p = scipy_special.softmax(z, axis=1)
    ez = np.sum(p * z, axis=1)
    var = np.sum(p * (z - ez[:, None]) ** 2, axis=1)
    f = np.sum(w * (scipy_special.logsumexp(z, axis=1) - zy))
    return f, np.sum(w * (zy - ez)), np.sum(w * (-zy + ez + var)), np.sum(w)


def scipy_temperature(z, y, w=None):
    """T where the NLL's u-derivative (written here with scipy's softmax) is 0.

    A root of the derivative is found to ~1e-15 (minimize_scalar on NLL
    values alone is limited to ~1e-8 by the rounding of the sum).
    """
    z = np.asarray(z, np.float64)
    rows = np.arange(len(y))

    def slope(u):
        b = z / math.exp(u)
        p = scipy_special.softmax(b, axis=1)
        return np.average(b[rows, y] - (p * b).sum(axis=1), weights=w)

    return math.exp(scipy_optimize.brentq(slope, math.log(1e-2), math.log(1e2), xtol=1e-15))


@pytest.mark.parametrize("chunks", [(250, 10), (300, 3), (1000, 10)])
def test_objective_matches_scipy_and_finite_differences(client, chunks):
    rng = np.random.default_rng(4)
    n, c = 1000, 10
    x = rng.standard_normal((n, c)) * 3
    y = rng.integers(0, c, n)
    w = rng.random(n)
    objective = temperature_objective(
        da.from_array(x, chunks=chunks), da.from_array(y, chunks=chunks[0]), weights=w
    )
    for u in (-1.0, 0.0, 1.5):
        value = objective(u)
        assert isinstance(value, ObjectiveValue) and value.d3f is None
        # Weights are divided by their largest (only ratios matter).
        ref = numpy_sums(x, y, w / w.max(), u)
        np.testing.assert_allclose(value[:4], ref, rtol=1e-12)
        h = 1e-5
        fd1 = (objective(u + h).f - objective(u - h).f) / (2 * h)
        fd2 = (objective(u + h).df - objective(u - h).df) / (2 * h)
        np.testing.assert_allclose(value.df, fd1, rtol=1e-7)
        np.testing.assert_allclose(value.d2f, fd2, rtol=1e-7)


def test_objective_axis_and_impossible_classes(client):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 200)) * 2  # classes along axis 0
    x[2, :] = -np.inf                      # class 2 impossible everywhere
    y = rng.choice([0, 1, 3, 4, 5], 200)
    objective = temperature_objective(da.from_array(x, chunks=(4, 50)), y, axis=0)
    value = objective(0.3)
    ref = numpy_sums(np.delete(x.T, 2, axis=1), np.where(y > 2, y - 1, y), np.ones(200), 0.3)
    np.testing.assert_allclose(value[:3], ref[:3], rtol=1e-12)
    assert value.total_weight == 200.0


def test_objective_errors(client):
    x = da.zeros((4, 3), chunks=2)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\), got 3"):
        temperature_objective(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        temperature_objective(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="labels must be an array of integers"):
        temperature_objective(x, np.zeros(4))
    with pytest.raises(ValueError, match=r"weights must have shape \(4,\)"):
        temperature_objective(x, np.zeros(4, int), weights=np.ones(3))
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        temperature_objective(x, np.zeros(4, int), weights=np.array([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="weights must not all be 0"):
        temperature_objective(x, np.zeros(4, int), weights=np.zeros(4))


def test_one_class_is_refused_as_in_numpy(client):
    # Issue 15 section 6: Dask accepted one class where NumPy refuses.
    z = np.zeros((6, 1))
    y = np.zeros(6, int)
    with pytest.raises(ValueError, match="logits must have at least 2 classes") as numpy_error:
        fit_temperature(z, y)
    with pytest.raises(ValueError, match="logits must have at least 2 classes") as dask_error:
        fit_temperature(da.from_array(z, chunks=3), y)
    assert str(numpy_error.value).split(" (shape")[0] == str(dask_error.value).split(" (shape")[0]
    with pytest.raises(ValueError, match="at least one sample"):
        fit_temperature(da.zeros((0, 3), chunks=2), np.zeros(0, int))


def _data(n=2000, k=6, seed=6):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    y = (rng.random((n, 1)) > np.cumsum(scipy_special.softmax(z / 2.0, axis=1), axis=1)).sum(1)
    return z, y.clip(0, k - 1)


def test_fit_weights_probs_binary_and_where_agree_with_numpy(client):
    z, y = _data()
    w = np.random.default_rng(7).random(len(y))
    dz, dy = da.from_array(z, chunks=(500, 3)), da.from_array(y, chunks=500)
    t_ref = scipy_temperature(z, y, w)
    got = fit_temperature(dz, dy, weights=da.from_array(w * 1e-300, chunks=500)).temperature
    assert got == pytest.approx(t_ref, rel=1e-10)
    # Probabilities: fitted on log p, the same T as the logits.
    p = scipy_special.softmax(z, axis=1)
    t_p = fit_temperature(da.from_array(p, chunks=(500, 6)), dy, input="probs").temperature
    assert t_p == pytest.approx(scipy_temperature(z, y), rel=1e-10)
    # Binary logits: z stands for [0, z].
    zb, yb = z[:, 1] - z[:, 0], (y == 1).astype(int)
    two = np.stack([np.zeros_like(zb), zb], axis=1)
    t_b = fit_temperature(da.from_array(zb, chunks=500), yb).temperature
    assert t_b == pytest.approx(scipy_temperature(two, yb), rel=1e-10)
    # where= excludes classes, as -inf logits would.
    keep = np.ones(z.shape, bool)
    keep[:, 5] = False
    sel = y != 5
    t_w = fit_temperature(da.from_array(z[sel], chunks=(400, 3)), y[sel], where=keep[sel]).temperature
    assert t_w == pytest.approx(scipy_temperature(z[sel][:, :5], y[sel]), rel=1e-10)


def test_masked_dask_array_excludes_classes(client):
    z, y = _data(seed=8)
    mask = np.zeros(z.shape, bool)
    mask[:, 0] = True
    sel = y != 0
    m = np.ma.masked_array(z[sel], mask[sel])
    dm = da.from_array(m, chunks=(300, 6), asarray=False)
    got = fit_temperature(dm, y[sel]).temperature
    assert got == pytest.approx(scipy_temperature(z[sel][:, 1:], y[sel] - 1), rel=1e-10)
    # A label on a masked class makes the objective infinite: an error, not a T.
    with pytest.raises(ValueError, match="finite NLL"):
        fit_temperature(da.from_array(np.ma.masked_array(z, mask), chunks=(300, 6),
                                      asarray=False), y)
