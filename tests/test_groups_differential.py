"""Differential test of the segment_* functions: every path against one exact oracle.

One random case -- groups of random sizes (empty ones included), scores
with the extremes of the dtype (±max, subnormals, ±inf, NaN), a `where`
mask, a temperature or base -- goes through

* the C core with CSR offsets, with sorted ids and with shuffled ids,
* the same data as the columns of a 2-d array (axis 0),
* array-api-strict and torch,
* Dask with the grouped axis split into small chunks (groups cross chunk
  boundaries; synchronous scheduler here, a real cluster in test_groups.py),

and every group must be within the accuracy promise of the correctly rounded
mpmath answer (tests/exact_oracle.py; 0 ulp for the written edge rules).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exact_oracle as eo
import softmax as sm

da = pytest.importorskip("dask.array")
xs = pytest.importorskip("array_api_strict")
torch = pytest.importorskip("torch")

TEMPERATURES = [1.0, 0.7, 2.0, 0.0, math.inf, 3.7, 1e-3, 1e-320, 1e300]
BASES = [None, None, 2.0, 0.5]


def _pool(dtype):
    fin = np.finfo(dtype)
    return np.array([fin.max, -fin.max, fin.smallest_subnormal, -fin.smallest_normal, np.inf,
                     -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0], dtype)


def make_case(seed, dtype, n_groups, special_rate, mask_rate):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 9, n_groups)
    sizes[rng.random(n_groups) < 0.2] = 0
    n = int(sizes.sum())
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(n) * rng.choice([1.0, 30.0, 1e4])).astype(dtype)
    special = rng.random(n) < special_rate
    x[special] = rng.choice(_pool(dtype), int(special.sum()))
    keep = None if mask_rate == 0 else rng.random(n) >= mask_rate
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    ids = np.repeat(np.arange(n_groups), sizes)
    return x, keep, offsets, ids, rng.permutation(n)


def check(got, x, ids, keep, *, log, scale, dtype, what):
    got = np.asarray(got)
    assert got.shape == x.shape, what
    for g in np.unique(ids):
        pos = np.flatnonzero(ids == g)
        eo.check_softmax_rows(got[pos][None].astype(dtype), x[pos][None].astype(np.float64),
                              None if keep is None else keep[pos][None], log=log, scale=scale,
                              dtype=dtype, what=f"{what} group {g}")


def check_lse(got, x, ids, keep, n_groups, *, dtype, what):
    got = np.asarray(got).astype(dtype)
    for g in range(n_groups):
        pos = np.flatnonzero(ids == g)
        if pos.size == 0 or (keep is not None and not keep[pos].any()):
            assert got[g] == -np.inf, f"{what}: empty group {g}: {got[g]!r}"
            continue
        eo.check_logsumexp_rows(got[g:g + 1], x[pos][None].astype(np.float64),
                                None if keep is None else keep[pos][None], dtype=dtype,
                                what=f"{what} group {g}")


def _back(r):
    if hasattr(r, "compute"):
        r = r.compute(scheduler="synchronous")
    if hasattr(r, "detach"):
        r = r.detach()
    return np.asarray(r)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float64, np.float32]),
       n_groups=st.integers(1, 12), special_rate=st.sampled_from([0.0, 0.1, 0.4]),
       mask_rate=st.sampled_from([0.0, 0.3]), t=st.sampled_from(TEMPERATURES),
       base=st.sampled_from(BASES), log=st.booleans())
def test_every_path_agrees_with_the_oracle(seed, dtype, n_groups, special_rate, mask_rate, t,
                                           base, log):
    x, keep, offsets, ids, perm = make_case(seed, dtype, n_groups, special_rate, mask_rate)
    dtype = np.dtype(dtype)
    scale = eo.scale_of(t, base)
    fn = sm.segment_log_softmax if log else sm.segment_softmax
    kw = dict(temperature=t, base=base)
    k = None if keep is None else keep
    # the C core: offsets, sorted ids, shuffled ids
    check(fn(x, offsets=offsets, where=k, **kw), x, ids, keep, log=log, scale=scale, dtype=dtype,
          what="offsets")
    check(fn(x, ids, num_segments=n_groups, where=k, **kw), x, ids, keep, log=log, scale=scale,
          dtype=dtype, what="sorted ids")
    kp = None if keep is None else keep[perm]
    check(fn(x[perm], ids[perm], num_segments=n_groups, where=kp, **kw), x[perm], ids[perm], kp,
          log=log, scale=scale, dtype=dtype, what="shuffled ids")
    # columns of a 2-d array, along axis 0
    cols = np.stack([x, x[::-1]], axis=1)
    kc = None if keep is None else np.stack([keep, keep[::-1]], axis=1)
    got = fn(cols, ids, num_segments=n_groups, axis=0, where=kc, **kw)
    check(got[:, 0], x, ids, keep, log=log, scale=scale, dtype=dtype, what="axis 0")
    # the array API and Dask
    for name, to in (("strict", xs.asarray), ("torch", torch.asarray),
                     ("dask", lambda a: da.from_array(a, chunks=3))):
        got = fn(to(x[perm]), ids[perm], num_segments=n_groups,
                 where=None if kp is None else to(kp), **kw)
        check(_back(got), x[perm], ids[perm], kp, log=log, scale=scale, dtype=dtype, what=name)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float64, np.float32]),
       n_groups=st.integers(1, 12), special_rate=st.sampled_from([0.0, 0.1, 0.4]),
       mask_rate=st.sampled_from([0.0, 0.3]))
def test_logsumexp_on_every_path(seed, dtype, n_groups, special_rate, mask_rate):
    x, keep, offsets, ids, perm = make_case(seed, dtype, n_groups, special_rate, mask_rate)
    dtype = np.dtype(dtype)
    kp = None if keep is None else keep[perm]
    check_lse(sm.segment_logsumexp(x, offsets=offsets, where=keep), x, ids, keep, n_groups,
              dtype=dtype, what="offsets")
    for name, to in (("numpy", np.asarray), ("strict", xs.asarray), ("torch", torch.asarray),
                     ("dask", lambda a: da.from_array(a, chunks=3))):
        got = sm.segment_logsumexp(to(x[perm]), ids[perm], num_segments=n_groups,
                                   where=None if kp is None else to(kp))
        check_lse(_back(got), x[perm], ids[perm], kp, n_groups, dtype=dtype, what=name)
