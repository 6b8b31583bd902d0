"""Inputs past 2**31: one row that long, and an array with that many elements.

Run with ``SOFTMAX_TEST_HUGE=1 python -m pytest tests/test_huge.py -s`` for the
real sizes (about 9 GiB free and a few minutes). Without it the same tests
run at bounded sizes (a row of 2**24 + 2**20, an array of 2**25 + 2**16
elements: the same code paths -- segmented long rows, column panels, in-place
output, the sampled fsum checks -- in seconds), so CI always executes them.
They compute in place (``out=x``) so that one array is all the memory they
need, and check sampled entries against sums done independently in float64
(math.fsum over the periodic pattern the input is built from).

The MemoryError tests at the bottom are small and always run.
"""

from __future__ import annotations

import math
import os
import resource
import time
import tracemalloc

import numpy as np
import pytest

import softmax as sm

HUGE = os.environ.get("SOFTMAX_TEST_HUGE") == "1"
PERIOD = 1024
# a multiple of PERIOD; the real size is past int32 and uint31 indexing
N_ROW = 2**31 + 2**20 if HUGE else 2**24 + 2**20
BIG_ROWS = 2**15 + 1 if HUGE else 2**9 + 1


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _need(nbytes: int):
    """Skip (a legitimate skip: the machine is busy) unless nbytes + 2 GiB are free."""
    if not HUGE:
        return  # the bounded sizes need a few hundred MiB
    avail = _mem_available()
    if avail < nbytes + 2 * 2**30:
        pytest.skip(f"needs {(nbytes + 2 * 2**30) / 2**30:.1f} GiB available, "
                    f"MemAvailable is {avail / 2**30:.1f} GiB")


def _report(name: str, start: float):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\n[huge] {name}: {time.perf_counter() - start:.1f} s, peak RSS {peak:.2f} GiB")


def _periodic(n: int, dtype, seed: int):
    """x[i] = pattern[i % PERIOD], built without a second full-size array."""
    pattern = (np.random.default_rng(seed).standard_normal(PERIOD) * 4).astype(dtype)
    x = np.empty(n, dtype)
    x.reshape(-1, PERIOD)[:] = pattern
    return x, pattern.astype(np.float64)


def _sample_indices(n: int, rng) -> np.ndarray:
    edges = [0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1, 2**24, n - 2, n - 1]
    return np.unique(np.concatenate([[i for i in edges if 0 <= i < n],
                                     rng.integers(0, n, 2000)]))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_row_longer_than_2_31(dtype):
    itemsize = np.dtype(dtype).itemsize
    if dtype == np.float16 and not _native_float16():
        pytest.skip("no native float16 path: float16 goes through a float64 copy "
                    "(8 bytes/element, > 34 GiB for this row)")
    _need(N_ROW * itemsize)
    start = time.perf_counter()
    x, pattern = _periodic(N_ROW, dtype, seed=1)
    # A unique maximum beyond index 2**31: an index kept in 32 bits would miss it.
    top = 2**31 + 5 if HUGE else 2**24 + 5
    x[top] = 12.0
    m = 12.0
    reps = N_ROW // PERIOD
    terms = [math.exp(p - m) * reps for p in pattern]
    total = math.fsum(terms) - math.exp(pattern[top % PERIOD] - m) + 1.0
    want_lse = m + math.log(total)

    got_lse = float(sm.logsumexp(x))
    assert got_lse == pytest.approx(want_lse, rel=4 * float(np.finfo(dtype).eps))

    sm.softmax(x, out=x)  # in place: the only big array is x
    rng = np.random.default_rng(0)
    idx = _sample_indices(N_ROW, rng)
    base = pattern[idx % PERIOD]
    base[idx == top] = m
    want = np.exp(base - m) / total
    # atol: float16's probabilities here are ~1e-12, below its smallest
    # subnormal (6e-8), so their correct rounding is 0 (or one subnormal step)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    np.testing.assert_allclose(x[idx].astype(np.float64), want,
                               rtol=2 * float(np.finfo(dtype).eps), atol=tiny)
    assert float(x[top]) == pytest.approx(1 / total, rel=1e-6, abs=tiny)
    if dtype == np.float32:
        # every entry, not only the samples: the probabilities sum to 1
        # (float16 rounds every share of this flat row to 0 or a subnormal)
        assert float(np.sum(x, dtype=np.float64)) == pytest.approx(1.0, rel=1e-4)
    _report(f"row of {N_ROW} {np.dtype(dtype).name}", start)


