"""Fuzz target for softmax's C core, driven through the public API.

One input (a byte string) decodes into one call: a function (softmax,
log_softmax, logsumexp), a dtype and byte order, a shape, a memory layout
(strided, negative steps, transposed, zero-stride broadcast, overlapping
``as_strided`` views, unaligned, Fortran order), values from a hostile
palette (NaN, +-inf, subnormals, huge, ties), an axis, temperature / base,
a ``where`` mask, an ``out`` (fresh, strided, ``x`` itself, overlapping x,
reversed x) and sometimes exactly one invalid argument. The call must

* not crash and not trip a sanitizer (run it under tools/sanitize.sh's build),
* raise TypeError/ValueError for the invalid argument, and nothing else,
* otherwise return the right dtype and shape, leave x alone (unless out
  aliases it), raise no RuntimeWarning, and match the correctly rounded mpmath
  answer (``tests/exact_oracle.py``) within the accuracy promise (1 ulp
  float16/float32, 2 ulp float64) on rows whose kept entries are finite, and
  exactly on edge rows (NaN, +-inf, empty, temperature 0); longdouble is held
  to the float64 textbook twin (``tests/slow_twins.py``).

One input in 32 is a long row (> 131,072 elements: summed in segments and
merged) or a column panel (axis 0), tiled from palette values with
extremes and banned blocks, at any temperature / base, with or without a mask.

An input that reaches an issue recorded in ``PROBES`` while the probe finds
its fix missing raises ``MissingFix``: the regression replay fails, naming it.

An eighth of the inputs call ``softmax._core`` directly with mismatched
shapes, dtypes, masks and read-only outputs: the C layer must stay memory
safe on its own. That mode runs only while the core keeps the signature it
was written for (checked on its docstring).

Run:
    python tests/fuzz/fuzz_core.py -max_total_time=600 CORPUS_DIR   # atheris
    python tests/fuzz/fuzz_core.py --random 600                     # no atheris
A failing input found by ``--random`` is written to tests/fuzz/regressions/;
atheris writes ``crash-*`` files (move them there). Every file in that folder
is replayed by tests/test_hostile_inputs.py.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the slow twins

import exact_oracle as eo  # noqa: E402  (tests/: mpmath, shares no code with the package)


class Draw:
    """Reads decisions from the fuzzer's bytes; zeros once they run out.

    Zero always decodes to the first, most ordinary choice, so a short input
    is a plain call and the fuzzer adds hostility byte by byte.
    """

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        if span <= 256:
            return lo + self.byte() % span
        raw = bytes(self.byte() for _ in range(8))
        return lo + int.from_bytes(raw, "little") % span

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, one_in: int) -> bool:
        return self.byte() % one_in == one_in - 1

    def float_bits(self) -> float:
        return struct.unpack("<d", bytes(self.byte() for _ in range(8)))[0]


PALETTE = [
    0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e300, -1e300, 1.7e308,
    -1.7e308, 700.0, -700.0, 745.5, -745.5, 5e-324, 2.2e-308, 1e-310, 88.7,
    -103.9, 65504.0, -65504.0, 6e-8, 3.4e38, -3.4e38, 1e-45, 0.5, 1e4,
]
FLOAT_DTYPES = [np.float64, np.float32, np.float16, np.longdouble]
OTHER_DTYPES = [np.int64, np.int8, np.uint8, np.bool_, np.int32, np.uint64]
SIZES = [3, 1, 4, 2, 5, 0, 7, 17, 33, 1, 2]
TEMPERATURES = [1.0, 0.5, 2.0, 0.0, np.inf, 1e-300, 1e300, 1e-5, 3.7, 5e-324, 1e306, 0.1]
BASES = [2.0, 10.0, 0.5, math.e, 1 + 1e-12, 1e300, 1e-300, 0.999]
LAYOUTS = ["contig", "strided", "transposed", "broadcast", "overlap", "unaligned",
           "fortran", "shared", "subclass", "scalar"]


class Sub(np.ndarray):
    """An ndarray subclass: the result must still be correct."""


def _values(d: Draw, n: int, dtype: np.dtype) -> np.ndarray:
    kind = dtype.kind
    if kind == "b":
        return np.array([d.byte() & 1 for _ in range(n)], dtype=bool)
    if kind in "iu":
        info = np.iinfo(dtype)
        pal = [0, 1, info.max, info.min, info.max - 1, 2, 100]
        out = []
        for _ in range(n):
            k = d.byte()
            out.append(pal[k % len(pal)] if k >= 200 else max(info.min, min(info.max, k - 100)))
        return np.array(out, dtype=dtype)
    vals = []
    for _ in range(n):
        k = d.byte()
        if k < 150:
            vals.append((k - 75) / 8.0)  # small, with many ties
        elif k < 235:
            vals.append(PALETTE[(k - 150) % len(PALETTE)])
        else:
            vals.append(d.float_bits())  # any bit pattern: NaN payloads, subnormals
    with np.errstate(all="ignore"):
        return np.array(vals, dtype=np.float64).astype(dtype)


def _fill(d: Draw, a: np.ndarray) -> None:
    vals = _values(d, a.size, a.dtype)
    a[...] = vals.reshape(a.shape)


def _make_x(d: Draw, shape, dtype: np.dtype):
    """Returns (x, layout, shared_buffer_or_None)."""
    layout = d.choice(LAYOUTS)
    n = math.prod(shape)
    ndim = len(shape)
    if layout == "strided" and ndim:
        steps = [d.choice([2, -1, -2, 3, 1]) for _ in shape]
        base = np.empty([max(s, 1) * abs(t) for s, t in zip(shape, steps)], dtype)
        _fill(d, base)
        x = base[tuple(slice(None, None, t) for t in steps)]
        return x[tuple(slice(0, s) for s in shape)], layout, None
    if layout == "transposed" and ndim > 1:
        perm = sorted(range(ndim), key=lambda i: d.byte())
        base = np.empty([shape[p] for p in perm], dtype)
        _fill(d, base)
        return base.transpose(np.argsort(perm)), layout, None
    if layout == "broadcast" and ndim:
        k = d.int(0, ndim - 1)
        bshape = list(shape)
        bshape[k] = 1
        base = np.empty(bshape, dtype)
        _fill(d, base)
        return np.broadcast_to(base, shape), layout, None
    if layout == "overlap" and ndim:
        steps = [d.int(0, 2) for _ in shape]
        length = 1 + sum(max(s - 1, 0) * t for s, t in zip(shape, steps))
        buf = np.empty(length, dtype)
        _fill(d, buf)
        # Writeable now and then: out=x on a self-overlapping x is the hard case.
        writeable = d.chance(3)
        x = as_strided(buf, shape, [t * buf.itemsize for t in steps], writeable=writeable)
        return x, layout, None
    if layout == "unaligned" and dtype.itemsize > 1:
        raw = np.zeros(n * dtype.itemsize + 1, np.uint8)
        x = raw[1:].view(dtype).reshape(shape)
        _fill(d, x)
        return x, layout, None
    if layout == "fortran":
        x = np.empty(shape, dtype, order="F")
        _fill(d, x)
        return x, layout, None
    if layout == "shared":
        # x and a possible `out` are two views into one buffer.
        buf = np.empty(2 * n + 3, dtype)
        _fill(d, buf)
        return buf[:n].reshape(shape), layout, buf
    if layout == "subclass":
        x = np.empty(shape, dtype)
        _fill(d, x)
        return x.view(Sub), layout, None
    if layout == "scalar" and ndim == 0:
        x = np.empty((), dtype)
        _fill(d, x)
        return x[()], layout, None  # a NumPy scalar, not a 0-d array
    x = np.empty(shape, dtype)
    _fill(d, x)
    return x, "contig", None


def _all_axes(d: Draw, ndim: int, default):
    """Returns (axis_kwargs, axes_tuple, invalid)."""
    k = d.byte() % 8
    if ndim == 0 and k < 6:
        # A scalar is one slice of one element: axis 0 / -1 / None name it.
        return ({} if k == 0 else {"axis": d.choice([None, 0, -1])}), (), False
    if k == 0:
        if default is None:
            return {}, tuple(range(ndim)), False
        return {}, (ndim - 1,), False
    if k in (1, 2) and ndim:
        ax = d.int(-ndim, ndim - 1)
        return {"axis": ax}, (ax % ndim,), False
    if k == 3:
        return {"axis": None}, tuple(range(ndim)), False
    if k in (4, 5):
        picked = [i for i in range(ndim) if d.chance(2)]
        order = sorted(picked, key=lambda i: d.byte())
        spelled = tuple(i - ndim if d.chance(2) else i for i in order)
        return {"axis": spelled}, tuple(sorted(picked)), False
    n = max(ndim, 1)  # a scalar takes the axes of a 1-d array
    bad = d.choice([n, -n - 1, 1.5, "0", (0, 0), True, 2**70])
    return {"axis": bad}, None, True


def _as_rows(a: np.ndarray, axes):
    ndim = a.ndim
    if not axes:
        return a[..., np.newaxis]
    moved = np.moveaxis(a, axes, range(ndim - len(axes), ndim))
    keep = moved.shape[: ndim - len(axes)]
    return moved.reshape(keep + (math.prod(moved.shape[len(keep):]),))


def _from_rows(rows: np.ndarray, shape, axes):
    ndim = len(shape)
    if not axes:
        return rows[..., 0]
    moved_shape = tuple(shape[i] for i in range(ndim) if i not in axes) + tuple(
        shape[i] for i in axes
    )
    return np.moveaxis(rows.reshape(moved_shape), range(ndim - len(axes), ndim), axes)


def _result_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "f":
        return dtype.newbyteorder("=")
    return np.dtype(np.float64)


def _scale(temperature, base):
    """('finite', c) / ('hard', sign) / ('uniform', sign), computed independently."""
    ln = 1.0 if base is None else math.log(base)
    sign = 1.0 if ln > 0 else -1.0
    if temperature == 0:
        return "hard", sign
    if math.isinf(temperature):
        return "uniform", sign
    try:
        c = ln / temperature
    except OverflowError:
        return "hard", sign
    if math.isinf(c):
        return "hard", sign
    if c == 0:
        return "uniform", sign
    return "finite", c


def expected_softmax(x0: np.ndarray, axes, temperature, base, mask, log: bool):
    import slow_twins as _reference  # tests/: shares no code with the package

    x64 = np.asarray(x0).astype(np.float64)
    rows = _as_rows(x64, axes)
    mrows = None if mask is None else _as_rows(np.broadcast_to(mask, x64.shape), axes)
    kind, c = _scale(temperature, base)
    with np.errstate(all="ignore"):
        if kind == "hard":
            ref = _reference.hardmax_last(rows, mrows, sign=c, log=log)
        elif kind == "uniform":
            flat = np.where(np.isfinite(rows), 0.0, c * rows)
            ref = _reference.softmax_last(flat, mrows, log=log)
        else:
            ref = _reference.softmax_last(rows, mrows, c=c, log=log)
    return _from_rows(ref, x64.shape, axes), kind, c


def _tolerance(dtype: np.dtype, log: bool, scale_of_scores: float):
    """(rtol, atol) for comparing against the float64 textbook reference."""
    scale_of_scores = min(scale_of_scores, 1e300)
    if dtype == np.float16:
        return 2.0**-10, 2.0**-24 * 2 + (2.0**-10 if log else 0)
    if dtype == np.float32:
        return 2.0**-22, 2.0**-148 + (1e-7 * (1 + scale_of_scores) if log else 0)
    # float64 / longdouble: the reference loses up to |y| * eps in exp(y) and
    # all of log1p's tiny values (log(1 + 4e-18) is 0 there).
    return 1e-12, 1e-300 + (1e-15 * (1 + scale_of_scores) if log else 0)


def _compare(got, want, dtype: np.dtype, log: bool, scale_of_scores: float, what: str):
    rtol, atol = _tolerance(dtype, log, scale_of_scores)
    with np.errstate(all="ignore"):
        want_rounded = np.asarray(want, np.float64).astype(dtype).astype(np.float64)
        got64 = np.asarray(got).astype(np.float64)
    np.testing.assert_allclose(got64, want_rounded, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


def _where_array(where) -> np.ndarray:
    """`where` as the bool array it means: a masked entry of a masked `where` is not selected."""
    if isinstance(where, np.ma.MaskedArray):
        return where.filled(False)
    return np.asarray(where, bool)


def _internal_overlap(a: np.ndarray) -> bool:
    if a.size <= 1:
        return False
    offsets = np.zeros(1, dtype=np.int64)
    for n, s in zip(a.shape, a.strides):
        offsets = (offsets[:, None] + np.arange(n, dtype=np.int64)[None, :] * s).ravel()
    return len(np.unique(offsets)) != offsets.size


# Behaviour the Python layer once got wrong (the README's Hardening section,
# P1-P11). Each probe asks the public API whether the fix is in; an input that
# hits an issue whose fix is missing FAILS, naming the fix (MissingFix), so a
# regression file replays red when its fix is undone.
PROBE_ERRORS: dict[str, str] = {}


def _probe(fn, name: str = "") -> bool:
    """Does the patch answer right? An exception is a missing patch, and is kept to be shown."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(fn())
    except Exception as exc:  # reported by _known / missing_fixes, never silently
        PROBE_ERRORS[name] = f"{type(exc).__name__}: {exc}"
        return False


