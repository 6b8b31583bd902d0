"""One front door, every backend: each public function on NumPy, array-api-strict,
PyTorch and Dask (on a real distributed LocalCluster) gives the same values, on
the same inputs (edge rows included), and returns the caller's array type.

The values of each backend are compared with NumPy's (the NumPy path is held
to mpmath by test_accuracy / test_activations); the softmax family is also
compared with the slow twin on the edge rows, where the expected values are
limits written out by hand. A torch tensor that requires grad keeps its graph,
and its gradient matches torch's own autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import softmax as sm
import ulp_reference as ur

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")
xs = pytest.importorskip("array_api_strict")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

BIG = np.finfo(np.float64).max

# Scores with the edge rows: overflowing differences, +inf, NaN, all -inf.
X = np.array([
    [2.0, 1.0, 0.1, -3.0, 0.5, 4.0],
    [1.7e308, -1.7e308, 0.0, 1.0, 2.0, -BIG],
    [np.inf, 0.0, np.inf, -np.inf, 1.0, 3.0],
    [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0],
    [-np.inf] * 6,
    [1e300, -BIG, 3.0, -1e300, 1e300, 7.0],
])
KEEP = np.ones(X.shape, dtype=bool)
KEEP[0, [1, 4]] = False
KEEP[5, :] = False  # a fully masked row
LABELS = np.array([0, 2, 1, 3, 0, 5])
FINITE = np.array([[2.0, 1.0, 0.1, -3.0], [0.0, 40.0, -7.5, 1.0], [3.0, 3.0, 3.0, 3.0]])
P = sm.softmax(FINITE)
G = np.array([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, 0.0, 3.0], [1.0, 1.0, -1.0, 2.0]])
Z = np.array([-800.0, -30.0, -1.0, 0.0, 1e-300, 2.5, 40.0, 710.0, np.inf, -np.inf, np.nan])
Q = np.array([0.0, 1e-300, 0.25, 0.5, 0.75, 1.0 - 1e-16, 1.0])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


# ---- the backends ---------------------------------------------------------------

def as_numpy(a):
    return a


def as_strict(a):
    return xs.asarray(a)


def as_torch(a):
    return torch.asarray(a)


def as_dask(a):
    a = np.asarray(a)
    # split along every axis: the class axis too, so the (max, sum) merge runs
    return da.from_array(a, chunks=tuple(max(1, (n + 1) // 2) for n in a.shape))


BACKENDS = {"numpy": as_numpy, "strict": as_strict, "torch": as_torch, "dask": as_dask}
KIND = {
    "numpy": (np.ndarray, np.generic),
    "strict": (type(xs.asarray(0.0)),),
    "torch": (torch.Tensor,),
    "dask": (da.Array,),
}


def back(r):
    if isinstance(r, da.Array):
        r = r.compute()
    if isinstance(r, torch.Tensor):
        return r.detach().numpy()
    return np.asarray(r)


# ---- what every function is called with ---------------------------------------

CALLS = {
    "softmax": lambda f: sm.softmax(f(X), axis=-1, where=f(KEEP)),
    "softmax_T": lambda f: sm.softmax(f(X), temperature=0.3),
    "softmax_axis0": lambda f: sm.softmax(f(X), axis=0, temperature=2.5),
    "softmax_hard": lambda f: sm.softmax(f(X), temperature=0.0),
    "log_softmax": lambda f: sm.log_softmax(f(X), where=f(KEEP)),
    "log_softmax_T": lambda f: sm.log_softmax(f(X), temperature=0.7),
    "logsumexp": lambda f: sm.logsumexp(f(X), axis=1),
    "logsumexp_b": lambda f: sm.logsumexp(f(FINITE), 1, f(np.full(FINITE.shape, 1e308))),
    "logsumexp_sign": lambda f: sm.logsumexp(f(FINITE), 1, f(np.where(FINITE > 1, -1.0, 1.0)),
                                             False, True)[0],
    "sigmoid": lambda f: sm.sigmoid(f(Z)),
    "log_sigmoid": lambda f: sm.log_sigmoid(f(Z)),
    "logit": lambda f: sm.logit(f(Q)),
    "hardmax": lambda f: sm.hardmax(f(X), where=f(KEEP)),
    "hardmax_first": lambda f: sm.hardmax(f(FINITE), ties="first"),
    "softmax_jacobian": lambda f: sm.softmax_jacobian(f(P)),
    "softmax_vjp": lambda f: sm.softmax_vjp(f(P), f(G)),
    "log_softmax_vjp": lambda f: sm.log_softmax_vjp(f(P), f(G)),
    "cross_entropy": lambda f: sm.cross_entropy(f(FINITE), f(np.array([0, 1, 3])),
                                                reduction="none"),
    "cross_entropy_smooth": lambda f: sm.cross_entropy(f(FINITE), f(np.array([0, 1, 3])),
                                                       label_smoothing=0.1),
    "cross_entropy_grad": lambda f: sm.cross_entropy_grad(f(FINITE), f(np.array([0, 1, 3]))),
    "entropy": lambda f: sm.entropy(f(X[[0, 1, 2, 4]]), where=f(KEEP[[0, 1, 2, 4]])),
    "sample_hard": lambda f: sm.sample(f(FINITE), temperature=0.0),
}


def _ulps(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return ur.ulp_distance(a, b)


@pytest.mark.parametrize("backend", ["strict", "torch", "dask"])
@pytest.mark.parametrize("name", list(CALLS))
def test_every_function_on_every_backend(name, backend, client):
    want = CALLS[name](as_numpy)
    got = CALLS[name](BACKENDS[backend])
    assert isinstance(got, KIND[backend]), f"{name} on {backend} returned {type(got).__name__}"
    if backend == "dask":
        got_np = back(got)  # lazy until here
    else:
        got_np = back(got)
    want = np.asarray(want)
    assert got_np.shape == want.shape
    d = _ulps(got_np, want)
    assert d.max() <= 2, (name, backend, got_np, want)


def test_dask_results_stay_lazy(client):
    for name, call in CALLS.items():
        got = call(as_dask)
        assert isinstance(got, da.Array), name
        assert not any("compute" in str(k) for k in got.dask.layers), name


# ---- the edge rows, against values written out by hand ---------------------------

@pytest.mark.parametrize("backend", list(BACKENDS))
def test_edge_rows_are_limits_not_nan(backend, client):
    f = BACKENDS[backend]
    p = back(sm.softmax(f(X)))
    np.testing.assert_array_equal(p[1], [1, 0, 0, 0, 0, 0])  # 1.7e308 vs the rest
    np.testing.assert_array_equal(p[2], [0.5, 0, 0.5, 0, 0, 0])  # +inf entries share
    assert np.isnan(p[3]).all()  # NaN makes its row NaN
    np.testing.assert_array_equal(p[4], 0.0)  # all -inf: empty
    np.testing.assert_array_equal(p[5], [0.5, 0, 0, 0, 0.5, 0])  # ties at 1e300
    lp = back(sm.log_softmax(f(X)))
    assert lp[1, 0] == 0.0 and lp[1, 1] == -np.inf and lp[1, 2] == -1.7e308
    assert (lp[4] == -np.inf).all()
    lse = back(sm.logsumexp(f(X), axis=1))
    assert lse[1] == 1.7e308 and lse[2] == np.inf and np.isnan(lse[3]) and lse[4] == -np.inf
    # the stream gives the same
    acc = sm.stream.OnlineLogSumExp(axis=1).update(X[[1, 2, 4, 5]])
    assert list(np.asarray(acc.logsumexp)[[0, 1, 2]]) == [1.7e308, np.inf, -np.inf]


# ---- a torch tensor that requires grad keeps its graph ------------------------------

def _torch_grad(fn, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = fn(t)
    w = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
    (out * w).sum().backward()
    return t.grad.numpy(), out.detach().numpy()


GRAD_PAIRS = {
    "softmax": (lambda t: sm.softmax(t, temperature=0.7), lambda t: torch.softmax(t / 0.7, -1)),
    "log_softmax": (lambda t: sm.log_softmax(t), lambda t: torch.log_softmax(t, -1)),
    "logsumexp": (lambda t: sm.logsumexp(t, axis=1), lambda t: torch.logsumexp(t, 1)),
    "sigmoid": (sm.sigmoid, torch.sigmoid),
    "log_sigmoid": (sm.log_sigmoid, torch.nn.functional.logsigmoid),
    "entropy": (lambda t: sm.entropy(t),
                lambda t: -(torch.softmax(t, -1) * torch.log_softmax(t, -1)).sum(-1)),
    "cross_entropy": (lambda t: sm.cross_entropy(t, torch.tensor([0, 1, 3])),
                      lambda t: torch.nn.functional.cross_entropy(t, torch.tensor([0, 1, 3]))),
}


@pytest.mark.parametrize("name", list(GRAD_PAIRS))
def test_torch_autograd_through_the_front_door(name):
    ours, theirs = GRAD_PAIRS[name]
    x = FINITE if name not in ("sigmoid", "log_sigmoid") else np.array([-30.0, -1.0, 0.0, 2.0, 35.0])
    g1, v1 = _torch_grad(ours, x)
    g2, _ = _torch_grad(theirs, x)
    # values: the NumPy path's (torch's own are less accurate: log_softmax of
    # [0, 40, -7.5, 1] gives 0 where the exact value is -1.58e-17)
    assert _ulps(v1, back(ours(np.asarray(x)))).max() <= 2
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)


def test_jacobian_of_softmax_vjp_keeps_the_graph():
    p = torch.tensor(P, requires_grad=True)
    out = sm.softmax_vjp(p, torch.tensor(G))
    assert out.requires_grad
    out.sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


# ---- arguments are checked once per call --------------------------------------------

@pytest.fixture
def parse_count(monkeypatch):
    """Counts parse_scale calls in every module that holds it (argument parsing)."""
    import sys

    import softmax._arguments as args

    original = args.parse_scale
    calls = []

    def counted(*a, **k):
        calls.append(a)
        return original(*a, **k)

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("softmax") and \
                getattr(mod, "parse_scale", None) is original:
            monkeypatch.setattr(mod, "parse_scale", counted)
    return calls


def test_one_parse_per_call_on_every_path(parse_count, tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 64))
    sm.softmax(x, temperature=2.0)
    assert len(parse_count) == 1
    parse_count.clear()
    d = da.from_array(x, chunks=(2, 16))  # 16 blocks, class axis split: merge path
    sm.log_softmax(d, temperature=2.0).compute(scheduler="synchronous")
    assert len(parse_count) == 1
    parse_count.clear()
    d = da.from_array(x, chunks=(2, 64))  # whole slices: blocks run the NumPy backend
    sm.softmax(d, temperature=2.0).compute(scheduler="synchronous")
    assert len(parse_count) == 1
    parse_count.clear()
    src, dst = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(src, x)
    sm.stream.softmax_file(src, dst, temperature=2.0, block_bytes=512, progress=False)
    assert len(parse_count) == 1
    assert _ulps(np.load(dst), sm.softmax(x, temperature=2.0)).max() <= 2  # two passes
    parse_count.clear()
    sm.log_softmax(torch.asarray(x), temperature=2.0)
    assert len(parse_count) == 1
    parse_count.clear()
    sm.entropy(x, temperature=2.0)
    sm.cross_entropy(x, np.zeros(8, dtype=int), temperature=2.0)
    sm.sample(x, temperature=2.0, rng=0)
    assert len(parse_count) == 3


# ---- numpy.ma masks mean where=~mask in every function ------------------------------

M = np.ma.masked_array([1.0, 100.0, 2.0], mask=[0, 1, 0])


def test_masked_arrays_everywhere():
    keep = ~np.ma.getmaskarray(M)
    data = np.ma.getdata(M)
    np.testing.assert_array_equal(sm.softmax(M), sm.softmax(data, where=keep))
    assert (sm.sample(M, size=2000, rng=0) != 1).all()
    np.testing.assert_array_equal(sm.hardmax(M), [0, 0, 1])
    assert float(sm.cross_entropy(M[None], [0])) == pytest.approx(
        -math.log(math.exp(1) / (math.exp(1) + math.exp(2))), rel=1e-15)
    assert float(sm.stream.OnlineLogSumExp().update(M).logsumexp) == pytest.approx(
        math.log(math.exp(1) + math.exp(2)), rel=1e-15)
    assert float(sm.logsumexp([1.0, 100.0], b=np.ma.masked_array([1.0, 1.0], mask=[0, 1]))) == 1.0
    assert float(sm.entropy(M)) == pytest.approx(float(sm.entropy([1.0, 2.0])), rel=1e-15)
    g = sm.cross_entropy_grad(M[None], [0])
    assert g[0, 1] == 0.0
    pm = np.ma.masked_array(sm.softmax(data, where=keep), mask=~keep)
    assert sm.softmax_vjp(pm, np.ones(3))[1] == 0.0
    assert (sm.softmax_jacobian(pm)[1] == 0).all()
    with pytest.raises(TypeError, match="labels must not be a masked array"):
        sm.cross_entropy(np.zeros((2, 3)), np.ma.masked_array([0, 1], mask=[0, 1]))


def test_dask_masked_arrays(client):
    dm = da.ma.masked_array(da.from_array(np.ma.getdata(M), chunks=1),
                            mask=da.from_array(np.ma.getmaskarray(M), chunks=1))
    np.testing.assert_array_equal(sm.softmax(dm).compute(), sm.softmax(M))
    assert float(sm.logsumexp(dm).compute()) == float(sm.logsumexp(M))


# ---- probabilities and logits are not confused ----------------------------------------

def test_probabilities_are_refused_as_logits_and_the_reverse():
    with pytest.raises(ValueError, match='input="probs"'):
        sm.entropy([0.9, 0.1])
    assert float(sm.entropy([0.9, 0.1], input="probs")) == pytest.approx(
        -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), rel=1e-15)
    with pytest.raises(ValueError, match="p must be probabilities"):
        sm.softmax_jacobian([2.0, 1.0])
    with pytest.raises(ValueError, match="p must be probabilities that sum to 1"):
        sm.softmax_vjp([0.5, 0.6], [1.0, 0.0])


# ---- smaller edges --------------------------------------------------------------

def test_small_edges():
    import pickle

    # entropy of a tiny distribution: the subnormal terms are rounded once
    import mpmath

    with mpmath.workprec(200):
        e = mpmath.exp(-745)
        p_small = e / (1 + 2 * e)
        exact = float(-(1 - 2 * p_small) * mpmath.log(1 - 2 * p_small)
                      - 2 * p_small * mpmath.log(p_small))
    got = float(sm.entropy([745.0, 0.0, 0.0]))
    assert abs(got - exact) <= 2 * 5e-324, (got, exact)  # 2 subnormal steps (4.2e-321, not 7.4e-321)
    # 0-d input is one slice of one element everywhere
    assert sm.hardmax(np.float64(3.0)) == 1.0
    acc = sm.stream.OnlineLogSumExp(axis=0).update(np.float64(2.0))
    assert float(acc.logsumexp) == 2.0 and float(acc.softmax(np.float64(2.0))) == 1.0
    # flags are flags
    with pytest.raises(TypeError, match="keepdims must be True or False, got 'no'"):
        sm.logsumexp([1.0, 2.0], keepdims="no")
    # longdouble beyond float64's range
    big = np.array(["1e4000", "1e4000"], dtype=np.longdouble)
    assert sm.logsumexp(big) == np.longdouble("1e4000") + np.log(np.longdouble(2))
    # float16 log-probabilities that round to -inf raise no warning
    acc = sm.stream.OnlineLogSumExp().update(np.array([-6e4, 6e4], np.float16))
    assert list(acc.log_softmax(np.array([-6e4, 6e4], np.float16))) == [-np.inf, 0.0]
    # merge states pickle with a format version
    state = pickle.loads(pickle.dumps(acc))
    assert float(state.logsumexp) == float(acc.logsumexp)
    bad = acc.__getstate__() | {"format": 0}
    with pytest.raises(ValueError, match="pickle must have format 1, got 0"):
        sm.stream.OnlineLogSumExp().__setstate__(bad)


@pytest.mark.parametrize("block_bytes", [16, 1 << 20])
def test_files_agree_on_the_edge_rows(tmp_path, block_bytes):
    src, dst = tmp_path / "x.npy", tmp_path / "y.npy"
    for arr in (np.array([1.7e308, -1.7e308]), np.array([1e300, np.finfo(float).min, 0.0]),
                np.float64(3.0), X[:, :4]):
        np.save(src, arr)
        for log in (False, True):
            sm.stream.softmax_file(src, dst, block_bytes=block_bytes, progress=False, log=log)
            want = (sm.log_softmax if log else sm.softmax)(arr)
            got = np.load(dst)
            assert got.shape == np.shape(want)
            assert _ulps(got, want).max() <= 2, (arr, log, got, want)


# ---- SciPy's logsumexp signature and broadcasting -------------------------------------

@pytest.mark.parametrize("a_shape, b_shape, axis", [
    ((4,), (3, 4), 1), ((4,), (3, 4), None), ((3, 1), (3, 4), 0), ((2, 3, 4), (4,), (0, 2)),
    ((2, 3, 4), (3, 1), -1), ((1, 4), (5, 1), None), ((3, 4), (3, 4), (1, 0)),
])
def test_logsumexp_broadcasts_like_scipy(a_shape, b_shape, axis):
    import scipy.special

    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    a = rng.normal(size=a_shape) * 5
    b = rng.uniform(0.1, 2.0, size=b_shape) * np.where(rng.random(b_shape) < 0.3, -1, 1)
    for keepdims in (False, True):
        ours = sm.logsumexp(a, axis, b, keepdims, True)   # all positional, as SciPy allows
        theirs = scipy.special.logsumexp(a, axis, b, keepdims, True)
        for o, t in zip(ours, theirs):
            assert np.shape(o) == np.shape(t)
            np.testing.assert_allclose(o, t, rtol=1e-13, atol=0)
