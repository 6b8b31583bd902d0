"""The C fast path (``_core.fast``): which calls it takes, and that it changes nothing.

The plain call (an aligned native float16/32/64 ndarray, one int axis,
temperature 1, no other option) is recognized and run in C. These tests pin
its acceptance rules to the Python rules it replaced (``PLAIN_*`` below,
kept here as the specification), and check, call by call, that every
outcome -- result bits, dtype, shape, scalar or array, identity of `out`,
what is left in x and out, or the exception and its message -- is the one
the general path gives with the fast path switched off.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import softmax as sm
from softmax import _core, _functions
from softmax._backends import numpy as _numpy_backend

MODE = {"softmax": 0, "log_softmax": 1}

# np.asmatrix is one of the subclasses that must not take the fast path
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


# --------------------------------------------------------------------------
# The acceptance rules, as the Python fast path had them
# --------------------------------------------------------------------------

def plain(x, axis, temperature, base, where):
    return (
        type(x) is np.ndarray
        and where is None
        and base is None
        and type(axis) is int
        and type(temperature) in (int, float)
        and temperature == 1
        and x.dtype.char in "efd"
        and x.dtype.isnative
        and x.flags.aligned
        and -x.ndim <= axis < x.ndim
    )


def plain_out(x, out):
    return (
        type(out) is np.ndarray
        and out.shape == x.shape
        and out.dtype == x.dtype
        and out.flags.writeable
        and out.flags.aligned
        and ((out is x and _numpy_backend._no_internal_overlap(x)) or not np.may_share_memory(out, x))
    )


def plain_softmax(x, axis, temperature, base, where, out):
    return plain(x, axis, temperature, base, where) and (out is None or plain_out(x, out))


def false_flag(v) -> bool:
    """The flags the general path reads as False: False and the int 0 (not None, not "")."""
    return v is False or (type(v) is int and v == 0)


def plain_logsumexp(x, axis, b, keepdims, return_sign, where):
    return (
        b is None
        and false_flag(keepdims)
        and false_flag(return_sign)
        and type(x) is np.ndarray
        and x.ndim >= 1
        and (axis is None or type(axis) is int)
        and (axis == x.ndim - 1 or axis == -1 or (axis is None and x.ndim == 1))
        and plain(x, -1, 1.0, None, where)
    )


# --------------------------------------------------------------------------
# Inputs: factories, since out=x writes into x
# --------------------------------------------------------------------------

def values(shape, dtype, seed=0):
    """Random scores with a few +-inf and NaN, in `dtype`."""
    rng = np.random.default_rng(seed)
    v = np.asarray(rng.normal(0, 3, shape))
    if v.size >= 6:
        flat = v.reshape(-1)
        flat[rng.choice(v.size, 3, replace=False)] = [np.inf, -np.inf, np.nan]
    return v.astype(dtype)


def unaligned(a):
    buf = np.zeros(a.nbytes + a.itemsize, np.uint8)
    u = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    # an empty or 1-byte array counts as aligned
    assert not u.flags.aligned or u.size == 0 or u.itemsize == 1
    return u


def readonly(a):
    a.flags.writeable = False
    return a


class Sub(np.ndarray):
    pass


def _x_variants():
    """name -> factory of x (fresh each call)."""
    v = {}
    for dt in ("f2", "f4", "f8"):
        for shape in [(3,), (1,), (0,), (2, 3), (3, 0), (0, 3), (2, 3, 4), (2, 1, 3, 2), ()]:
            v[f"{dt}{shape}"] = lambda dt=dt, shape=shape: values(shape, dt, len(shape))
    v["f8 F-order"] = lambda: np.asfortranarray(values((3, 4, 5), "f8"))
    v["f4 strided"] = lambda: values((4, 10), "f4")[:, ::3]
    v["f8 reversed"] = lambda: values((3, 5), "f8")[::-1, ::-1]
    v["f8 transposed"] = lambda: values((3, 4, 2), "f8").transpose(2, 0, 1)
    v["f8 broadcast"] = lambda: np.broadcast_to(values((5,), "f8"), (3, 5))
    v["f8 unaligned"] = lambda: unaligned(values((2, 3), "f8"))
    v["f2 unaligned"] = lambda: unaligned(values((2, 3), "f2"))
    v["f8 readonly"] = lambda: readonly(values((2, 3), "f8"))
    v["f8 byteswapped"] = lambda: values((2, 3), ">f8" if sys.byteorder == "little" else "<f8")
    v["f8 metadata"] = lambda: values((2, 3), "f8").view(np.dtype("f8", metadata={"a": 1}))
    v["longdouble"] = lambda: values((2, 3), np.longdouble)
    v["int64"] = lambda: np.arange(6).reshape(2, 3)
    v["bool"] = lambda: np.array([True, False, True])
    v["f8 subclass"] = lambda: values((2, 3), "f8").view(Sub)
    v["f8 matrix"] = lambda: np.asmatrix(values((2, 3), "f8"))
    v["f8 scalar"] = lambda: np.float64(2.5)
    v["list"] = lambda: [1.0, 2.0, 3.0]
    return v


X_VARIANTS = _x_variants()


def _out_variants():
    """name -> out factory given x (None: no out)."""

    def fresh(x, order="K", dtype=None):
        return np.empty_like(x, dtype=dtype, order=order, subok=False)

    return {
        "none": lambda x: None,
        "x": lambda x: x,
        "fresh": fresh,
        "fresh C": lambda x: fresh(x, "C"),
        "fresh F": lambda x: fresh(x, "F"),
        "reversed": lambda x: fresh(x)[(slice(None, None, -1),) * x.ndim],
        "float64": lambda x: fresh(x, dtype=np.float64),
        "float32": lambda x: fresh(x, dtype=np.float32),
        "byteswapped": lambda x: fresh(x, dtype=x.dtype.newbyteorder()),
        "wrong shape": lambda x: np.empty(x.shape + (1,), x.dtype),
        "readonly": lambda x: readonly(fresh(x)),
        "unaligned": lambda x: unaligned(fresh(x)),
        "subclass": lambda x: fresh(x).view(Sub),
        "list": lambda x: [0.0] * 3,
        "view of x": lambda x: x[...],
    }


OUT_VARIANTS = _out_variants()

AXES = [-1, 0, 1, 2, -2, -3, 3, 4, -5, True, False, np.int64(0), np.intp(-1), 2**70, -(2**70),
        None, (0,), (-1,), 1.0]
TEMPERATURES = [1, 1.0, True, np.float64(1.0), np.int64(1), 2, 0.5, 1.0000000000000002, -1,
                float("nan"), 2**70, 0, float("inf")]


# --------------------------------------------------------------------------
# Running one call both ways
# --------------------------------------------------------------------------

def bits(a):
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.itemsize > 8:
        a = a.astype(np.float64)  # long double: its padding bytes are not the value
    return a.tobytes()  # in C order, whatever the layout; NaN payloads included


def outcome(call):
    """Everything a caller can observe about one call."""
    try:
        x, out, r = call()
    except Exception as e:  # noqa: BLE001 - the error is part of the outcome
        return ("error", type(e), str(e))
    arr = np.asarray(r)
    seen = [type(r), arr.dtype, arr.shape, bits(arr), r is out, r is x]
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        seen.append(bits(x))
    if isinstance(out, np.ndarray):
        seen.append(bits(out))
    return tuple(seen)


@pytest.fixture
def general(monkeypatch):
    """Runs a call with the fast path switched off."""

    def run(call):
        with monkeypatch.context() as m:
            m.setattr(_functions, "_fast", lambda *args: None)
            return outcome(call)

    return run


def softmax_call(name, make_x, make_out, axis=-1, temperature=1.0, base=None, where=None):
    def call():
        x = make_x()
        out = make_out(x)
        return x, out, getattr(sm, name)(x, axis, temperature=temperature, base=base, where=where,
                                          out=out)

    return call


def lse_call(make_x, axis, b=None, keepdims=False, return_sign=False, where=None):
    def call():
        x = make_x()
        return x, None, sm.logsumexp(x, axis, b=b, keepdims=keepdims, return_sign=return_sign,
                                     where=where)

    return call


def fast_taken_softmax(name, make_x, make_out, axis=-1, temperature=1.0, base=None, where=None):
    """Whether _core.fast runs the call (on fresh inputs), and whether it should."""
    x = make_x()
    out = make_out(x) if isinstance(x, np.ndarray) else None
    want = plain_softmax(x, axis, temperature, base, where, out)
    x = make_x()
    out = make_out(x) if isinstance(x, np.ndarray) else None
    got = _core.fast(MODE[name], x, axis, temperature, base, where, out)
    return got is not None, want


# --------------------------------------------------------------------------
# softmax and log_softmax
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("xname", list(X_VARIANTS))
def test_axes_and_outs_like_the_general_path(name, xname, general):
    make_x = X_VARIANTS[xname]
    for axis, oname in itertools.product(AXES, OUT_VARIANTS):
        make_out = OUT_VARIANTS[oname]
        if not isinstance(make_x(), np.ndarray) and oname != "none":
            continue
        call = softmax_call(name, make_x, make_out, axis=axis)
        assert outcome(call) == general(call), (xname, axis, oname)
        got, want = fast_taken_softmax(name, make_x, make_out, axis=axis)
        assert got == want, (xname, axis, oname)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_options_like_the_general_path(name, general):
    make_x = X_VARIANTS["f8(2, 3, 4)"]
    mask = np.ones((2, 3, 4), bool)
    mask[0, 0, 0] = False
    options = [{"temperature": t} for t in TEMPERATURES]
    options += [{"base": base} for base in (2.0, np.e, 1)]
    options += [{"where": w} for w in (mask, np.ones((2, 3, 4), bool), True)]
    for kw, oname in itertools.product(options, ["none", "x", "fresh"]):
        make_out = OUT_VARIANTS[oname]
        for axis in (-1, 0, 1):
            call = softmax_call(name, make_x, make_out, axis=axis, **kw)
            assert outcome(call) == general(call), (kw, oname, axis)
            got, want = fast_taken_softmax(name, make_x, make_out, axis=axis, **kw)
            assert got == want, (kw, oname, axis)


def test_the_plain_call_is_taken():
    """The cases the speed-up is for do reach the C path."""
    for dt, name in itertools.product(["f2", "f4", "f8"], ["softmax", "log_softmax"]):
        x = np.array([1.0, 2.0, 3.0], dt)
        for temperature, out in itertools.product([1, 1.0], [None, x.copy()]):
            assert _core.fast(MODE[name], x, -1, temperature, None, None, out) is not None
        assert _core.fast(MODE[name], x, 0, 1.0, None, None, x) is x
    x = np.ones((2, 3))
    assert _core.fast(2, x, -1, None, False, None, False) is not None
    assert type(_core.fast(2, x[0], None, None, False, None, False)) is np.float64


def test_bool_and_numpy_temperatures_are_not_plain():
    x = np.array([1.0, 2.0, 3.0])
    for t in (True, np.float64(1.0), np.int64(1), np.float32(1.0)):
        assert _core.fast(0, x, -1, t, None, None, None) is None
    # bool is not a number for the general path either
    with pytest.raises(TypeError, match="temperature must be a real number"):
        sm.softmax(x, temperature=True)
    for t in (np.float64(1.0), np.int64(1), np.float32(1.0)):
        assert bits(sm.softmax(x, temperature=t)) == bits(sm.softmax(x))


def test_non_last_axis_layouts(general):
    """Rows along a middle or first axis: strided rows, blocks of rows, threads."""
    for shape, dt in [((3, 4, 5), "f8"), ((1000, 70), "f4"), ((64, 3, 300), "f8"),
                      ((5, 2), "f2"), ((300, 700), "f8")]:
        make_x = lambda shape=shape, dt=dt: values(shape, dt, 7)
        for axis, oname in itertools.product(range(-len(shape), len(shape)),
                                             ["none", "x", "fresh F"]):
            for name in ("softmax", "log_softmax"):
                call = softmax_call(name, make_x, OUT_VARIANTS[oname], axis=axis)
                assert outcome(call) == general(call), (shape, axis, oname, name)


def test_long_rows(general):
    """Rows longer than the row cache are done in segments, possibly on threads."""
    make_x = lambda: values((2, 140_000), "f4", 3)
    for name, axis in itertools.product(("softmax", "log_softmax"), (-1, 0)):
        call = softmax_call(name, make_x, OUT_VARIANTS["none"], axis=axis)
        assert outcome(call) == general(call)
    call = lse_call(make_x, -1)
    assert outcome(call) == general(call)


def test_result_layout_is_x_layout():
    """A new result keeps x's memory order, as np.empty_like(x) does."""
    for x in (np.asfortranarray(np.ones((3, 4))), np.ones((3, 4))[::-1], np.ones((4, 6))[::2, ::3],
              np.ones((2, 3, 4)).transpose(1, 2, 0)):
        r = sm.softmax(x, axis=0)
        assert r.strides == np.empty_like(x).strides
        assert r.flags.writeable and r.base is None


