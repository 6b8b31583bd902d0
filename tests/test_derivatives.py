"""softmax_jacobian, softmax_vjp and log_softmax_vjp.

References: central finite differences of softmax / log_softmax in float64,
torch.autograd, hand-derivable values (rows of J sum to 0, J symmetric,
p(1 - p) exact in rationals), and the masking rules.
"""

import warnings
from fractions import Fraction

import numpy as np
import pytest

import softmax as sm
import softmax._math.derivatives as der

RNG = np.random.default_rng(11)


def central_jacobian(f, x, h=1e-6):
    """d f(x)_i / d x_j along the last axis of a 1-D x, central differences."""
    k = x.size
    jac = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = h
        jac[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return jac


def test_jacobian_against_finite_differences():
    for _ in range(5):
        x = RNG.normal(scale=2, size=6)
        jac = der.softmax_jacobian(sm.softmax(x))
        np.testing.assert_allclose(jac, central_jacobian(sm.softmax, x), rtol=0, atol=1e-9)


def test_vjps_against_finite_differences():
    x = RNG.normal(scale=2, size=7)
    g = RNG.normal(size=7)
    p = sm.softmax(x)
    fd = central_jacobian(sm.softmax, x)
    np.testing.assert_allclose(der.softmax_vjp(p, g), fd.T @ g, rtol=0, atol=1e-9)
    fd_log = central_jacobian(sm.log_softmax, x)
    np.testing.assert_allclose(der.log_softmax_vjp(p, g), fd_log.T @ g, rtol=0, atol=1e-9)


def test_jacobian_hand_properties():
    p = sm.softmax(RNG.normal(size=(3, 5)))
    jac = der.softmax_jacobian(p)
    assert jac.shape == (3, 5, 5)
    np.testing.assert_array_equal(jac, np.swapaxes(jac, -1, -2))
    np.testing.assert_allclose(jac.sum(axis=-1), 0, atol=1e-16)
    # Off-diagonal -p_i p_j exactly; diagonal p_i (1 - p_i) to one rounding.
    np.testing.assert_array_equal(jac[1, 0, 2], -(p[1, 0] * p[1, 2]))
    np.testing.assert_allclose(jac[2, 3, 3], p[2, 3] * (1 - p[2, 3]), rtol=2**-52)


def test_jacobian_diagonal_near_one_is_relatively_exact():
    p = np.array([1 - 2.0**-30, 2.0**-30])
    jac = der.softmax_jacobian(p)
    exact = Fraction(p[0]) * (1 - Fraction(p[0]))
    assert jac[0, 0] == float(exact)  # p - p**2 in floats would lose 23 bits


@pytest.mark.parametrize("g", [[1.0, 0.0], [0.0, 1.0], [1.0, -3.0]])
def test_vjp_keeps_the_tiny_components_of_a_dominant_row(g):
    """Logits [37.43, 0]: p = softmax(logits) rounds p0 to exactly 1.0, so
    p0 (1 - p0) formed from p0 is 0; the VJP must still give
    +-p0 p1 (g0 - g1) ~ 2^-54 (the sum of the other shares recovers
    1 - p0), within 2 ulp of mpmath's value for the exact shares."""
    mpmath = pytest.importorskip("mpmath")
    logits = np.array([37.42994775023705, 0.0])
    p = sm.softmax(logits)
    assert p[0] == 1.0
    got = sm.softmax_vjp(p, np.array(g))
    with mpmath.workprec(200):
        e = mpmath.exp(-mpmath.mpf(logits[0]))
        p0, p1 = 1 / (1 + e), e / (1 + e)
        mean = p0 * g[0] + p1 * g[1]
        want = [float(p0 * (g[0] - mean)), float(p1 * (g[1] - mean))]
    assert abs(want[0]) == pytest.approx(2.0**-54 * abs(g[0] - g[1]), rel=1e-12)
    for a, b in zip(got, want):
        assert abs(a - b) <= 2 * np.spacing(abs(b)), (got, want)


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
def test_jacobian_moves_axis_last(axis):
    p = sm.softmax(RNG.normal(size=(2, 3, 4)), axis=axis)
    jac = der.softmax_jacobian(p, axis=axis)
    moved = np.moveaxis(p, axis, -1)
    assert jac.shape == moved.shape + (moved.shape[-1],)
    np.testing.assert_array_equal(jac, der.softmax_jacobian(moved))


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_against_torch_autograd(axis):
    torch = _torch()
    x = RNG.normal(scale=3, size=(3, 4, 5))
    g = RNG.normal(size=x.shape)
    p = sm.softmax(x, axis=axis)

    xt = torch.tensor(x, requires_grad=True)
    torch.softmax(xt, dim=axis).backward(torch.tensor(g))
    np.testing.assert_allclose(der.softmax_vjp(p, g, axis=axis), xt.grad.numpy(), rtol=1e-12, atol=1e-15)

    xt = torch.tensor(x, requires_grad=True)
    torch.log_softmax(xt, dim=axis).backward(torch.tensor(g))
    np.testing.assert_allclose(
        der.log_softmax_vjp(p, g, axis=axis), xt.grad.numpy(), rtol=1e-12, atol=1e-15
    )

    row = x[1, 2, :] if axis == -1 else np.moveaxis(x, axis, -1)[1, 2]
    jt = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, dim=0), torch.tensor(row))
    np.testing.assert_allclose(
        der.softmax_jacobian(sm.softmax(row)), jt.numpy(), rtol=1e-12, atol=1e-16
    )


