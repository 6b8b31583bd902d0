"""Large results come from blocks kept for reuse (softmax.set_memory_cache).

What is checked: a dropped result's block is reused by the next result of
about its size (the same address, the bytes accounted), results from reused
blocks are the same bits as from fresh NumPy memory, the limit bounds what
is kept (and 0 turns the cache off and hands everything back), arrays in
kept blocks behave as NumPy arrays (resize, views outliving the call),
threads and a forked child allocate and free safely, and the environment
variable and the argument errors.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from numpy._core.multiarray import get_handler_name

import softmax as sm

MiB = 1 << 20
KEPT = "softmax_kept_blocks"


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with the default limit and nothing kept, and leaves it so."""
    gc.collect()
    sm.set_memory_cache(0)
    sm.set_memory_cache(256 * MiB)
    yield
    gc.collect()
    sm.set_memory_cache(0)
    sm.set_memory_cache(256 * MiB)


def big(rows=512, cols=1024, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(dtype)


def test_dropped_result_is_reused():
    x = big()  # 2 MiB of float32
    y = sm.softmax(x, axis=-1)
    assert get_handler_name(y) == KEPT
    address = y.ctypes.data
    assert address % 64 == 0
    assert sm.get_memory_cache()["kept"] == 0
    del y
    assert sm.get_memory_cache()["kept"] == x.nbytes
    y2 = sm.softmax(x, axis=-1)
    assert y2.ctypes.data == address
    assert sm.get_memory_cache()["kept"] == 0


def test_reused_block_gives_the_same_bits_as_fresh_memory():
    for fn, dtype in [(sm.softmax, np.float32), (sm.log_softmax, np.float64),
                      (sm.softmax, np.float16)]:
        x = big(dtype=dtype, seed=3)
        sm.set_memory_cache(0)
        fresh = fn(x, axis=-1)
        assert get_handler_name(fresh) != KEPT
        sm.set_memory_cache(256 * MiB)
        # a kept block holding other numbers first
        junk = fn(big(dtype=dtype, seed=4) * 7, axis=-1)
        del junk
        reused = fn(x, axis=-1)
        assert sm.get_memory_cache()["kept"] == 0  # it did take the kept block
        np.testing.assert_array_equal(reused.view(np.uint8), fresh.view(np.uint8))
        del fresh, reused
        sm.set_memory_cache(0)  # the next dtype starts with nothing kept


def test_small_results_are_plain_numpy_arrays():
    y = sm.softmax(np.zeros((4, 8)))
    assert get_handler_name(y) != KEPT
    del y
    assert sm.get_memory_cache()["kept"] == 0


def test_the_limit_bounds_what_is_kept():
    sm.set_memory_cache(3 * MiB)
    a, b = sm.softmax(big(), axis=-1), sm.softmax(big(seed=1), axis=-1)  # 2 MiB each
    del a
    assert sm.get_memory_cache()["kept"] == 2 * MiB
    del b  # 4 MiB would pass the limit: the older block goes
    assert sm.get_memory_cache() == {"limit": 3 * MiB, "kept": 2 * MiB}
    # a result larger than the limit is not made from a kept block at all
    y = sm.softmax(big(rows=1024), axis=-1)  # 4 MiB
    assert get_handler_name(y) != KEPT
    del y
    assert sm.get_memory_cache()["kept"] == 2 * MiB
    sm.set_memory_cache(MiB)  # lowering the limit hands back what is over it
    assert sm.get_memory_cache() == {"limit": MiB, "kept": 0}


def test_zero_turns_it_off():
    y = sm.softmax(big(), axis=-1)
    del y
    assert sm.get_memory_cache()["kept"] > 0
    sm.set_memory_cache(0)
    assert sm.get_memory_cache() == {"limit": 0, "kept": 0}
    y = sm.softmax(big(), axis=-1)
    assert get_handler_name(y) != KEPT
    del y
    assert sm.get_memory_cache()["kept"] == 0


def test_a_block_much_larger_than_asked_is_not_handed_out():
    y = sm.softmax(big(rows=2048), axis=-1)  # 8 MiB
    del y
    small = sm.softmax(big(rows=512), axis=-1)  # 2 MiB: a new block
    assert sm.get_memory_cache()["kept"] == 8 * MiB
    assert get_handler_name(small) == KEPT


def test_arrays_in_kept_blocks_behave_as_numpy_arrays():
    x = big()
    y = sm.softmax(x, axis=-1)
    expect = y.copy()
    # growing: NumPy reallocates through the same handler; the data moves over
    y.resize((1024, 1024), refcheck=False)
    np.testing.assert_array_equal(y[:512], expect)
    # a view outlives its base's name: the block is kept only once both are gone
    v = sm.softmax(x, axis=-1)[10:20]
    gc.collect()
    np.testing.assert_array_equal(v, expect[10:20])
    del y, v
    gc.collect()
    assert sm.get_memory_cache()["kept"] > 0


def test_every_route_that_makes_a_large_result():
    x = big()
    ids = np.random.default_rng(2).integers(0, 1000, x.shape[1])
    results = [
        sm.softmax(x, axis=-1),                        # the plain call in C
        sm.softmax(x, axis=-1, temperature=2.0),       # the general path
        sm.log_softmax(x.T, axis=0),                   # a transposed layout
        sm.logsumexp(big(rows=1 << 19, cols=2), axis=-1),
        sm.segment_softmax(x, segment_ids=ids, num_segments=1000, axis=-1),
    ]
    for r in results:
        while r.base is not None:  # a view of the result (moveaxis): its owner
            r = r.base
        assert get_handler_name(r) == KEPT
    # and they are right: against NumPy's own arithmetic in float64
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    np.testing.assert_allclose(results[0], e / e.sum(-1, keepdims=True), rtol=1e-6)


def test_threads_allocate_and_drop_at_once():
    x = big(rows=256)  # 1 MiB
    expect = sm.softmax(x, axis=-1).copy()
    errors = []

    def work():
        try:
            for _ in range(40):
                y = sm.softmax(x, axis=-1)
                if not np.array_equal(y, expect):
                    errors.append("different result")
                del y
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sm.get_memory_cache()["kept"] <= 256 * MiB


def _child_softmax(q):
    x = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)
    y = sm.softmax(x, axis=-1)
    q.put(float(y.sum()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_allocates_from_its_own_copy():
    y = sm.softmax(big(), axis=-1)
    del y  # the parent keeps a block when it forks
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_softmax, args=(q,))
    p.start()
    total = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0
    assert total == pytest.approx(512, rel=1e-5)


@pytest.mark.parametrize("text, limit", [("64M", 64 * MiB), ("1G", 1 << 30), ("0", 0),
                                         ("12345", 12345), ("2KiB", 2048),
                                         ("lots", 256 * MiB), ("-5", 256 * MiB)])
def test_environment_variable(text, limit):
    code = "import softmax as sm; print(sm.get_memory_cache()['limit'])"
    env = dict(os.environ, SOFTMAX_MEMORY_CACHE=text)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert int(out) == limit


def test_show_config_reports_it():
    import io
    buf = io.StringIO()
    sm.show_config(file=buf)
    assert "memory cache          : 256 MiB, 0 MiB kept" in buf.getvalue()


@pytest.mark.parametrize("bad, kind", [(-1, ValueError), (1.5, TypeError), (True, TypeError),
                                       ("64M", TypeError), (None, TypeError)])
def test_bad_limits_name_the_argument(bad, kind):
    with pytest.raises(kind, match="max_bytes"):
        sm.set_memory_cache(bad)
