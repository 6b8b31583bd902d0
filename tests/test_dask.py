"""Dask arrays: lazy softmax / log_softmax / logsumexp along chunked axes, on a
real distributed LocalCluster (the temperature-scaling objective is tested in
test_calibration_dask.py).

References: correctly rounded mpmath answers (tests/exact_oracle.py) at the
accuracy promise, edge rows exactly; the C core only where the promise is
bit-for-bit agreement (a single chunk along the reduced axis).
"""

import dask
import numpy as np
import pytest

import softmax as sm
import exact_oracle as eo
import ulp_reference as ur

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def ulps(a, b):
    a = np.asarray(a)
    return ur.ulp_distance(a, np.asarray(b).astype(a.dtype))


def bound(dtype):
    return 2 if np.dtype(dtype) == np.float64 else 1


def data(dtype=np.float64, shape=(9, 40), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 25
    x[1, 3] = np.nan                 # NaN slice (row 1, column 3)
    x[2, :] = -np.inf                # empty row
    x[3, [0, 17, 33]] = np.inf       # +inf in three different chunks
    x[4, 5:] = -np.inf               # only the first chunk is live
    x[6, 20] = 400.0                 # one dominant entry
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [1, 0, (0, 1), None])
@pytest.mark.parametrize("kw", [{}, {"temperature": 0.3}, {"temperature": 0},
                                {"temperature": np.inf}, {"base": 0.5}])
def test_softmax_along_split_axes(client, dtype, axis, kw):
    x = data(dtype)
    d = da.from_array(x, chunks=(4, 7))  # every axis split
    for fn in (sm.softmax, sm.log_softmax):
        lazy = fn(d, axis=axis, **kw)
        assert isinstance(lazy, da.Array) and lazy.dtype == dtype
        assert lazy.chunks == d.chunks
        got = lazy.compute()
        eo.check_softmax(got, x, axis, log=fn is sm.log_softmax, **kw, what=fn.__name__)


def test_no_rechunking_of_the_reduced_axis(client):
    d = da.from_array(data(), chunks=(9, 5))
    lazy = sm.softmax(d, axis=1)
    names = " ".join(str(k) for k in lazy.dask.layers)
    assert "rechunk" not in names
    assert "softmax-state" in names  # the tree reduction of (max, sum) states
    assert lazy.chunks == d.chunks


def test_many_chunks_tree_reduction(client):
    # 64 chunks along the reduced axis with split_every=4: three levels of combine
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 640)) * 40
    d = da.from_array(x, chunks=(3, 10))
    got = sm.softmax(d, axis=1).compute()
    eo.check_softmax(got, x, 1)
    with dask.config.set(split_every=4):
        lazy = sm.logsumexp(d, axis=1)
    assert len([k for k in lazy.dask.layers if "logsumexp-state" in str(k)]) >= 3
    lse = lazy.compute()
    expected = ur.round_all([ur.ref_logsumexp(r) for r in x], np.float64)
    assert ulps(lse, expected).max() <= 1


def test_single_chunk_axis_is_the_c_core_bit_for_bit(client):
    x = data()
    d = da.from_array(x, chunks=(2, 40))
    np.testing.assert_array_equal(sm.softmax(d, temperature=2.0).compute(), sm.softmax(x, temperature=2.0))
    np.testing.assert_array_equal(sm.logsumexp(d, axis=1).compute(), sm.logsumexp(x, axis=1))
    keep = x > 0
    np.testing.assert_array_equal(sm.logsumexp(d, axis=1, where=keep, keepdims=True).compute(),
                                  sm.logsumexp(x, axis=1, where=keep, keepdims=True))


def test_where_as_numpy_and_dask(client):
    x = data()
    keep = np.random.default_rng(2).random(x.shape) > 0.4
    keep[5] = False  # a fully masked row
    d = da.from_array(x, chunks=(4, 7))
    for where in (keep, da.from_array(keep, chunks=(3, 11)), keep[0]):
        for fn in (sm.softmax, sm.log_softmax):
            got = fn(d, where=where).compute()
            eo.check_softmax(got, x, -1, log=fn is sm.log_softmax, where=np.asarray(where))
        got = sm.logsumexp(d, axis=1, where=where).compute()
        eo.check_logsumexp(got, x, 1, where=np.asarray(where))


@pytest.mark.parametrize("axis", [1, 0, None, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp(client, axis, keepdims):
    x = data()
    d = da.from_array(x, chunks=(4, 7))
    lazy = sm.logsumexp(d, axis=axis, keepdims=keepdims)
    assert isinstance(lazy, da.Array)
    expected = sm.logsumexp(x, axis=axis, keepdims=keepdims)
    got = lazy.compute()
    assert got.shape == np.shape(expected)
    eo.check_logsumexp(got, x, axis)
    v, s = sm.logsumexp(d, axis=axis, keepdims=keepdims, return_sign=True)
    v_ref, s_ref = sm.logsumexp(x, axis=axis, keepdims=keepdims, return_sign=True)
    np.testing.assert_array_equal(s.compute(), s_ref)


def test_logsumexp_weights(client):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 30)) * 10
    b = rng.standard_normal(30)
    d = da.from_array(x, chunks=(2, 8))
    for bb in (b, da.from_array(b, chunks=10)):
        v, s = sm.logsumexp(d, axis=1, b=bb, return_sign=True)
        v_ref, s_ref = sm.logsumexp(x, axis=1, b=b, return_sign=True)
        np.testing.assert_allclose(v.compute(), v_ref, rtol=1e-13)
        np.testing.assert_array_equal(s.compute(), s_ref)
        plain = sm.logsumexp(d, axis=1, b=bb).compute()
        assert np.isnan(plain[s_ref < 0]).all()


def test_float16_and_integers(client):
    x = np.arange(24).reshape(4, 6) % 5
    d = da.from_array(x, chunks=(2, 2))
    got = sm.softmax(d, axis=1).compute()
    assert got.dtype == np.float64
    eo.check_softmax(got, x, 1)
    h = da.from_array(x.astype(np.float16), chunks=(2, 2))
    got16 = sm.log_softmax(h, axis=0).compute()
    assert got16.dtype == np.float16
    eo.check_softmax(got16, x.astype(np.float16), 0, log=True)


def test_errors(client):
    d = da.zeros((3, 4), chunks=2)
    with pytest.raises(TypeError, match="out must be None for a Dask array"):
        sm.softmax(d, out=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"where must broadcast to x.shape \(3, 4\)"):
        sm.softmax(d, where=np.ones(5, bool))
    with pytest.raises(TypeError, match="where must be a boolean array"):
        sm.softmax(d, where=np.ones(4))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sm.softmax(d, temperature=np.nan)
