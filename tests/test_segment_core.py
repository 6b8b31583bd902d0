"""The core's groups of varying length: _core.segment_softmax / segment_logsumexp.

Each group is checked against the core's plain row call (``_core.softmax`` /
``_core.logsumexp``) on that group's slice copied to a contiguous row: that
path is held to mpmath elsewhere, and a group run by the row kernels must
give the same bits as a row of its length. The short groups of a call the
group kernel can take (no mask, x and out contiguous along the last axis,
the double lanes: see fused()) are not run as rows, one group per vector
lane instead: they are held to mpmath (tests/exact_oracle.py, the accuracy
bound) and, beyond the first few of a call, to within twice that bound of
the row call. A few groups are also held to mpmath here directly. Every
output array is pre-filled with a sentinel, so a comparison of whole arrays
also checks that empty groups and the entries outside
[offsets[0], offsets[-1]) are left alone.

The file runs in-process on the chosen SIMD target and, through
test_every_simd_target, once more in a subprocess for each other target
this CPU supports.
"""

import os
import time

import numpy as np
import pytest

import child_runs
import exact_oracle as eo
import softmax
from softmax import _core
from test_dispatch import FORCE, SUPPORTED
from ulp_report import FAST_BOUND

DTYPES = (np.float16, np.float32, np.float64)
SENTINEL = 7.0   # no softmax (<= 1) or log_softmax (<= 0) value
CACHE = 131072   # SM_ROW_CACHE: longer groups go in segments
SCALES = ((1.0, 0.0), (0.5, 0.0), (-1.0, 0.0))


@pytest.fixture
def threads():
    """Sets the thread count for a test, and restores it after."""
    old = softmax.get_num_threads()
    yield softmax.set_num_threads
    softmax.set_num_threads(old)


def bits_equal(got, want, what=""):
    g = np.ascontiguousarray(got)
    w = np.ascontiguousarray(want)
    assert g.shape == w.shape, what
    same = g.view(np.uint8).reshape(g.shape + (-1,)) == w.view(np.uint8).reshape(w.shape + (-1,))
    same = same.all(axis=-1)
    if not same.all():
        i = tuple(int(k) for k in np.argwhere(~same)[0])
        raise AssertionError(f"{what}: first difference at {i}: got {g[i]!r}, want {w[i]!r}")


SHORT = 32       # SM_GSHORT: the longest group the group kernel takes
MPMATH_GROUPS = 64   # fused groups of one call held to mpmath (the rest to the row call)


def fused(x, where, accuracy, lse, out=None):
    """Whether the short groups of this call take the group kernel (driver.c:
    fused_groups): no mask, and x (and out, but for logsumexp) contiguous
    along the last axis -- in every dtype and accuracy mode (the kernel's
    double lanes also where rows take float32 lanes)."""
    dt = np.dtype(x.dtype)
    if where is not None or (x.shape[-1] > 1 and x.strides[-1] != dt.itemsize):
        return False
    return lse or out is None or out.shape[-1] <= 1 or out.strides[-1] == dt.itemsize


def expect_groups(got, want, x, offsets, where, accuracy, *, lse, log_mode=False, c_hi=1.0,
                  out=None, what=""):
    """bits_equal(got, want), but for the groups the group kernel ran: those
    against mpmath (the first MPMATH_GROUPS of them) or within twice the
    accuracy bound of the row call's `want`, then taken as they are."""
    want = np.array(want, copy=True)
    if fused(x, where, accuracy, lse, out):
        dt = np.dtype(x.dtype)
        scale = eo.Scale("finite", 1.0 if c_hi > 0 else -1.0, eo.mpmath.mpf(abs(c_hi)))
        checked = 0
        for idx, g, s in group_slices(x, offsets):
            n = s[-1].stop - s[-1].start
            if not 1 <= n <= SHORT:
                continue
            at = idx + (g,) if lse else s
            w = f"{what} group {g} (fused)"
            if checked < MPMATH_GROUPS:
                checked += 1
                if lse:
                    eo.check_logsumexp_rows(np.asarray(got[at]).reshape(1), x[s], dtype=dt,
                                            what=w)
                else:
                    eo.check_softmax_rows(got[s], x[s], log=log_mode, scale=scale, dtype=dt,
                                          what=w)
            else:
                # the row call is within its mode's bound, the kernel within the default's
                fast = accuracy == 1 or (accuracy < 0 and softmax.get_accuracy() == "fast")
                row_bound = FAST_BOUND[dt] if fast else eo.BOUND[dt]
                if lse:
                    # a logsumexp that cancels is bound in ulps of the group's max
                    vals = np.abs(x[s][np.isfinite(x[s])]).astype(np.float64)
                    top = max(abs(float(want[at])), float(vals.max(initial=0.0)))
                    d = abs(float(got[at]) - float(want[at])) / float(np.spacing(dt.type(top)))
                else:
                    d = eo.ur.ulp_distance(np.asarray(got[at]), np.asarray(want[at])).max()
                assert d <= eo.BOUND[dt] + row_bound, f"{w}: {d} ulp from the row call"
            want[at] = got[at]
    bits_equal(got, want, what)


