"""Axes, memory layouts, dtypes, out= and where= against scipy.special.

Values are compared with SciPy (an independent implementation) at a
tolerance that covers SciPy's own rounding; layouts are compared bit for
bit with a C-contiguous copy, since the core promises the same bits for a
strided row as for a contiguous one.
"""

import itertools

import numpy as np
import pytest

import softmax as sm

special = pytest.importorskip("scipy.special")

FUNCS = ["softmax", "log_softmax", "logsumexp"]
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}


def ours(name, x, axis, **kw):
    return getattr(sm, name)(x, axis=axis, **kw)


def scipy_ref(name, x, axis):
    x64 = np.asarray(x, dtype=np.float64)
    return getattr(special, name)(x64, axis=axis)


def close(got, want, dtype=np.float64):
    # SciPy's log_softmax near 0 is off by up to ~1 ulp of 1 (absolute), and
    # SciPy computes float16/float32 in the input dtype: hence the atol.
    atol = {np.float16: 2e-3, np.float32: 2e-7, np.float64: 1e-15}[dtype]
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=RTOL[dtype], atol=atol)


def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


SHAPES_AXES = [
    ((7,), [None, 0, -1, (0,)]),
    ((3, 5), [None, 0, 1, -1, -2, (0, 1), (1, 0), ()]),
    ((2, 3, 4), [None, 0, 1, 2, -1, (0, 2), (2, 0), (1, 2), (0, 1), (0, 1, 2), ()]),
    ((2, 1, 3, 2), [1, 3, (0, 3), (1, 2), (0, 2, 3)]),
]


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("shape,axes", SHAPES_AXES, ids=lambda v: str(v))
def test_axes_match_scipy(name, shape, axes):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(0, 4, shape)
    for axis in axes:
        close(ours(name, x, axis), scipy_ref(name, x, axis))


def test_default_axes():
    x = np.random.default_rng(0).normal(size=(3, 4))
    close(sm.softmax(x), special.softmax(x, axis=-1))
    close(sm.log_softmax(x), special.log_softmax(x, axis=-1))
    close(sm.logsumexp(x), special.logsumexp(x))  # None, as in SciPy


def test_logsumexp_keepdims():
    x = np.random.default_rng(1).normal(size=(2, 3, 4))
    for axis in [None, 1, (0, 2), -1]:
        got = sm.logsumexp(x, axis=axis, keepdims=True)
        want = special.logsumexp(x, axis=axis, keepdims=True)
        assert got.shape == want.shape
        close(got, want)


def _layouts(x):
    """Views of the same values in several memory layouts."""
    yield "C", np.ascontiguousarray(x)
    yield "F", np.asfortranarray(x)
    big = np.zeros(tuple(2 * s for s in x.shape), dtype=x.dtype)
    view = big[tuple(slice(None, None, 2) for _ in x.shape)]
    view[...] = x
    yield "strided", view
    rev = np.ascontiguousarray(x[tuple(slice(None, None, -1) for _ in x.shape)])
    yield "negative-stride", rev[tuple(slice(None, None, -1) for _ in x.shape)]
    t = np.ascontiguousarray(np.swapaxes(x, 0, -1))
    yield "transposed", np.swapaxes(t, 0, -1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FUNCS)
def test_layouts_give_the_same_bits(name, dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 5, (4, 5, 6)).astype(dtype)
    x[1, 2, 3] = np.nan
    x[2, :, 0] = -np.inf
    for axis in [-1, 0, 1, (0, 2), None]:
        want = ours(name, np.ascontiguousarray(x), axis)
        for label, view in _layouts(x):
            assert np.array_equal(view, x, equal_nan=True)
            got = ours(name, view, axis)
            assert bits_equal(got, want), f"{name} {label} axis={axis}"


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_masked_strided_view_matches_contiguous(name):
    rng = np.random.default_rng(4)
    x = rng.normal(0, 5, (6, 8))
    m = rng.random((6, 8)) < 0.6
    want = ours(name, x, 0, where=m)
    got = ours(name, np.asfortranarray(x), 0, where=np.asfortranarray(m))
    assert bits_equal(got, want)
    got = ours(name, x[::-1][::-1], 0, where=m[:, ::-1][:, ::-1])
    assert bits_equal(got, want)


# ---- dtypes, lists, scalars --------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype,result", [
    (np.float16, np.float16), (np.float32, np.float32), (np.float64, np.float64),
    (np.int8, np.float64), (np.int64, np.float64), (np.uint16, np.float64), (np.bool_, np.float64),
])
def test_result_dtype(name, dtype, result):
    x = np.array([[1, 0, 1], [0, 0, 1]], dtype=dtype)
    got = ours(name, x, -1)
    assert got.dtype == result
    close(got, scipy_ref(name, x.astype(np.float64), -1), result)


def test_float16_is_rounded_once_from_float64():
    x = np.linspace(-8, 8, 33).astype(np.float16)
    want = special.softmax(x.astype(np.float64)).astype(np.float16)
    got = sm.softmax(x)
    # one rounding of a float64 value that is itself within 2 ulp of exact
    assert np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))
                  / np.spacing(want.astype(np.float16)).astype(np.float64)) <= 1


