"""The C core's scatter path for ids in any order (``_core.segment_scatter``).

Unsorted ids reach it through the public functions; here the core is
also driven directly (all dtypes, modes, scales, threads). Every result is
checked against the exact oracle (mpmath), not against another path of
this package; the thread count must not change a bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import exact_oracle as eo
import softmax as sm
from softmax import _core
from softmax._arguments import parse_scale

RNG = np.random.default_rng(20261203)
DTYPES = [np.float16, np.float32, np.float64]
MODES = {0: "softmax", 1: "log_softmax", 2: "logsumexp"}


def groups_case(dtype, n, n_groups, *, specials=True, seed=0):
    """Scores of every kind in random order; ids with empty and huge groups."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_groups + 1)
    weights[rng.random(n_groups) < 0.1] = 0.0   # empty groups
    ids = rng.choice(n_groups, size=n, p=weights / weights.sum()).astype(np.int64)
    fin = np.finfo(dtype)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(n) * rng.choice([1.0, 30.0, 1e3], n)).astype(dtype)
    if specials:
        pool = np.array([fin.max, -fin.max, fin.smallest_subnormal, np.inf, -np.inf, np.nan,
                         0.0, -0.0], dtype)
        hit = rng.random(n) < 0.002
        x[hit] = rng.choice(pool, int(hit.sum()))
        # whole groups of -inf, and groups whose max repeats exactly
        x[ids == 3] = -np.inf
        x[ids == 4] = x[ids == 4].max() if (ids == 4).any() else 0
    return x, ids


def check_groups(got, x, ids, keep, n_groups, *, mode, scale, dtype, what):
    """Each group of `got` against the oracle (a group's entries as one row)."""
    got = np.asarray(got)
    for g in range(n_groups):
        pos = np.flatnonzero(ids == g)
        k = None if keep is None else keep[pos][None]
        if mode == 2:
            if pos.size == 0 or (keep is not None and not keep[pos].any()):
                assert got[g] == -np.inf, f"{what}: empty group {g}: {got[g]!r}"
                continue
            eo.check_logsumexp_rows(got[g:g + 1].astype(dtype), x[pos][None].astype(np.float64),
                                    k, dtype=dtype, what=f"{what} group {g}")
        elif pos.size:
            eo.check_softmax_rows(got[pos][None].astype(dtype), x[pos][None].astype(np.float64),
                                  k, log=mode == 1, scale=scale, dtype=dtype,
                                  what=f"{what} group {g}")


def run_scatter(x2, ids, n_groups, mode, c, keep2=None):
    """_core.segment_scatter, then the groups it leaves written by the public sorted path."""
    out = np.empty(x2.shape if mode < 2 else (x2.shape[0], n_groups), x2.dtype)
    special = _core.segment_scatter(x2, out, keep2, ids, n_groups, c.c_hi, c.c_lo, mode)
    return out, special


SCALES = [(1.0, None), (0.7, None), (3.7, 2.0), (1.0, 0.5)]   # base 0.5: negative c


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,temperature,base",
                         [(m, t, b) for m in (0, 1) for t, b in SCALES] + [(2, 1.0, None)])
