"""sigmoid, log_sigmoid, logit and the base/temperature rule.

References: mpmath at 200 bits for every value, the article's identities
(softmax([z0, z1])[1] = sigmoid(z1 - z0); base a = temperature 1/ln a), and
hand-derivable limits.
"""

import math
import warnings

import mpmath
import numpy as np
import pytest

import softmax as sm
import softmax._math.activations as act

RNG = np.random.default_rng(20240601)


@pytest.fixture(autouse=True)
def _mp_precision():
    """200-bit references, without changing mpmath's global state for others."""
    with mpmath.workprec(200):
        yield

FUNCS = {
    "sigmoid": (act.sigmoid, lambda x: 1 / (1 + mpmath.exp(-x))),
    "log_sigmoid": (act.log_sigmoid, lambda x: -mpmath.log1p(mpmath.exp(-x))),
    "logit": (act.logit, lambda p: mpmath.log(p / (1 - p))),
}
# The package's accuracy promise, in ulp of the result's dtype.
PROMISE = {np.float64: 2.0, np.float32: 1.0, np.float16: 1.0}


def ulp_errors(computed, exact, dtype):
    """|computed - exact| in units of the spacing of exact rounded to dtype."""
    errors = []
    for c, e in zip(np.asarray(computed).ravel(), exact):
        rounded = dtype(float(e))
        spacing = np.spacing(np.abs(rounded)) if rounded != 0 else np.spacing(dtype(0))
        errors.append(float(abs(mpmath.mpf(float(c)) - e) / mpmath.mpf(float(spacing))))
    return np.array(errors)


def inputs(name, dtype):
    n = 700
    if name == "logit":
        tiny = np.finfo(dtype).smallest_subnormal
        values = [
            RNG.uniform(0, 1, n),
            10.0 ** RNG.uniform(np.log10(tiny), 0, n),
            1 - 10.0 ** RNG.uniform(-16, 0, n),
            0.5 + RNG.uniform(-1e-3, 1e-3, n),
            RNG.uniform(0.2, 0.3, n),
        ]
    else:
        lo = {np.float64: -745.0, np.float32: -104.0, np.float16: -17.0}[dtype]
        hi = -lo if name == "log_sigmoid" else 40.0
        values = [
            RNG.uniform(lo, hi, n),
            RNG.uniform(-6, 6, n),
            RNG.uniform(-40, -30, n),
            RNG.uniform(30, 40, n),
            10.0 ** RNG.uniform(-20, 0, n) * RNG.choice([-1, 1], n),
        ]
    x = np.concatenate(values).astype(dtype)
    if name == "logit":
        x = x[(x > 0) & (x < 1)]
    return x


def max_ulp(name, dtype):
    func, ref = FUNCS[name]
    x = inputs(name, dtype)
    y = func(x)
    assert y.dtype == dtype
    exact = [ref(mpmath.mpf(float(v))) for v in x]
    return ulp_errors(y, exact, dtype).max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_ulp_accuracy_against_mpmath(name, dtype):
    worst = max_ulp(name, dtype)
    print(f"{name} {np.dtype(dtype).name}: max {worst:.3f} ulp")
    assert worst <= PROMISE[dtype], f"{name} {np.dtype(dtype).name}: {worst} ulp"


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_float16_every_fourth_value(name):
    func, ref = FUNCS[name]
    x = np.arange(0, 2**16, 4, dtype=np.uint16).view(np.float16)
    x = x[np.isfinite(x)]
    if name == "logit":
        x = x[(x > 0) & (x < 1)]
    else:
        x = x[np.abs(x) < 20]  # beyond, every result is an exact limit
    y = func(x)
    assert y.dtype == np.float16
    exact = [ref(mpmath.mpf(float(v))) for v in x]
    assert ulp_errors(y, exact, np.float16).max() <= 1.0