def test_in_place_returns_x():
    x = values((4, 5), "f4")
    want = sm.softmax(x.copy(), axis=0)
    assert sm.softmax(x, axis=0, out=x) is x
    assert bits(x) == bits(want)


def test_axis_errors_are_the_general_paths(general):
    x = np.array([1.0, 2.0, 3.0])
    for name, axis in itertools.product(("softmax", "log_softmax", "logsumexp"),
                                        (1, -2, 2**70, True, 1.0, "0")):
        call = (lse_call(lambda: x, axis) if name == "logsumexp"
                else softmax_call(name, lambda: x, OUT_VARIANTS["none"], axis=axis))
        got = outcome(call)
        assert got[0] == "error" and got == general(call), (name, axis)
    with pytest.raises(np.exceptions.AxisError, match="axis 1"):
        sm.softmax(x, axis=1)


def _shared(n=24, dtype="f8"):
    return values((n,), dtype, 5)


# (x, out) views of one buffer: plain only if their byte ranges are disjoint
SHARED_PAIRS = {
    "adjacent": (True, lambda b: (b[:4], b[4:8])),
    "adjacent, out first": (True, lambda b: (b[4:8], b[:4])),
    "one element shared": (False, lambda b: (b[:4], b[3:7])),
    "one element shared, out first": (False, lambda b: (b[3:7], b[:4])),
    "interleaved": (False, lambda b: (b[0:8:2], b[1:9:2])),
    "reversed, adjacent": (True, lambda b: (b[:4][::-1], b[4:8])),
    "reversed, shared": (False, lambda b: (b[:4], b[3:7][::-1])),
    "same memory, another view": (False, lambda b: (b[:6], b[:6][...])),
    "rows apart": (True, lambda b: (b.reshape(4, 6)[:2], b.reshape(4, 6)[2:])),
    "rows shared": (False, lambda b: (b.reshape(4, 6)[:2], b.reshape(4, 6)[1:3])),
    "columns side by side": (False, lambda b: (b.reshape(4, 6)[:, :3], b.reshape(4, 6)[:, 3:])),
    "empty, same place": (True, lambda b: (b[:0], b[:0])),
}