def group_slices(x, offsets):
    """(outer index, group, index tuple of the group's entries) for every group."""
    for idx in np.ndindex(x.shape[:-1]):
        for g, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            yield idx, g, idx + (slice(int(a), int(b)),)


def ref_softmax(x, offsets, where, c_hi, c_lo, log_mode, accuracy):
    """Group by group through the plain row call on a contiguous copy."""
    out = np.full(x.shape, SENTINEL, x.dtype)
    for _, _, s in group_slices(x, offsets):
        row = np.ascontiguousarray(x[s])
        if row.size == 0:
            continue
        keep = None if where is None else np.ascontiguousarray(where[s])
        o = np.empty_like(row)
        _core.softmax(row, o, keep, c_hi, c_lo, log_mode, accuracy)
        out[s] = o
    return out


def ref_logsumexp(x, offsets, where, accuracy):
    out = np.full(x.shape[:-1] + (len(offsets) - 1,), SENTINEL, x.dtype)
    for idx, g, s in group_slices(x, offsets):
        row = np.ascontiguousarray(x[s])
        keep = None if where is None else np.ascontiguousarray(where[s])
        o = np.empty((), x.dtype)
        _core.logsumexp(row, o, keep, accuracy)
        out[idx + (g,)] = o
    return out


def seg_softmax(x, offsets, where=None, c_hi=1.0, c_lo=0.0, log_mode=False, accuracy=-1,
                out=None):
    if out is None:
        out = np.full(x.shape, SENTINEL, x.dtype)
    _core.segment_softmax(x, out, where, np.asarray(offsets, np.int64), c_hi, c_lo, log_mode,
                          accuracy)
    return out


def seg_logsumexp(x, offsets, where=None, accuracy=-1, out=None):
    if out is None:
        out = np.full(x.shape[:-1] + (len(offsets) - 1,), SENTINEL, x.dtype)
    _core.segment_logsumexp(x, out, where, np.asarray(offsets, np.int64), accuracy)
    return out


def check_all(x, offsets, where=None, accuracy=-1, scales=((1.0, 0.0),), what=""):
    """softmax, log_softmax (each scale) and logsumexp against the references."""
    offsets = np.asarray(offsets, np.int64)
    for c_hi, c_lo in scales:
        for log_mode in (False, True):
            got = seg_softmax(x, offsets, where, c_hi, c_lo, log_mode, accuracy)
            want = ref_softmax(x, offsets, where, c_hi, c_lo, log_mode, accuracy)
            expect_groups(got, want, x, offsets, where, accuracy, lse=False, log_mode=log_mode,
                          c_hi=c_hi, what=f"{what} c={c_hi} log={log_mode} acc={accuracy}")
    got = seg_logsumexp(x, offsets, where, accuracy)
    expect_groups(got, ref_logsumexp(x, offsets, where, accuracy), x, offsets, where, accuracy,
                  lse=True, what=f"{what} lse acc={accuracy}")


def offsets_of(sizes, start=0):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64) + start