def test_tuple_axes_against_torch_on_flattened_axes():
    torch = _torch()
    x = RNG.normal(size=(2, 3, 4))
    g = RNG.normal(size=x.shape)
    p = sm.softmax(x, axis=(1, 2))
    xt = torch.tensor(x.reshape(2, 12), requires_grad=True)
    torch.softmax(xt, dim=1).backward(torch.tensor(g.reshape(2, 12)))
    got = der.softmax_vjp(p, g, axis=(1, 2))
    np.testing.assert_allclose(got.reshape(2, 12), xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_masked_entries_get_exact_zero_even_with_inf_logits():
    x = RNG.normal(size=(4, 6))
    where = np.ones_like(x, dtype=bool)
    where[:, [1, 4]] = False
    x[:, 1] = np.inf
    x[:, 4] = 1e308
    x[0, 4] = np.nan
    g = RNG.normal(size=x.shape)
    g[:, 1] = np.inf  # garbage upstream gradient at excluded entries
    g[2, 4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = sm.softmax(x, where=where)
        vjp = der.softmax_vjp(p, g, where=where)
        lvjp = der.log_softmax_vjp(p, g, where=where)
        jac = der.softmax_jacobian(p, where=where)
    for r in (vjp, lvjp):
        assert np.all(np.isfinite(r))
        np.testing.assert_array_equal(r[:, [1, 4]], 0.0)
    np.testing.assert_array_equal(jac[:, [1, 4], :], 0.0)
    np.testing.assert_array_equal(jac[:, :, [1, 4]], 0.0)
    # The kept entries behave as the softmax of the kept scores alone.
    kept = [0, 2, 3, 5]
    x_k, g_k = x[:, kept], g[:, kept]
    p_k = sm.softmax(x_k)
    np.testing.assert_allclose(vjp[:, kept], der.softmax_vjp(p_k, g_k), rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(lvjp[:, kept], der.log_softmax_vjp(p_k, g_k), rtol=1e-14, atol=1e-17)


def test_masked_entries_match_torch_with_minus_inf():
    torch = _torch()
    x = RNG.normal(size=(3, 5))
    where = np.array([True, False, True, True, False])
    g = RNG.normal(size=x.shape)
    xt = torch.tensor(np.where(where, x, -np.inf), requires_grad=True)
    torch.softmax(xt, dim=-1).backward(torch.tensor(g))
    p = sm.softmax(x, where=where)
    np.testing.assert_allclose(der.softmax_vjp(p, g, where=where), xt.grad.numpy(), rtol=1e-12, atol=1e-16)


def test_empty_slices_have_zero_gradient():
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0]])
    where = np.array([[True, True, True], [False, False, False]])
    g = np.array([[1.0, np.inf, -2.0], [3.0, np.nan, 1.0]])
    for w in (None, where):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            p = sm.softmax(x, where=w)
            vjp = der.softmax_vjp(p, g, where=w)
            lvjp = der.log_softmax_vjp(p, g, where=w)
            jac = der.softmax_jacobian(p, where=w)
        np.testing.assert_array_equal(vjp[0], 0.0)
        np.testing.assert_array_equal(lvjp[0], 0.0)
        np.testing.assert_array_equal(jac[0], 0.0)
    np.testing.assert_array_equal(der.softmax_vjp(sm.softmax(x, where=where), g, where=where)[1], 0.0)
    np.testing.assert_array_equal(der.log_softmax_vjp(sm.softmax(x, where=where), g, where=where)[1], 0.0)