@pytest.mark.parametrize("dtype", ["f2", "f4", "f8"])
@pytest.mark.parametrize("case", list(SHARED_PAIRS))
def test_out_sharing_memory_with_x(case, dtype, general):
    plain_case, pair = SHARED_PAIRS[case]
    for name, axis in itertools.product(("softmax", "log_softmax"), (-1, 0)):
        x, out = pair(_shared(dtype=dtype))
        assert plain_softmax(x, axis, 1.0, None, None, out) == plain_case, case
        assert (_core.fast(MODE[name], x, axis, 1.0, None, None, out) is not None) == plain_case

        def call(name=name, axis=axis):
            x, out = pair(_shared(dtype=dtype))
            r = getattr(sm, name)(x, axis, out=out)
            # as "x", the whole buffer: what was written, and where
            return x.base, out, r

        got, want = outcome(call), general(call)
        assert got == want, (case, name, axis)


def test_internal_overlap_as_its_own_out(general):
    def make_x():
        return as_strided(np.arange(5.0), (2, 3), (8, 8))

    assert _core.fast(0, make_x(), -1, 1.0, None, None, None) is not None
    x = make_x()
    assert _core.fast(0, x, -1, 1.0, None, None, x) is None
    call = softmax_call("softmax", make_x, OUT_VARIANTS["x"])
    assert outcome(call) == general(call)