# Sizes that take every per-row plan: empty, 1, below and above a vector,
# odd tails, the in-scratch rows of a few thousand.
MIXED = [0, 1, 5, 0, 17, 100, 1, 1000, 0, 3, 33, 64, 65, 2500, 0, 1, 2, 7]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("accuracy", [0, 1])
def test_groups_match_the_row_kernel(dtype, accuracy):
    rng = np.random.default_rng(1)
    offsets = offsets_of(MIXED, start=3)
    # margins before offsets[0] and after offsets[-1] must stay untouched
    x = (rng.standard_normal(int(offsets[-1]) + 5) * 4).astype(dtype)
    check_all(x, offsets, accuracy=accuracy, scales=SCALES, what=f"{np.dtype(dtype)}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_groups_against_mpmath(dtype):
    rng = np.random.default_rng(2)
    offsets = offsets_of([1, 2, 9, 40, 130])
    x = (rng.standard_normal(int(offsets[-1])) * 6).astype(dtype)
    p = seg_softmax(x, offsets, accuracy=0)
    logp = seg_softmax(x, offsets, log_mode=True, accuracy=0)
    lse = seg_logsumexp(x, offsets, accuracy=0)
    for g, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        what = f"group {g}"
        eo.check_softmax_rows(p[a:b], x[a:b], log=False, scale=eo.UNIT, dtype=dtype, what=what)
        eo.check_softmax_rows(logp[a:b], x[a:b], log=True, scale=eo.UNIT, dtype=dtype, what=what)
        eo.check_logsumexp_rows(lse[g:g + 1], x[a:b], dtype=dtype, what=what)


def test_empty_and_length_one_groups():
    x = np.array([3.0, -1.0, 2.0, 5.0, 0.5])
    offsets = [1, 1, 2, 2, 4, 4]   # empty, [1], empty, [2, 3], empty
    p = seg_softmax(x, offsets)
    assert p[0] == SENTINEL and p[4] == SENTINEL   # outside the groups
    assert p[1] == 1.0
    assert np.isclose(p[2:4].sum(), 1.0)
    logp = seg_softmax(x, offsets, log_mode=True)
    assert np.array_equal(logp[[0, 1, 4]], [SENTINEL, 0, SENTINEL])
    lse = seg_logsumexp(x, offsets)
    assert lse[0] == -np.inf and lse[2] == -np.inf and lse[4] == -np.inf
    assert lse[1] == -1.0
    # every group empty, and no groups at all
    assert np.all(seg_softmax(x, [2, 2, 2]) == SENTINEL)
    assert np.array_equal(seg_logsumexp(x, [2, 2, 2]), [-np.inf, -np.inf])
    assert np.all(seg_softmax(x, [0]) == SENTINEL)
    assert seg_logsumexp(x, [3]).shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2, 4])
def test_groups_longer_than_the_row_cache(dtype, nthreads, threads):
    threads(nthreads)
    rng = np.random.default_rng(3)
    big = 300_000
    mid = 100_000    # done whole, in a scratch sized for more than a segment
    x = (rng.standard_normal(big + mid + 10) * 3).astype(dtype)
    layouts = {
        # alone: fewer rows than threads, the group is split over them
        "alone": [0, big],
        # shorter groups beside it: the split path runs them on one thread
        "short+long": [0, 5, big + 5],
        "mid+long": [0, mid, mid + big],
        "long+mid": [3, big + 3, big + mid + 3],
        # among many tiny ones: rows over threads, the long one in segments
        "mixed": offsets_of([1, 0, 3] * 300 + [big] + [2, 7, 0] * 300, start=1),
    }
    for name, offsets in layouts.items():
        for acc in (0, 1):
            check_all(x, offsets, accuracy=acc, what=f"{name} {nthreads} threads")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skewed_degrees_same_bits_on_any_thread_count(dtype, threads):
    rng = np.random.default_rng(4)
    # graph-like degrees: most groups of a few entries, a few of 1e4..1e5
    sizes = np.minimum(rng.zipf(1.6, 4000), 100_000)
    sizes[rng.integers(0, 4000, 3)] = [20_000, 90_000, 150_000]
    offsets = offsets_of(sizes, start=2)
    n = int(offsets[-1]) + 2
    # one outer row, and three (the threads' shares then cross outer rows)
    for x in ((rng.standard_normal(n) * 3).astype(dtype),
              (rng.standard_normal((3, n)) * 3).astype(dtype)):
        results = []
        for nthreads in (1, 2, 3):
            threads(nthreads)
            results.append((seg_softmax(x, offsets), seg_softmax(x, offsets, log_mode=True),
                            seg_logsumexp(x, offsets)))
        for other in results[1:]:
            for a, b in zip(results[0], other):
                bits_equal(b, a, "1 vs 2 or 3 threads")
        threads(1)
        expect_groups(results[1][0], ref_softmax(x, offsets, None, 1.0, 0.0, False, -1), x,
                      offsets, None, -1, lse=False, what="softmax")
        expect_groups(results[1][1], ref_softmax(x, offsets, None, 1.0, 0.0, True, -1), x,
                      offsets, None, -1, lse=False, log_mode=True, what="log")
        expect_groups(results[1][2], ref_logsumexp(x, offsets, None, -1), x, offsets, None, -1,
                      lse=True, what="logsumexp")


