"""softmax.stream: the online (max, sum) state and softmax of .npy files.

References: softmax.logsumexp / softmax.softmax on the whole array (the C
core, which has its own accuracy suite), and mpmath through ulp_reference.
"""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import softmax as sm
import exact_oracle as eo
import ulp_reference as ur
from softmax.stream import OnlineLogSumExp, softmax_file


def ulps(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return ur.ulp_distance(a, b.astype(a.dtype))


def feed(chunks, axis=None):
    acc = OnlineLogSumExp(axis)
    for c in chunks:
        acc.update(c)
    return acc


# ---------------------------------------------------------------- the state

finite64 = st.floats(-1e4, 1e4, allow_nan=False, width=64)
scales = st.sampled_from([1e-3, 1.0, 30.0, 700.0])


@st.composite
def chunked(draw):
    n = draw(st.integers(1, 60))
    x = np.array(draw(st.lists(finite64, min_size=n, max_size=n))) / 1e4 * draw(scales)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=6)))
    cuts = [c for c in cuts if 0 < c < n]
    return x, np.split(x, cuts)


@given(chunked())
def test_chunked_equals_one_shot(case):
    x, chunks = case
    acc = feed(chunks)
    eo.check_logsumexp(acc.logsumexp, x)


@given(chunked(), st.randoms(use_true_random=False))
def test_merge_tree_in_any_order_equals_one_shot(case, rnd):
    x, chunks = case
    states = [feed([c]) for c in chunks]
    rnd.shuffle(states)
    while len(states) > 1:  # a random merge tree
        i = rnd.randrange(len(states) - 1)
        states[i : i + 2] = [states[i].merge(states[i + 1])]
    eo.check_logsumexp(states[0].logsumexp, x)


@given(chunked())
def test_merge_associative_and_commutative(case):
    x, chunks = case
    a, b, c = feed(chunks[0::3]), feed(chunks[1::3]), feed(chunks[2::3])
    ab, ba = a.merge(b), b.merge(a)
    # commutative bit for bit, state included
    assert ab.logsumexp == ba.logsumexp
    assert ab.max == ba.max and ab.sumexp == ba.sumexp
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    assert ulps(left.logsumexp, right.logsumexp) <= 1
    eo.check_logsumexp(left.logsumexp, x)


def test_merge_does_not_change_operands():
    a, b = feed([[1.0, 2.0]]), feed([[5.0]])
    before = (a.logsumexp, b.logsumexp)
    a.merge(b)
    assert (a.logsumexp, b.logsumexp) == before


def test_ulp_agreement_with_exact_reference():
    # 300 random streams against mpmath: the chunked result is within 1 ulp
    # of the correctly rounded logsumexp (and usually exactly it).
    rng = np.random.default_rng(7)
    worst = 0
    for _ in range(300):
        n = int(rng.integers(2, 80))
        x = rng.standard_normal(n) * rng.choice([0.1, 3.0, 50.0, 600.0])
        acc = feed(np.array_split(x, int(rng.integers(1, n + 1))))
        exact = ur.round_to(ur.ref_logsumexp(x), np.float64)
        worst = max(worst, float(ulps(acc.logsumexp, np.float64(exact))))
    assert worst <= 1


def test_batch_of_rows_and_second_pass():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 40)) * 20
    acc = OnlineLogSumExp(axis=1)
    for part in np.array_split(x, 6, axis=1):
        acc.update(part)
    assert acc.logsumexp.shape == (5,)
    eo.check_logsumexp(acc.logsumexp, x, 1)
    np.testing.assert_array_equal(acc.max, x.max(axis=1))
    p = np.concatenate([acc.softmax(part) for part in np.array_split(x, 3, axis=1)], axis=1)
    lp = np.concatenate([acc.log_softmax(part) for part in np.array_split(x, 3, axis=1)], axis=1)
    for i in range(5):
        ref_p, ref_lp = ur.ref_softmax(x[i])
        assert ulps(p[i], ref_p).max() <= 2
        assert ulps(lp[i], ref_lp).max() <= 2


