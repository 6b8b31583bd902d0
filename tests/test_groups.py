"""Softmax over groups: segment_softmax / segment_log_softmax / segment_logsumexp,
their VJPs and sparse_softmax, on every backend.

Every group is held to the exact answer (tests/exact_oracle.py: mpmath, each
output correctly rounded) with the accuracy promise of `softmax` (1 ulp
float32, 2 ulp float64; 0 ulp for the edge rules), whatever path computed
it: the C core with sorted or unsorted ids and with CSR offsets, the
array-API form (array-api-strict, PyTorch, JAX), and Dask on a real
LocalCluster with groups that cross chunk boundaries. The VJPs are checked
by central finite differences in float64 and against torch's autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import exact_oracle as eo
import softmax as sm

BIG = np.finfo(np.float64).max
RNG = np.random.default_rng(20261201)

# Groups, each a small story: ordinary scores, an empty group, NaN, two +inf,
# all -inf, one entry, a wide range, one to be masked out, a dominant score.
GROUP_ROWS = [
    [2.0, 1.0, 0.1, -3.0],
    [],
    [1.0, np.nan, 2.0],
    [np.inf, 0.0, np.inf, -np.inf],
    [-np.inf, -np.inf],
    [7.5],
    [1000.0, -1000.0, 0.0, 1e-300, 1e300],
    [0.5, 0.25],
    [40.0, 0.0, 0.0],
    [3.0, 3.0, 3.0, 3.0, 3.0],
]
MASKED_GROUP = 7


def edge_data():
    """x with interleaved (unsorted) ids, the same sorted, and the groups' offsets."""
    ids_sorted = np.concatenate([np.full(len(r), g) for g, r in enumerate(GROUP_ROWS)]).astype(int)
    x_sorted = np.concatenate([np.asarray(r, float) for r in GROUP_ROWS])
    perm = RNG.permutation(x_sorted.size)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in GROUP_ROWS])])
    return x_sorted, ids_sorted, x_sorted[perm], ids_sorted[perm], offsets


X_SORTED, IDS_SORTED, X_MIXED, IDS_MIXED, OFFSETS = edge_data()


def as_dtype(x, dtype):
    """x rounded to dtype (1e300 becomes inf in float32: a +inf group, checked as such)."""
    with np.errstate(over="ignore"):
        return np.asarray(x).astype(dtype)
N_GROUPS = len(GROUP_ROWS)


def check_groups(got, x, ids, *, log=False, keep=None, temperature=1.0, base=None, dtype=None,
                 what=""):
    """Each group of the 1-d result against the exact softmax of its entries."""
    x = np.asarray(x)
    dtype = np.dtype(dtype or (x.dtype if x.dtype in eo.BOUND else np.float64))
    got = np.asarray(got)
    assert got.shape == x.shape and got.dtype == dtype, (got.shape, got.dtype)
    scale = eo.scale_of(temperature, base)
    for g in np.unique(ids):
        pos = np.flatnonzero(ids == g)
        eo.check_softmax_rows(got[pos][None], x[pos][None].astype(np.float64),
                              None if keep is None else keep[pos][None], log=log, scale=scale,
                              dtype=dtype, what=f"{what} group {g}")


def check_group_lse(got, x, ids, num, *, keep=None, dtype=None, what=""):
    x = np.asarray(x)
    dtype = np.dtype(dtype or (x.dtype if x.dtype in eo.BOUND else np.float64))
    got = np.asarray(got)
    assert got.shape == (num,) and got.dtype == dtype, (got.shape, got.dtype)
    for g in range(num):
        pos = np.flatnonzero(ids == g)
        if pos.size == 0 or (keep is not None and not keep[pos].any()):
            assert got[g] == -np.inf, f"{what}: empty group {g} gave {got[g]!r}"
            continue
        eo.check_logsumexp_rows(got[g:g + 1], x[pos][None].astype(np.float64),
                                None if keep is None else keep[pos][None], dtype=dtype,
                                what=f"{what} group {g}")


# ---- the C core path (NumPy) --------------------------------------------------------