@pytest.mark.parametrize("big_first", [True, False])
def test_skewed_groups_are_shared_by_both_threads(big_first, threads):
    """Eight groups of 1e5 and 2e5 groups of 1: split by count, or by entries
    alone, one thread does ~95% of the work (the tiny groups' fixed costs
    outweigh the big ones' entries). Measured as the CPU time of the calling
    thread (which claims pieces of the work as the worker does, then polls
    for at most 0.2 ms and sleeps while it waits for the other): with two
    threads it must be well below its time alone. CPU time,
    not wall time, so other load on the machine does not matter, and no
    other thread of the process (a BLAS pool, say) is counted."""
    sizes = [100_000] * 8 + [1] * 200_000
    offsets = offsets_of(sizes if big_first else sizes[::-1])
    x = np.random.default_rng(9).standard_normal(int(offsets[-1]))
    out = np.empty_like(x)

    def spent(n):
        threads(n)
        seg_softmax(x, offsets, out=out)   # the pool's threads are started
        start = time.thread_time_ns()
        for _ in range(10):
            seg_softmax(x, offsets, out=out)
        return time.thread_time_ns() - start

    # Balanced, the ratio is ~0.5; split by entries alone it is ~0.96. On a
    # loaded machine the caller's CPU time per entry grows when the other
    # thread shares its core's caches, so the best of three tries is taken
    # and the bound sits between the two.
    ratios = [spent(2) / spent(1) for _ in range(3)]
    assert min(ratios) <= 0.85, ratios


@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_and_fully_masked_groups(dtype):
    rng = np.random.default_rng(5)
    offsets = offsets_of([4, 10, 0, 6, 300, 1], start=2)
    x = (rng.standard_normal(int(offsets[-1]) + 3) * 3).astype(dtype)
    where = rng.random(x.shape) < 0.6
    where[offsets[1]:offsets[2]] = False   # group 1 fully masked
    where[offsets[5]:offsets[6]] = False   # group 5 (length 1) too
    for acc in (0, 1):
        check_all(x, offsets, where, accuracy=acc, scales=SCALES, what="masked")
    g1 = slice(offsets[1], offsets[2])
    assert np.all(seg_softmax(x, offsets, where)[g1] == 0)
    assert np.all(seg_softmax(x, offsets, where, log_mode=True)[g1] == -np.inf)
    lse = seg_logsumexp(x, offsets, where)
    assert lse[1] == -np.inf and lse[5] == -np.inf and lse[2] == -np.inf
    assert np.isfinite(lse[[0, 3, 4]]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_stay_in_their_group(dtype):
    rng = np.random.default_rng(6)
    offsets = offsets_of([20, 20, 20, 20, 20])
    x = rng.standard_normal(100).astype(dtype)
    x[25] = np.nan                        # group 1
    x[41] = x[47] = np.inf                # group 2: two +inf share the mass
    x[60:80] = -np.inf                    # group 3: all -inf
    for acc in (0, 1):
        check_all(x, offsets, accuracy=acc, scales=SCALES, what="specials")
    p = seg_softmax(x, offsets)
    logp = seg_softmax(x, offsets, log_mode=True)
    lse = seg_logsumexp(x, offsets)
    assert np.isnan(p[20:40]).all() and np.isnan(lse[1])
    assert not np.isnan(p[:20]).any() and not np.isnan(p[40:]).any()
    assert p[41] == p[47] == 0.5 and np.count_nonzero(p[40:60]) == 2
    assert logp[41] == np.float64(-np.log(2)).astype(dtype) and lse[2] == np.inf
    assert np.all(p[60:80] == 0) and np.all(logp[60:80] == -np.inf) and lse[3] == -np.inf
    for g in (0, 4):
        assert np.isclose(float(p[20 * g:20 * g + 20].astype(np.float64).sum()), 1.0, atol=1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_outer_rows_and_strided_views(dtype):
    rng = np.random.default_rng(7)
    n = 600
    offsets = offsets_of([0, 1, 50, 3, 0, 200, 7, 300], start=20)   # ends at 581
    nseg = len(offsets) - 1
    wide = (rng.standard_normal((3, 2 * n)) * 3).astype(dtype)
    mask_wide = rng.random((3, 2 * n)) < 0.8
    # every other column: last-axis stride of 2 items
    x = wide[:, ::2]
    where = mask_wide[:, ::2]
    check_all(x, offsets, accuracy=0, scales=SCALES, what="x[:, ::2]")
    check_all(x, offsets, where, accuracy=1, what="masked x[:, ::2]")
    # a transposed view: last-axis stride of 3 items, outer stride 1
    xt = np.ascontiguousarray(x.T).T
    check_all(xt, offsets, where.T.copy().T, accuracy=0, what="transposed")
    # a 3-d x with a transposed, strided out
    x3 = (rng.standard_normal((2, 2, n)) * 3).astype(dtype)
    check_all(x3, offsets, accuracy=0, what="3-d")
    out = np.full((n, 3), SENTINEL, dtype).T
    got = seg_softmax(x, offsets, where, log_mode=True, out=out)
    bits_equal(got, ref_softmax(x, offsets, where, 1.0, 0.0, True, -1), "strided out")
    lse_out = np.full((nseg, 3, 2), SENTINEL, dtype)[:, :, 0].T
    got = seg_logsumexp(x, offsets, where, out=lse_out)
    bits_equal(got, ref_logsumexp(x, offsets, where, -1), "strided lse out")


def test_the_same_as_the_plain_call_for_one_group():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 333))
    want = np.empty_like(x)
    _core.softmax(x, want, None, 1.0, 0.0, False)
    bits_equal(seg_softmax(x, [0, 333]), want, "one group")
    lse = np.empty(4)
    _core.logsumexp(x, lse, None)
    bits_equal(seg_logsumexp(x, [0, 333])[:, 0], lse, "one group lse")