def test_axis_zero_and_tuple_axes():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 3, 4))
    acc = OnlineLogSumExp(axis=0)
    for part in np.array_split(x, 5, axis=0):
        acc.update(part)
    eo.check_logsumexp(acc.logsumexp, x, 0)
    acc2 = OnlineLogSumExp(axis=(0, 2))
    for part in np.array_split(x, 4, axis=0):
        acc2.update(part)
    eo.check_logsumexp(acc2.logsumexp, x, (0, 2))


def test_float32_chunks_give_float32_within_one_ulp():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(1000) * 10).astype(np.float32)
    acc = feed(np.array_split(x, 7))
    assert acc.logsumexp.dtype == np.float32
    exact = ur.round_to(ur.ref_logsumexp(x), np.float32)
    assert ulps(acc.logsumexp, np.float32(exact)) <= 1


def test_dominant_entry_keeps_tiny_log_probability():
    # r = exp(-40) must survive: log_softmax of the winner is -4.25e-18, not 0
    acc = feed([[40.0], [0.0]])
    assert acc.log_softmax([40.0])[0] == sm.log_softmax([40.0, 0.0])[0] != 0.0
    eo.check_softmax(acc.log_softmax([40.0, 0.0]), np.array([40.0, 0.0]), log=True)


@pytest.mark.parametrize(
    "chunks, expected",
    [
        ([[1.0, np.nan], [2.0]], np.nan),
        ([[1.0], [np.inf], [3.0, np.inf]], np.inf),
        ([[-np.inf, -np.inf], [-np.inf]], -np.inf),
        ([[np.inf], [np.nan]], np.nan),
        ([[-np.inf], [2.0]], 2.0),
        ([[], [-np.inf]], -np.inf),
    ],
)
def test_edge_semantics(chunks, expected):
    acc = feed(chunks)
    value = acc.logsumexp
    if np.isnan(expected):
        assert np.isnan(value)
    else:
        assert value == expected


def test_empty_state_and_infinite_shares():
    assert OnlineLogSumExp().logsumexp == -np.inf
    acc = feed([[1.0, np.inf], [np.inf, 0.0], [np.inf]], axis=0)
    assert acc.sumexp == 3.0  # the +inf entries are counted
    np.testing.assert_array_equal(acc.softmax([np.inf, 5.0]), [1 / 3, 0.0])
    empty = feed([[-np.inf], [-np.inf]], axis=0)
    assert empty.sumexp == 0.0
    np.testing.assert_array_equal(empty.softmax([-np.inf]), [0.0])
    np.testing.assert_array_equal(empty.log_softmax([-np.inf]), [-np.inf])


def test_where_masks_entries():
    x = np.array([[1.0, 50.0, 2.0], [np.nan, 0.0, 1.0]])
    keep = np.array([[True, False, True], [False, True, True]])
    acc = OnlineLogSumExp(axis=1).update(x[:, :2], where=keep[:, :2]).update(x[:, 2:], where=keep[:, 2:])
    np.testing.assert_array_equal(acc.logsumexp, sm.logsumexp(x, axis=1, where=keep))
    np.testing.assert_array_equal(acc.softmax(x, where=keep), sm.softmax(x, where=keep))
    eo.check_logsumexp(acc.logsumexp, x, 1, where=keep)
    eo.check_softmax(acc.softmax(x, where=keep), x, -1, where=keep)
    eo.check_softmax(acc.log_softmax(x, where=keep), x, -1, log=True, where=keep)


def test_pickle_round_trip_and_continue():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 30))
    acc = OnlineLogSumExp(axis=1).update(x[:, :10])
    clone = pickle.loads(pickle.dumps(acc))
    acc.update(x[:, 10:])
    clone.update(x[:, 10:])
    np.testing.assert_array_equal(clone.logsumexp, acc.logsumexp)
    assert clone.axis == 1


def test_errors():
    acc = OnlineLogSumExp(axis=1).update(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"chunk must have the batch shape \(2,\)"):
        acc.update(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="other must reduce axis 1"):
        acc.merge(OnlineLogSumExp(axis=0))
    with pytest.raises(ValueError, match="other must have batch shape"):
        acc.merge(OnlineLogSumExp(axis=1).update(np.zeros((4, 1))))
    with pytest.raises(TypeError, match="other must be an OnlineLogSumExp"):
        acc.merge(3.0)
    with pytest.raises(ValueError, match="before the first update"):
        OnlineLogSumExp(axis=1).softmax(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="axis must be an int"):
        OnlineLogSumExp(axis=1.5)
    with pytest.raises(TypeError, match="chunk must be real-valued"):
        OnlineLogSumExp().update(np.ones(2, complex))


