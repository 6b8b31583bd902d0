"""Side-by-side timing of softmax, log_softmax and logsumexp against peers.

One run times, for each shape and dtype, in interleaved rounds (so a noisy
neighbour slows every contender alike): this package (allocating and with
``out=``), scipy.special, PyTorch on CPU (same thread count), JAX on CPU
(jitted, ``block_until_ready``) where installed, and the memory floor:
``x.copy()`` and ``np.copyto(out, x)``. It prints medians, the ratio
peer / ours (above 1: we are faster) and ours / copy, then geometric means.

    python benchmarks/bench_softmax.py                  # the full table
    python benchmarks/bench_softmax.py --quick          # small shapes, few rounds
    python benchmarks/bench_softmax.py --shapes 64x32000,3 --dtypes float32
    python benchmarks/bench_softmax.py --threads 1 --functions softmax

Shapes are written ``AxB`` (``3`` for a vector); append ``@0`` to reduce
along axis 0 instead of the last axis, e.g. ``4096x1000@0``.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time

import numpy as np

import softmax

DEFAULT_SHAPES = [
    "4096x1000", "64x32000", "8x128256", "262144x512", "1x10000000",
    "8192x4096", "4096x1000@0", "3",
]
QUICK_SHAPES = ["4096x1000", "64x32000", "8x128256", "4096x1000@0", "3"]
# float16 is timed on the vocabulary-sized rows only (as in LLM sampling).
FLOAT16_SHAPES = {"64x32000", "8x128256"}
FUNCTIONS = ("softmax", "log_softmax", "logsumexp")


def parse_shape(text: str):
    text, _, axis = text.partition("@")
    shape = tuple(int(s.replace("_", "")) for s in text.lower().split("x"))
    return shape, (int(axis) if axis else -1)


def default_threads() -> int:
    env = os.environ.get("SOFTMAX_NUM_THREADS")
    if env:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ---- contenders -------------------------------------------------------------

def ours(func, x, axis, out):
    f = getattr(softmax, func)
    if func == "logsumexp":
        return {"ours": lambda: f(x, axis=axis)}
    cases = {"ours": lambda: f(x, axis=axis)}
    cases["ours out="] = lambda: f(x, axis=axis, out=out)
    return cases


def scipy_case(func, x, axis):
    try:
        import scipy.special as sp
    except ImportError:
        return {}
    f = getattr(sp, func)
    return {"scipy": lambda: f(x, axis=axis)}


def torch_case(func, x, axis, threads):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    if func == "softmax":
        return {"torch": lambda: torch.softmax(t, dim=axis)}
    if func == "log_softmax":
        return {"torch": lambda: torch.log_softmax(t, dim=axis)}
    return {"torch": lambda: torch.logsumexp(t, dim=axis)}


def jax_case(func, x, axis):
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jax.nn
        import jax.scipy.special
    except ImportError:
        return {}
    if x.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    xj = jax.device_put(x)
    if func == "softmax":
        f = jax.jit(lambda a: jax.nn.softmax(a, axis=axis))
    elif func == "log_softmax":
        f = jax.jit(lambda a: jax.nn.log_softmax(a, axis=axis))
    else:
        f = jax.jit(lambda a: jax.scipy.special.logsumexp(a, axis=axis))
    f(xj).block_until_ready()   # compile outside the timing
    return {"jax": lambda: f(xj).block_until_ready()}


def floor_cases(x, out):
    return {"x.copy()": x.copy, "np.copyto": lambda: np.copyto(out, x)}


# ---- timing -----------------------------------------------------------------

def inner_loops(fn, target_s: float) -> int:
    """Calls per sample so that one sample lasts about `target_s`."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, min(100_000, int(target_s / max(dt, 1e-9))))


def time_round_robin(cases: dict, rounds: int, target_s: float) -> dict:
    loops = {name: inner_loops(fn, target_s) for name, fn in cases.items()}
    samples = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            k = loops[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
    return {name: statistics.median(s) for name, s in samples.items()}


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:8.1f} us"
    return f"{s * 1e3:8.2f} ms"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small shapes, 3 rounds")
    p.add_argument("--shapes", help="comma list like 4096x1000,3,4096x1000@0")
    p.add_argument("--dtypes", default="float32,float64,float16")
    p.add_argument("--functions", default=",".join(FUNCTIONS))
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 7, quick 3)")
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="threads for us and torch (default: cores available)")
    p.add_argument("--no-peers", action="store_true", help="only us and the copy floor")
    args = p.parse_args(argv)

    shapes = args.shapes.split(",") if args.shapes else (QUICK_SHAPES if args.quick else DEFAULT_SHAPES)
    rounds = args.rounds or (3 if args.quick else 7)
    target = 0.02 if args.quick else 0.05
    softmax.set_num_threads(args.threads) if hasattr(softmax, "set_num_threads") else \
        softmax._core.set_num_threads(args.threads)
    if hasattr(softmax, "show_config"):
        softmax.show_config()
    else:
        from softmax import _config
        _config.show_config()
    print(f"threads: {args.threads}   rounds: {rounds}   load average: {os.getloadavg()}")
    print()

    ratios = {}   # (func, dtype, peer) -> list of peer/ours
    header = f"{'shape':>16} {'dtype':>7} {'function':>11} {'ours':>11} {'out=':>11} " \
             f"{'scipy':>16} {'torch':>16} {'jax':>16} {'ours/copy':>9} {'out=/copyto':>11}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for shape_text in shapes:
        shape, axis = parse_shape(shape_text)
        for dtype in args.dtypes.split(","):
            if dtype == "float16" and shape_text not in FLOAT16_SHAPES:
                continue
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            out = np.empty_like(x)
            floor = time_round_robin(floor_cases(x, out), rounds, target)
            for func in args.functions.split(","):
                cases = dict(ours(func, x, axis, out))
                if not args.no_peers:
                    cases.update(scipy_case(func, x, axis))
                    cases.update(torch_case(func, x, axis, args.threads))
                    cases.update(jax_case(func, x, axis))
                gc.collect()
                med = time_round_robin(cases, rounds, target)
                mine = med["ours"]

                def peer(name):
                    if name not in med:
                        return f"{'-':>16}"
                    r = med[name] / mine
                    ratios.setdefault((func, dtype, name), []).append(r)
                    return f"{fmt_time(med[name])} {r:5.1f}x"

                out_col = fmt_time(med["ours out="]) if "ours out=" in med else f"{'-':>11}"
                copy_ratio = mine / floor["x.copy()"]
                out_ratio = (med["ours out="] / floor["np.copyto"]) if "ours out=" in med else math.nan
                print(f"{shape_text:>16} {dtype:>7} {func:>11} {fmt_time(mine)} {out_col} "
                      f"{peer('scipy')} {peer('torch')} {peer('jax')} {copy_ratio:9.2f} "
                      f"{out_ratio:11.2f}", flush=True)
            print(f"{'':>16} {dtype:>7} {'copy floor':>11} {fmt_time(floor['x.copy()'])} "
                  f"{fmt_time(floor['np.copyto'])}   ({x.nbytes / 2**20:.1f} MiB)")
            del x, out

    print()
    print("geometric mean of peer time / our time (above 1: softmax is faster)")
    for (func, dtype, name), rs in sorted(ratios.items()):
        g = math.exp(sum(math.log(r) for r in rs) / len(rs))
        print(f"  {func:>11} {dtype:>7} vs {name:<6} {g:6.2f}x  over {len(rs)} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