BAD_OFFSETS = {
    "decreasing": np.array([0, 5, 3, 8], np.int64),
    "negative": np.array([-1, 3, 8], np.int64),
    "beyond n": np.array([0, 5, 11], np.int64),
    "huge negative after positive": np.array([0, 5, -(2**63)], np.int64),
    "int32": np.array([0, 5, 10], np.int32),
    "float64": np.array([0.0, 5.0, 10.0]),
    "2-d": np.array([[0, 5, 10]], np.int64),
    "length 0": np.zeros(0, np.int64),
    "not contiguous": np.array([0, 0, 5, 5, 10, 10], np.int64)[::2],
    "byte-swapped": np.array([0, 5, 10], ">i8"),
    "a list": [0, 5, 10],
}


@pytest.mark.parametrize("name", BAD_OFFSETS)
def test_bad_offsets_raise_value_error(name):
    x = np.arange(10.0)
    off = BAD_OFFSETS[name]
    with pytest.raises(ValueError, match=r"offsets must .*\(internal\)"):
        _core.segment_softmax(x, np.empty_like(x), None, off, 1.0, 0.0, False)
    nseg = max(np.size(off) - 1, 0)
    with pytest.raises(ValueError, match=r"offsets must .*\(internal\)"):
        _core.segment_logsumexp(x, np.empty(nseg), None, off)


def test_bad_out_shapes_raise_value_error():
    x = np.arange(10.0).reshape(2, 5)
    off = np.array([0, 2, 5], np.int64)
    for out in (np.empty(2), np.empty((2, 3)), np.empty((3, 2)), np.empty((2, 2), np.float32)):
        with pytest.raises(ValueError, match=r"x.shape\[:-1\] \+ \(nseg,\) \(internal\)"):
            _core.segment_logsumexp(x, out, None, off)
    with pytest.raises(ValueError, match=r"out must match x"):
        _core.segment_softmax(x, np.empty((2, 4)), None, off, 1.0, 0.0, False)


@pytest.mark.parametrize("case", ["empty", "one", "sorted", "unsorted", "gaps", "negative",
                                  "too big"])