# --------------------------------------------------------------------------
# logsumexp
# --------------------------------------------------------------------------

class Truthy:
    def __init__(self, value):
        self.value = value

    def __bool__(self):
        return self.value


class Raising:
    def __bool__(self):
        raise RuntimeError("no truth value")


LSE_OPTIONS = [
    {},
    {"keepdims": True},
    {"keepdims": 0},
    {"keepdims": None},
    {"keepdims": np.False_},
    {"keepdims": Truthy(False)},
    {"keepdims": Truthy(True)},
    {"return_sign": True},
    {"return_sign": 0},
    {"b": 2.0},
    {"b": np.ones(1)},
]


@pytest.mark.parametrize("xname", list(X_VARIANTS))
def test_logsumexp_like_the_general_path(xname, general):
    make_x = X_VARIANTS[xname]
    for axis, kw in itertools.product(AXES, LSE_OPTIONS):
        call = lse_call(make_x, axis, **kw)
        assert outcome(call) == general(call), (xname, axis, kw)
        x = make_x()
        full = {"b": None, "keepdims": False, "return_sign": False, "where": None, **kw}
        want = plain_logsumexp(x, axis, full["b"], full["keepdims"], full["return_sign"], None)
        got = _core.fast(2, x, axis, full["b"], full["keepdims"], None, full["return_sign"])
        assert (got is not None) == want, (xname, axis, kw)


