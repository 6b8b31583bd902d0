"""softmax / log_softmax / logsumexp on arrays of other libraries (array API).

array-api-strict, PyTorch (CPU) and JAX (CPU) arrays go through the generic
path and come back as arrays of their own type. References: mpmath
(ulp_reference), the NumPy C path for the edge semantics.
"""

import math
import sys

import numpy as np
import pytest

import softmax as sm
import ulp_reference as ur


def _strict():
    xps = pytest.importorskip("array_api_strict")
    return xps, xps.asarray, type(xps.asarray(0.0))


def _torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    return torch, torch.asarray, torch.Tensor


def _jax():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    return jnp, jnp.asarray, jax.Array


LIBS = {"strict": _strict, "torch": _torch, "jax": _jax}
# JAX arrays are float32 unless the user enables x64; the generic path
# computes them in float64 under a thread-local jax.enable_x64 all the same.
CASES = [("strict", np.float64), ("strict", np.float32), ("torch", np.float64),
         ("torch", np.float32), ("jax", np.float32)]


def lib(name):
    return LIBS[name]()


def to_numpy(a):
    return np.asarray(a.cpu()) if hasattr(a, "cpu") else np.asarray(a)


def rows_family(rng, dtype):
    """Rows of every accuracy family: narrow, wide spread, huge values, p ~ 1, long."""
    rows = [rng.standard_normal(8), rng.standard_normal(8) * 80, rng.standard_normal(8) * 1e4 + 1e6,
            np.array([30.0, 0.0, -5.0, 1.0, 2.0, -30.0, 0.5, 0.25]), rng.standard_normal(8) * 0.01]
    return np.array(rows).astype(dtype)


@pytest.mark.parametrize("name, dtype", CASES)
@pytest.mark.parametrize("log", [False, True])
def test_accuracy_against_mpmath(name, dtype, log, ulp_results):
    xp, asarray, array_type = lib(name)
    rng = np.random.default_rng(0)
    x = rows_family(rng, dtype)
    long_row = (rng.standard_normal(2000) * 3).astype(dtype)
    fn = sm.log_softmax if log else sm.softmax
    worst = 0.0
    for row in list(x) + [long_row]:
        got = fn(asarray(row))
        assert isinstance(got, array_type)
        ref_p, ref_lp = ur.ref_softmax(row)
        ref = ref_lp if log else ref_p
        d = ur.ulp_distance(to_numpy(got), ref)
        if name == "jax":
            # XLA on CPU flushes subnormal results to zero (documented)
            tiny = np.abs(ref) < np.finfo(dtype).tiny
            assert np.all(to_numpy(got)[tiny] * 0 == 0)
            d = d[~tiny]
        worst = max(worst, float(d.max()))
    bound = 2 if dtype == np.float64 else 1
    assert worst <= bound, f"{name} {np.dtype(dtype)} log={log}: {worst} ulp"


@pytest.mark.parametrize("name, dtype", CASES)
def test_logsumexp_accuracy(name, dtype):
    xp, asarray, _ = lib(name)
    rng = np.random.default_rng(1)
    x = rows_family(rng, dtype)
    got = to_numpy(sm.logsumexp(asarray(x), axis=1))
    expected = ur.round_all([ur.ref_logsumexp(r) for r in x], dtype)
    bound = 2 if dtype == np.float64 else 1
    assert ur.ulp_distance(got, expected).max() <= bound


EDGE = np.array([
    [1.0, np.inf, np.inf, 0.0],       # +inf share the mass
    [-np.inf, -np.inf, -np.inf, -np.inf],  # empty distribution
    [1.0, np.nan, 2.0, 3.0],          # NaN slice
    [5.0, 5.0, 5.0, -np.inf],         # ties
    [2.0, 1.0, 0.1, -1.0],
])


@pytest.mark.parametrize("name, dtype", CASES)
@pytest.mark.parametrize("kw", [{}, {"temperature": 0}, {"temperature": np.inf},
                                {"temperature": 0.25}, {"base": 0.5}])
def test_edge_semantics_match_numpy_path(name, dtype, kw):
    xp, asarray, _ = lib(name)
    x = EDGE.astype(dtype)
    a = asarray(x)
    keep = np.array([True, True, False, True])
    for fn in (sm.softmax, sm.log_softmax):
        for where in (None, keep, np.zeros(4, bool)):
            got = to_numpy(fn(a, where=where, **kw))
            expected = fn(x, where=where, **kw)
            assert got.dtype == expected.dtype
            assert ur.ulp_distance(got, expected).max() <= 1, (fn.__name__, where, got, expected)
    lse = to_numpy(sm.logsumexp(a, axis=1))
    np.testing.assert_array_equal(np.isnan(lse), [False, False, True, False, False])
    assert lse[0] == np.inf and lse[1] == -np.inf


def _exact_softmax(x, axis):
    """Correctly rounded softmax of x along `axis` (int, tuple, None or ())."""
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    if not axes:
        return np.ones_like(x)
    moved = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim))
    rows = moved.reshape(-1, int(np.prod([x.shape[a] for a in axes])))
    out = np.array([ur.ref_softmax(r, x.dtype)[0] for r in rows], dtype=x.dtype)
    out = out.reshape(moved.shape)
    return np.moveaxis(out, range(x.ndim - len(axes), x.ndim), axes)