def test_one_scan_of_the_ids_agrees_with_numpy(case):
    """_core.group_scan, the one pass over segment ids, against min, max,
    sortedness and bincount (and out-of-range ids give no offsets)."""
    rng = np.random.default_rng(7)
    ids = {"empty": np.zeros(0, np.int64), "one": np.array([4]),
           "sorted": np.sort(rng.integers(0, 50, 1000)),
           "unsorted": rng.integers(0, 50, 1000),
           "gaps": np.array([0, 0, 7, 7, 7, 30, 31, 31]),
           "negative": np.array([3, -1, 2]), "too big": np.array([0, 1, 60])}[case]
    ids = ids.astype(np.int64)
    for count in (None, 60):
        offsets, lo_, hi_, ordered, _ = _core.group_scan(ids, -1 if count is None else count)
        lo = int(ids.min()) if ids.size else 0
        hi = int(ids.max()) if ids.size else -1
        assert (lo_, hi_) == (lo, hi)
        assert ordered == bool(np.all(np.diff(ids) >= 0))
        groups = hi + 1 if count is None else count
        if lo < 0 or hi >= groups:
            assert offsets is None
            continue
        want = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=groups))])
        np.testing.assert_array_equal(offsets, want)
        assert offsets.dtype == np.int64


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("n, groups", [(1000, 50), (200_000, 40), (200_000, 5_000),
                                       (100_000, 60_000), (70_000, 1)])
