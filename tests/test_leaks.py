"""10,000 calls over varied inputs and every error path leak nothing.

Three meters: tracemalloc (Python objects and NumPy buffers, which NumPy
reports to it), the process's resident set (memory the C side might take
with malloc and never give back) and sys.getrefcount on the arguments (a
missing Py_DECREF in the core shows up as a count that grows with calls).
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import softmax as sm

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "") or bool(os.environ.get("SOFTMAX_UNDER_ASAN"))

rng = np.random.default_rng(5)
X64 = rng.standard_normal((6, 33))
X32 = X64.astype(np.float32)
X16 = X64.astype(np.float16)
XBE = X64.astype(">f8")
XNAN = X64.copy()
XNAN[1, 2] = np.nan
XNAN[2, :] = -np.inf
XNAN[3, 4] = np.inf
MASK = rng.random(X64.shape) > 0.3
OUT64 = np.empty_like(X64)
OUT32 = np.empty_like(X32)
B = np.abs(rng.standard_normal(X64.shape)) + 0.1
RO = X64.copy()
RO.flags.writeable = False
EMPTY = np.empty((0, 4))


def _ok_calls():
    return [
        lambda: sm.softmax(X64),
        lambda: sm.log_softmax(X64, axis=0),
        lambda: sm.softmax(X32, temperature=0.5),
        lambda: sm.softmax(X16, where=MASK),
        lambda: sm.softmax(XBE, base=2.0),
        lambda: sm.softmax(XNAN, axis=None),
        lambda: sm.log_softmax(XNAN, temperature=0.0),
        lambda: sm.softmax(X64, temperature=np.inf),
        lambda: sm.softmax(X64, out=OUT64),
        lambda: sm.softmax(X32[:, ::-2], out=OUT32[:, :17]),
        lambda: sm.log_softmax(X64.reshape(6, 3, 11), axis=(0, 2)),
        lambda: sm.logsumexp(X64, axis=1),
        lambda: sm.logsumexp(XNAN, axis=0, where=MASK, keepdims=True),
        lambda: sm.logsumexp(X64, b=B, return_sign=True),
        lambda: sm.softmax(EMPTY),
        lambda: sm.softmax(np.float64(2.0)),
        lambda: sm.softmax([[1, 2, 3]]),
        lambda: sm.softmax(RO),
    ]


def _error_calls():
    return [
        lambda: sm.softmax(np.array(["a"])),
        lambda: sm.softmax(np.array([1.0], dtype=object)),
        lambda: sm.softmax(np.array([1j])),
        lambda: sm.softmax(X64, axis=5),
        lambda: sm.softmax(X64, axis=(0, 0)),
        lambda: sm.softmax(X64, axis=1.5),
        lambda: sm.softmax(X64, temperature=-1.0),
        lambda: sm.softmax(X64, temperature="hot"),
        lambda: sm.softmax(X64, base=1.0),
        lambda: sm.softmax(X64, where=np.ones(3, bool)),
        lambda: sm.softmax(X64, where=np.ones(X64.shape, int)),
        lambda: sm.softmax(X64, out=OUT32),
        lambda: sm.softmax(X64, out=np.empty(3)),
        lambda: sm.softmax(X64, out=RO),
        lambda: sm.softmax(X64, out=[1.0]),
        lambda: sm.logsumexp(X64, b=np.ones(5)),
        lambda: sm.logsumexp(X64, axis=7),
        lambda: sm.logsumexp(np.array([None])),
    ]


def _run(n: int) -> None:
    ok, bad = _ok_calls(), _error_calls()
    calls = ok + bad
    for i in range(n):
        fn = calls[i % len(calls)]
        try:
            fn()
        except (TypeError, ValueError):
            pass


def test_every_error_path_raises_what_the_table_says():
    for fn in _error_calls():
        with pytest.raises((TypeError, ValueError)):
            fn()
    for fn in _ok_calls():
        fn()


def test_no_python_memory_growth_over_10000_calls():
    _run(1000)  # warm caches (lru_cache of scales, NumPy internals)
    gc.collect()
    tracemalloc.start()
    try:
        _run(200)
        gc.collect()
        base, _ = tracemalloc.get_traced_memory()
        _run(10_000)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A leak of one small object per call would be >= 10,000 * ~50 bytes.
    assert after - base < 64 * 1024, f"traced memory grew by {after - base} bytes"
    # Peak: one call's temporaries, not an accumulation.
    assert peak - base < 4 * 1024 * 1024, f"peak {peak - base} bytes above baseline"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.skipif(UNDER_ASAN, reason="ASan's quarantine holds freed memory: RSS is not a leak meter there")
def test_no_resident_memory_growth_over_10000_calls():
    import resource

    _run(2000)
    gc.collect()
    rss0 = _rss_bytes()
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _run(10_000)
    gc.collect()
    rss1 = _rss_bytes()
    peak1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rss1 - rss0 < 4 * 1024 * 1024, f"RSS grew by {(rss1 - rss0) / 2**20:.1f} MiB"
    assert (peak1 - peak0) * 1024 < 4 * 1024 * 1024, f"peak RSS grew by {peak1 - peak0} KiB"


def test_reference_counts_are_intact():
    args = [X64, X32, X16, XBE, XNAN, MASK, OUT64, OUT32, B, RO, EMPTY]
    _run(500)
    gc.collect()
    before = [sys.getrefcount(a) for a in args]
    _run(10_000)
    gc.collect()
    after = [sys.getrefcount(a) for a in args]
    assert after == before


def test_results_and_errors_hold_no_reference_to_inputs():
    x = np.random.default_rng(1).standard_normal((4, 9))
    out = np.empty_like(x)
    n_x, n_out = sys.getrefcount(x), sys.getrefcount(out)
    for _ in range(1000):
        r = sm.softmax(x)
        del r
        sm.softmax(x, out=out)
        try:
            sm.softmax(x, temperature=-1.0, out=out)
        except ValueError:
            pass
        try:
            sm.softmax(x, where=np.ones(2, bool))
        except ValueError:
            pass
    # an exception's traceback can keep frames (and x) alive: clear it
    sys.last_value = sys.last_traceback = None
    gc.collect()
    assert (sys.getrefcount(x), sys.getrefcount(out)) == (n_x, n_out)