def test_no_runtime_warning_on_edge_merges():
    # pytest turns RuntimeWarning into errors: -inf/-inf and inf/inf merges must be silent
    a = feed([[-np.inf]], axis=0).merge(feed([[-np.inf]], axis=0))
    b = feed([[np.inf]], axis=0).merge(feed([[np.inf]], axis=0))
    assert a.logsumexp == -np.inf and b.logsumexp == np.inf and b.sumexp == 2.0


# ------------------------------------------------------------- softmax_file


def save(tmp_path, x, name="x.npy"):
    path = tmp_path / name
    np.save(path, x)
    return path


@pytest.mark.parametrize(
    "shape, axis",
    [((30, 7), -1), ((30, 7), 0), ((4, 9, 5), 1), ((4, 9, 5), (1, 2)), ((6, 5), None), ((20,), 0)],
)
@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
@pytest.mark.parametrize("log", [False, True])
def test_file_matches_in_memory(tmp_path, shape, axis, block_bytes, log):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 30
    src = save(tmp_path, x)
    dst = tmp_path / "out.npy"
    assert softmax_file(src, dst, axis=axis, log=log, block_bytes=block_bytes, progress=False) == dst
    got = np.load(dst)
    assert got.dtype == np.float64 and got.shape == x.shape
    eo.check_softmax(got, x, axis, log=log)


@pytest.mark.parametrize("kw", [{"temperature": 0.3}, {"temperature": 0}, {"temperature": np.inf},
                                {"base": 2.0}, {"base": 0.5}])
def test_file_temperature_and_base_two_pass(tmp_path, kw):
    rng = np.random.default_rng(6)
    x = np.round(rng.standard_normal((40, 6)) * 4)  # ties for the hard max
    x[3, 2] = np.inf
    x[5, :] = -np.inf
    x[7, 1] = np.nan
    src = save(tmp_path, x)
    for log in (False, True):
        dst = tmp_path / f"out{log}.npy"
        softmax_file(src, dst, axis=0, log=log, block_bytes=128, progress=False, **kw)
        eo.check_softmax(np.load(dst), x, 0, log=log, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, ">f8"])
def test_file_dtypes(tmp_path, dtype):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((50, 8)) * 5).astype(dtype)
    src = save(tmp_path, x)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    for block_bytes in (100, 1 << 20):
        dst = tmp_path / "out.npy"
        softmax_file(src, dst, axis=0, block_bytes=block_bytes, progress=False)
        got = np.load(dst)
        assert got.dtype == eo.result_dtype(native)
        eo.check_softmax(got, native, 0)


def test_file_fortran_order(tmp_path):
    x = np.asfortranarray(np.random.default_rng(9).standard_normal((11, 13)))
    src = save(tmp_path, x)
    for axis in (0, 1):
        dst = tmp_path / "out.npy"
        softmax_file(src, dst, axis=axis, block_bytes=200, progress=False)
        got = np.load(dst)
        assert got.flags.f_contiguous
        eo.check_softmax(got, x, axis)


def test_file_edge_semantics(tmp_path):
    x = np.array([[1.0, np.inf, np.inf], [-np.inf, -np.inf, -np.inf], [0.0, np.nan, 1.0]])
    src = save(tmp_path, x.T.copy())  # slices down the columns, so the two-pass path
    dst = tmp_path / "out.npy"
    softmax_file(src, dst, axis=0, block_bytes=8, progress=False)
    np.testing.assert_array_equal(np.load(dst).T, [[0, 0.5, 0.5], [0, 0, 0], [np.nan] * 3])