def test_limits_and_tiny_values():
    x = np.array([-np.inf, -1e308, -1000.0, -40.0, 0.0, 40.0, 1000.0, np.inf, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = act.sigmoid(x)
        ls = act.log_sigmoid(x)
    np.testing.assert_array_equal(s[[0, 1, 2, 4, 6, 7]], [0.0, 0.0, 0.0, 0.5, 1.0, 1.0])
    assert s[3] == float(1 / (1 + mpmath.exp(40)))
    assert np.isnan(s[8]) and np.isnan(ls[8])
    # log_sigmoid(+40) keeps its tiny value -exp(-40) (log(1.0) would be 0).
    assert ls[5] == float(-mpmath.log1p(mpmath.exp(-40)))
    assert ls[5] < 0
    assert ls[2] == -1000.0 and ls[1] == -1e308 and ls[0] == -np.inf
    assert ls[7] == 0.0 and ls[6] == float(-mpmath.exp(-1000))


def test_logit_limits_and_domain():
    p = np.array([0.0, 1.0, 0.5, -0.1, 1.1, np.nan, np.inf, -np.inf, 5e-324])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = act.logit(p)
    assert r[0] == -np.inf and r[1] == np.inf and r[2] == 0.0
    assert np.all(np.isnan(r[3:8]))
    assert r[8] == float(mpmath.log(mpmath.mpf(5e-324)))


def test_no_floating_point_error_even_when_numpy_raises():
    x = np.array([-1e308, -800.0, 0.0, 800.0, np.inf, -np.inf, np.nan])
    with np.errstate(all="raise"):
        act.sigmoid(x)
        act.log_sigmoid(x)
        act.logit(np.array([0.0, 1.0, 2.0, -1.0, np.nan, 1e-320]))


@pytest.mark.parametrize("func", [act.sigmoid, act.log_sigmoid, act.logit])
def test_dtypes_and_shapes(func):
    for dtype in (np.float16, np.float32, np.float64):
        x = np.full((2, 3), 0.25, dtype=dtype)
        assert func(x).dtype == dtype and func(x).shape == (2, 3)
    assert func(np.array([0, 1], dtype=np.int32)).dtype == np.float64
    assert func([True, False]).dtype == np.float64
    assert func(np.zeros((0, 4))).shape == (0, 4)
    scalar = func(0.25)
    assert np.ndim(scalar) == 0 and isinstance(scalar, np.float64)
    # A non-contiguous view gives the same values as its copy.
    big = np.linspace(-5, 0.9, 24).reshape(4, 6)
    np.testing.assert_array_equal(func(big[:, ::2].T), func(big[:, ::2].T.copy()))
    with pytest.raises(TypeError, match="(x|p) must be real-valued"):  # named as in the signature
        func(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="dtype <U1"):
        func(np.array(["a"]))


def test_logit_inverts_sigmoid():
    # sigmoid(logit(p)) = p up to the propagated error: a relative error e
    # in logit(p) = L moves sigmoid by (1 - p) |L| e relative.
    p = RNG.uniform(0.01, 0.99, 500)
    logit = act.logit(p)
    bound = (2 * (1 - p) * np.abs(logit) + 2) * 2.0**-53 * p
    assert np.all(np.abs(act.sigmoid(logit) - p) <= bound)


def _exact_grid():
    """Pairs (z0, z1) with |z| up to 1e4 on a 1/64 grid: z1 - z0 is exact."""
    fine = np.arange(-40 * 64, 40 * 64 + 1, 3)  # in units of 1/64
    coarse = np.round(np.linspace(-1e4, 1e4, 401) * 64).astype(np.int64)
    edges = np.array([-1e4, -745.25, -709.5, 745.25, 1e4]) * 64
    units = np.unique(np.concatenate([fine, coarse, edges.astype(np.int64)]))
    u0, u1 = np.meshgrid(units, units[::5], indexing="ij")
    return u0.ravel(), u1.ravel()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_class_softmax_is_sigmoid(dtype):
    u0, u1 = _exact_grid()
    z0 = (u0 / 64).astype(dtype)
    z1 = (u1 / 64).astype(dtype)
    d = z1 - z0
    # Exactness of the difference, checked in integers.
    assert np.array_equal((d.astype(np.float64) * 64).astype(np.int64), u1 - u0)
    p1 = sm.softmax(np.stack([z0, z1], axis=-1))[..., 1]
    s = act.sigmoid(d)
    assert p1.dtype == s.dtype == dtype
    int_t = np.int64 if dtype == np.float64 else np.int32
    diff = np.abs(p1.view(int_t).astype(np.int64) - s.view(int_t).astype(np.int64))
    identical = int(np.count_nonzero(diff == 0))
    print(
        f"{np.dtype(dtype).name}: {identical}/{diff.size} bit-identical, "
        f"max {diff.max()} ulp apart"
    )
    assert diff.max() <= 1
    assert identical >= 0.5 * diff.size


def test_identity_on_other_axis_and_with_tiny_gap():
    z = np.array([[3.0, -2.0], [1e-300, 2e-300]])
    np.testing.assert_array_equal(sm.softmax(z, axis=0)[1], act.sigmoid(z[1] - z[0]))


def _softmax_bound_rtol(x, a):
    # T = fl(1 / ln a) carries a relative error <= 2**-53, which moves each
    # score y = x * ln a by |y| 2**-53; each softmax is within 2 ulp.
    y = np.abs(x - x.max()) * abs(math.log(a))
    return (4 + 2 * y.max()) * 2.0**-52


@pytest.mark.parametrize("a", [1.05, 2.0, math.e, 10.0, 100.0, 12345.678])
def test_base_equals_temperature(a):
    x = RNG.normal(scale=3, size=50)
    t = act.temperature_from_base(a)
    np.testing.assert_allclose(
        sm.softmax(x, base=a),
        sm.softmax(x, temperature=t),
        rtol=_softmax_bound_rtol(x, a),
        atol=0,
    )


@pytest.mark.parametrize("a", [0.1, 0.5, 0.9])
def test_base_below_one_reverses_order(a):
    x = RNG.normal(scale=3, size=20)
    t = act.temperature_from_base(a)
    assert t < 0
    np.testing.assert_allclose(
        sm.softmax(x, base=a),
        sm.softmax(-x, temperature=-t),
        rtol=_softmax_bound_rtol(x, a),
        atol=0,
    )


@pytest.mark.parametrize("a", [1.0 + 2**-40, 1.5, 2.0, math.e, 10.0, 0.25, 1e300, 1e-300])
def test_temperature_from_base_against_mpmath(a):
    exact = 1 / mpmath.log(mpmath.mpf(a))
    got = act.temperature_from_base(a)
    assert isinstance(got, float)
    assert abs(mpmath.mpf(got) - exact) <= np.spacing(abs(float(exact)))


@pytest.mark.parametrize("t", [0.01, 0.5, 1.0, 1.4426950408889634, 3.0, 1e6, -2.0])
def test_base_from_temperature_against_mpmath(t):
    exact = mpmath.exp(1 / mpmath.mpf(t))
    got = act.base_from_temperature(t)
    assert isinstance(got, float)
    assert abs(mpmath.mpf(got) - exact) <= np.spacing(abs(float(exact)))


def test_base_temperature_round_trip_and_e():
    assert act.temperature_from_base(np.e) == 1.0
    assert act.base_from_temperature(1.0) == np.e
    for a in (1.1, 2.0, 7.0, 1000.0):
        back = act.base_from_temperature(act.temperature_from_base(a))
        assert abs(back - a) <= 2 * np.spacing(a) * max(1.0, abs(math.log(a)))


def test_base_from_temperature_overflow_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert act.base_from_temperature(1e-3) == math.inf


@pytest.mark.parametrize("a", [1.0, 0.0, -2.0, math.inf, math.nan])
def test_temperature_from_base_rejects(a):
    with pytest.raises(ValueError, match=r"a must be a base .* got"):
        act.temperature_from_base(a)


@pytest.mark.parametrize("t", [0.0, math.inf, -math.inf, math.nan])
def test_base_from_temperature_rejects(t):
    with pytest.raises(ValueError, match="t must be a finite temperature != 0, got"):
        act.base_from_temperature(t)


def test_base_temperature_type_errors():
    with pytest.raises(TypeError, match="a must be a real number, got 'e'"):
        act.temperature_from_base("e")
    with pytest.raises(TypeError, match="t must be a real number, got True"):
        act.base_from_temperature(True)