@pytest.mark.slow
@pytest.mark.parametrize("axis", [-1, 0])
def test_array_with_more_than_2_31_elements(axis):
    rows, cols = BIG_ROWS, 2**16  # HUGE: 2**31 + 2**16 elements, 8 GiB of float32
    _need(rows * cols * 4)
    start = time.perf_counter()
    flat, pattern = _periodic(rows * cols, np.float32, seed=2)
    x = flat.reshape(rows, cols)
    rng = np.random.default_rng(3)
    pick_rows = np.unique(np.concatenate([[0, rows - 2, rows - 1], rng.integers(0, rows, 40)]))
    pick_cols = np.unique(np.concatenate([[0, cols - 1], rng.integers(0, cols, 40)]))
    # Independent answers first (x is overwritten): slices copied to float64.
    if axis == -1:
        slices = {r: x[r].astype(np.float64) for r in pick_rows}
    else:
        slices = {c: x[:, c].astype(np.float64) for c in pick_cols}
    sm.softmax(x, axis=axis, out=x)
    for k, v in slices.items():
        e = np.exp(v - v.max())
        want = e / math.fsum(e)
        got = x[k] if axis == -1 else x[:, k]
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=2.5e-7, atol=1e-45)
    # a row in the last block, beyond element 2**31
    sums = np.sum(x[-3:], axis=-1, dtype=np.float64) if axis == -1 else None
    if sums is not None:
        np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    _report(f"{rows}x{cols} float32 axis={axis}", start)


def _native_float16() -> bool:
    """Does softmax on float16 avoid a float64 copy? Asked of tracemalloc.

    NumPy reports its buffers to tracemalloc: a float64 working copy of a
    float16 array costs 8 bytes per element on top of the 2-byte result.
    """
    x = np.zeros(1_000_000, np.float16)
    tracemalloc.start()
    try:
        sm.softmax(x, out=x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak < 4 * x.size


# --------------------------------------------------------------------------
# Requests that cannot fit: MemoryError naming the size. Always run: they
# fail at allocation time, before touching memory.
# --------------------------------------------------------------------------

HUGE_VIEWS = [
    ("softmax float32 2**40", lambda: sm.softmax(np.broadcast_to(np.float32(0), (2**40,)))),
    ("log_softmax float64 2**40", lambda: sm.log_softmax(np.broadcast_to(np.float64(0), (2**40,)))),
    ("softmax float16 2**40", lambda: sm.softmax(np.broadcast_to(np.float16(0), (2**40,)))),
    ("softmax 2**20 x 2**20 tuple axes",
     lambda: sm.softmax(np.broadcast_to(np.float32(0), (2**20, 2**20)), axis=(0, 1))),
    # (logsumexp of a broadcast view needs no memory at all: the core reads
    # float16 natively and returns a scalar, so it is not a case for this list)
    ("logsumexp float16 2**40 with b",
     lambda: sm.logsumexp(np.broadcast_to(np.float16(0), (2**40,)), b=np.float16(1))),
    ("softmax int8 2**40", lambda: sm.softmax(np.broadcast_to(np.int8(0), (2**40,)))),
]


@pytest.mark.parametrize("call", [c for _, c in HUGE_VIEWS], ids=[n for n, _ in HUGE_VIEWS])
def test_request_beyond_memory_raises_memoryerror_with_size(call):
    with pytest.raises(MemoryError, match=r"\d+(\.\d+)? (TiB|PiB|GiB)|\d{10,}"):
        call()


def test_request_beyond_ram_but_not_beyond_address_space():
    """Twice the machine's RAM: refused at allocation (overcommit mode 0 or 2)."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            mode = int(f.read())
        with open("/proc/meminfo") as f:
            total = int(f.readline().split()[1]) * 1024
    except OSError:
        pytest.skip("needs Linux /proc")
    if mode == 1:
        pytest.skip("vm.overcommit_memory=1: the kernel grants any allocation, "
                    "so this request would be OOM-killed instead of refused")
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("ASan's allocator reserves without committing: the request would be granted")
    n = (2 * total) // 4
    with pytest.raises(MemoryError, match="GiB|TiB"):
        sm.softmax(np.broadcast_to(np.float32(0), (n,)))
