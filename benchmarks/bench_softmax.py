"""Side-by-side timing of softmax, log_softmax and logsumexp against peers.

One command, portable between machines: it prints a machine probe first
(the SIMD target the core chose, the measured FMA issue rate at 256 and 512
bits, L2-resident and DRAM copy bandwidth on one and two threads), so that
runs on different machines can be compared, then times, for each shape and
dtype, in interleaved rounds (a noisy neighbour slows every contender
alike):

  ours            this package, accuracy="high" (the default)
  fast            this package, accuracy="fast"
  out= / fast out=  the same writing into a preallocated array
  scipy           scipy.special
  torch           PyTorch on CPU, the same thread count
  jax             JAX on CPU (jitted, block_until_ready)
  onnxruntime     a one-node ONNX model per op (Softmax, LogSoftmax,
                  ReduceLogSumExp), intra-op threads = ours, inter-op 1,
                  and both pools' spinning off (by default its threads spin
                  after a run and steal the cores from the next contender);
                  "ort out=": the same session writing into the preallocated
                  array that out= gets (I/O binding), since session.run's
                  results come from onnxruntime's own memory arena, whose
                  pages are not new to the process, unlike a new NumPy array's
  copy floors     x.copy() (allocates, like ours), np.copyto (one thread)
                  and a two-thread memcpy into a preallocated array

A peer that is not installed is skipped, and the run says so. It prints
medians, then peer time / our time (above 1: we are faster) for both modes
side by side, the fast mode against the fastest peer, and time over the
copy floor; then geometric means.

    python benchmarks/bench_softmax.py                  # the full table
    python benchmarks/bench_softmax.py --quick          # small shapes, few rounds
    python benchmarks/bench_softmax.py --shapes 64x32000,3 --dtypes float32
    python benchmarks/bench_softmax.py --threads 1 --functions softmax
    SOFTMAX_DISABLE_CPU_FEATURES=AVX512F python benchmarks/bench_softmax.py

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
from softmax import _core

DEFAULT_SHAPES = [
    "4096x1000", "64x32000", "8x128256", "262144x512", "1x10000000",
    "8192x4096", "4096x1000@0", "3",
]
QUICK_SHAPES = ["4096x1000", "64x32000", "8x128256", "4096x1000@0", "3"]
# float16 on the vocabulary-sized rows (as in LLM sampling), a batch, axis 0
# and the large out= case
FLOAT16_SHAPES = {"64x32000", "8x128256", "4096x1000", "4096x1000@0", "8192x4096"}
FUNCTIONS = ("softmax", "log_softmax", "logsumexp")
PEERS = ("scipy", "torch", "jax", "onnxruntime")


def parse_shape(text: str):
    text, _, axis = text.partition("@")
    shape = tuple(int(s.replace("_", "")) for s in text.lower().split("x"))
    return shape, (int(axis) if axis else -1)


def default_threads() -> int:
    env = os.environ.get("SOFTMAX_NUM_THREADS")
    if env:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ---- the machine probe -------------------------------------------------------

def _best_time(fn, repeat: int, inner: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def machine_probe(threads: int) -> dict:
    """FMA issue rates, copy bandwidths, the chosen target; printed and returned."""
    info = softmax.config()
    probe = {"target": info["chosen"], "threads": threads}
    for bits in (256, 512):
        rates = []
        for _ in range(5):
            r = _core._probe_fma(bits, 2_000_000)
            if r is None:
                break
            rates.append(r)
        probe[f"fma{bits}"] = max(rates) if rates else None
    # L2-resident: 256 KiB copied over and over on one thread
    a = np.ones(1 << 15)
    b = np.empty_like(a)
    t = _best_time(lambda: _core._copy(b, a, 1), 7, 200)
    probe["l2_copy"] = a.nbytes / t
    # DRAM: 256 MiB (far beyond any L3 here), one and two threads
    a = np.ones(1 << 25)
    b = np.empty_like(a)
    b[:] = 0
    probe["dram_copy1"] = a.nbytes / _best_time(lambda: _core._copy(b, a, 1), 5, 1)
    probe["dram_copy2"] = a.nbytes / _best_time(lambda: _core._copy(b, a, threads), 5, 1)
    del a, b

    def g(v, unit=1e9):
        return "n/a" if v is None else f"{v / unit:.2f}"

    print("machine probe")
    print(f"  SIMD target chosen     : {probe['target']}  "
          f"(compiled {', '.join(info['compiled'])}; "
          f"SOFTMAX_DISABLE_CPU_FEATURES={info['env'].get('SOFTMAX_DISABLE_CPU_FEATURES') or '(unset)'})")
    print(f"  FMA issue rate, 1 core : 256-bit {g(probe['fma256'])} G/s, "
          f"512-bit {g(probe['fma512'])} G/s  (vector FMAs per second, 12 chains)")
    print(f"  copy bandwidth         : L2-resident (256 KiB, 1 thread) {g(probe['l2_copy'])} GB/s, "
          f"DRAM (256 MiB) {g(probe['dram_copy1'])} GB/s on 1 thread, "
          f"{g(probe['dram_copy2'])} GB/s on {threads}  (bytes copied per second)")
    print(f"  cores available        : {info['cores_available']}   "
          f"load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return probe


# ---- contenders -------------------------------------------------------------

def ours(func, x, axis, out):
    f = getattr(softmax, func)
    if func == "logsumexp":
        return {"ours": lambda: f(x, axis=axis),
                "fast": lambda: f(x, axis=axis, accuracy="fast")}
    return {
        "ours": lambda: f(x, axis=axis),
        "fast": lambda: f(x, axis=axis, accuracy="fast"),
        "out=": lambda: f(x, axis=axis, out=out),
        "fast out=": lambda: f(x, axis=axis, out=out, accuracy="fast"),
    }


_missing = {}


def _note_missing(name, exc):
    _missing.setdefault(name, f"{type(exc).__name__}: {exc}")


def scipy_case(func, x, axis):
    try:
        import scipy.special as sp
    except ImportError as exc:
        _note_missing("scipy", exc)
        return {}
    f = getattr(sp, func)
    return {"scipy": lambda: f(x, axis=axis)}


def torch_case(func, x, axis, threads):
    try:
        import torch
    except ImportError as exc:
        _note_missing("torch", exc)
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
    except ImportError as exc:
        _note_missing("jax", exc)
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


_ORT_TYPES = {np.dtype(np.float16): 10, np.dtype(np.float32): 1, np.dtype(np.float64): 11}


def onnxruntime_case(func, x, axis, threads, out):
    """A one-node model per op; session.run allocates the result, as ours does,
    and (softmax, log_softmax) "ort out=" writes into `out` by I/O binding."""
    try:
        import onnx
        import onnx.helper as oh
        import onnxruntime as ort
    except ImportError as exc:
        _note_missing("onnxruntime", exc)
        return {}
    elem = _ORT_TYPES[x.dtype]
    ax = axis % x.ndim
    if func == "softmax":
        node = oh.make_node("Softmax", ["x"], ["y"], axis=ax)
        out_shape = list(x.shape)
    elif func == "log_softmax":
        node = oh.make_node("LogSoftmax", ["x"], ["y"], axis=ax)
        out_shape = list(x.shape)
    else:
        node = oh.make_node("ReduceLogSumExp", ["x"], ["y"], axes=[ax], keepdims=0)
        out_shape = [d for i, d in enumerate(x.shape) if i != ax]
    graph = oh.make_graph(
        [node], func,
        [oh.make_tensor_value_info("x", elem, list(x.shape))],
        [oh.make_tensor_value_info("y", elem, out_shape)],
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        sess.run(None, {"x": x})
    except Exception as exc:  # an op/dtype this build has no kernel for
        print(f"    (onnxruntime: no {func} for {x.dtype}: {type(exc).__name__})")
        return {}
    cases = {"onnxruntime": lambda: sess.run(None, {"x": x})}
    if func != "logsumexp":
        binding = sess.io_binding()
        binding.bind_cpu_input("x", x)
        binding.bind_output("y", "cpu", element_type=x.dtype.type, shape=out.shape,
                            buffer_ptr=out.ctypes.data)
        cases["ort out="] = lambda: sess.run_with_iobinding(binding)
    return cases


def floor_cases(x, out, threads):
    return {
        "x.copy()": x.copy,
        "np.copyto": lambda: np.copyto(out, x),
        "copy2": lambda: _core._copy(out, x, threads),
    }


# ---- timing -----------------------------------------------------------------

def inner_loops(fn, target_s: float) -> int:
    """Calls per sample so that one sample lasts about `target_s`."""
    fn()
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


def fmt_time(s: float | None) -> str:
    if s is None:
        return f"{'-':>9}"
    if s < 1e-3:
        return f"{s * 1e6:6.1f} us"
    return f"{s * 1e3:6.2f} ms"


def fmt_ratio(r: float | None) -> str:
    return f"{'-':>6}" if r is None or not math.isfinite(r) else f"{r:5.2f}x"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small shapes, 3 rounds")
    p.add_argument("--shapes", help="comma list like 4096x1000,3,4096x1000@0")
    p.add_argument("--dtypes", default="float32,float64,float16")
    p.add_argument("--functions", default=",".join(FUNCTIONS))
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 7, quick 3)")
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="threads for us, torch and onnxruntime (default: cores available)")
    p.add_argument("--no-peers", action="store_true", help="only us and the copy floors")
    p.add_argument("--peers", default=",".join(PEERS), help="comma list of peers to time")
    p.add_argument("--no-probe", action="store_true", help="skip the machine probe")
    args = p.parse_args(argv)

    shapes = args.shapes.split(",") if args.shapes else (QUICK_SHAPES if args.quick else DEFAULT_SHAPES)
    rounds = args.rounds or (3 if args.quick else 7)
    target = 0.02 if args.quick else 0.05
    peers = [] if args.no_peers else [s for s in args.peers.split(",") if s]
    softmax.set_num_threads(args.threads)
    softmax.show_config()
    print()
    if not args.no_probe:
        machine_probe(args.threads)
        print()
    print(f"threads: {args.threads}   rounds: {rounds} (median of interleaved rounds)")
    print("times: median per call; ratios: peer time / our time (above 1: softmax faster);")
    print("  best/fast: the fastest peer's time over fast mode's; copy2: a two-thread memcpy")
    print("  into a preallocated array of x's size (the floor of out=)")
    print()
    names = ["ours", "fast", "out=", "fast out="] + list(peers)
    if "onnxruntime" in peers:
        names.append("ort out=")   # a column, not a peer of its own in the ratios
    header = (f"{'shape':>13} {'dtype':>7} {'function':>11} "
              + " ".join(f"{n:>11}" for n in names)
              + f" {'torch/ours':>10} {'torch/fast':>10} {'best/fast':>9} "
              f"{'fast out=/copy2':>15} {'out=/copyto':>11}")
    print(header)
    print("-" * len(header))

    ratios = {}   # (func, dtype, mode, peer) -> [peer / ours]
    rng = np.random.default_rng(0)
    for shape_text in shapes:
        shape, axis = parse_shape(shape_text)
        for dtype in args.dtypes.split(","):
            if dtype == "float16" and shape_text not in FLOAT16_SHAPES and not args.shapes:
                continue
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            out = np.empty_like(x)
            out[...] = 0
            floor = time_round_robin(floor_cases(x, out, args.threads), rounds, target)
            for func in args.functions.split(","):
                cases = dict(ours(func, x, axis, out))
                if "scipy" in peers:
                    cases.update(scipy_case(func, x, axis))
                if "torch" in peers:
                    cases.update(torch_case(func, x, axis, args.threads))
                if "jax" in peers:
                    cases.update(jax_case(func, x, axis))
                if "onnxruntime" in peers:
                    cases.update(onnxruntime_case(func, x, axis, args.threads, out))
                gc.collect()
                med = time_round_robin(cases, rounds, target)
                for mode in ("ours", "fast"):
                    for peer in peers:
                        if peer in med:
                            ratios.setdefault((func, dtype, mode, peer), []).append(
                                med[peer] / med[mode])
                peer_times = [med[n] for n in peers if n in med]
                best = min(peer_times) if peer_times else None
                if best is not None:
                    ratios.setdefault((func, dtype, "fast", "best peer"), []).append(best / med["fast"])
                    ratios.setdefault((func, dtype, "ours", "best peer"), []).append(best / med["ours"])
                torch_t = med.get("torch")
                cells = " ".join(f"{fmt_time(med.get(n)):>11}" for n in names)
                fo = med.get("fast out=")
                o = med.get("out=")
                print(f"{shape_text:>13} {dtype:>7} {func:>11} {cells} "
                      f"{fmt_ratio(torch_t / med['ours'] if torch_t else None):>10} "
                      f"{fmt_ratio(torch_t / med['fast'] if torch_t else None):>10} "
                      f"{fmt_ratio(best / med['fast'] if best else None):>9} "
                      f"{fmt_ratio(fo / floor['copy2'] if fo else None):>15} "
                      f"{fmt_ratio(o / floor['np.copyto'] if o else None):>11}", flush=True)
            print(f"{'':>13} {dtype:>7} {'floors':>11} x.copy() {fmt_time(floor['x.copy()'])}, "
                  f"np.copyto {fmt_time(floor['np.copyto'])}, copy2 {fmt_time(floor['copy2'])}"
                  f"   ({x.nbytes / 2**20:.1f} MiB)")
            del x, out

    if _missing:
        print()
        for name, why in _missing.items():
            print(f"skipped {name}: not installed ({why})")
    print()
    print("geometric mean of peer time / our time (above 1: softmax is faster)")
    for (func, dtype, mode, name), rs in sorted(ratios.items()):
        g = math.exp(sum(math.log(r) for r in rs) / len(rs))
        label = "high" if mode == "ours" else "fast"
        print(f"  {func:>11} {dtype:>7} {label:>4} vs {name:<11} {g:6.2f}x  "
              f"(min {min(rs):.2f}x) over {len(rs)} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
