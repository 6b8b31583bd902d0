"""Temperature-scaling fit: softmax.calibration.fit_temperature against the usual recipes.

One command, side by side on the same float32 logits:

* ``softmax``: fit_temperature (safeguarded Newton on log T, float64 sums);
* ``torch LBFGS``: the recipe of Geoff Pleiss's ``temperature_scaling``
  reference (nn.Parameter T = 1.5, CrossEntropyLoss, LBFGS lr=0.01,
  max_iter=50), on CPU;
* ``netcal``: ``netcal.scaling.TemperatureScaling`` (method "mle"; it takes
  probabilities and fits the inverse temperature);
* ``scipy``: minimize_scalar (bounded, xatol 1e-10) on log T with a plain
  ``scipy.special.log_softmax`` NLL in float64: the reference T.

Each is timed as the best of --repeat runs; the table gives time, the ratio
peer time / softmax time, the T found and its relative error against scipy.

``--large`` instead fits 1,000,000 x 1,000 float32 logits (4 GB) and reports
wall time and peak RSS above the logits themselves.

Usage::

    python benchmarks/bench_calibration.py                 # 50,000 x 100
    python benchmarks/bench_calibration.py --rows 10000 --classes 1000
    python benchmarks/bench_calibration.py --large
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from softmax.calibration import fit_temperature


def make_logits(rows: int, classes: int, seed: int = 0, t_true: float = 2.0):
    """Overconfident float32 logits: labels drawn from softmax(z / t_true)."""
    rng = np.random.default_rng(seed)
    labels = np.empty(rows, dtype=np.int64)
    logits = np.empty((rows, classes), dtype=np.float32)
    step = max(1, (1 << 22) // classes)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        z = rng.standard_normal((stop - start, classes)) * 3.0
        z[np.arange(stop - start), rng.integers(0, classes, stop - start)] += 6.0
        p = np.exp(z / t_true - (z / t_true).max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        u = rng.random((stop - start, 1))
        labels[start:stop] = np.minimum((u > np.cumsum(p, 1)).sum(1), classes - 1)
        logits[start:stop] = z
    return logits, labels


def best_of(repeat, fn):
    best, value = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def scipy_temperature(logits, labels):
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    z = logits.astype(np.float64)
    rows = np.arange(len(labels))

    def nll(u):
        return -log_softmax(z / math.exp(u), axis=1)[rows, labels].mean()

    res = minimize_scalar(nll, bounds=(math.log(1e-2), math.log(1e2)), method="bounded",
                          options={"xatol": 1e-10})
    return math.exp(res.x)


def torch_lbfgs_temperature(logits, labels):
    """Pleiss's ModelWithTemperature.set_temperature, minus the model."""
    import torch
    from torch import nn, optim

    z = torch.from_numpy(logits)
    y = torch.from_numpy(labels)
    temperature = nn.Parameter(torch.ones(1) * 1.5)
    nll_criterion = nn.CrossEntropyLoss()
    optimizer = optim.LBFGS([temperature], lr=0.01, max_iter=50)

    def scaled():
        return z / temperature.unsqueeze(1).expand(z.size(0), z.size(1))

    def closure():
        optimizer.zero_grad()
        loss = nll_criterion(scaled(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(temperature.item())


def netcal_temperature(probs, labels):
    from netcal.scaling import TemperatureScaling

    ts = TemperatureScaling()
    ts.fit(probs, labels)
    # netcal's "temperature" multiplies the logits: it is 1 / T.
    return 1.0 / float(np.ravel(ts.temperature)[0])


def compare(rows: int, classes: int, repeat: int) -> None:
    import os

    logits, labels = make_logits(rows, classes)
    print(f"# temperature-scaling fit, {rows:,} x {classes} float32 logits, best of {repeat}")
    print(f"# numpy {np.__version__}, {os.cpu_count()} CPUs")
    t_ref = scipy_temperature(logits, labels)
    results = []

    t_ours, ts = best_of(repeat, lambda: fit_temperature(logits, labels))
    results.append(("softmax fit_temperature", t_ours, ts.temperature,
                    f"{ts.iterations} passes, {ts.message}"))

    t_scipy, _ = best_of(1, lambda: scipy_temperature(logits, labels))
    results.append(("scipy minimize_scalar", t_scipy, t_ref, "reference, float64"))

    try:
        import torch

        # Both thread counts: on a busy machine torch's pool can lose to one thread.
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            t_torch, temp = best_of(repeat, lambda: torch_lbfgs_temperature(logits, labels))
            results.append((f"torch LBFGS (Pleiss) x{threads}", t_torch, temp,
                            f"torch {torch.__version__}, {threads} thread(s)"))
    except ImportError as exc:
        print(f"# torch not available: {exc}; skipped")

    try:
        import netcal

        from softmax import softmax as sm_softmax

        probs = sm_softmax(logits.astype(np.float64))
        t_netcal, temp = best_of(repeat, lambda: netcal_temperature(probs, labels))
        results.append(("netcal TemperatureScaling", t_netcal, temp,
                        f"netcal {netcal.__version__}, from float64 probabilities"))
    except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
        print(f"# netcal failed to import or run: {type(exc).__name__}: {exc}; skipped")

    print(f"\n{'method':<27}{'time':>10}{'ratio':>9}{'T':>14}{'rel. err vs scipy':>19}  note")
    for name, t, temp, note in results:
        ratio = t / t_ours
        err = abs(temp / t_ref - 1)
        print(f"{name:<27}{t * 1e3:>8.1f}ms{ratio:>8.1f}x{temp:>14.8f}{err:>19.1e}  {note}")
    print("\nratio = that method's time / softmax's time (above 1: softmax is faster)")


def _rss_gib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return math.nan


def large(rows: int, classes: int) -> None:
    import threading

    logits, labels = make_logits(rows, classes)
    gib = logits.nbytes / 2**30
    before = _rss_gib()
    peak = [before]
    stop = threading.Event()

    def watch():
        # ru_maxrss would still hold the data generation's high-water mark.
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss_gib())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    ts = fit_temperature(logits, labels)
    dt = time.perf_counter() - t0
    stop.set()
    watcher.join()
    peak[0] = max(peak[0], _rss_gib())
    print(f"# {rows:,} x {classes:,} float32 logits: {gib:.2f} GiB; RSS before the fit {before:.2f} GiB")
    print(f"fit_temperature: T = {ts.temperature:.8f}, {ts.iterations} passes, {dt:.1f} s, "
          f"{ts.message}")
    print(f"peak RSS during the fit {peak[0]:.3f} GiB: {(peak[0] - before) * 1024:.0f} MiB above "
          f"the logits and labels already in memory (sampled every 5 ms)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", action="store_true",
                        help="fit 1e6 x 1000 float32 logits; report time and peak RSS")
    args = parser.parse_args(argv)
    if args.large:
        large(1_000_000, 1_000)
    else:
        compare(args.rows, args.classes, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
