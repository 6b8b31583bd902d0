"""The thread pool: the setting, bit-identical results, long rows, fork, GIL."""

import multiprocessing
import os
import subprocess
import sys
import threading

import mpmath
import numpy as np
import pytest

import softmax
from softmax import _config

FUNCS = ("softmax", "log_softmax", "logsumexp")


@pytest.fixture
def restore_threads():
    old = _config.get_num_threads()
    yield
    _config.set_num_threads(old)


def call(func, x, **kw):
    return getattr(softmax, func)(x, axis=-1, **kw)


def bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


def test_set_and_get(restore_threads):
    _config.set_num_threads(3)
    assert _config.get_num_threads() == 3
    _config.set_num_threads(np.int64(1))
    assert _config.get_num_threads() == 1


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                      (True, TypeError), ("2", TypeError)])
def test_bad_counts_name_the_argument(bad, exc, restore_threads):
    with pytest.raises(exc, match=r"n must be an int >= 1, got"):
        _config.set_num_threads(bad)


def test_default_is_the_cores_available_or_the_variable():
    code = "from softmax import _config; print(_config.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "SOFTMAX_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert int(out.stdout) == len(os.sched_getaffinity(0))
    env["SOFTMAX_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert int(out.stdout) == 3


# Shapes that take each plan: many short rows split by rows; rows longer
# than the in-cache limit (131072), by rows or split across threads in fixed
# segments.
SHAPES = [(3000, 300), (3, 100_000), (5, 140_000), (1, 400_000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bit_identical_for_any_thread_count(shape, dtype, restore_threads):
    x = (np.random.default_rng(1).standard_normal(shape) * 4).astype(dtype)
    results = {}
    for n in (1, 2, 3, 5):
        _config.set_num_threads(n)
        results[n] = [bits(call(f, x)) for f in FUNCS]
    for n in (2, 3, 5):
        for a, b in zip(results[1], results[n]):
            assert np.array_equal(a, b), (shape, dtype, n)


# Rows and column panels are claimed by the threads in chunks as they go
# (a late worker takes fewer): which thread runs a chunk must not show.
# (700, 2000) along axis 0: panels of 88 float64 (or 176 float32) columns,
# chunks of whole panels, a remainder; (2000, 33) with 3 and 5 threads:
# chunks of uneven count per thread.
@pytest.mark.parametrize("shape, axis", [((700, 2000), 0), ((2000, 33), -1), ((40, 7, 600), 1)])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("accuracy", ["high", "fast"])
def test_claimed_chunks_give_the_same_bits(shape, axis, dtype, accuracy, restore_threads):
    x = (np.random.default_rng(5).standard_normal(shape) * 6).astype(dtype)
    x.flat[::97] = -np.inf
    results = {}
    for n in (1, 2, 3, 5):
        _config.set_num_threads(n)
        results[n] = [bits(getattr(softmax, f)(x, axis=axis, accuracy=accuracy)) for f in FUNCS]
    for n in (2, 3, 5):
        for a, b in zip(results[1], results[n]):
            assert np.array_equal(a, b), (shape, axis, dtype, accuracy, n)


def test_long_row_merge_is_accurate(restore_threads):
    """A rising row: the running max grows in every segment, so every
    segment's sum is rescaled in the merge; still within 2 ulp of mpmath."""
    reps = 100   # 1400 distinct values, each repeated: the sum is cheap in mpmath
    base = np.linspace(-60.0, 40.0, 1400) + np.sin(np.arange(1400))
    x = np.repeat(base, reps)   # 140,000 > the in-cache limit: 35 segments
    n = x.size
    _config.set_num_threads(2)
    p = softmax.softmax(x)
    lp = softmax.log_softmax(x)
    lse = softmax.logsumexp(x)
    with mpmath.workprec(110):
        m = mpmath.mpf(float(x.max()))
        distinct = [mpmath.exp(mpmath.mpf(float(v)) - m) for v in base]
        s = reps * mpmath.fsum(distinct)
        log_s = mpmath.log(s)
        want_lse = float(m + log_s)
        assert abs(lse - want_lse) <= 2 * abs(np.spacing(want_lse))
        for j in list(range(0, n, 97)) + [int(np.argmax(x))]:
            want = distinct[j // reps] / s
            assert abs(mpmath.mpf(float(p[j])) - want) <= 2 * abs(np.spacing(float(want))), j
            want_l = float(mpmath.mpf(float(x[j])) - m - log_s)
            assert abs(lp[j] - want_l) <= 2 * abs(np.spacing(want_l)), j


def test_special_values_in_a_long_row(restore_threads):
    _config.set_num_threads(2)
    x = np.zeros(200_000)
    x[150_000] = np.inf
    x[7] = np.inf
    p = softmax.softmax(x)
    assert p[7] == p[150_000] == 0.5 and p.sum() == 1.0
    x[9] = np.nan
    assert np.isnan(softmax.softmax(x)).all()
    assert np.isnan(softmax.logsumexp(x))
    empty = np.full(200_000, -np.inf)
    assert not softmax.softmax(empty).any()
    assert softmax.logsumexp(empty) == -np.inf


def test_out_in_place_matches_allocating(restore_threads):
    _config.set_num_threads(2)
    x = np.random.default_rng(2).standard_normal((500, 1000)).astype(np.float32)
    want = softmax.softmax(x)
    y = x.copy()
    r = softmax.softmax(y, out=y)
    assert r is y
    assert np.array_equal(bits(y), bits(want))


def _child_checksum(_):
    x = np.random.default_rng(5).standard_normal((2000, 500))
    return float(softmax.softmax(x).sum(axis=1).mean()), softmax.softmax(x)[17, 3]


def test_pool_survives_fork(restore_threads):
    _config.set_num_threads(2)
    x = np.random.default_rng(5).standard_normal((2000, 500))
    parent = softmax.softmax(x)[17, 3]       # starts the workers
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        mean, value = pool.map_async(_child_checksum, [0]).get(timeout=120)[0]
    assert value == parent
    assert abs(mean - 1.0) < 1e-12


def test_concurrent_python_threads(restore_threads):
    """The GIL is released; two callers at once both get exact results."""
    _config.set_num_threads(2)
    xs = [np.random.default_rng(i).standard_normal((2000, 400)) for i in range(4)]
    want = [softmax.softmax(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(3):
            got[i] = softmax.softmax(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for g, w in zip(got, want):
        assert np.array_equal(bits(g), bits(w))