def _probe_overlap():
    import softmax

    buf = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x = as_strided(buf, (2, 3), (8, 8))
    softmax.softmax(x, out=x)
    return np.allclose(buf[:4], [0.09003057, 0.09003057, 0.24472847, 0.66524096])


def _probe_unaligned_out():
    import softmax

    out = np.zeros(25, np.uint8)[1:].view(np.float64)
    return np.allclose(softmax.softmax(np.zeros(3), out=out), 1 / 3)


def _probe_masked():
    import softmax

    return softmax.softmax(np.ma.masked_array([0.0, 5.0], mask=[False, True]))[0] == 1.0


def _probe_axis_overflow():
    import softmax

    try:
        softmax.softmax(np.zeros(2), axis=2**70)
    except np.exceptions.AxisError:
        return True
    return False


def _probe_f16_overflow():
    import softmax

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        softmax.log_softmax(np.array([-60000.0, 60000.0], np.float16))
    return True


def _probe_snan():
    import softmax

    snan = np.array([0x7FF0000000000001, 0], np.uint64).view(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        softmax.softmax(snan, temperature=0)
        softmax.softmax(snan, temperature=np.inf)
    return True


def _probe_b_range():
    import softmax

    big = softmax.logsumexp([0.0, 0.0], b=[1.7e308] * 2)
    small = softmax.logsumexp([745.5, 1.0], b=[1e-45, 1e300])
    want = 1.0 + math.log(1e300) + math.log1p(1e-45 * math.exp(744.5 - math.log(1e300)))
    return np.isfinite(big) and abs(small - want) < 1e-12 * want


PATCHED: dict[str, bool] = {}


def _probe_scalar():
    return __import__("softmax").softmax(np.float64(2.0), axis=None) == 1.0


def _probe_byteorder_out():
    return __import__("softmax").softmax(np.zeros(2), out=np.empty(2, ">f8"))[0] == 0.5


def _probe_empty_axes():
    return __import__("softmax").softmax(np.empty((0, 2, 2)), axis=(1, 2)).shape == (0, 2, 2)


PROBES = {
    "scalar": _probe_scalar,
    "overlap": _probe_overlap,
    "unaligned_out": _probe_unaligned_out,
    "byteorder_out": _probe_byteorder_out,
    "masked": _probe_masked,
    "axis_overflow": _probe_axis_overflow,
    "empty_axes": _probe_empty_axes,
    "f16_overflow": _probe_f16_overflow,
    "snan": _probe_snan,
    "b_range": _probe_b_range,
}


def patched() -> dict[str, bool]:
    """Which fixes are in, asked once (after atheris has instrumented imports)."""
    if not PATCHED:
        PATCHED.update({name: _probe(fn, name) for name, fn in PROBES.items()})
    return PATCHED


KNOWN_HITS: dict[str, int] = {}  # how often an input reached each recorded issue's path


class MissingFix(AssertionError):
    """The input reached a recorded issue whose fix is not in the package."""


def missing_fixes() -> dict[str, str]:
    """{issue: why} for every recorded fix whose probe fails."""
    return {name: PROBE_ERRORS.get(name, "probe answered wrong")
            for name, ok in patched().items() if not ok}


def _known(name: str, condition: bool) -> None:
    if not condition:
        return
    KNOWN_HITS[name] = KNOWN_HITS.get(name, 0) + 1
    if not patched()[name]:
        raise MissingFix(f"recorded fix {name!r} is missing: {missing_fixes()[name]}")


def _pick_out(d: Draw, x, shape, res_dtype: np.dtype, shared):
    """Returns (out_or_None, note, invalid)."""
    k = d.byte() % 12
    if k < 5:
        return None, "none", False
    if k == 5 or k == 6 and not shape:
        return np.empty(shape, res_dtype), "fresh", False
    if k == 6:
        big = np.empty([max(s, 1) * 2 for s in shape], res_dtype)
        return big[tuple(slice(None, None, -2) for _ in shape)][
            tuple(slice(0, s) for s in shape)
        ], "strided", False
    if k == 7 and isinstance(x, np.ndarray) and x.dtype == res_dtype and x.flags.writeable:
        return x, "is_x", False
    if k == 8 and shared is not None and shared.dtype == res_dtype:
        n = math.prod(shape)
        if d.chance(2):
            shift = d.int(1, n + 2)
            return shared[shift : shift + n].reshape(shape), "overlaps_x", False
        return shared[:n][::-1].reshape(shape), "reversed_x", False
    if k == 9:
        raw = np.zeros(math.prod(shape) * res_dtype.itemsize + 1, np.uint8)
        return raw[1:].view(res_dtype).reshape(shape), "unaligned", False
    if k == 10 and res_dtype.itemsize > 1:
        return np.empty(shape, res_dtype.newbyteorder()), "byteswapped", False
    bad = d.byte() % 4
    if bad == 0:
        return np.empty(shape, np.float32 if res_dtype != np.float32 else np.float64), "bad", True
    if bad == 1:
        return np.empty(tuple(shape) + (2,), res_dtype), "bad", True
    if bad == 2:
        o = np.empty(shape, res_dtype)
        o.flags.writeable = False
        return o, "bad", True
    return [0.0] * max(1, math.prod(shape)), "bad", True


def _pick_where(d: Draw, shape):
    """Returns (where_or_None, invalid)."""
    k = d.byte() % 10
    if k < 5:
        return None, False
    if k in (5, 6):
        return np.array([d.chance(3) is False for _ in range(math.prod(shape))],
                        dtype=bool).reshape(shape), False
    if k == 7 and shape:
        # broadcastable: some axes of length 1, read backwards
        bshape = [1 if d.chance(2) else s for s in shape]
        m = np.array([d.chance(2) for _ in range(math.prod(bshape))], bool).reshape(bshape)
        return m[..., ::-1], False
    if k == 8:
        return bool(d.chance(4) is False), False
    bad = d.byte() % 3
    if bad == 0:
        return np.ones(shape, dtype=np.int8), True
    if bad == 1:
        return np.ones(tuple(shape) + (3,), dtype=bool), True
    return np.ma.masked_array(np.ones(shape, bool), mask=True), False


def _check_softmax_family(d: Draw, fname: str):
    import softmax

    log = fname == "log_softmax"
    fn = getattr(softmax, fname)
    dtype = np.dtype(d.choice(FLOAT_DTYPES if d.byte() < 200 else OTHER_DTYPES))
    if dtype.itemsize > 1 and d.chance(5):
        dtype = dtype.newbyteorder()
    ndim = d.choice([1, 2, 1, 3, 0, 2, 4])
    shape = tuple(d.choice(SIZES) for _ in range(ndim))
    x, layout, shared = _make_x(d, shape, dtype)
    res_dtype = _result_dtype(dtype)
    kwargs, axes, invalid = _all_axes(d, ndim, default=-1)
    t = d.byte() % 12
    temperature, base = 1.0, None
    if 4 <= t < 8:
        temperature = d.choice(TEMPERATURES)
    elif t == 8:
        base = d.choice(BASES)
    elif t == 9:
        temperature, base = d.choice(TEMPERATURES), d.choice(BASES)
    elif t == 10:
        temperature = abs(d.float_bits())
        invalid = invalid or math.isnan(temperature)
    elif t == 11 and not invalid:
        invalid = True
        if d.chance(2):
            temperature = d.choice([-1.0, np.nan, -np.inf, "1", None, 1j, [1.0]])
        else:
            base = d.choice([1.0, 0.0, -2.0, np.inf, np.nan, "e"])
    if temperature != 1.0 or isinstance(temperature, str):
        kwargs["temperature"] = temperature
    if base is not None:
        kwargs["base"] = base
    where, bad_where = _pick_where(d, shape)
    if where is not None:
        kwargs["where"] = where
    invalid = invalid or bad_where
    out, out_note, bad_out = _pick_out(d, x, shape, res_dtype, shared)
    if out is not None:
        kwargs["out"] = out
    invalid = invalid or bad_out
    if d.chance(12) and layout != "scalar":
        # a masked array: its mask must act as `where`
        x = np.ma.masked_array(x, mask=np.array(
            [d.chance(3) for _ in range(math.prod(shape))], bool).reshape(shape))
        layout = "masked"

    x_before = np.array(x, copy=True)  # a plain copy of the data
    what = (f"{fname} dtype={dtype} shape={shape} layout={layout} kwargs="
            f"{ {k: (v if not isinstance(v, np.ndarray) else f'<{v.dtype} {v.shape} {v.strides}>') for k, v in kwargs.items()} } out={out_note}")

    _known("scalar", layout == "scalar")
    _known("axis_overflow", kwargs.get("axis") == 2**70)
    _known("empty_axes", np.size(x) == 0 and axes is not None and len(axes) > 1)
    _known("masked", layout == "masked" or isinstance(where, np.ma.MaskedArray))
    _known("unaligned_out", isinstance(out, np.ndarray) and not out.flags.aligned and not invalid)
    _known("byteorder_out", out_note == "byteswapped" and not invalid)
    _known("overlap", out_note == "is_x" and _internal_overlap(out))

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            got = fn(x, **kwargs)
        except (TypeError, ValueError) as exc:
            if invalid:
                STATS["rejected"] += 1
                return
            raise AssertionError(f"valid call raised {exc!r}: {what}") from exc
        except MemoryError:
            raise AssertionError(f"MemoryError on a tiny input: {what}") from None
        except RuntimeWarning as w:
            _known("f16_overflow", res_dtype == np.float16 and "overflow" in str(w))
            hard_or_uniform = not invalid and _scale(temperature, base)[0] != "finite"
            _known("snan", hard_or_uniform and "invalid" in str(w))
            raise
    if invalid:
        raise AssertionError(f"invalid call was accepted: {what}")

    if out is not None:
        assert got is out, f"did not return out: {what}"
    got = np.asarray(got)
    assert got.shape == shape, f"shape {got.shape}: {what}"
    assert got.dtype == (out.dtype if out is not None else res_dtype), f"dtype {got.dtype}: {what}"
    if out_note not in ("is_x", "overlaps_x", "reversed_x"):
        np.testing.assert_array_equal(np.asarray(x), x_before, err_msg=f"x modified: {what}")
    if out is not None and _internal_overlap(out):
        return  # several results share one cell: only "no crash" is defined

    mask = None
    if where is not None:
        mask = np.broadcast_to(_where_array(where), shape)
    if isinstance(x, np.ma.MaskedArray):
        keep = ~np.ma.getmaskarray(x)
        mask = keep if mask is None else mask & keep
        x_before = np.asarray(x_before)
    want, kind, c = expected_softmax(x_before, axes, temperature, base, mask, log)
    if res_dtype in eo.BOUND:
        # The accuracy promise against mpmath, and the edge rules exactly.
        with np.errstate(all="ignore"):
            rows = _as_rows(np.asarray(x_before).astype(np.float64), axes)
        keep = None if mask is None else _as_rows(np.asarray(mask), axes)
        eo.check_softmax_rows(_as_rows(got.astype(res_dtype), axes), rows, keep, log=log,
                              scale=eo.scale_of(temperature, base), dtype=res_dtype, what=what)
    else:  # longdouble: computed in float64, held to the float64 textbook twin
        finite = np.isfinite(x_before.astype(np.float64))
        spread = float(np.max(np.abs(x_before.astype(np.float64)[finite]), initial=0.0))
        scale = spread * (abs(c) if kind == "finite" else 1.0)
        _compare(got, want, res_dtype, log, scale, what)
    STATS["checked"] += 1
    _plain_case_vs_scipy(got, x_before, axes, kind, c, mask, base, temperature, log, res_dtype, what)


def _plain_case_vs_scipy(got, x0, axes, kind, c, mask, base, temperature, log, dtype, what):
    """A second, outside reference for the ordinary case."""
    x64 = np.asarray(x0, dtype=np.float64)
    if (mask is not None or base is not None or temperature != 1.0 or x64.size == 0
            or not np.all(np.isfinite(x64)) or not axes):
        return
    from scipy import special

    with np.errstate(all="ignore"):
        want = (special.log_softmax if log else special.softmax)(x64, axis=axes)
    spread = float(np.max(np.abs(x64)))
    _compare(got, want, dtype, log, spread, "scipy: " + what)


def _check_logsumexp(d: Draw):
    import softmax
    from scipy import special

    dtype = np.dtype(d.choice(FLOAT_DTYPES if d.byte() < 200 else OTHER_DTYPES))
    if dtype.itemsize > 1 and d.chance(5):
        dtype = dtype.newbyteorder()
    ndim = d.choice([1, 2, 1, 3, 0, 2])
    shape = tuple(d.choice(SIZES) for _ in range(ndim))
    x, layout, _ = _make_x(d, shape, dtype)
    kwargs, axes, invalid = _all_axes(d, ndim, default=None)
    where, bad_where = _pick_where(d, shape)
    if where is not None:
        kwargs["where"] = where
    invalid = invalid or bad_where
    b = None
    if d.chance(4):
        b = _values(d, math.prod(shape), np.dtype(np.float64)).reshape(shape)
        # Subnormal weights are outside the b path's promise: b * exp(x)
        # keeps only a few bits there, in SciPy and here alike.
        b = np.where(np.isfinite(b) & ((np.abs(b) > 1e-290) | (b == 0)), b, 1.0)
        if not d.chance(3):
            b = np.abs(b)
        kwargs["b"] = b
    keepdims = d.chance(3)
    return_sign = d.chance(3)
    if keepdims:
        kwargs["keepdims"] = True
    if return_sign:
        kwargs["return_sign"] = True
    x_before = np.array(x, copy=True)
    what = f"logsumexp dtype={dtype} shape={shape} layout={layout} kwargs={ {k: v for k, v in kwargs.items() if k != 'b'} } b={b is not None}"
    _known("scalar", layout == "scalar")
    _known("axis_overflow", kwargs.get("axis") == 2**70)
    _known("empty_axes", np.size(x) == 0 and axes is not None and len(axes) > 1)
    _known("masked", isinstance(where, np.ma.MaskedArray))

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            got = softmax.logsumexp(x, **kwargs)
        except RuntimeWarning as w:
            _known("f16_overflow", _result_dtype(dtype) == np.float16 and "overflow" in str(w))
            raise
        except (TypeError, ValueError) as exc:
            if invalid:
                STATS["rejected"] += 1
                return
            raise AssertionError(f"valid call raised {exc!r}: {what}") from exc
    if invalid:
        raise AssertionError(f"invalid call was accepted: {what}")
    np.testing.assert_array_equal(np.asarray(x), x_before, err_msg=f"x modified: {what}")
    value, sign = got if return_sign else (got, None)

    x64 = np.asarray(x_before, np.float64)
    rows = _as_rows(x64, axes)
    if b is None and _result_dtype(dtype) in eo.BOUND:
        keep = None
        if where is not None:
            keep = _as_rows(np.broadcast_to(_where_array(where), shape), axes)
        got_v = np.asarray(got[0] if return_sign else got)
        want_shape = rows.shape[:-1]
        if keepdims:
            want_shape = np.expand_dims(np.empty(want_shape), axes).shape
        assert got_v.shape == want_shape, f"shape {got_v.shape} != {want_shape}: {what}"
        assert got_v.dtype == _result_dtype(dtype), f"dtype {got_v.dtype}: {what}"
        eo.check_logsumexp_rows(got_v, rows, keep, dtype=_result_dtype(dtype), what=what)
        if return_sign:
            sign64 = np.asarray(sign, np.float64).reshape(-1)
            v64 = got_v.astype(np.float64).reshape(-1)
            want_s = np.where(np.isnan(v64), np.nan, np.where(v64 == -np.inf, 0.0, 1.0))
            np.testing.assert_array_equal(sign64, want_s, err_msg="sign: " + what)
        STATS["checked"] += 1
        return
    keep = np.ones(rows.shape, bool)
    if where is not None:
        keep = _as_rows(np.broadcast_to(_where_array(where), shape), axes).copy()
    b_rows = None if b is None else _as_rows(b, axes)
    finite = np.isfinite(x64)
    spread = float(np.max(np.abs(x64[finite]), initial=0.0))
    res_dtype = _result_dtype(dtype)
    want_v = np.empty(rows.shape[:-1])
    want_s = np.empty(rows.shape[:-1])
    atol = np.empty(rows.shape[:-1])
    for idx in np.ndindex(*rows.shape[:-1]):
        want_v[idx], want_s[idx], atol[idx] = _lse_row(rows[idx], keep[idx],
                                                       None if b is None else b_rows[idx])
    if keepdims:
        want_v, want_s, atol = (np.expand_dims(a, axes) for a in (want_v, want_s, atol))
    got_v = np.asarray(got[0] if return_sign else got)
    assert got_v.shape == want_v.shape, f"shape {got_v.shape} != {want_v.shape}: {what}"
    if b is None:
        assert got_v.dtype == res_dtype, f"dtype {got_v.dtype}: {what}"
        rtol, atol = _tolerance(res_dtype, True, spread)
    else:
        rtol = 1e-9  # SciPy's accuracy (float64 sums), not the ulp promise
        # Weights far from 1 break the max(x) shift: a finite term
        # b * exp(x - max) overflows (inf, or inf - inf = NaN), or underflows
        # into subnormals and keeps only a few bits (SciPy does the same).
        nonzero = np.abs(b[b != 0])
        far = nonzero.size and (nonzero.max() > 1e100 or nonzero.min() < 1e-100)
        far = far or np.any(~np.isfinite(got_v) & ~np.isnan(want_v) & (got_v != want_v))
    if not return_sign:
        want_v = np.where(want_s < 0, np.nan, want_v)
    checked = ~np.isnan(atol)  # rows too ill-conditioned to have a defined sign
    with np.errstate(all="ignore"):
        want_r = want_v.astype(got_v.dtype).astype(np.float64)
    try:
        _close(got_v.astype(np.float64)[checked], want_r[checked], rtol,
               np.broadcast_to(atol, checked.shape)[checked], what)
    except AssertionError:
        _known("b_range", b is not None and bool(far))
        raise
    if return_sign:
        sign64 = np.asarray(sign, np.float64)
        ok = checked & ~np.isnan(want_v)
        np.testing.assert_array_equal(sign64[ok], want_s[ok], err_msg="sign: " + what)
    STATS["checked"] += 1


def _close(got, want, rtol, atol, what):
    """assert_allclose with an array of absolute tolerances."""
    same_special = (np.isnan(got) == np.isnan(want)) & (
        np.isinf(got) == np.isinf(want)) & np.where(np.isinf(want), got == want, True)
    with np.errstate(all="ignore"):
        near = np.abs(got - want) <= atol + rtol * np.abs(want)
    ok = same_special & (near | ~np.isfinite(want))
    if not np.all(ok):
        raise AssertionError(f"mismatch: got {got[~ok][:5]} want {want[~ok][:5]} "
                             f"atol {np.broadcast_to(atol, ok.shape)[~ok][:5]}: {what}")


def _lse_row(v: np.ndarray, keep: np.ndarray, b):
    """(log|sum|, sign, atol) of one row, summed in the log domain.

    With weights, the positive and negative parts are log-sum-exps of
    log|b| + x (which cannot overflow); the row's absolute tolerance grows
    with its condition number, and is NaN when the sum is too ill-conditioned
    for its sign to be defined in float64.
    """
    from scipy import special

    if b is None:
        v = v[keep]
        if v.size == 0:
            return -np.inf, 0.0, 0.0
        with np.errstate(all="ignore"):
            value = special.logsumexp(v)
        sign = np.nan if np.isnan(value) else (0.0 if value == -np.inf else 1.0)
        return value, sign, 0.0
    sel = keep & (b != 0)
    v, b = v[sel], b[sel]
    if np.any(np.isnan(v)):
        return np.nan, np.nan, 0.0
    with np.errstate(all="ignore"):
        lb = np.log(np.abs(b)) + v
        pos = special.logsumexp(lb[b > 0]) if np.any(b > 0) else -np.inf
        neg = special.logsumexp(lb[b < 0]) if np.any(b < 0) else -np.inf
    if pos == np.inf and neg == np.inf:
        return np.nan, np.nan, 0.0
    if pos == neg == -np.inf:
        return -np.inf, 0.0, 0.0
    big, small, sign = (pos, neg, 1.0) if pos >= neg else (neg, pos, -1.0)
    if big == np.inf:
        return np.inf, sign, 0.0
    with np.errstate(over="ignore"):
        gap = small - big  # <= 0
    if gap > -1e-6:
        return np.nan, np.nan, np.nan
    value = big + np.log1p(-np.exp(gap))
    cond = (1 + np.exp(gap)) / (1 - np.exp(gap))
    return value, sign, 1e-13 * cond * (1 + abs(big)) + 1e-300


LONG_LENGTHS = [131_073, 152_064, 262_147, 140_000]   # past the core's 131,072-element row cache
PANEL_LENGTHS = [5, 300, 4097, 131_073]
PANEL_WIDTHS = [1, 3, 17, 64]


def _check_long(d: Draw, sub: int):
    """A long row (summed in segments and merged) or a column panel (axis 0), against mpmath.

    The row is tiled from a handful of palette values (so the exact reference
    costs a few mpmath exponentials), with extremes scattered through it and,
    now and then, a banned block at the dtype's most negative value.
    """
    import softmax

    dtype = np.dtype(d.choice([np.float64, np.float32, np.float16]))
    fname = ["softmax", "log_softmax", "logsumexp"][sub % 3]
    layout = d.choice(["row", "rows2", "panel"])
    if layout == "panel":
        shape, axis = (d.choice(PANEL_LENGTHS), d.choice(PANEL_WIDTHS)), 0
    else:
        n = d.choice(LONG_LENGTHS)
        shape, axis = ((n,) if layout == "row" else (2, n)), -1
    rng = np.random.default_rng(d.int(0, 2**32 - 1))
    pattern = _values(d, d.int(1, 16), dtype)
    x = pattern[rng.integers(0, pattern.size, math.prod(shape))].reshape(shape)
    extremes = _values(d, d.int(0, 4), dtype)
    for v in extremes:
        x.reshape(-1)[rng.integers(0, x.size)] = v
    if d.chance(3):  # a banned block: segments whose max is far below the row's
        start = rng.integers(0, x.shape[axis])
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(start, start + x.shape[axis] // 2)
        x[tuple(idx)] = np.finfo(dtype).min if d.chance(2) else -np.finfo(dtype).max / 2
    kwargs = {"axis": axis}
    temperature, base = 1.0, None
    if fname != "logsumexp":
        t = d.byte() % 4
        if t >= 1:
            temperature = d.choice(TEMPERATURES)
        if t >= 2:
            base = d.choice(BASES)
        kwargs.update(temperature=temperature)
        if base is not None:
            kwargs["base"] = base
    keep = None
    if d.chance(3):
        keep = rng.random(shape) < d.choice([0.5, 0.99, 0.01, 0.9])
        kwargs["where"] = keep
    what = f"long {fname} dtype={dtype} shape={shape} axis={axis} T={temperature} base={base} where={keep is not None}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = getattr(softmax, fname)(x, **kwargs)
    rows = np.moveaxis(x, axis, -1).astype(np.float64)
    keep_rows = None if keep is None else np.moveaxis(keep, axis, -1)
    if fname == "logsumexp":
        eo.check_logsumexp_rows(got, rows, keep_rows, dtype=dtype, what=what)
    else:
        assert got.shape == shape and got.dtype == dtype, what
        eo.check_softmax_rows(np.moveaxis(got, axis, -1), rows, keep_rows,
                              log=fname == "log_softmax", scale=eo.scale_of(temperature, base),
                              dtype=dtype, what=what)
    STATS["checked"] += 1
    STATS["long"] += 1


CORE_SIGNATURES = ("(x, out, where, c_hi, c_lo, log_mode)", "(x, out, where)")
STATS = {"checked": 0, "rejected": 0, "core_direct": 0, "long": 0}


def _check_core_direct(d: Draw):
    """softmax._core itself with hostile arguments: errors, never a crash."""
    from softmax import _core

    signatures = (getattr(_core.softmax, "__text_signature__", None),
                  getattr(_core.logsumexp, "__text_signature__", None))
    if signatures != CORE_SIGNATURES:
        return
    STATS["core_direct"] += 1
    dtype = np.dtype(d.choice([np.float64, np.float32, np.float16, np.int32]))
    ndim = d.choice([1, 2, 3, 0])
    shape = tuple(d.choice(SIZES) for _ in range(ndim))
    x, _, _ = _make_x(d, shape, dtype)
    x = np.asarray(x)
    oshape = shape if not d.chance(4) else tuple(s + d.int(0, 2) for s in shape)
    odtype = dtype if not d.chance(6) else np.dtype(np.float64)
    out, _, _ = _make_x(d, oshape, odtype)
    out = np.asarray(out)
    if d.chance(4):
        out = out.copy()
        out.flags.writeable = False
    mask = None
    if d.chance(2):
        mshape = shape if not d.chance(4) else tuple(s + 1 for s in shape)
        mask = np.array([d.chance(2) for _ in range(math.prod(mshape))], bool).reshape(mshape)
        if d.chance(5):
            mask = mask.astype(np.uint8)
    c_hi = d.choice([1.0, -1.0, 0.5, 1e300, -3.0, 0.0, np.nan, np.inf])
    c_lo = d.choice([0.0, 1e-17, -1e-20])
    log = d.chance(2)
    fn = d.choice(["softmax", "logsumexp"])
    try:
        if fn == "softmax":
            _core.softmax(x, out, mask, c_hi, c_lo, log)
        else:
            lse_out = np.empty(shape[:-1] if d.byte() < 200 else shape, odtype)
            _core.logsumexp(x, lse_out, mask)
    except (TypeError, ValueError):
        return


def one_input(data: bytes) -> None:
    """The fuzz target: one decoded call, checked; raises AssertionError on a finding."""
    d = Draw(data)
    mode = d.byte()
    if mode >= 248:  # 1 in 32: a long row (> 131,072: segments merged) or a column panel
        _check_long(d, mode % 8)
    elif mode % 8 == 7:
        _check_core_direct(d)
    elif mode % 8 in (5, 6):
        _check_logsumexp(d)
    else:
        _check_softmax_family(d, "log_softmax" if mode % 8 in (3, 4) else "softmax")


def _save(data: bytes) -> Path:
    REGRESSIONS.mkdir(exist_ok=True)
    path = REGRESSIONS / f"crash-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    return path


def _random_mode(seconds: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    count = failures = 0
    while time.monotonic() - start < seconds:
        data = rng.integers(0, 256, size=int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        count += 1
        try:
            one_input(data)
        except Exception as exc:  # a finding: keep the input, go on
            failures += 1
            print(f"FAIL {_save(data).name}: {str(exc)[:400]}", flush=True)
    elapsed = time.monotonic() - start
    print(f"random mode: {count} inputs in {elapsed:.0f} s ({count / elapsed:.0f}/s), "
          f"{failures} failing; {STATS}; recorded issues reached: {KNOWN_HITS}", flush=True)
    return 1 if failures else 0


def main(argv=None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) > 1 and argv[1] == "--random":
        seconds = float(argv[2]) if len(argv) > 2 else 60.0
        seed = int(argv[3]) if len(argv) > 3 else int.from_bytes(os.urandom(4), "little")
        print(f"seed {seed}; patches detected: {patched()}", flush=True)
        return _random_mode(seconds, seed)
    import atheris

    with atheris.instrument_imports():
        import softmax  # noqa: F401  (coverage of the Python layer guides the fuzzer)
    print(f"patches detected: {patched()}", flush=True)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