def test_file_progress_bar(tmp_path, capsys):
    pytest.importorskip("tqdm")
    src = save(tmp_path, np.zeros((10, 3)))
    softmax_file(src, tmp_path / "o.npy", axis=0, block_bytes=64, progress=True)
    assert "softmax" in capsys.readouterr().err
    softmax_file(src, tmp_path / "o.npy", axis=0, block_bytes=64, progress=False)
    assert capsys.readouterr().err == ""
    softmax_file(src, tmp_path / "o.npy", axis=0, block_bytes=64)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def test_file_progress_true_without_tqdm(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    src = save(tmp_path, np.zeros(3))
    with pytest.raises(ImportError, match="pip install tqdm"):
        softmax_file(src, tmp_path / "o.npy", progress=True)


def test_file_errors(tmp_path):
    src = save(tmp_path, np.zeros((2, 3, 4)))
    dst = tmp_path / "o.npy"
    with pytest.raises(ValueError, match="output_path must differ from input_path"):
        softmax_file(src, src)
    with pytest.raises(ValueError, match="axis must be an int, None or adjacent axes"):
        softmax_file(src, dst, axis=(0, 2))
    with pytest.raises(ValueError, match="block_bytes must be a positive int"):
        softmax_file(src, dst, block_bytes=0)
    with pytest.raises(TypeError, match="progress must be None, True or False"):
        softmax_file(src, dst, progress="yes")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        softmax_file(src, dst, temperature=-1.0)
    with pytest.raises(TypeError, match="must be real-valued"):
        softmax_file(save(tmp_path, np.zeros(2, complex), "c.npy"), dst)
    assert np.load(src).sum() == 0  # untouched


# A file much larger than the blocks, processed in a child process whose
# peak resident memory is read from /proc (VmHWM: the peak of this process's
# own memory map; ru_maxrss would include the parent's peak when the child
# is spawned with vfork).
_CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np
    from softmax.stream import softmax_file
    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
    base = hwm()
    t0 = time.perf_counter()
    softmax_file(sys.argv[1], sys.argv[2], axis=int(sys.argv[3]),
                 block_bytes=int(sys.argv[4]), progress=False)
    print(base, hwm(), time.perf_counter() - t0)
    """
)


def _write_tall_file(path, rows, cols, seed=0):
    """A float32 (rows, cols) .npy written block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        step = max(1, (16 << 20) // (4 * cols))
        for r in range(0, rows, step):
            n = min(step, rows - r)
            f.write((rng.standard_normal((n, cols), dtype=np.float32) * 4).tobytes())


def _check_big_file(tmp_path, rows, cols, block_bytes, budget_bytes):
    src, dst = tmp_path / "tall.npy", tmp_path / "tall_out.npy"
    _write_tall_file(src, rows, cols)
    size = rows * cols * 4
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(dst), "0", str(block_bytes)],
        capture_output=True, text=True, check=True,
    )
    base, peak, seconds = res.stdout.split()
    grown = int(peak) - int(base)
    print(f"file {size / 2**30:.2f} GiB, peak RSS {int(peak) / 2**20:.0f} MiB "
          f"(+{grown / 2**20:.0f} MiB over startup), {float(seconds):.1f} s")
    assert grown < budget_bytes < size / 4
    # compare sampled columns with the in-memory function
    x = np.load(src, mmap_mode="r")
    out = np.load(dst, mmap_mode="r")
    cols_sample = np.random.default_rng(1).choice(cols, size=3, replace=False)
    for c in cols_sample:
        column = np.array(x[:, c])
        eo.check_softmax(np.array(out[:, c]), column)


@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", "") or bool(os.environ.get("SOFTMAX_UNDER_ASAN")),
    reason="ASan keeps freed memory resident: peak RSS does not measure this code there",
)
@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads VmHWM from /proc")
def test_file_larger_than_blocks_in_bounded_memory(tmp_path):
    # 256 MiB, axis 0 of a tall array (two passes), 4 MiB blocks
    _check_big_file(tmp_path, rows=65_536, cols=1024, block_bytes=4 << 20, budget_bytes=48 << 20)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SOFTMAX_BIG_FILE_GB"),
    reason="opt-in: set SOFTMAX_BIG_FILE_GB (e.g. 2.5) to run the multi-GB file test",
)
@pytest.mark.skipif(sys.platform != "linux", reason="reads VmHWM from /proc")
def test_file_of_several_gigabytes(tmp_path):
    gib = float(os.environ["SOFTMAX_BIG_FILE_GB"])
    cols = 1000
    rows = int(gib * 2**30 / (4 * cols))
    _check_big_file(tmp_path, rows=rows, cols=cols, block_bytes=64 << 20, budget_bytes=256 << 20)
