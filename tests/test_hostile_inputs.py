"""Hostile inputs: every bad argument gets a clear error, every odd layout a right answer.

The bad-input table of docs/hardening.md is this file. Expected
values come from scipy.special (or hand-derivable numbers), never from
softmax itself.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided
from scipy import special

import softmax as sm

import exact_oracle as eo

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
X = np.array([2.0, 1.0, 0.1])
P_X = special.softmax(X)  # 0.659, 0.242, 0.0986 (the article's example)


# --------------------------------------------------------------------------
# Rejected inputs: (case id, call, exception type, text the message must hold)
# --------------------------------------------------------------------------

def _ro_out():
    out = np.empty(3)
    out.flags.writeable = False
    return out


REJECTED = [
    ("object array", lambda: sm.softmax(np.array([1.0, 2.0], dtype=object)), TypeError, "x must be"),
    ("strings", lambda: sm.softmax(["a", "b"]), TypeError, "x must be"),
    ("str scalar", lambda: sm.softmax("1.0"), TypeError, "x must be"),
    ("bytes", lambda: sm.softmax(b"abc"), TypeError, "x must be"),
    ("None", lambda: sm.softmax(None), TypeError, "x must be"),
    ("dict", lambda: sm.softmax({"a": 1.0}), TypeError, "x must be"),
    ("Decimal list", lambda: sm.softmax([__import__("decimal").Decimal(1)]), TypeError, "object"),
    ("int beyond int64", lambda: sm.softmax([10**400]), TypeError, "object"),
    ("datetime64", lambda: sm.softmax(np.array(["2020-01-01"], dtype="M8[D]")), TypeError, "datetime64"),
    ("timedelta64", lambda: sm.softmax(np.array([1, 2], dtype="m8[s]")), TypeError, "timedelta64"),
    ("structured", lambda: sm.softmax(np.zeros(3, dtype=[("a", "f8")])), TypeError, "x must be"),
    ("void", lambda: sm.softmax(np.zeros(3, dtype="V8")), TypeError, "x must be"),
    ("complex", lambda: sm.softmax(np.array([1 + 1j])), TypeError, "real-valued"),
    ("complex logsumexp", lambda: sm.logsumexp(np.array([1 + 1j])), TypeError, "real-valued"),
    ("axis float", lambda: sm.softmax(X, axis=1.0), TypeError, "axis must be"),
    ("axis bool", lambda: sm.softmax(X, axis=True), TypeError, "axis must be"),
    ("axis str", lambda: sm.softmax(X, axis="0"), TypeError, "axis must be"),
    ("axis out of range", lambda: sm.softmax(X, axis=1), np.exceptions.AxisError, "axis 1"),
    ("axis -2 on 1-d", lambda: sm.softmax(X, axis=-2), np.exceptions.AxisError, "axis -2"),
    ("axis repeated", lambda: sm.softmax(np.ones((2, 2)), axis=(0, -2)), ValueError, "repeat"),
    ("axis 1 on a scalar", lambda: sm.softmax(np.float64(1.0), axis=1), np.exceptions.AxisError, "axis 1"),
    ("temperature NaN", lambda: sm.softmax(X, temperature=np.nan), ValueError, "temperature must be"),
    ("temperature < 0", lambda: sm.softmax(X, temperature=-1), ValueError, "temperature must be"),
    ("temperature -inf", lambda: sm.softmax(X, temperature=-np.inf), ValueError, "temperature must be"),
    ("temperature str", lambda: sm.softmax(X, temperature="1"), TypeError, "temperature must be"),
    ("temperature None", lambda: sm.softmax(X, temperature=None), TypeError, "temperature must be"),
    ("temperature complex", lambda: sm.softmax(X, temperature=1j), TypeError, "temperature must be"),
    ("temperature array", lambda: sm.softmax(X, temperature=np.array([1.0, 2.0])), TypeError, "temperature must be"),
    ("temperature bool", lambda: sm.softmax(X, temperature=True), TypeError, "temperature must be"),
    ("base 1", lambda: sm.softmax(X, base=1), ValueError, "base must be"),
    ("base 0", lambda: sm.softmax(X, base=0), ValueError, "base must be"),
    ("base < 0", lambda: sm.softmax(X, base=-2), ValueError, "base must be"),
    ("base inf", lambda: sm.softmax(X, base=np.inf), ValueError, "base must be"),
    ("base NaN", lambda: sm.softmax(X, base=np.nan), ValueError, "base must be"),
    ("base str", lambda: sm.softmax(X, base="e"), TypeError, "base must be"),
    ("where int", lambda: sm.softmax(X, where=[1, 0, 1]), TypeError, "where must be"),
    ("where object", lambda: sm.softmax(X, where=np.array([True, False, True], dtype=object)), TypeError, "where must be"),
    ("where wrong shape", lambda: sm.softmax(X, where=[True, False]), ValueError, "where must broadcast"),
    ("where bigger", lambda: sm.softmax(X, where=np.ones((2, 3), bool)), ValueError, "where must broadcast"),
    ("out list", lambda: sm.softmax(X, out=[0.0, 0.0, 0.0]), TypeError, "out must be"),
    ("out wrong dtype", lambda: sm.softmax(X, out=np.empty(3, np.float32)), TypeError, "out must have dtype"),
    ("out wrong shape", lambda: sm.softmax(X, out=np.empty(4)), ValueError, "out must have shape"),
    ("out read-only", lambda: sm.softmax(X, out=_ro_out()), ValueError, "out must be writeable"),
    ("out broadcast view", lambda: sm.softmax(X, out=np.broadcast_to(np.empty(1), (3,))), ValueError, "out must be writeable"),
    ("out read-only memmap", None, ValueError, "out must be writeable"),  # built in the test
    ("b object", lambda: sm.logsumexp(X, b=np.array([1, 2, 3], dtype=object)), TypeError, "b must be"),
    ("b wrong shape", lambda: sm.logsumexp(X, b=np.ones(2)), ValueError, "b must broadcast"),
    ("lse where int", lambda: sm.logsumexp(X, where=[1, 0, 1]), TypeError, "where must be"),
    ("lse axis out of range", lambda: sm.logsumexp(X, axis=3), np.exceptions.AxisError, "axis 3"),
]


@pytest.mark.parametrize("call, exc, text", [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_rejected_with_a_clear_error(call, exc, text, tmp_path):
    if call is None:  # the read-only memmap out
        np.save(tmp_path / "o.npy", np.zeros(3))
        ro = np.load(tmp_path / "o.npy", mmap_mode="r")
        call = lambda: sm.softmax(X, out=ro)  # noqa: E731
    with pytest.raises(exc, match=text):
        call()


def test_rejected_inputs_leave_x_and_out_untouched():
    x = X.copy()
    out = np.full(3, 7.0)
    with pytest.raises(ValueError):
        sm.softmax(x, temperature=-1, out=out)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(out, 7.0)


# --------------------------------------------------------------------------
# Accepted odd inputs: the answer is SciPy's on a plain copy.
# --------------------------------------------------------------------------

class Sub(np.ndarray):
    pass


def _unaligned(a: np.ndarray) -> np.ndarray:
    raw = np.zeros(a.nbytes + 1, np.uint8)
    u = raw[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned
    return u


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


M = np.array([[3.0, -1.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0], [-7.0, 10.0, 1.0, 1.0]])

ODD_LAYOUTS = {
    "read-only": lambda: _read_only(M),
    "big-endian float64": lambda: M.astype(">f8"),
    "big-endian float32": lambda: M.astype(">f4"),
    "little-endian on any host": lambda: M.astype("<f8"),
    "unaligned float64": lambda: _unaligned(M),
    "unaligned float32": lambda: _unaligned(M.astype(np.float32)),
    "Fortran order": lambda: np.asfortranarray(M),
    "transposed": lambda: np.ascontiguousarray(M.T).T,
    "negative strides": lambda: M[::-1, ::-1].copy()[::-1, ::-1],
    "every other column": lambda: np.repeat(M, 2, axis=1)[:, ::2],
    "zero stride (broadcast rows)": lambda: np.broadcast_to(M[:1], M.shape),
    "zero stride (broadcast columns)": lambda: np.broadcast_to(M[:, :1], M.shape),
    "overlapping read-only view": lambda: as_strided(np.arange(6.0), (3, 4), (8, 8), writeable=False),
    "ndarray subclass": lambda: M.view(Sub),
    "int64": lambda: M.astype(np.int64),
    "uint8": lambda: np.abs(M).astype(np.uint8),
    "bool": lambda: M > 0,
    "float16": lambda: M.astype(np.float16),
    "longdouble": lambda: M.astype(np.longdouble),
    "nested lists": lambda: M.tolist(),
    "tuple of tuples": lambda: tuple(map(tuple, M.tolist())),
}


@pytest.mark.parametrize("fname", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0, None, (0, 1)])
@pytest.mark.parametrize("name", list(ODD_LAYOUTS))
def test_odd_layouts_give_scipys_answer(name, axis, fname):
    x = ODD_LAYOUTS[name]()
    plain = np.array(x, dtype=np.float64)
    before = np.array(x, copy=True)
    got = getattr(sm, fname)(x, axis=axis)
    want = getattr(special, fname)(plain, axis=axis)
    dtype = np.asarray(x).dtype
    want_dtype = dtype.newbyteorder("=") if dtype.kind == "f" else np.dtype(np.float64)
    assert type(got) is np.ndarray
    assert got.dtype == want_dtype
    rtol = {2: 1e-3, 4: 1e-6}.get(want_dtype.itemsize, 1e-13)
    # SciPy's log_softmax is good to eps * max|x| in absolute terms, not relative.
    atol = rtol * (1 + np.max(np.abs(plain))) if fname == "log_softmax" else rtol * 1e-3
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol)
    # and the accuracy promise itself, against mpmath (longdouble is computed in float64)
    exact_x = plain.astype(want_dtype) if want_dtype in eo.BOUND else plain
    eo.check_softmax(got.astype(exact_x.dtype), exact_x, axis, log=fname == "log_softmax",
                     what=name)
    np.testing.assert_array_equal(np.asarray(x), before)  # x is never written


@pytest.mark.parametrize("name", list(ODD_LAYOUTS))
def test_odd_layouts_logsumexp(name):
    x = ODD_LAYOUTS[name]()
    plain = np.array(x, dtype=np.float64)
    dtype = np.asarray(ODD_LAYOUTS[name]()).dtype.newbyteorder("=")
    exact_x = plain.astype(dtype) if dtype in eo.BOUND else plain
    for axis in (None, 0, -1):
        got = np.asarray(sm.logsumexp(x, axis=axis))
        # within the ulp promise of the correctly rounded mpmath value (SciPy is no
        # reference at that level: it is itself off by an ulp or two)
        eo.check_logsumexp(got.astype(exact_x.dtype), exact_x, axis, what=f"{name} axis={axis}")


def test_memmaps_in_and_out(tmp_path):
    np.save(tmp_path / "x.npy", M.astype(np.float32))
    x_r = np.load(tmp_path / "x.npy", mmap_mode="r")
    want = special.softmax(M, axis=-1)
    np.testing.assert_allclose(sm.softmax(x_r), want, rtol=1e-6)
    # a writeable memmap as out, and in place on a memmap
    out = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float32, shape=M.shape)
    assert sm.softmax(x_r, out=out) is out
    out.flush()
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), want, rtol=1e-6)
    x_w = np.load(tmp_path / "x.npy", mmap_mode="r+")
    sm.softmax(x_w, out=x_w)
    x_w.flush()
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), want, rtol=1e-6)


def test_matrix_subclass():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        m = np.matrix(M)
    got = sm.softmax(m)
    assert type(got) is np.ndarray
    np.testing.assert_allclose(got, special.softmax(M, axis=-1), rtol=1e-13)


@pytest.mark.parametrize("out_kind", ["fresh", "x itself", "Fortran", "strided", "subclass", "x reversed"])
def test_out_variants(out_kind):
    x = M.copy()
    want = special.softmax(M, axis=-1)
    out = {
        "fresh": lambda: np.empty_like(M),
        "x itself": lambda: x,
        "Fortran": lambda: np.empty(M.shape, order="F"),
        "strided": lambda: np.empty((6, 8))[::2, ::-2],
        "subclass": lambda: np.empty_like(M).view(Sub),
        "x reversed": lambda: x[::-1, ::-1],
    }[out_kind]()
    got = sm.softmax(x, out=out)
    assert got is out
    np.testing.assert_allclose(out, want, rtol=1e-13)


def test_out_overlapping_x_by_a_shift():
    buf = np.arange(8.0)
    x = buf[:5]
    want = special.softmax(np.arange(5.0))
    sm.softmax(x, out=buf[3:])
    np.testing.assert_allclose(buf[3:], want, rtol=1e-13)


def test_empty_and_scalar_shapes():
    assert sm.softmax(np.empty(0)).shape == (0,)
    assert sm.softmax(np.empty((3, 0)), axis=0).shape == (3, 0)
    assert sm.log_softmax(np.empty((0, 4))).shape == (0, 4)
    assert sm.logsumexp(np.empty(0)) == -np.inf
    np.testing.assert_array_equal(sm.logsumexp(np.empty((2, 0)), axis=1), [-np.inf, -np.inf])
    assert sm.softmax(np.float64(3.0), axis=None) == 1.0
    assert sm.softmax(np.array(3.0), axis=None) == 1.0
    assert sm.log_softmax(np.float32(-7.0), axis=None) == 0.0
    assert sm.softmax(np.ones((1,) * 64)).shape == (1,) * 64  # NPY_MAXDIMS


def test_extreme_but_valid_arguments():
    np.testing.assert_array_equal(sm.softmax(X, temperature=5e-324), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(sm.softmax(X, temperature=1e308), 1 / 3, rtol=1e-12)
    np.testing.assert_allclose(sm.softmax(X, base=1 + 2**-52), 1 / 3, rtol=1e-12)
    np.testing.assert_allclose(sm.softmax(X, temperature=np.array(2.0)), special.softmax(X / 2), rtol=1e-13)
    np.testing.assert_allclose(sm.softmax(X, temperature=np.float32(2.0)), special.softmax(X / 2), rtol=1e-13)
    np.testing.assert_array_equal(sm.softmax(X, where=False), [0.0, 0.0, 0.0])
    # int64 extremes promote to float64 (2**63 - 1 rounds to 2**63)
    np.testing.assert_array_equal(sm.softmax(np.array([2**63 - 1, -(2**63)])), [1.0, 0.0])
    np.testing.assert_array_equal(sm.softmax(np.array([2**64 - 1, 0], np.uint64)), [1.0, 0.0])


def _snan(dtype):
    bits = {np.float64: (np.uint64, 0x7FF0000000000001), np.float32: (np.uint32, 0x7F800001),
            np.float16: (np.uint16, 0x7C01)}[dtype]
    return np.array([bits[1], 0], dtype=bits[0]).view(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_signaling_nan_is_nan_without_warning(dtype):
    x = _snan(dtype)
    x[1] = 1.0
    for f in (sm.softmax, sm.log_softmax, sm.logsumexp):
        assert np.all(np.isnan(f(x)))
    assert np.all(np.isnan(sm.softmax(x, temperature=2.0)))


@pytest.mark.parametrize("temperature", [0.0, np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_signaling_nan_with_hard_or_uniform_temperature(dtype, temperature):
    x = _snan(dtype)
    x[1] = 1.0
    assert np.all(np.isnan(sm.softmax(x, temperature=temperature)))


# --------------------------------------------------------------------------
# Behaviour fixed by the hardening work (the odd inputs of docs/hardening.md).
# --------------------------------------------------------------------------

def test_masked_array_mask_becomes_where():
    x = np.ma.masked_array([2.0, 50.0, 0.1], mask=[False, True, False])
    got = sm.softmax(x)
    assert type(got) is np.ndarray
    np.testing.assert_allclose(got, [*special.softmax([2.0, 0.1])[:1], 0.0,
                                     special.softmax([2.0, 0.1])[1]], rtol=1e-13)
    lg = sm.log_softmax(x)
    assert lg[1] == -np.inf
    np.testing.assert_allclose(sm.logsumexp(x), special.logsumexp([2.0, 0.1]), rtol=1e-13)
    # combined with where: an entry counts only if unmasked and selected
    np.testing.assert_allclose(sm.softmax(x, where=[False, True, True]), [0.0, 0.0, 1.0])


def test_masked_where_entries_are_excluded():
    where = np.ma.masked_array([True, True, True], mask=[False, False, True])
    np.testing.assert_allclose(sm.softmax(X, where=where), [*special.softmax(X[:2]), 0.0],
                               rtol=1e-13)


def test_out_is_x_with_internal_overlap():
    buf = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x = as_strided(buf, (2, 3), (8, 8))  # rows [1,2,3] and [2,3,4] share memory
    want = special.softmax(np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]), axis=-1)
    sm.softmax(x, out=x)
    # NumPy's rule for overlapping operands: as if the input were copied
    # first, then the results written in order (the last write wins).
    np.testing.assert_allclose(buf[:4], [want[0, 0], want[1, 0], want[1, 1], want[1, 2]],
                               rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unaligned_out(dtype):
    x = M.astype(dtype)
    out = _unaligned(np.zeros(M.shape, dtype))
    assert sm.softmax(x, out=out) is out
    np.testing.assert_allclose(out, special.softmax(M, axis=-1), rtol=1e-6)


def test_unaligned_x_as_its_own_out():
    x = _unaligned(M)
    sm.softmax(x, out=x)
    np.testing.assert_allclose(x, special.softmax(M, axis=-1), rtol=1e-13)


def test_byteswapped_out_is_accepted():
    out = np.empty(M.shape, M.dtype.newbyteorder())
    assert sm.softmax(M, out=out) is out
    np.testing.assert_allclose(out, special.softmax(M, axis=-1), rtol=1e-13)


def test_huge_axis_is_an_axis_error():
    with pytest.raises(np.exceptions.AxisError):
        sm.softmax(X, axis=2**70)
    with pytest.raises(np.exceptions.AxisError):
        sm.logsumexp(X, axis=(0, 2**70))


@pytest.mark.parametrize("fname", ["softmax", "log_softmax", "logsumexp"])
def test_empty_array_with_tuple_axes(fname):
    x = np.empty((0, 2, 3))
    got = getattr(sm, fname)(x, axis=(1, 2))
    assert np.shape(got) == ((0,) if fname == "logsumexp" else (0, 2, 3))


def test_float16_result_overflow_is_silent():
    x = np.array([-60000.0, 60000.0], np.float16)
    # log p = -120000 is below float16's range: -inf is its correct rounding
    np.testing.assert_array_equal(sm.log_softmax(x), [-np.inf, 0.0])


def test_weighted_logsumexp_with_extreme_weights():
    assert sm.logsumexp([0.0, 0.0], b=[1.7e308, 1.7e308]) == pytest.approx(np.log(1.7e308) + np.log(2))
    # log(1e300 * e**1) = 691.7755..., not the 691.835 that a subnormal exp gives
    assert sm.logsumexp([745.5, 1.0], b=[1e-45, 1e300]) == pytest.approx(1.0 + np.log(1e300), rel=1e-13)
    assert sm.logsumexp([np.inf, 10.0], b=[1.0, -1e300]) == np.inf


def test_ragged_input_names_x():
    with pytest.raises(ValueError, match="x must be"):
        sm.softmax([[1.0], [1.0, 2.0]])


def test_huge_int_temperature_is_uniform():
    np.testing.assert_allclose(sm.softmax(X, temperature=10**400), 1 / 3, rtol=1e-15)
    with pytest.raises(ValueError, match="base must be"):
        sm.softmax(X, base=10**400)


def test_weighted_logsumexp_dtype_does_not_depend_on_shape():
    x = np.zeros(3, np.float32)
    same_shape = sm.logsumexp(x, b=np.ones(3))
    bigger = sm.logsumexp(x, b=np.ones((2, 3)), axis=-1)
    assert np.asarray(same_shape).dtype == bigger.dtype


# --------------------------------------------------------------------------
# Fuzzer regressions: every saved input replays without a finding.
# --------------------------------------------------------------------------

def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_core", FUZZ_DIR / "fuzz_core.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REGRESSION_FILES = sorted(p for p in (FUZZ_DIR / "regressions").iterdir() if p.suffix != ".md")


def _recorded_issue(fz, path: Path):
    """`known-b-range-mixed-sign-inf-<sha>` -> 'b_range' (the longest probe name it starts with)."""
    stem = path.name[len("known-"):].rsplit("-", 1)[0].replace("-", "_")
    names = [n for n in fz.PROBES if stem == n or stem.startswith(n + "_")]
    assert names, f"{path.name}: no probe in fuzz_core.PROBES for issue {stem!r}"
    return max(names, key=len)


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.name for p in REGRESSION_FILES])
def test_fuzz_regression(path):
    """Replays one saved input; fails, naming the regression, if its recorded fix is missing.

    A `known-<issue>-` file must still reach its issue's code path (else it no
    longer guards anything) and the issue's fix must be in: the harness raises
    MissingFix instead of counting the input as known.
    """
    fz = _fuzz_module()
    issue = _recorded_issue(fz, path) if path.name.startswith("known-") else None
    if issue is not None:
        missing = fz.missing_fixes()
        assert issue not in missing, (
            f"regression {path.name}: recorded fix {issue!r} is missing ({missing[issue]})")
    try:
        fz.one_input(path.read_bytes())
    except AssertionError as exc:
        raise AssertionError(f"regression {path.name} fails again: {exc}") from exc
    # (b_range, f16_overflow and snan are recognised only when the call goes wrong)
    if issue is not None and issue not in ("b_range", "f16_overflow", "snan"):
        assert fz.KNOWN_HITS.get(issue, 0) >= 1, (
            f"regression {path.name} no longer reaches issue {issue!r} (the harness's decoding "
            f"changed?): hits {fz.KNOWN_HITS}")


def test_every_recorded_fix_is_in():
    fz = _fuzz_module()
    assert fz.missing_fixes() == {}


def test_missing_fix_fails_the_replay(monkeypatch):
    """The replay cannot be green when a probe finds the fix missing (the audit's mutant)."""
    fz = _fuzz_module()
    fz.patched()
    monkeypatch.setitem(fz.PATCHED, "masked", False)
    (path,) = [p for p in REGRESSION_FILES if p.name.startswith("known-masked-")]
    with pytest.raises(AssertionError, match="recorded fix 'masked' is missing"):
        fz.one_input(path.read_bytes())


def test_fuzz_harness_smoke():
    """A few hundred seeded random inputs: the harness itself stays runnable."""
    fz = _fuzz_module()
    rng = np.random.default_rng(20240601)
    for _ in range(300):
        fz.one_input(rng.integers(0, 256, size=int(rng.integers(1, 300)), dtype=np.uint8).tobytes())
    assert fz.STATS["checked"] > 50
    assert fz.STATS["long"] >= 3  # long rows and column panels are reached