def test_minus_inf_logit_in_a_live_slice_matches_torch():
    torch = _torch()
    x = np.array([0.5, -np.inf, 1.5])
    g = np.array([0.3, -0.7, 1.1])
    p = sm.softmax(x)
    xt = torch.tensor(x, requires_grad=True)
    torch.log_softmax(xt, dim=0).backward(torch.tensor(g))
    np.testing.assert_allclose(der.log_softmax_vjp(p, g), xt.grad.numpy(), rtol=1e-14)
    xt = torch.tensor(x, requires_grad=True)
    torch.softmax(xt, dim=0).backward(torch.tensor(g))
    np.testing.assert_allclose(der.softmax_vjp(p, g), xt.grad.numpy(), rtol=1e-14)
    assert der.softmax_vjp(p, g)[1] == 0.0


def test_nan_slice_stays_nan():
    p = sm.softmax(np.array([[1.0, np.nan], [1.0, 2.0]]))
    g = np.ones((2, 2))
    assert np.all(np.isnan(der.softmax_vjp(p, g)[0]))
    assert np.all(np.isnan(der.log_softmax_vjp(p, g)[0]))
    assert np.all(np.isfinite(der.log_softmax_vjp(p, g)[1]))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes(dtype):
    p = sm.softmax(RNG.normal(size=(2, 4)).astype(dtype))
    g = np.ones((2, 4), dtype=dtype)
    assert der.softmax_vjp(p, g).dtype == dtype
    assert der.log_softmax_vjp(p, g).dtype == dtype
    assert der.softmax_jacobian(p).dtype == dtype
    # float32 results are the float64 results rounded once.
    p64, g64 = p.astype(np.float64), g.astype(np.float64)
    np.testing.assert_array_equal(der.softmax_vjp(p, g), der.softmax_vjp(p64, g64).astype(dtype))
    assert der.softmax_vjp(p.astype(np.float32), g64).dtype == np.float64
    assert der.softmax_jacobian(np.array([1, 0])).dtype == np.float64


def test_broadcast_g():
    p = sm.softmax(RNG.normal(size=(3, 4)))
    g = RNG.normal(size=4)
    np.testing.assert_array_equal(der.softmax_vjp(p, g), der.softmax_vjp(p, np.tile(g, (3, 1))))


def test_errors():
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"g must broadcast to p.shape \(2, 3\), got shape \(4,\)"):
        der.softmax_vjp(p, np.ones(4))
    with pytest.raises(ValueError, match=r"g must broadcast to p.shape"):
        der.log_softmax_vjp(p, np.ones((3, 3)))
    with pytest.raises(TypeError, match=r"axis must be an int \(the axis of the classes\), got \(0, 1\)"):
        der.softmax_jacobian(p, axis=(0, 1))
    with pytest.raises(np.exceptions.AxisError):
        der.softmax_jacobian(p, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        der.softmax_vjp(p, p, axis=-3)
    with pytest.raises(TypeError, match="g must be real-valued"):
        der.softmax_vjp(p, p * 1j)
    with pytest.raises(TypeError, match="where must be a boolean array"):
        der.softmax_vjp(p, p, where=np.ones((2, 3)))