ENCODINGS = {
    "sorted ids": lambda: (X_SORTED, dict(segment_ids=IDS_SORTED), IDS_SORTED),
    "unsorted ids": lambda: (X_MIXED, dict(segment_ids=IDS_MIXED), IDS_MIXED),
    "offsets": lambda: (X_SORTED, dict(offsets=OFFSETS), IDS_SORTED),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("scale", [dict(), dict(temperature=0.3), dict(temperature=3.0),
                                   dict(base=2.0), dict(temperature=0.0)])
def test_every_group_is_exact(dtype, encoding, log, scale):
    x, groups, ids = ENCODINGS[encoding]()
    x = as_dtype(x, dtype)
    fn = sm.segment_log_softmax if log else sm.segment_softmax
    got = fn(x, **groups, **scale)
    check_groups(got, x, ids, log=log, **scale, what=encoding)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_logsumexp_of_every_group(dtype, encoding):
    x, groups, ids = ENCODINGS[encoding]()
    got = sm.segment_logsumexp(as_dtype(x, dtype), **groups)
    check_group_lse(got, as_dtype(x, dtype), ids, N_GROUPS, what=encoding)


def test_empty_groups_at_the_ends_and_num_segments():
    got = sm.segment_logsumexp([1.0, 2.0], [2, 2], num_segments=5)
    assert got[0] == got[1] == got[3] == got[4] == -np.inf
    assert got[2] == pytest.approx(2.0 + math.log1p(math.exp(-1.0)), rel=1e-15)
    p = sm.segment_softmax([1.0, 2.0], offsets=[0, 0, 2, 2])
    np.testing.assert_allclose(p, [1 / (1 + math.e), math.e / (1 + math.e)], rtol=1e-15)
    assert sm.segment_softmax(np.empty(0), [], num_segments=3).shape == (0,)
    np.testing.assert_array_equal(sm.segment_logsumexp(np.empty(0), [], num_segments=2),
                                  [-np.inf, -np.inf])


@pytest.mark.parametrize("encoding", ["unsorted ids", "offsets"])
@pytest.mark.parametrize("log", [False, True])
def test_where_and_masked_arrays(encoding, log):
    x, groups, ids = ENCODINGS[encoding]()
    keep = ids != MASKED_GROUP
    keep[np.flatnonzero(ids == 0)[:2]] = False
    fn = sm.segment_log_softmax if log else sm.segment_softmax
    got = fn(x, **groups, where=keep)
    check_groups(got, x, ids, log=log, keep=keep, what="where")
    fill = -np.inf if log else 0.0
    assert np.all(got[ids == MASKED_GROUP] == fill)
    masked = np.ma.masked_array(x, mask=~keep)
    np.testing.assert_array_equal(fn(masked, **groups), got)
    lse = sm.segment_logsumexp(masked, **groups)
    check_group_lse(lse, x, ids, N_GROUPS, keep=keep, what="masked")


def test_a_group_never_depends_on_another():
    # PyG issue 2274: a score of 50 in one group changed another group's sums.
    # Here each group's bits are those of the group computed alone, next to
    # neighbours of any size: huge, NaN, +inf, all -inf.
    alone = sm.segment_softmax([1.0, -1.0], [0, 0])
    np.testing.assert_allclose(alone, [0.8807970779778823, 0.11920292202211755], rtol=1e-15)
    for other in ([-np.inf, 50.0], [1e308, -1e308], [np.nan, 0.0], [np.inf, np.inf],
                  [-np.inf, -np.inf], [7e307] * 5000):
        x = np.concatenate([[1.0, -1.0], other])
        ids = np.concatenate([[1, 1], np.full(len(other), 2)])
        for fn in (sm.segment_softmax, sm.segment_log_softmax):
            np.testing.assert_array_equal(fn(x, ids)[:2], fn(x[:2], [0, 0]))
            np.testing.assert_array_equal(fn(x[::-1], ids[::-1])[-2:], fn(x[:2][::-1], [0, 0]))


@pytest.mark.parametrize("value", [np.inf, 1e308, np.nan, -np.inf])
def test_a_masked_entry_never_reaches_its_group(value):
    # A masked entry's value, however extreme, takes no part: no inf * 0 = NaN.
    x = np.array([1.0, value, 2.0, 0.5])
    keep = np.array([True, False, True, True])
    for fn in (sm.segment_softmax, sm.segment_log_softmax):
        got = fn(x, [0, 0, 0, 1], where=keep)
        np.testing.assert_array_equal(got[[0, 2]], fn([1.0, 2.0], [0, 0]))
        assert got[1] == (0.0 if fn is sm.segment_softmax else -np.inf)
    assert sm.segment_logsumexp(x, [0, 0, 0, 1], where=keep)[0] == sm.logsumexp([1.0, 2.0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_huge_group_among_many_small(threads, dtype):
    # 300,000 entries in one group (longer than a row the core keeps in cache,
    # so it is done in segments and merged) between power-law sized groups.
    values = np.array([-5.0, 0.0, 1.5, 2.0, 30.0, -1e6])
    sizes = np.concatenate([RNG.zipf(1.7, 400).clip(1, 3000), [300_000], RNG.zipf(1.7, 400)
                            .clip(1, 3000)])
    ids = np.repeat(np.arange(sizes.size), sizes)
    x = values[RNG.integers(0, values.size, ids.size)].astype(dtype)
    perm = RNG.permutation(ids.size)
    old = sm.get_num_threads()
    sm.set_num_threads(threads)
    try:
        got_sorted = sm.segment_softmax(x, offsets=np.concatenate([[0], np.cumsum(sizes)]),
                                        temperature=1.7)
        got_mixed = sm.segment_log_softmax(x[perm], ids[perm])
        lse = sm.segment_logsumexp(x[perm], ids[perm])
    finally:
        sm.set_num_threads(old)
    for g in [0, 1, 400, 401, 800]:  # the huge group and its neighbours
        pos = np.flatnonzero(ids == g)
        eo.check_softmax_rows(got_sorted[pos][None], x[pos][None].astype(float), log=False,
                              scale=eo.scale_of(1.7), dtype=dtype, what=f"group {g}")
        inv = np.flatnonzero(ids[perm] == g)
        eo.check_softmax_rows(got_mixed[inv][None], x[perm][inv][None].astype(float), log=True,
                              scale=eo.scale_of(1.0), dtype=dtype, what=f"group {g}")
        eo.check_logsumexp_rows(lse[g:g + 1], x[pos][None].astype(float), dtype=dtype)
    sums = np.add.reduceat(got_sorted.astype(float), np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    np.testing.assert_allclose(sums, 1.0, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("layout", ["rows", "columns", "strided"])
def test_any_axis_of_a_2d_array_and_out(layout):
    base = RNG.normal(0, 20, (4, X_SORTED.size))
    base[:, :] += X_SORTED  # the edge groups in every row
    ids = IDS_MIXED
    if layout == "rows":
        x, axis = base, 1
    elif layout == "columns":
        x, axis = np.ascontiguousarray(base.T), 0
    else:
        wide = np.zeros((4, 2 * X_SORTED.size))
        wide[:, ::2] = base
        x, axis = wide[:, ::2], -1
    out = np.empty_like(x)
    got = sm.segment_softmax(x, ids, axis=axis, out=out, temperature=0.7)
    assert got is out
    rows = got if axis != 0 else got.T
    for r in range(4):
        check_groups(rows[r], base[r], ids, temperature=0.7, what=f"{layout} row {r}")
    lse = sm.segment_logsumexp(x, ids, axis=axis)
    assert lse.shape == ((4, N_GROUPS) if axis != 0 else (N_GROUPS, 4))
    lse_rows = lse if axis != 0 else lse.T
    for r in range(4):
        check_group_lse(lse_rows[r], base[r], ids, N_GROUPS)


def test_float16_and_integers():
    x16 = np.array([1, 2, 3, 60000, 60000], np.float16)
    p = sm.segment_softmax(x16, [0, 0, 1, 1, 1])
    assert p.dtype == np.float16
    check_groups(p, x16, np.array([0, 0, 1, 1, 1]))
    p_int = sm.segment_softmax([1, 2, 3], [0, 0, 1])
    assert p_int.dtype == np.float64


# ---- every backend: the same groups, the same exact answers ---------------------------

# Imported per test (not at module level), so that an environment without
# them (the sanitizer build) still runs the NumPy tests above.


def _strict(a):
    return pytest.importorskip("array_api_strict").asarray(a)


def _torch(a):
    return pytest.importorskip("torch").asarray(a)


def _jax(a):
    jnp = pytest.importorskip("jax.numpy")
    return jnp.asarray(a)


def _back(r):
    if hasattr(r, "compute"):
        r = r.compute()
    if hasattr(r, "detach"):
        r = r.detach()
    return np.asarray(r)


@pytest.mark.parametrize("library, dtype", [("strict", np.float64), ("strict", np.float32),
                                            ("torch", np.float64), ("torch", np.float32),
                                            ("jax", np.float32)])  # JAX's default: float32
@pytest.mark.parametrize("encoding", ["unsorted ids", "offsets"])
def test_array_api_backends_are_exact_too(library, dtype, encoding):
    to = {"strict": _strict, "torch": _torch, "jax": _jax}[library]
    x, groups, ids = ENCODINGS[encoding]()
    x = as_dtype(x, dtype)
    keep = ids != MASKED_GROUP
    for log in (False, True):
        fn = sm.segment_log_softmax if log else sm.segment_softmax
        got = fn(to(x), **groups, temperature=0.6, where=to(keep))
        assert type(got) is type(to(x))
        check_groups(_back(got), x, ids, log=log, keep=keep, temperature=0.6, what=library)
    lse = sm.segment_logsumexp(to(x), **groups)
    check_group_lse(_back(lse), x, ids, N_GROUPS, what=library)


def test_torch_ids_and_autograd():
    torch = pytest.importorskip("torch")
    x = torch.tensor(RNG.normal(size=12), requires_grad=True)
    ids = torch.tensor([3, 0, 0, 1, 3, 3, 1, 0, 2, 2, 2, 2])
    w = torch.tensor(RNG.normal(size=12))
    p = sm.segment_softmax(x, ids, temperature=1.5)
    (p * w).sum().backward()
    ours = sm.segment_softmax_vjp(p.detach().numpy(), w.numpy(), ids.numpy()) / 1.5
    np.testing.assert_allclose(x.grad.numpy(), ours, rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("chunk", [3, 7, 1000])
@pytest.mark.parametrize("encoding", ["unsorted ids", "offsets"])
def test_dask_groups_across_chunks(client, chunk, encoding):
    da = pytest.importorskip("dask.array")
    x, groups, ids = ENCODINGS[encoding]()
    keep = ids != MASKED_GROUP
    dx, dkeep = da.from_array(x, chunks=chunk), da.from_array(keep, chunks=chunk)
    for log in (False, True):
        fn = sm.segment_log_softmax if log else sm.segment_softmax
        got = fn(dx, **groups, where=dkeep, temperature=2.0)
        assert isinstance(got, da.Array)
        check_groups(got.compute(), x, ids, log=log, keep=keep, temperature=2.0,
                     what=f"dask chunk {chunk}")
    lse = sm.segment_logsumexp(dx, **groups)
    check_group_lse(lse.compute(), x, ids, N_GROUPS, what=f"dask chunk {chunk}")


@pytest.mark.parametrize("chunk", [5, 1000])
@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_dask_reads_the_ids_as_they_were_when_called(client, chunk, temperature):
    """The ids are not copied on the way in (NumPy reads them at once); Dask
    computes later, so it keeps ids of its own: reusing the caller's array in
    between changes nothing."""
    da = pytest.importorskip("dask.array")
    x, ids = da.from_array(X_MIXED, chunks=chunk), IDS_MIXED.astype(np.int64)
    want = sm.segment_softmax(x, ids, num_segments=N_GROUPS, temperature=temperature).compute()
    mine = ids.copy()
    lazy = sm.segment_softmax(x, mine, num_segments=N_GROUPS, temperature=temperature)
    mine[:] = mine[::-1]
    assert not np.array_equal(mine, ids)
    np.testing.assert_array_equal(lazy.compute(), want)


def test_dask_2d_along_axis0(client):
    da = pytest.importorskip("dask.array")
    base = RNG.normal(0, 5, (X_SORTED.size, 3)) + X_SORTED[:, None]
    dx = da.from_array(base, chunks=(5, 2))
    got = sm.segment_softmax(dx, IDS_MIXED, axis=0).compute()
    for c in range(3):
        check_groups(got[:, c], base[:, c], IDS_MIXED)
    lse = sm.segment_logsumexp(dx, IDS_MIXED, axis=0).compute()
    assert lse.shape == (N_GROUPS, 3)
    for c in range(3):
        check_group_lse(lse[:, c], base[:, c], IDS_MIXED, N_GROUPS)


# ---- the VJPs ---------------------------------------------------------------------------


def _finite_difference(f, x, w, h=1e-6):
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (np.dot(w, f(x + e)) - np.dot(w, f(x - e))) / (2 * h)
    return grad


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("encoding", ["unsorted ids", "offsets"])
def test_vjp_matches_finite_differences(log, encoding):
    ids = np.array([2, 0, 0, 1, 2, 2, 0, 1, 4, 4])  # group 3 is empty
    x = RNG.normal(0, 2, ids.size)
    w = RNG.normal(size=ids.size)
    order = np.argsort(ids, kind="stable")
    if encoding == "offsets":
        x, w, ids = x[order], w[order], ids[order]
        groups = dict(offsets=np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=5))]))
    else:
        groups = dict(segment_ids=ids, num_segments=5)
    fwd = sm.segment_log_softmax if log else sm.segment_softmax
    vjp = sm.segment_log_softmax_vjp if log else sm.segment_softmax_vjp
    want = _finite_difference(lambda v: fwd(v, **groups), x, w)
    got = vjp(fwd(x, **groups), w, **groups)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("log", [False, True])
def test_vjp_has_no_nan_at_masked_and_empty_groups(log):
    x = np.array([1.0, 2.0, -np.inf, -np.inf, 3.0, 0.5])
    ids = np.array([0, 0, 1, 1, 3, 3])  # group 1 all -inf, group 2 empty
    keep = np.array([True, True, True, True, False, False])  # group 3 fully masked
    fwd = sm.segment_log_softmax if log else sm.segment_softmax
    vjp = sm.segment_log_softmax_vjp if log else sm.segment_softmax_vjp
    y = fwd(x, ids, where=keep)
    g = np.array([1.0, -1.0, 2.0, 0.5, np.nan, np.inf])  # garbage where masked
    dx = vjp(y, g, ids, where=keep)
    assert np.all(np.isfinite(dx)), dx
    assert np.all(dx[~keep] == 0.0)
    # the kept group 0 matches finite differences of its own softmax
    want = _finite_difference(lambda v: fwd(v, [0, 0]), x[:2], g[:2])
    np.testing.assert_allclose(dx[:2], want, rtol=1e-7)


# ---- sparse matrices ----------------------------------------------------------------------

scipy_sparse = pytest.importorskip("scipy.sparse")  # in the test extra, like mpmath


@pytest.mark.parametrize("kind", ["csr_array", "csr_matrix", "csc_array", "coo_array"])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("log", [False, True])
def test_sparse_rows_keep_their_pattern(kind, axis, log):
    dense = RNG.normal(0, 3, (6, 9))
    dense[RNG.random(dense.shape) < 0.6] = 0.0
    dense[2, :] = 0.0  # a row with nothing stored
    dense[:, 4] = 0.0
    a = getattr(scipy_sparse, kind)(dense)
    fn = sm.sparse_log_softmax if log else sm.sparse_softmax
    got = fn(a, axis=axis, temperature=0.8)
    assert scipy_sparse.issparse(got)
    assert got.format == ("csr" if axis == -1 else "csc")
    assert isinstance(got, scipy_sparse.sparray) == isinstance(a, scipy_sparse.sparray)
    got_coo = got.tocoo()
    a_coo = a.tocoo()
    assert set(zip(got_coo.row, got_coo.col)) == set(zip(a_coo.row, a_coo.col))
    lines = dense if axis == -1 else dense.T
    got_dense = got.toarray() if axis == -1 else got.toarray().T
    for r in range(lines.shape[0]):
        stored = np.flatnonzero(lines[r])
        if stored.size == 0:
            continue
        eo.check_softmax_rows(got_dense[r, stored][None], lines[r, stored][None], log=log,
                              scale=eo.scale_of(0.8), dtype=np.float64, what=f"line {r}")


def test_sparse_explicit_zeros_and_duplicates():
    # an explicitly stored 0 is a score of 0; duplicates are summed first
    a = scipy_sparse.csr_array((np.array([0.0, 1.0, 0.5, 0.5]), np.array([0, 1, 2, 2]),
                                np.array([0, 4])), shape=(1, 3))
    p = sm.sparse_softmax(a)
    assert p.nnz == 3
    e = np.exp([0.0, 1.0, 1.0])
    np.testing.assert_allclose(p.toarray()[0], e / e.sum(), rtol=1e-15)
    assert a.nnz == 4  # the input is left alone


# ---- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, words", [
    (lambda: sm.segment_softmax([1.0, 2.0]), TypeError, "exactly one of segment_ids"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], offsets=[0, 2]), TypeError, "got both"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0]), ValueError, "length 2"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, -1]), ValueError, "got -1 at index 1"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 3], num_segments=2), ValueError,
     "num_segments = 2, got 3"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0.0, 1.0]), TypeError, "dtype float64"),
    (lambda: sm.segment_softmax([1.0, 2.0], [True, False]), TypeError, "dtype bool"),
    (lambda: sm.segment_softmax([1.0, 2.0], [[0, 1]]), ValueError, "1-dimensional"),
    (lambda: sm.segment_softmax([1.0, 2.0], offsets=[1, 2]), ValueError, "start at 0"),
    (lambda: sm.segment_softmax([1.0, 2.0], offsets=[0, 1]), ValueError, "end at 2"),
    (lambda: sm.segment_softmax([1.0, 2.0], offsets=[0, 3, 1, 2]), ValueError,
     "non-decreasing, got 3 then 1"),
    (lambda: sm.segment_softmax([1.0, 2.0], offsets=[0, 2], num_segments=2), ValueError,
     "len(offsets) - 1 = 1"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], num_segments=-1), ValueError,
     "num_segments must be"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], num_segments=2**63 - 1), ValueError,
     "num_segments = 9223372036854775807 groups do not fit"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], num_segments=2**64), ValueError,
     "num_segments = 18446744073709551616 groups do not fit"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 2**63 - 1]), ValueError,
     "segment_ids up to 9223372036854775807"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 10**15]), MemoryError,
     "segment_ids up to 1000000000000000"),
    (lambda: sm.segment_softmax(3.0, [0]), ValueError, "0-d"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], axis=1), np.exceptions.AxisError, "axis"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], temperature=-1), ValueError, "temperature"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], out=np.empty(3)), ValueError, "out"),
    (lambda: sm.segment_softmax([1.0, 2.0], [0, 0], where=[True] * 3), ValueError, "where"),
    (lambda: sm.segment_softmax_vjp([0.5, 0.5], [1.0], [0, 0]), ValueError, "g must have"),
    (lambda: sm.sparse_softmax(np.eye(2)), TypeError, "scipy.sparse"),
    (lambda: sm.sparse_softmax(scipy_sparse.csr_array(np.eye(2)), axis=2), ValueError, "axis"),
])
def test_bad_arguments_are_named(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value), str(info.value)