def test_logsumexp_where_is_not_plain(general):
    x = values((3, 4), "f8")
    mask = np.ones((3, 4), bool)
    assert _core.fast(2, x, -1, None, False, mask, False) is None
    call = lse_call(lambda: x, -1, where=mask)
    assert outcome(call) == general(call)


def test_a_failing_bool_is_left_to_the_general_path(general):
    x = np.array([1.0, 2.0])
    assert _core.fast(2, x, -1, None, Raising(), None, False) is None
    assert _core.fast(2, x, -1, None, False, None, Raising()) is None
    for kw in ({"keepdims": Raising()}, {"return_sign": Raising()}):
        call = lse_call(lambda: x, -1, **kw)
        got = outcome(call)
        # a flag must be True or False: the general path refuses what has no plain truth value
        assert got[0] == "error" and got[1] is TypeError and got == general(call)


def test_logsumexp_scalar_result_type():
    for dt in (np.float16, np.float32, np.float64):
        r = sm.logsumexp(np.array([1.0, 2.0, 3.0], dt))
        assert type(r) is dt
        r = sm.logsumexp(np.zeros(0, dt))
        assert type(r) is dt and r == -np.inf
        r = sm.logsumexp(np.zeros((2, 0), dt), axis=-1)
        assert type(r) is np.ndarray and r.dtype == dt and list(r) == [-np.inf, -np.inf]


# --------------------------------------------------------------------------
# The internal function itself
# --------------------------------------------------------------------------

def test_fast_rejects_bad_internal_calls():
    x = np.ones(3)
    with pytest.raises(TypeError):
        _core.fast(0, x, -1, 1.0, None, None)
    with pytest.raises(TypeError):
        _core.fast("0", x, -1, 1.0, None, None, None)
    with pytest.raises(ValueError):
        _core.fast(3, x, -1, 1.0, None, None, None)


def test_fast_keeps_reference_counts():
    x = np.array([1.0, 2.0, 3.0])
    out = np.empty_like(x)
    flag = Truthy(False)
    before = [sys.getrefcount(o) for o in (x, out, flag)]
    for _ in range(1000):
        _core.fast(0, x, -1, 1.0, None, None, None)
        _core.fast(1, x, 0, 1, None, None, out)
        _core.fast(0, x, -1, 1.0, None, None, x)
        _core.fast(0, x, -1, 2.0, None, None, out)
        _core.fast(2, x, -1, None, flag, None, flag)
        _core.fast(2, x, None, None, False, None, False)
    assert [sys.getrefcount(o) for o in (x, out, flag)] == before
