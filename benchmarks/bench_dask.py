"""Throughput of softmax / logsumexp on Dask arrays, on a local distributed cluster.

The logits are generated lazily with ``dask.array.random`` (never stored), so
every measurement includes generating them; the plain ``x.sum()`` line shows
that floor. Two layouts: rows split only (each block is whole rows: the C
core per block), and the class axis split too (the (max, sum) tree reduction
and a second pass over the generated blocks).

    python benchmarks/bench_dask.py            # 10 GB of float32 logits
    python benchmarks/bench_dask.py --quick    # 0.25 GB, a few seconds
    python benchmarks/bench_dask.py --size-gb 2 --workers 2
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=10.0, help="logits size in GB (default 10)")
    parser.add_argument("--quick", action="store_true", help="0.25 GB, for a smoke run")
    parser.add_argument("--classes", type=int, default=1000, help="length of the softmax axis")
    parser.add_argument("--chunk-mb", type=float, default=64.0, help="chunk size in MB")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)

    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster

    import softmax as sm

    size_gb = 0.25 if args.quick else args.size_gb
    itemsize = np.dtype(args.dtype).itemsize
    cols = args.classes
    rows = max(1, int(size_gb * 1e9 / (itemsize * cols)))
    chunk_rows = max(1, int(args.chunk_mb * 1e6 / (itemsize * cols)))
    nbytes = rows * cols * itemsize

    def logits(col_chunks):
        rng = da.random.default_rng(0)
        x = rng.standard_normal((rows, cols), chunks=(chunk_rows, col_chunks), dtype=np.float32)
        return (x * 4).astype(args.dtype)

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        print(f"{nbytes / 1e9:.2f} GB of {args.dtype} logits, shape ({rows}, {cols}), "
              f"{args.workers} workers x 1 thread")
        print(f"{'what':<44} {'seconds':>8} {'GB/s':>8}")
        layouts = [("rows split", cols), ("rows and classes split (4 chunks)", -(-cols // 4))]
        for label, col_chunk in layouts:
            cases = [
                ("x.sum() (generation floor)", lambda x: x.sum()),
                ("softmax(x).sum()", lambda x: sm.softmax(x, axis=1).sum()),
                ("logsumexp(x, axis=1).sum()", lambda x: sm.logsumexp(x, axis=1).sum()),
            ]
            for name, build in cases:
                graph = build(logits(col_chunk))
                t0 = time.perf_counter()
                graph.compute()
                dt = time.perf_counter() - t0
                print(f"{label + ': ' + name:<44} {dt:8.2f} {nbytes / 1e9 / dt:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