def test_lists_and_scalars():
    assert bits_equal(sm.softmax([2.0, 1.0, 0.1]), sm.softmax(np.array([2.0, 1.0, 0.1])))
    assert bits_equal(sm.log_softmax([[1, 2], [3, 4]]), sm.log_softmax(np.array([[1.0, 2], [3, 4]])))
    close(sm.logsumexp([1, 2, 3]), special.logsumexp([1, 2, 3]))
    for f in (sm.softmax, sm.log_softmax, sm.logsumexp):
        r = f(3.0)
        assert isinstance(r, np.float64) and np.ndim(r) == 0
    assert sm.softmax(np.float32(3)) == 1 and sm.softmax(np.float32(3)).dtype == np.float32
    assert sm.logsumexp(np.array(2.5, np.float32)).dtype == np.float32


@pytest.mark.parametrize("axis", [None, 0, -1, ()])
def test_zero_d_arrays_follow_scipy(axis):
    x = np.array(-1.5)
    assert sm.softmax(x, axis=axis) == special.softmax(x, axis=axis) == 1.0
    assert sm.log_softmax(x, axis=axis) == 0.0
    assert sm.logsumexp(x, axis=axis) == -1.5


def test_empty_tuple_axis_makes_every_element_its_own_slice():
    x = np.array([[1.0, -np.inf], [np.nan, 4.0]])
    assert bits_equal(sm.softmax(x, axis=()), np.array([[1.0, 0.0], [np.nan, 1.0]]))
    assert bits_equal(sm.logsumexp(x, axis=()), x)


# ---- out= --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_out_receives_the_result(name, dtype):
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, (4, 6)).astype(dtype)
    for axis in [-1, 0, (0, 1)]:
        want = ours(name, x, axis)
        for order in "CF":
            out = np.full(x.shape, 7, dtype=dtype, order=order)
            got = ours(name, x, axis, out=out)
            assert got is out
            assert bits_equal(out, want)
        big = np.zeros((8, 12), dtype=dtype)
        out = big[::2, ::-2]
        assert ours(name, x, axis, out=out) is out
        assert bits_equal(out, want)
        assert not big[1::2].any()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_out_is_x(name, dtype):
    rng = np.random.default_rng(6)
    x0 = rng.normal(0, 3, (5, 7)).astype(dtype)
    for axis in [-1, 0, (0, 1), None]:
        for view in (lambda a: a, lambda a: a.T, lambda a: a[:, ::-1]):
            want = ours(name, view(x0), axis)
            x = x0.copy()
            v = view(x)
            assert ours(name, v, axis, out=v) is v
            assert bits_equal(v, want), axis


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_overlapping_x_without_being_x(name):
    x0 = np.random.default_rng(7).normal(0, 3, 9)
    want = ours(name, x0[:8], -1)
    x = x0.copy()
    out = x[1:]  # shifted by one element: writes would clobber unread inputs
    assert ours(name, x[:8], -1, out=out) is out
    assert bits_equal(out, want)
    x = x0.copy()
    rev = x[::-1]
    assert ours(name, x, -1, out=rev) is rev
    assert bits_equal(rev, ours(name, x0, -1))


def test_out_with_int_input_is_float64():
    out = np.empty(3)
    assert sm.softmax([1, 2, 3], out=out) is out
    close(out, special.softmax([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_with_where(name):
    x = np.array([[1.0, 2.0, np.nan], [0.0, 5.0, 1.0]])
    m = np.array([True, True, False])
    out = np.empty_like(x)
    assert ours(name, x, -1, where=m, out=out) is out
    assert bits_equal(out, ours(name, x, -1, where=m))


# ---- where= ------------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
def test_where_equals_the_function_of_the_kept_entries(name):
    """f(x, where=m)[m] == f(x[m]), bit for bit (JAX's mask property)."""
    rng = np.random.default_rng(8)
    x = rng.normal(0, 10, (6, 9))
    masks = {
        "full": rng.random((6, 9)) < 0.5,
        "row": np.broadcast_to(rng.random(9) < 0.5, (6, 9)),
        "col": np.broadcast_to(rng.random((6, 1)) < 0.5, (6, 9)),
    }
    for label, m in masks.items():
        given = {"full": m, "row": m[0], "col": m[:, :1]}[label]  # broadcast by the callee
        got = ours(name, x, -1, where=given)
        for i in range(6):
            kept = x[i][m[i]]
            want = ours(name, kept, -1) if kept.size else None
            if name == "logsumexp":
                assert got[i] == (want if kept.size else -np.inf), (label, i)
            else:
                empty = 0.0 if name == "softmax" else -np.inf
                assert bits_equal(got[i][m[i]], want if kept.size else np.empty(0)), (label, i)
                assert (got[i][~m[i]] == empty).all()


def test_where_with_tuple_axis_and_none():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 4, 5))
    m = rng.random((3, 4, 5)) < 0.7
    p = sm.softmax(x, axis=(0, 2), where=m)
    assert np.allclose(p.sum(axis=(0, 2)), 1.0, rtol=1e-14)
    assert (p[~m] == 0).all()
    lse = sm.logsumexp(x, axis=None, where=m)
    close(lse, special.logsumexp(x[m]))
    p_all = sm.softmax(x, axis=None, where=m)
    assert bits_equal(p_all[m], sm.softmax(x[m]))


def test_where_scalar_true_and_false():
    x = np.array([1.0, 2.0])
    assert bits_equal(sm.softmax(x, where=True), sm.softmax(x))
    assert bits_equal(sm.softmax(x, where=np.False_), np.zeros(2))


def test_all_axis_orders_of_a_tuple_are_the_same():
    x = np.random.default_rng(10).normal(size=(2, 3, 4))
    for axes in itertools.permutations((0, 1, 2), 2):
        assert bits_equal(sm.softmax(x, axis=axes), sm.softmax(x, axis=tuple(sorted(axes))))