@pytest.mark.parametrize("library", ["numpy", "strict", "torch", "dask"])
def test_tiny_temperatures_and_gaps_beyond_float64_in_groups(library):
    # The edge cases of softmax hold in groups too, on every path: a score gap
    # beyond float64 at T > 1 keeps its finite log-probability, and a
    # temperature whose 1/T leaves float64 is exact, not the hard max.
    to = {"numpy": np.asarray, "strict": _strict, "torch": _torch,
          "dask": lambda a: pytest.importorskip("dask.array").from_array(np.asarray(a), chunks=2)
          }[library]
    x = np.array([1.7e308, -1.7e308, 1.0, 3e-320, 0.0])
    ids = np.array([0, 0, 1, 2, 2])
    got = _back(sm.segment_log_softmax(to(x), ids, temperature=2.0))
    check_groups(got, x, ids, log=True, temperature=2.0, what=library)
    assert got[1] == pytest.approx(-1.7e308, rel=1e-15)
    got = _back(sm.segment_softmax(to(x), ids, temperature=1e-320))
    check_groups(got, x, ids, temperature=1e-320, what=library)
    np.testing.assert_allclose(got[3:], [1 / (1 + math.exp(-3)), 1 / (1 + math.exp(3))],
                               rtol=1e-15)


@pytest.mark.parametrize("ids", ["sorted", "unsorted"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "in place", "float32 out"])
def test_out_is_written_in_place_when_it_can_be(ids, layout):
    x = RNG.normal(0, 4, (3, 40))
    groups = np.repeat(np.arange(8), 5)
    if ids == "unsorted":
        groups = RNG.permutation(groups)
    want = sm.segment_softmax(x.copy(), groups, temperature=1.5)
    if layout == "contiguous":
        out = np.full_like(x, np.nan)
    elif layout == "strided":
        out = np.full((3, 80), np.nan)[:, ::2]
    elif layout == "in place":
        x = x.copy()
        out = x
    else:
        out = np.full(x.shape, np.nan, np.float32)
        with pytest.raises(TypeError, match="out must have dtype float64"):
            sm.segment_softmax(x, groups, out=out)
        return
    got = sm.segment_softmax(x, groups, temperature=1.5, out=out)
    assert got is out
    np.testing.assert_array_equal(got, want)
