"""Max ulp error of softmax and log_softmax: this package and its peers.

The speed table compares functions that do not promise the same thing:
this one measures what each returns on the seeded accuracy families of
``tests/ulp_report.py`` (spread, offset, dominant, subnormal), against the
same exact reference (mpmath, rounded once to the dtype). This package runs
in both accuracy modes ("softmax" and "fast"); peers run on the CPU in the
input's dtype: scipy.special, PyTorch, JAX (with x64 enabled so that float64
stays float64) and onnxruntime (a one-node Softmax / LogSoftmax model); a
peer that is not installed is skipped.

    python benchmarks/peer_accuracy.py            # float32 and float64
    python benchmarks/peer_accuracy.py --dtypes float32

Run from the repository root (it imports ``tests.ulp_report``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import ulp_reference as ur  # noqa: E402
from tests import ulp_report  # noqa: E402

import softmax as sm  # noqa: E402

FAMILIES = ("spread", "offset", "dominant", "subnormal")


def onnxruntime_pair():
    """(softmax, log_softmax) of onnxruntime, one model per op and dtype, or None."""
    try:
        import onnx.helper as oh
        import onnxruntime as ort
    except ImportError:
        return None
    elem = {np.dtype(np.float32): 1, np.dtype(np.float64): 11, np.dtype(np.float16): 10}
    sessions = {}

    def run(op, x):
        key = (op, x.dtype)
        if key not in sessions:
            node = oh.make_node(op, ["x"], ["y"], axis=-1)
            graph = oh.make_graph([node], op,
                                  [oh.make_tensor_value_info("x", elem[x.dtype], ["n", "c"])],
                                  [oh.make_tensor_value_info("y", elem[x.dtype], ["n", "c"])])
            model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
            model.ir_version = 8
            sessions[key] = ort.InferenceSession(model.SerializeToString(),
                                                 providers=["CPUExecutionProvider"])
        return sessions[key].run(None, {"x": np.ascontiguousarray(x)})[0]

    return (lambda x: run("Softmax", x), lambda x: run("LogSoftmax", x))


def contenders():
    """name -> (softmax(x2d), log_softmax(x2d)) along the last axis."""
    out = {"softmax": (lambda x: sm.softmax(x, axis=-1), lambda x: sm.log_softmax(x, axis=-1)),
           "fast": (lambda x: sm.softmax(x, axis=-1, accuracy="fast"),
                    lambda x: sm.log_softmax(x, axis=-1, accuracy="fast"))}
    try:
        import scipy.special as sp

        out["scipy"] = (lambda x: sp.softmax(x, axis=-1), lambda x: sp.log_softmax(x, axis=-1))
    except ImportError:
        pass
    try:
        import torch

        out["torch"] = (
            lambda x: torch.softmax(torch.from_numpy(x), -1).numpy(),
            lambda x: torch.log_softmax(torch.from_numpy(x), -1).numpy(),
        )
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        out["jax"] = (
            lambda x: np.asarray(jax.nn.softmax(jnp.asarray(x), axis=-1)),
            lambda x: np.asarray(jax.nn.log_softmax(jnp.asarray(x), axis=-1)),
        )
    except ImportError:
        pass
    pair = onnxruntime_pair()
    if pair is not None:
        out["onnxruntime"] = pair
    return out


def measure(dtype, peers):
    """{(family, function, peer): max ulp} over the families of one dtype."""
    table = {}
    for fam in ulp_report.families(dtype, long_rows=False):
        if fam.name not in FAMILIES:
            continue
        for n, idx in ulp_report._group_by_length(fam.rows).items():
            batch = np.stack([fam.rows[i] for i in idx]).astype(dtype)
            got = {name: (f(batch), lf(batch)) for name, (f, lf) in peers.items()}
            for k, row in enumerate(batch):
                p, logp = ur.ref_softmax(row, dtype)
                for name, (gp, glp) in got.items():
                    for func, have, want in (("softmax", gp[k], p), ("log_softmax", glp[k], logp)):
                        have = np.asarray(have, dtype=dtype)
                        d = float(np.max(ur.ulp_distance(have, want)))
                        key = (fam.name, func, name)
                        table[key] = max(table.get(key, 0.0), d)
    return table


def fmt(v: float) -> str:
    return f"{v:.3g}" if v < 1e6 else f"{v:.1e}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtypes", default="float32,float64")
    args = parser.parse_args(argv)
    peers = contenders()
    names = list(peers)
    print("| family | dtype | function | " + " | ".join(names) + " |")
    print("| --- | --- | --- | " + " | ".join("---:" for _ in names) + " |")
    for dt in args.dtypes.split(","):
        dtype = np.dtype(dt)
        table = measure(dtype, peers)
        for fam in FAMILIES:
            for func in ("softmax", "log_softmax"):
                cells = [fmt(table[(fam, func, n)]) for n in names]
                print(f"| {fam} | {dtype} | {func} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