def test_a_long_scan_in_parts_agrees_with_numpy(threads, nthreads, n, groups):
    """group_scan in parts on the pool's threads (from 65536 ids; counts in
    parts while there are at most a quarter as many groups as ids): an
    out-of-range id in any part is found, and the offsets are bincount's."""
    threads(nthreads)
    rng = np.random.default_rng(n + groups)
    ids = rng.integers(0, groups, n).astype(np.int64)
    for case in (ids, np.sort(ids)):
        offsets, lo, hi, ordered, counts = _core.group_scan(case, groups)
        assert (lo, hi) == (int(case.min()), int(case.max()))
        assert ordered == bool(np.all(np.diff(case) >= 0))
        want = np.concatenate([[0], np.cumsum(np.bincount(case, minlength=groups))])
        np.testing.assert_array_equal(offsets, want)
        if counts is not None:   # unsorted, counted in parts: each part's bincount
            assert not ordered and counts.shape == (nthreads, groups + 1)
            bounds = [n * p // nthreads for p in range(nthreads + 1)]
            for p in range(nthreads):
                part = case[bounds[p]:bounds[p + 1]]
                np.testing.assert_array_equal(counts[p, 1:], np.bincount(part, minlength=groups))
        else:
            assert ordered or nthreads == 1 or groups > n // 4 or n < 65536
    for where in (0, n // 2, n // 2 + 1, n - 1):   # the first, a part's edge, the last
        for bad in (-2, groups):
            case = ids.copy()
            case[where] = bad
            offsets, lo, hi, _, _ = _core.group_scan(case, groups)
            assert offsets is None and (lo == bad or hi == bad)
    if groups > 1:   # a part that starts below its predecessor's end: not sorted
        case = np.sort(ids)
        case[n // 2 - 1] = groups - 1
        assert not _core.group_scan(case, groups)[3]


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("n, groups", [(0, 3), (9, 4), (200_000, 40), (200_000, 5_000),
                                       (100_000, 60_000), (70_000, 1)])
def test_group_order_is_the_stable_argsort(threads, nthreads, n, groups):
    """_core.group_order, the counting sort of unsorted ids (in parts on the
    pool's threads from 65536 ids while there are at most a quarter as many
    groups): np.argsort(kind="stable"), as int32; with inverse, each entry's
    rank in that order."""
    threads(nthreads)
    rng = np.random.default_rng(n + groups)
    # skewed sizes, as a graph's in-degrees
    ids = np.minimum(rng.zipf(1.5, n) - 1, groups - 1).astype(np.int64)
    ids = rng.permutation(groups)[ids]
    offsets = _core.group_scan(ids, groups)[0]
    order = _core.group_order(ids, offsets)
    assert order.dtype == np.int32
    want = np.argsort(ids, kind="stable")
    np.testing.assert_array_equal(order, want)
    rank = _core.group_order(ids, offsets, True)
    assert rank.dtype == np.int32
    np.testing.assert_array_equal(rank[want], np.arange(n))
    # with the scan's per-part counts (no counting pass of its own): the same
    counts = _core.group_scan(ids, groups)[4]
    np.testing.assert_array_equal(_core.group_order(ids, offsets, False, counts), want)
    np.testing.assert_array_equal(_core.group_order(ids, offsets, True, counts), rank)
    if counts is not None:
        # counts for another number of parts, or of the wrong shape: counted again
        threads(2 if nthreads == 3 else 3)
        for other in (counts, counts[:, :-1].copy(), counts.astype(np.int32)):
            np.testing.assert_array_equal(_core.group_order(ids, offsets, True, other), rank)


def test_group_order_refuses_ids_that_do_not_match_the_offsets(threads):
    threads(2)
    ids = np.arange(100_000, dtype=np.int64) % 7
    offsets = _core.group_scan(ids, 7)[0]
    for bad in (-1, 7, 3):   # outside the groups, or one too many in group 3
        case = ids.copy()
        case[60_001] = bad   # 60_001 % 7 == 4
        for inverse in (False, True):
            with pytest.raises(ValueError, match=r"do not match offsets \(internal\)"):
                _core.group_order(case, offsets, inverse)


@pytest.mark.parametrize("dtype", [np.bool_, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 7), (3, 1000), (2, 70_000)])
@pytest.mark.parametrize("index", [np.int64, np.int32])
def test_group_move_gathers_and_scatters_as_numpy(dtype, shape, index):
    """_core.group_move (the permutation of unsorted ids, on the pool's threads
    from 65536 entries) against np.take and fancy assignment."""
    rng = np.random.default_rng(11)
    src = rng.standard_normal(shape).astype(dtype)
    order = rng.permutation(shape[1]).astype(index)
    got = np.empty_like(src)
    _core.group_move(src, order, got, False)
    np.testing.assert_array_equal(got, np.take(src, order, axis=-1))
    want = np.empty_like(src)
    want[..., order] = src
    _core.group_move(src, order, got, True)
    np.testing.assert_array_equal(got, want)


def test_group_move_refuses_what_it_cannot_do_safely():
    src = np.arange(6.0).reshape(1, 6)
    dst = np.empty_like(src)
    for bad in ([0, 1, 2, 3, 4, 6], [0, 1, 2, 3, 4, -1]):
        for index in (np.int64, np.int32):
            with pytest.raises(ValueError, match="outside the row"):
                _core.group_move(src, np.array(bad, index), dst, True)
    with pytest.raises(ValueError, match="internal"):  # an order of another type
        _core.group_move(src, np.arange(6, dtype=np.int16), dst, False)
    with pytest.raises(ValueError, match="internal"):  # dst overlapping src
        _core.group_move(src, np.arange(6, dtype=np.int64), src, False)
    with pytest.raises(ValueError, match="internal"):  # order of the wrong length
        _core.group_move(src, np.arange(5, dtype=np.int64), dst, False)
    with pytest.raises(ValueError, match="internal"):  # 1-d arrays
        _core.group_move(src[0], np.arange(6, dtype=np.int64), dst[0], False)


def test_group_scan_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="internal"):
        _core.group_scan(np.array([1, 2], np.int32), -1)
    with pytest.raises(ValueError, match="internal"):
        _core.group_scan(np.arange(6, dtype=np.int64)[::2], -1)
    with pytest.raises(ValueError, match="internal"):
        _core.group_scan(np.arange(3, dtype=np.int64), -2)


def _file_under(target: str) -> child_runs.Command:
    """This file again with `target` forced, in one process."""
    code = ("import sys, pytest; from softmax import _core; "
            f"assert _core._config()['chosen'] == {target!r}; "
            "sys.exit(pytest.main(['-q', '-n', '0', '-p', 'no:cacheprovider', sys.argv[1]]))")
    return child_runs.Command(["-c", code, __file__],
                              {"SOFTMAX_DISABLE_CPU_FEATURES": FORCE[target],
                               "SOFTMAX_SEGMENT_TARGET_RUN": "1"})


@pytest.mark.skipif(os.environ.get("SOFTMAX_SEGMENT_TARGET_RUN") == "1",
                    reason="already the per-target run")
@pytest.mark.parametrize("target", [t for t in SUPPORTED if t != _core._config()["chosen"]])
def test_every_simd_target(target):
    """This file again, with `target` forced (it is chosen once, at import)."""
    code, stdout, stderr = child_runs.run(_file_under(target), timeout=900)
    assert code == 0, stdout[-3000:] + stderr[-2000:]