@pytest.mark.parametrize("name, dtype", CASES)
def test_axes_keepdims_sign_and_weights(name, dtype):
    xp, asarray, _ = lib(name)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    a = asarray(x)
    tol = 1
    # (JAX compiles every op for every new shape: fewer layouts keep it quick)
    for axis in ((2, ()) if name == "jax" else (0, 2, (0, 2), None, ())):
        for keepdims in (False, True):
            got = to_numpy(sm.logsumexp(a, axis=axis, keepdims=keepdims))
            expected = sm.logsumexp(x, axis=axis, keepdims=keepdims)
            assert got.shape == np.shape(expected)
            assert ur.ulp_distance(got, np.asarray(expected)).max() <= tol
        got = to_numpy(sm.softmax(a, axis=axis))
        # Two paths each within the promise of the exact value may differ by
        # more than 1 ulp from each other: compare both with mpmath instead.
        promise = 1 if np.dtype(dtype) == np.float32 else 2
        exact = _exact_softmax(x, axis)
        assert ur.ulp_distance(got, exact).max() <= promise
        assert ur.ulp_distance(sm.softmax(x, axis=axis), exact).max() <= promise
    b = rng.standard_normal((4, 5)).astype(dtype)
    v, s = sm.logsumexp(a, axis=2, b=asarray(b), return_sign=True)
    v_ref, s_ref = sm.logsumexp(x, axis=2, b=b, return_sign=True)
    np.testing.assert_array_equal(to_numpy(s), s_ref)
    np.testing.assert_allclose(to_numpy(v), v_ref, rtol=10 * np.finfo(dtype).eps)
    assert np.isnan(to_numpy(sm.logsumexp(a, axis=2, b=asarray(b))))[s_ref < 0].all()


@pytest.mark.parametrize("name", ["strict", "torch", "jax"])
def test_scalar_integer_and_empty_inputs(name):
    xp, asarray, array_type = lib(name)
    zero_d = sm.softmax(asarray(3.0))
    assert isinstance(zero_d, array_type) and to_numpy(zero_d) == 1.0
    ints = to_numpy(sm.softmax(asarray([1, 2, 3])))
    # the library's default float: float64, float32 for JAX without x64
    assert ints.dtype == (np.float32 if name == "jax" else np.float64)
    expected = ur.ref_softmax(np.array([1.0, 2.0, 3.0]), ints.dtype)[0]
    assert ur.ulp_distance(ints, expected).max() <= (2 if ints.dtype == np.float64 else 1)
    empty = sm.softmax(asarray(np.zeros((2, 0), np.float32)))
    assert tuple(empty.shape) == (2, 0)
    assert np.all(to_numpy(sm.logsumexp(asarray(np.zeros((2, 0), np.float32)), axis=1)) == -np.inf)


def test_array_api_strict_device_and_type_preserved():
    xps = pytest.importorskip("array_api_strict")
    dev = xps.Device("device1")
    a = xps.asarray([[1.0, 2.0], [3.0, 4.0]], device=dev)
    for out in (sm.softmax(a), sm.log_softmax(a, axis=0), sm.logsumexp(a, axis=1)):
        assert type(out) is type(a) and out.device == dev


def test_torch_out_and_float16():
    torch, asarray, _ = _torch()
    a = torch.tensor([[2.0, 1.0, 0.1]], dtype=torch.float64)
    out = torch.empty_like(a)
    assert sm.softmax(a, out=out) is out
    np.testing.assert_array_equal(out.numpy(), sm.softmax(a.numpy()))
    h = sm.softmax(a.to(torch.float16))
    assert h.dtype == torch.float16
    np.testing.assert_array_equal(h.numpy(), sm.softmax(a.numpy().astype(np.float16)))
    with pytest.raises(ValueError, match=r"out must have shape \(1, 3\)"):
        sm.softmax(a, out=torch.empty(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="out must have dtype"):
        sm.softmax(a, out=torch.empty((1, 3), dtype=torch.float32))
    t = torch.tensor([1.0, 2.0], requires_grad=False)
    assert isinstance(sm.log_softmax(torch.nn.Parameter(t, requires_grad=False)), torch.Tensor)


def test_jax_out_is_refused():
    jnp, asarray, _ = _jax()
    a = jnp.asarray([1.0, 2.0])
    with pytest.raises(TypeError, match="out must be a writeable array"):
        sm.softmax(a, out=jnp.zeros(2))


@pytest.mark.parametrize("name", ["strict", "torch"])
def test_errors(name):
    xp, asarray, _ = lib(name)
    a = asarray(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="where must be a boolean array"):
        sm.softmax(a, where=np.ones(3))
    with pytest.raises(ValueError, match=r"where must broadcast to x.shape \(2, 3\)"):
        sm.softmax(a, where=np.ones(4, bool))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sm.softmax(a, temperature=-2)
    with pytest.raises(TypeError, match="x must be real-valued"):
        sm.softmax(asarray(np.zeros(2, complex)))
    with pytest.raises(np.exceptions.AxisError):
        sm.softmax(a, axis=2)


def test_torch_without_array_api_compat(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "array_api_compat", None)
    with pytest.raises(ImportError, match="pip install array-api-compat"):
        sm.softmax(torch.zeros(3))


def test_numpy_scalars_stay_on_the_c_path():
    # NumPy scalars have __array_namespace__ too; they are NumPy input.
    r = sm.softmax(np.float64(3.0))
    assert type(r) is np.float64 and r == 1.0
    assert isinstance(sm.softmax(np.float32(1.0)), np.float32)
    assert math.isinf(sm.logsumexp(np.float64(-np.inf)))
