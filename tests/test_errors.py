"""Bad input: ValueError / TypeError naming the argument and the value."""

import numpy as np
import pytest

import softmax as sm

X = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
SOFT = [sm.softmax, sm.log_softmax]
ALL = [sm.softmax, sm.log_softmax, sm.logsumexp]


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("t", [-1.0, -1e-300, -np.inf, np.nan, np.float32(-2)])
def test_bad_temperature_value(f, t):
    with pytest.raises(ValueError, match=r"^temperature must be .*got " + _re(repr(t))):
        f(X, temperature=t)


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("t", ["1", None, 1j, [1.0], True])
def test_bad_temperature_type(f, t):
    with pytest.raises(TypeError, match=r"^temperature must be a real number, got " + _re(repr(t))):
        f(X, temperature=t)


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("a", [0.0, -2.0, 1.0, 1, np.nan, np.inf, -np.inf])
def test_bad_base_value(f, a):
    with pytest.raises(ValueError, match=r"^base must be .*got " + _re(repr(a))):
        f(X, base=a)


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
def test_bad_base_type(f):
    with pytest.raises(TypeError, match=r"^base must be a real number, got 'e'"):
        f(X, base="e")


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
def test_where_that_does_not_broadcast(f):
    with pytest.raises(ValueError, match=r"^where must broadcast to x.shape \(2, 3\), got shape \(2,\)"):
        f(X, where=np.array([True, False]))


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("where", [np.array([1, 0, 1]), [1.0, 0.0, 1.0]])
def test_where_that_is_not_boolean(f, where):
    with pytest.raises(TypeError, match=r"^where must be a boolean array, got dtype"):
        f(X, where=where)


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
def test_out_of_wrong_shape(f):
    with pytest.raises(ValueError, match=r"^out must have shape \(2, 3\), got shape \(3, 2\)"):
        f(X, out=np.empty((3, 2)))
    with pytest.raises(ValueError, match=r"^out must have shape \(2, 3\), got shape \(1, 3\)"):
        f(X, out=np.empty((1, 3)))  # broadcastable is not enough


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.complex128])
def test_out_of_wrong_dtype(f, dtype):
    with pytest.raises(TypeError, match=r"^out must have dtype float64, got dtype " + np.dtype(dtype).name):
        f(X, out=np.empty(X.shape, dtype=dtype))
    with pytest.raises(TypeError, match=r"^out must have dtype float32, got dtype float64"):
        f(X.astype(np.float32), out=np.empty(X.shape))


@pytest.mark.parametrize("f", SOFT, ids=lambda f: f.__name__)
def test_out_not_an_array_or_read_only(f):
    with pytest.raises(TypeError, match=r"^out must be a numpy.ndarray, got list"):
        f(X, out=[[0.0] * 3] * 2)
    ro = np.empty(X.shape)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^out must be writeable"):
        f(X, out=ro)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input(f, dtype):
    with pytest.raises(TypeError, match=r"^x must be real-valued, got complex dtype " + np.dtype(dtype).name):
        f(np.array([1.0, 2.0], dtype=dtype))


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("x", [np.array(["a", "b"]), np.array([1, "x"], dtype=object),
                               np.array([b"1"]), np.array(["2020-01-01"], dtype="M8[D]")])
def test_non_numeric_input(f, x):
    with pytest.raises(TypeError, match=r"^x must be an array of real numbers, got dtype"):
        f(x)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
def test_bad_axis(f):
    with pytest.raises(np.exceptions.AxisError, match="axis 2 is out of bounds"):
        f(X, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        f(X, axis=(0, -3))
    with pytest.raises(TypeError, match=r"^axis must be an int, a tuple of ints or None, got 1.0"):
        f(X, axis=1.0)
    with pytest.raises(TypeError, match=r"^axis must be an int, a tuple of ints or None, got True"):
        f(X, axis=True)
    with pytest.raises(ValueError, match=r"^axis must not repeat an axis, got \(1, -1\)"):
        f(X, axis=(1, -1))
    with pytest.raises(np.exceptions.AxisError):
        f(np.float64(1.0), axis=1)  # a scalar has only axis 0 / -1


def test_axis_error_is_a_value_error():
    with pytest.raises(ValueError):
        sm.softmax(X, axis=5)


def test_bad_b():
    with pytest.raises(ValueError, match=r"^b must broadcast with x.shape \(2, 3\), got shape \(2,\)"):
        sm.logsumexp(X, b=[1.0, 2.0])
    with pytest.raises(TypeError, match=r"^b must be real-valued, got complex dtype"):
        sm.logsumexp(X, b=np.ones(3, dtype=complex))


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        sm.softmax(X, -1, 2.0)
    with pytest.raises(TypeError):
        sm.logsumexp(X, None, None, False, False, None)  # where is keyword-only
    # SciPy's signature: b, keepdims and return_sign may be positional
    assert sm.logsumexp(X, None, np.ones_like(X), False, True)[1] == 1.0


def _re(text: str) -> str:
    import re

    return re.escape(text)