def test_core_scatter_matches_the_oracle(dtype, mode, temperature, base):
    # 70,000 entries: past the pool's threshold, so the passes run in parts
    # (two parts of the sums) on the threads
    n_groups = 900
    x, ids = groups_case(dtype, 70_000, n_groups, specials=False, seed=int(mode * 7 + 1))
    keep = RNG.random(x.size) >= 0.05
    c = parse_scale(temperature, base)
    out, special = run_scatter(x[None], ids, n_groups, mode, c, keep[None])
    assert special is None   # finite scores only: nothing left to the caller
    scale = eo.scale_of(temperature, base)
    check_groups(out[0], x, ids, keep, n_groups, mode=mode, scale=scale, dtype=dtype,
                 what=f"{np.dtype(dtype).name} {MODES[mode]}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_core_scatter_leaves_nan_and_inf_groups_to_the_caller(dtype):
    x = np.array([1.0, np.nan, 2.0, np.inf, 3.0, np.inf, -np.inf, -np.inf, 5.0, 5.0], dtype)
    ids = np.array([0, 0, 1, 1, 2, 1, 3, 3, 4, 4], np.int64)
    c = parse_scale(1.0, None)
    for mode in (0, 1, 2):
        out, special = run_scatter(x[None], ids, 6, mode, c)
        np.testing.assert_array_equal(special, [1, 1, 0, 0, 0, 0])
        if mode == 0:
            np.testing.assert_array_equal(out[0, [4, 6, 7, 8, 9]], [1.0, 0.0, 0.0, 0.5, 0.5])
        elif mode == 1:
            assert out[0, 4] == 0.0 and np.all(out[0, [6, 7]] == -np.inf)
        else:
            assert out[0, 2] == 3.0 and out[0, 3] == -np.inf and out[0, 5] == -np.inf
            assert np.isnan(out[0, :2]).all()   # marked: the caller's to write


def test_core_scatter_leaves_wide_log_groups_to_the_caller():
    # scaled log writes of a max from 2^970 are the row path's (shift_wide)
    x = np.array([1e300, -1e300, 1.0, 2.0])
    ids = np.array([0, 0, 1, 1], np.int64)
    out, special = run_scatter(x[None], ids, 2, 1, parse_scale(2.0, None))
    np.testing.assert_array_equal(special, [1, 0])
    got = sm.segment_log_softmax(x, ids, temperature=2.0)
    eo.check_softmax_rows(got[:2][None], x[:2][None], log=True, scale=eo.scale_of(2.0),
                          dtype=np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_core_scatter_refuses_ids_out_of_range(dtype):
    x = np.zeros((1, 4), dtype)
    out = np.empty_like(x)
    for bad in (4, -1):
        ids = np.array([0, 1, bad, 2], np.int64)
        with pytest.raises(ValueError, match="outside"):
            _core.segment_scatter(x, out, None, ids, 4, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="internal"):
        _core.segment_scatter(x, out, None, np.zeros(3, np.int64), 4, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="internal"):
        _core.segment_scatter(x, np.empty((1, 3), dtype), None, np.zeros(4, np.int64), 4, 1.0,
                              0.0, 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_core_scatter_bits_do_not_depend_on_threads(dtype, mode):
    x, ids = groups_case(dtype, 150_000, 3_000, seed=5)
    c = parse_scale(1.3, None)
    old = sm.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            sm.set_num_threads(threads)
            out, special = run_scatter(x[None], ids, 3_000, mode, c)
            results.append((out, special))
    finally:
        sm.set_num_threads(old)
    for out, special in results[1:]:
        np.testing.assert_array_equal(out.view(np.uint8), results[0][0].view(np.uint8))
        np.testing.assert_array_equal(special, results[0][1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [sm.segment_softmax, sm.segment_log_softmax,
                                sm.segment_logsumexp])
def test_unsorted_ids_through_the_public_functions(dtype, fn):
    # every kind of score (NaN, +-inf, extremes) in 70,000 entries in random
    # order: the scatter path, and the sorted path for its NaN and +inf groups
    n_groups = 800
    x, ids = groups_case(dtype, 70_000, n_groups, seed=11)
    keep = RNG.random(x.size) >= 0.1
    keep[ids == 7] = False   # a fully masked group
    got = fn(x, ids, num_segments=n_groups, where=keep)
    mode = {sm.segment_softmax: 0, sm.segment_log_softmax: 1, sm.segment_logsumexp: 2}[fn]
    check_groups(got, x, ids, keep, n_groups, mode=mode, scale=eo.scale_of(1.0),
                 dtype=dtype, what=f"{fn.__name__} {np.dtype(dtype).name}")


@pytest.mark.parametrize("log", [False, True])
def test_unsorted_ids_along_axis_0_and_into_out(log):
    # columns of a 2-d array (two rows of the core after the axis moves
    # last, read with a stride), written into a given out and in place
    fn = sm.segment_log_softmax if log else sm.segment_softmax
    x, ids = groups_case(np.float32, 40_000, 500, seed=3)
    cols = np.stack([x, x[::-1]], axis=1)
    want = fn(cols.copy(), ids, num_segments=500, axis=0, temperature=0.8)
    for k in range(2):
        check_groups(want[:, k], cols[:, k], ids, None, 500, mode=int(log),
                     scale=eo.scale_of(0.8), dtype=np.float32, what=f"column {k}")
    out = np.empty_like(cols)
    assert fn(cols, ids, num_segments=500, axis=0, temperature=0.8, out=out) is out
    np.testing.assert_array_equal(out, want)
    assert fn(cols, ids, num_segments=500, axis=0, temperature=0.8, out=cols) is cols
    np.testing.assert_array_equal(cols, want)


def test_more_groups_than_entries_take_the_sorted_path():
    # num_segments beyond the entries: the scatter's tables would outweigh
    # them; the counting sort runs instead, with the same answers
    x = np.array([3.0, 1.0, 2.0, 1.0], np.float32)
    ids = np.array([9, 2, 9, 2], np.int64)
    got = sm.segment_softmax(x, ids, num_segments=10**6)
    e = math.exp(-1.0)
    np.testing.assert_allclose(got, [1 / (1 + e), 0.5, e / (1 + e), 0.5], rtol=1e-6)


def test_every_float16_through_the_scatter_path():
    # each of the 65,536 float16 values alone in its group, the ids in
    # reverse: the scatter path reads every value (the conversion from its
    # bits), and a group of one entry has logsumexp = that entry exactly and
    # softmax 1 (0 for -inf, NaN for NaN)
    x = np.arange(2**16, dtype=np.uint16).view(np.float16)
    ids = np.arange(x.size, dtype=np.int64)[::-1].copy()
    xs = x[::-1].copy()   # entry i in group ids[i] = 65535 - i: group g holds x[g]
    lse = sm.segment_logsumexp(xs, ids, num_segments=x.size)
    p = sm.segment_softmax(xs, ids, num_segments=x.size)
    nan = np.isnan(x)
    # equal values (-0.0 gives +0.0: -0 + log 1), every one exactly
    np.testing.assert_array_equal(lse[~nan], x[~nan])
    bits = ~nan & (x != 0)
    np.testing.assert_array_equal(lse[bits].view(np.uint16), x[bits].view(np.uint16))
    assert np.isnan(lse[nan]).all() and np.isnan(p[::-1][nan]).all()
    want = np.where(x == -np.inf, 0.0, 1.0).astype(np.float16)
    np.testing.assert_array_equal(p[::-1][~nan], want[~nan])


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_float64_terms_below_the_normal_range(mode):
    # a group's max at 0 and many entries whose exp is subnormal (-745 < x <
    # -708): its log_softmax at the max and its logsumexp are those tiny
    # sums themselves, so each term must not be rounded to 2^-1074 apart
    rng = np.random.default_rng(7)
    n_groups = 300
    ids = rng.integers(0, n_groups, 80_000).astype(np.int64)
    x = -rng.uniform(709.0, 744.0, ids.size)
    x[np.unique(ids, return_index=True)[1]] = 0.0   # each group's max: one 0
    out, special = run_scatter(x[None], ids, n_groups, mode, parse_scale(1.0, None))
    assert special is None
    check_groups(out[0], x, ids, None, n_groups, mode=mode, scale=eo.scale_of(1.0),
                 dtype=np.float64, what=f"tiny terms {MODES[mode]}")
    if mode == 2:
        assert (out[0] > 0).all() and (out[0] < 1e-300).all()   # the tiny sums, not 0
