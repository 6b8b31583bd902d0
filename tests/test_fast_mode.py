"""accuracy="fast": its documented bound, the default's edges, the same bits.

The fast mode computes float16 and float32 in float32 lanes with a float32
exp (float64 runs the default kernels). Its promise, checked here against
the correctly rounded mpmath references of tests/ulp_report.py on every
family: at most 4 ulp (rep.FAST_BOUND) for every dtype, cancelling
logsumexp rows at most 4 ulp of max(x); edge rows (NaN, +-inf, empty,
masked, temperature 0 and inf) give exactly the default mode's bits; and,
as in the default, a row's bits do not depend on its layout. test_dispatch
reruns this file under every SIMD target.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest

import softmax as sm
from softmax import _core

import child_runs
import ulp_reference as ur
import ulp_report as rep

TESTS = Path(__file__).resolve().parent
FLOATS = [np.float16, np.float32, np.float64]

FAMILIES = [
    pytest.param(fam, id=f"{fam.dtype}-{fam.label()}")
    for dtype in rep.ALL_DTYPES
    for fam in rep.families(dtype, long_rows=False)
]


def _check(results, what):
    lines = []
    for r in results:
        if r.max_ulp > rep.bound(r.dtype, "fast"):
            lines.append(f"{r.func}: {r.max_ulp:g} ulp > {rep.bound(r.dtype, 'fast')}, "
                         f"e.g. {r.worst}")
        if r.cancel_rows and r.cancel_max_ulp_of_max > rep.cancel_bound(r.dtype, "fast"):
            lines.append(f"{r.func} (cancellation): {r.cancel_max_ulp_of_max:.3g} ulp of max(x)")
    assert not lines, f"{what} [fast]:\n" + "\n".join(lines)


@pytest.mark.parametrize("fam", FAMILIES)
def test_fast_family_within_bound(fam, ulp_results):
    results = rep.measure(fam, "fast")
    ulp_results.extend(results)
    assert all(r.n_outputs + r.cancel_rows > 0 for r in results)
    _check(results, f"{fam.dtype} {fam.label()}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=lambda d: np.dtype(d).name)
def test_fast_long_row_within_bound(dtype, ulp_results):
    (fam,) = [f for f in rep.families(dtype) if f.name.startswith("long (")]
    results = rep.measure(fam, "fast")
    ulp_results.extend(results)
    _check(results, f"{np.dtype(dtype)} long row")


def test_fast_mode_is_not_the_default_kernel():
    """The keyword reaches the core: float32 results differ somewhere (the
    fast exp is not correctly rounded), float64 results do not."""
    x = np.random.default_rng(5).standard_normal((64, 1000)).astype(np.float32) * 4
    assert not np.array_equal(sm.softmax(x, accuracy="fast"), sm.softmax(x, accuracy="high"))
    x64 = x.astype(np.float64)
    assert np.array_equal(sm.softmax(x64, accuracy="fast"), sm.softmax(x64))


# ---- the float32-lane exp of every target ---------------------------------

@pytest.mark.parametrize("target", _core._config()["supported"])
def test_float_exp_within_one_ulp(target):
    rng = np.random.default_rng(11)
    y = np.concatenate([
        rng.uniform(-87, 0, 4000),
        -np.exp(rng.uniform(-30, 0, 500)),          # tiny |y|
        rng.uniform(-104, -86, 1000),                # subnormal results
        [0.0, -0.0, -1e-45, -86.0, -87.33654, -103.27893, -103.97208, -104.0],
    ]).astype(np.float32)
    got = np.empty_like(y)
    _core._vexpf(target, y, got)
    with mpmath.workprec(100):
        want = ur.round_all([mpmath.exp(ur.mp_value(v)) for v in y], np.float32)
    d = ur.ulp_distance(got, want)
    assert d.max() <= 1, (y[np.argmax(d)], got[np.argmax(d)], want[np.argmax(d)])
    assert got[y == 0][0] == 1.0
    edge = np.array([-np.inf, -1e30, -104.5, -200.0], dtype=np.float32)
    out = np.empty_like(edge)
    _core._vexpf(target, edge, out)
    assert np.array_equal(out, np.zeros(4, np.float32))


# ---- edges: exactly the default's bits -----------------------------------

def _edge_rows(dtype):
    """(x, mask) pairs whose results are limits, not roundings."""
    big = float(np.finfo(dtype).max)
    inf, nan = np.inf, np.nan
    rows = [
        ([nan, 1.0, 2.0], None), ([1.0, nan, -inf], None), ([inf, nan], None),
        ([inf, 1.0, inf, -inf], None), ([inf], None), ([-inf, inf, 3.0], None),
        ([-inf, -inf, -inf], None), ([-inf], None),
        ([1.0, 2.0, 3.0], [False, False, False]),
        ([nan, 2.0, inf], [False, True, False]),          # NaN and inf masked out
        ([inf, 2.0, inf], [True, True, False]),
        ([big, -big, 0.0], None),                         # x - max overflows
        ([-big, -big], None), ([big, big], None),
        ([5.0, 5.0, 5.0, 5.0], None),                     # all maxima
    ]
    return [(np.array(r, dtype=dtype), None if m is None else np.array(m)) for r, m in rows]


def _bits(a):
    a = np.ascontiguousarray(np.asarray(a))
    return a.view(np.uint8).tobytes(), a.shape


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("temperature", [1.0, 0.0, np.inf, 0.5])
def test_edge_rows_give_the_default_bits(dtype, temperature):
    for x, mask in _edge_rows(dtype):
        for name in ("softmax", "log_softmax", "logsumexp"):
            f = getattr(sm, name)
            kw = {} if mask is None else {"where": mask}
            if name != "logsumexp":
                kw["temperature"] = temperature
            elif temperature != 1.0:
                continue
            # batched with a finite row and laid out both ways
            batch = np.stack([x, np.arange(x.size, dtype=dtype)])
            bkw = dict(kw)
            if mask is not None:
                bkw["where"] = np.stack([mask, np.ones_like(mask)])
            for a, k in ((x, kw), (batch, bkw)):
                # the edge row only (the batch's finite row may differ in its last bits)
                high = np.asarray(f(a, axis=-1, accuracy="high", **k))
                fast = np.asarray(f(a, axis=-1, accuracy="fast", **k))
                if a.ndim == 2:
                    high, fast = high[0], fast[0]
                # + 0: the sign of a zero log-probability is the sign of the
                # rounded log1p(rest), which the default's float32 kernel
                # sums from clamped exps of -inf (see the report); every
                # other bit must agree
                z = np.zeros((), dtype)
                assert _bits(fast + z) == _bits(high + z), (name, x, mask, temperature, fast, high)


def test_edge_suite_passes_in_fast_mode():
    """tests/test_edges.py (hand-written limits) with SOFTMAX_ACCURACY=fast."""
    code, stdout, stderr = child_runs.run(child_runs.Command(
        ["-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", str(TESTS / "test_edges.py")],
        {"SOFTMAX_ACCURACY": "fast"}), timeout=600)
    assert code == 0, stdout[-3000:] + stderr[-2000:]


# ---- layouts: the same bits ----------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [1, 3, 17, 100, 1000, 70000, 140000])
def test_strided_masked_and_contiguous_rows_give_the_same_bits(dtype, n):
    rng = np.random.default_rng([n, np.dtype(dtype).itemsize])
    base = (rng.standard_normal((3, n)) * 5).astype(dtype)
    base[1, ::7] = -np.inf
    wide = np.zeros((3, 2 * n), dtype=dtype)
    wide[:, ::2] = base
    strided = wide[:, ::2]
    keep = np.ones(base.shape, dtype=bool)
    for name in ("softmax", "log_softmax"):
        f = getattr(sm, name)
        for t in (1.0, 0.7):
            ref = f(base, temperature=t, accuracy="fast")
            for other in (f(strided, temperature=t, accuracy="fast"),
                          f(np.asfortranarray(base), temperature=t, accuracy="fast"),
                          f(base, where=keep, temperature=t, accuracy="fast")):
                assert _bits(other) == _bits(ref), (name, n, t)
        # out= into a strided view, and in place
        out = np.zeros((3, 2 * n), dtype=dtype)[:, ::2]
        f(base, out=out, accuracy="fast")
        assert _bits(out) == _bits(f(base, accuracy="fast"))
        inplace = base.copy()
        f(inplace, out=inplace, accuracy="fast")
        assert _bits(inplace) == _bits(f(base, accuracy="fast"))
    lse = sm.logsumexp(base, axis=-1, accuracy="fast")
    assert _bits(sm.logsumexp(strided, axis=-1, accuracy="fast")) == _bits(lse)
    assert _bits(sm.logsumexp(base, axis=-1, where=keep, accuracy="fast")) == _bits(lse)


def test_results_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(2).standard_normal((300, 5000)).astype(np.float32)
    long = np.random.default_rng(3).standard_normal((1, 600_000)).astype(np.float32)
    old = sm.get_num_threads()
    try:
        sm.set_num_threads(1)
        one = [sm.softmax(a, accuracy="fast") for a in (x, long)]
        sm.set_num_threads(2)
        two = [sm.softmax(a, accuracy="fast") for a in (x, long)]
    finally:
        sm.set_num_threads(old)
    for a, b in zip(one, two):
        assert _bits(a) == _bits(b)


def _ulp_error_float32(p, ref):
    """|p - ref| in float32 ulps of ref (ref in float64, an independent
    evaluation), for the entries whose reference is a normal float32."""
    ref32 = ref.astype(np.float32)
    normal = ref >= np.finfo(np.float32).tiny
    return np.abs(p[normal].astype(np.float64) - ref[normal]) / np.spacing(ref32[normal])


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_long_row_segments_are_scaled_from_their_own_max(temperature):
    """A float32 row longer than the core's whole-row limit (131072) runs in
    segments of 4096; softmax writes each from its exps relative to the
    segment's own max (kept in a contiguous out, recomputed otherwise).
    Segments fully -inf, segments whose max is so far below the row's that
    their factor underflows, the max in a late segment: within the fast
    bound of a float64 softmax taken here directly, zeros where the exact
    value is below half the smallest subnormal, and the same bits for every
    layout, in place and on one or two threads."""
    n = 200_003
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    x[8192:16384] = -np.inf                     # segments 2 and 3: empty
    x[16384:20480] = -300.0 + rng.standard_normal(4096).astype(np.float32)
    x[20480:24576] = -120.0 + rng.standard_normal(4096).astype(np.float32)
    x[150_001] = 30.0                           # the max, in segment 36
    y = x.astype(np.float64) / temperature
    e = np.exp(y - y.max())
    ref = e / e.sum()

    p = sm.softmax(x, temperature=temperature, accuracy="fast")
    assert p.dtype == np.float32
    assert _ulp_error_float32(p, ref).max() <= rep.bound(np.float32, "fast")
    tiny = ref < np.finfo(np.float32).smallest_subnormal / 2
    assert np.all(p[tiny] == 0) and np.all(p[8192:16384] == 0)
    assert abs(p.sum(dtype=np.float64) - 1.0) < 1e-5

    want = _bits(p)
    strided_out = np.zeros(2 * n, dtype=np.float32)[::2]
    sm.softmax(x, temperature=temperature, accuracy="fast", out=strided_out)
    strided_x = np.zeros(2 * n, dtype=np.float32)
    strided_x[::2] = x
    inplace = x.copy()
    sm.softmax(inplace, temperature=temperature, accuracy="fast", out=inplace)
    old = sm.get_num_threads()
    try:
        sm.set_num_threads(1)
        one = sm.softmax(x, temperature=temperature, accuracy="fast")
        sm.set_num_threads(2)
        two = sm.softmax(x[None, :], temperature=temperature, accuracy="fast")[0]
    finally:
        sm.set_num_threads(old)
    for other in (strided_out, inplace, one, two,
                  sm.softmax(strided_x[::2], temperature=temperature, accuracy="fast"),
                  sm.softmax(x, where=np.ones(n, dtype=bool), temperature=temperature,
                             accuracy="fast")):
        assert _bits(other) == want


# ---- the switch: keyword, process default, environment ------------------

@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("bad", ["low", "FAST", "", 1, True])
def test_unknown_accuracy_is_a_value_error_naming_it(name, bad):
    with pytest.raises(ValueError, match=r"accuracy must be 'high' or 'fast'.*" + repr(bad)[:3]):
        getattr(sm, name)(np.ones(3), accuracy=bad)


def test_set_accuracy_is_the_default_of_every_call():
    x = np.random.default_rng(9).standard_normal((5, 300)).astype(np.float32) * 4
    assert sm.get_accuracy() == "high"
    fast = {f: getattr(sm, f)(x, axis=-1, accuracy="fast") for f in ("softmax", "log_softmax", "logsumexp")}
    try:
        sm.set_accuracy("fast")
        assert sm.get_accuracy() == "fast"
        for f, want in fast.items():
            # the plain call (C fast path) and the general path (temperature 1.0 as a float)
            assert _bits(getattr(sm, f)(x, axis=-1)) == _bits(want)
            assert _bits(getattr(sm, f)(x, axis=-1, where=np.ones(x.shape, bool))) == _bits(want)
        # the keyword overrides the default
        assert _bits(sm.softmax(x, accuracy="high")) != _bits(fast["softmax"])
    finally:
        sm.set_accuracy("high")
    assert _bits(sm.softmax(x)) != _bits(fast["softmax"])
    with pytest.raises(ValueError, match="mode must be 'high' or 'fast'"):
        sm.set_accuracy("quick")
    with pytest.raises(ValueError, match="mode must be"):
        sm.set_accuracy(None)


@pytest.mark.parametrize("value, mode", [("fast", "fast"), (" Fast ", "fast"), ("high", "high"),
                                         ("nonsense", "high")])
def test_environment_variable_sets_the_default(value, mode):
    code = ("import json, softmax as sm, io; b = io.StringIO(); sm.show_config(b); "
            "print(json.dumps([sm.get_accuracy(), b.getvalue()]))")
    env = dict(os.environ, SOFTMAX_ACCURACY=value)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    got, shown = json.loads(proc.stdout)
    assert got == mode
    assert f"accuracy              : {mode}" in shown


def test_fast_mode_keeps_the_dominant_entry_log_probability():
    """Maxima are counted, not summed, in fast mode too: log p of a dominant
    entry keeps its tiny negative value."""
    x = np.array([0.0, -30.0, -31.0, -29.9], dtype=np.float32)
    got = sm.log_softmax(x, accuracy="fast")
    want = -(math.exp(-30) + math.exp(-31) + math.exp(float(np.float32(-29.9))))
    assert got[0] < 0
    assert float(got[0]) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("mode", ["high", "fast"])
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [1, 5, 129, 1000])
def test_columns_give_the_bits_of_rows(mode, dtype, n):
    """Axis 0 of a C-ordered array runs the column panels (40 columns: wider
    than any target's vector of floats); each column's bits are those of
    the same values as a row, in both modes, with -inf, dominant entries,
    a NaN column, an all -inf one, a temperature and a base below 1 (the
    minimum as reference point); also written in place (x is read again
    after out is written) and into an `out` with rows of its own stride."""
    rng = np.random.default_rng([n, np.dtype(dtype).itemsize, len(mode)])
    rows = (rng.standard_normal((40, n)) * 6).astype(dtype)
    rows[3, ::3] = -np.inf
    rows[5, 0] += 60
    rows[7] = -rows[7] - 100   # exps far below e^-86
    rows[9, -1] = np.nan
    rows[11] = -np.inf
    cols = np.ascontiguousarray(rows.T)
    for kw in ({}, {"temperature": 0.7}, {"base": 0.5}):
        for name in ("softmax", "log_softmax"):
            f = getattr(sm, name)
            want = f(rows, axis=-1, accuracy=mode, **kw)
            got = f(cols, axis=0, accuracy=mode, **kw).T
            assert _bits(got) == _bits(want), (name, kw)
            inplace = cols.copy()
            f(inplace, axis=0, out=inplace, accuracy=mode, **kw)
            assert _bits(inplace.T) == _bits(want), (name, kw, "in place")
            wide = np.full((n, 47), np.nan, dtype)
            f(cols, axis=0, out=wide[:, 3:43], accuracy=mode, **kw)
            assert _bits(wide[:, 3:43].T) == _bits(want), (name, kw, "out")
            assert np.isnan(wide[:, :3]).all() and np.isnan(wide[:, 43:]).all()
    want = sm.logsumexp(rows, axis=-1, accuracy=mode)
    assert _bits(sm.logsumexp(cols, axis=0, accuracy=mode)) == _bits(want)


# ---- softmax's power-of-two frame (sm_frame_k) ----------------------------

def _frame_rows():
    """Rows whose max sits on either side of the frame's limit (+-220), with
    entries on either side of its cut-offs (m - 85: the lifted form; m - 104:
    zero), -inf, and a dominant entry."""
    rng = np.random.default_rng(2026)
    rows = []
    for m in (0.0, 1.5, -3.0, 87.0, -90.0, 219.99, 220.0, 220.01, -220.0, -220.02, 250.0,
              600.0, -1e4, 3e30):
        r = (m - np.abs(rng.standard_normal(67)) * 30).astype(np.float32)
        r[0] = m
        r[1:9] = np.float32(m) - np.float32([84.9, 85.0, 85.1, 103.9, 104.0, 104.1, 110.0, 0.0])
        r[9] = -np.inf
        rows.append(r)
    return np.array(rows, dtype=np.float32)


def test_frame_rows_within_bound_and_the_bits_of_every_layout():
    rows = _frame_rows()
    y = rows.astype(np.float64)
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    ref = e / e.sum(axis=-1, keepdims=True)
    p = sm.softmax(rows, axis=-1, accuracy="fast")
    assert _ulp_error_float32(p, ref).max() <= rep.bound(np.float32, "fast")
    assert np.all(p[ref < np.finfo(np.float32).smallest_subnormal / 2] == 0)
    want = _bits(p)
    # columns (blocks mixing maxima inside and outside the frame), strided, masked
    cols = sm.softmax(np.ascontiguousarray(rows.T), axis=0, accuracy="fast").T
    wide = np.zeros((rows.shape[0], 2 * rows.shape[1]), np.float32)
    wide[:, ::2] = rows
    strided = sm.softmax(wide[:, ::2], axis=-1, accuracy="fast")
    masked = sm.softmax(rows, axis=-1, accuracy="fast", where=np.ones(rows.shape, bool))
    for other in (cols, strided, masked):
        assert _bits(other) == want


def test_frame_log_sums_within_bound_and_the_bits_of_every_layout():
    """log_softmax and logsumexp sum their non-maxima in the frame too (the
    exact maxima counted apart) and convert the sums back for log1p: within
    the bound of a float64 reference, and columns mixing maxima inside and
    outside the frame give the bits of rows."""
    rows = _frame_rows()
    y = rows.astype(np.float64)
    m = y.max(axis=-1, keepdims=True)
    log_s = np.log(np.exp(y - m).sum(axis=-1, keepdims=True))
    lse = m + log_s
    ref = (y - m) - log_s      # not y - lse: m = 3e30 would absorb log_s
    logp = sm.log_softmax(rows, axis=-1, accuracy="fast")
    finite = np.isfinite(y)
    err = np.abs(logp[finite].astype(np.float64) - ref[finite])
    assert np.all(err <= rep.bound(np.float32, "fast")
                  * np.spacing(np.abs(ref[finite]).astype(np.float32)))
    got = sm.logsumexp(rows, axis=-1, accuracy="fast")
    assert np.all(np.abs(got - lse[:, 0]) <= rep.bound(np.float32, "fast")
                  * np.spacing(np.abs(lse[:, 0]).astype(np.float32)))
    cols = np.ascontiguousarray(rows.T)
    assert _bits(sm.log_softmax(cols, axis=0, accuracy="fast").T) == _bits(logp)
    assert _bits(sm.logsumexp(cols, axis=0, accuracy="fast")) == _bits(got)


def test_frame_segments_of_a_long_row_merge_exactly():
    """A long row whose segments' maxima lie inside and outside the frame:
    each in-frame segment's sum is converted back to its own max for the
    merge. Within the bound of a float64 reference, same bits in every layout."""
    n = 140_000
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    x[:4096] += 300.0      # segment 0: out of the frame, holds the row's max
    x[4096:8192] += 215.0  # segment 1: in the frame, near the limit
    x[8192:12288] -= 219.0
    y = x.astype(np.float64)
    e = np.exp(y - y.max())
    ref = e / e.sum()
    p = sm.softmax(x, accuracy="fast")
    assert _ulp_error_float32(p, ref).max() <= rep.bound(np.float32, "fast")
    out = np.zeros(2 * n, np.float32)[::2]
    sm.softmax(x, accuracy="fast", out=out)
    assert _bits(out) == _bits(p)
    # shifted down: now segment 0 is in the frame as well
    xs = x - np.float32(200.0)
    ys = xs.astype(np.float64)
    es = np.exp(ys - ys.max())
    q = sm.softmax(xs, accuracy="fast")
    assert _ulp_error_float32(q, es / es.sum()).max() <= rep.bound(np.float32, "fast")
