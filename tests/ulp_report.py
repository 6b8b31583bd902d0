"""Seeded input families for the accuracy promise, and the max-ulp table.

Run ``python -m tests.ulp_report`` from the repository root to print the
table that the README's Accuracy section shows (``--quick`` skips the 10**6-long rows).
tests/test_accuracy.py measures the same families and asserts the bounds.

Every family is built from a fixed seed, in the dtype under test; the exact
reference is computed from the rounded inputs that the package actually
sees, and temperatures and bases enter the reference exactly (x / T and
x * ln a in mpmath), never as a rounded product.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field

import mpmath
import numpy as np

try:
    from . import ulp_reference as ur
except ImportError:  # imported by pytest with tests/ on sys.path
    import ulp_reference as ur

import softmax as sm

FUNCS = ("softmax", "log_softmax", "logsumexp")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# The promise: max ulp distance from the correctly rounded value.
BOUND = {np.dtype(np.float16): 1, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
# logsumexp that cancels (max < 0, |result| < |max| / 2): bound in ulps of max.
CANCEL_BOUND = {np.dtype(np.float16): 1, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
LONG_N = 10**6


@dataclass
class Family:
    """Rows of one dtype with one scaling; rows of equal length are batched."""

    name: str
    dtype: np.dtype
    rows: list
    temperature: float | None = None
    base: float | None = None
    funcs: tuple = FUNCS
    prec: int = ur.PREC

    def multiplier(self):
        """The exact score multiplier c (y = c * x) as an mpf, or None."""
        with mpmath.workprec(self.prec):
            c = mpmath.mpf(1)
            if self.base is not None:
                c = mpmath.log(ur.mp_value(self.base))
            if self.temperature is not None:
                c = c / ur.mp_value(self.temperature)
            return None if c == 1 else +c

    def label(self):
        if self.temperature is not None:
            return f"{self.name} T={self.temperature:g}"
        if self.base is not None:
            return f"{self.name} a={self.base:g}"
        return self.name


@dataclass
class Result:
    """Max errors of one (family, dtype, function)."""

    family: str
    dtype: np.dtype
    func: str
    max_ulp: float = 0.0
    n_outputs: int = 0
    # logsumexp rows in the cancellation zone, measured in ulps of max(x)
    cancel_rows: int = 0
    cancel_max_ulp_of_max: float = 0.0
    cancel_max_ulp_of_result: float = 0.0
    worst: dict = field(default_factory=dict)


def _seed(name: str) -> int:
    # str hashes are salted per process: derive a stable seed instead
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))


def _cast(a, dtype):
    return np.asarray(a, dtype=np.float64).astype(dtype)


def _dmax(dtype) -> float:
    return 80.0 if dtype == np.float32 else 700.0


def families(dtype, *, long_rows: bool = True) -> list[Family]:
    """The seeded families for one dtype (float32 or float64)."""
    dtype = np.dtype(dtype)
    dmax = _dmax(dtype)
    rng = np.random.default_rng([_seed("families"), dtype.itemsize])
    out = []

    # Differences up to dmax, rows of several lengths, max around 0.
    rows = []
    for d in (1.0, 10.0, dmax):
        for n in (2, 3, 8, 50, 400):
            for _ in range(max(1, 800 // n)):
                rows.append(_cast(rng.uniform(-d / 2, d / 2, n), dtype))
    out.append(Family("spread", dtype, rows))

    # Large offsets of both signs: x = offset + u, rounded to the dtype.
    rows = []
    for mag in (1e3, 1e8, 1e15, 1e30):
        for sign in (1.0, -1.0):
            for n in (2, 5, 40):
                for _ in range(10):
                    rows.append(_cast(sign * mag + rng.uniform(-dmax / 2, dmax / 2, n), dtype))
                    # a few ulps of the offset apart: exact differences matter
                    ulp = ur.ulp_of(mag, dtype)
                    rows.append(_cast(sign * mag + ulp * rng.integers(-3, 4, n), dtype))
    out.append(Family("offset", dtype, rows))

    # One dominant entry: every other entry is 28+ below, p > 1 - 1e-12.
    rows = []
    for n in (2, 3, 10, 60):
        for _ in range(40):
            top = rng.uniform(-5, 5)
            lo = 28.0 + math.log(n)
            row = np.concatenate([[top], top - rng.uniform(lo, lo + 20, n - 1)])
            rng.shuffle(row)
            rows.append(_cast(row, dtype))
    out.append(Family("dominant", dtype, rows))

    # Results in the subnormal range of the dtype (and subnormal inputs).
    tiny = np.finfo(dtype).smallest_normal
    sub_lo = -math.log(tiny)  # exp(-sub_lo) is the smallest normal
    sub_hi = -math.log(float(np.finfo(dtype).smallest_subnormal))
    rows = []
    for n in (2, 4, 16):
        for _ in range(60):
            row = np.concatenate([[0.0], -rng.uniform(sub_lo, sub_hi, n - 1)])
            rows.append(_cast(row + rng.uniform(-3, 3), dtype))
            # max exactly 0: logsumexp = log1p(rest) is subnormal too
            rows.append(_cast(row, dtype))
    for _ in range(40):
        rows.append(_cast(rng.uniform(-1, 1, 4) * tiny * rng.uniform(0, 1, 4), dtype))
    out.append(Family("subnormal", dtype, rows))

    # Temperatures: the exact reference is softmax(x / T).
    for t in (1e-3, 0.37, 3.3, 1e4):
        rows = []
        for n in (2, 7, 64):
            for _ in range(30):
                rows.append(_cast(rng.uniform(-0.5, 0.5, n) * dmax * t, dtype))
        out.append(Family("temperature", dtype, rows, temperature=t, funcs=FUNCS[:2]))
    # Temperature against a huge offset: only the exact difference survives.
    for mag in (1e15, -1e30):
        ulp = ur.ulp_of(mag, dtype)
        t = 2.7 * ulp
        rows = [_cast(mag + ulp * rng.integers(-40, 41, n), dtype) for n in (3, 9, 30) for _ in range(20)]
        out.append(Family("temperature+offset", dtype, rows, temperature=t, funcs=FUNCS[:2]))

    # Bases: the exact reference is softmax(x * ln a).
    for a in (2.0, 10.0, 0.5, 1.0001, 1e-3, 7.389):
        rows = []
        scale = 1.0 / abs(math.log(a))
        for n in (2, 7, 64):
            for _ in range(30):
                rows.append(_cast(rng.uniform(-0.5, 0.5, n) * dmax * scale, dtype))
        out.append(Family("base", dtype, rows, base=a, funcs=FUNCS[:2]))

    # logsumexp whose max is negative and whose result nearly cancels it.
    rows = []
    for n in (2, 3, 7, 100, 1000):
        for _ in range(20):
            noise = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-12, -1)
            rows.append(_cast(-math.log(n) + noise, dtype))
    for _ in range(100):
        n = int(rng.integers(2, 30))
        row = rng.uniform(-40, 0, n)
        row -= math.log(np.exp(row).sum()) * rng.uniform(0.9, 1.1)
        rows.append(_cast(row, dtype))
    out.append(Family("cancel", dtype, rows, funcs=("logsumexp",)))

    if long_rows:
        lrng = np.random.default_rng([_seed("long"), dtype.itemsize])
        row = _cast(lrng.uniform(-20, 20, LONG_N), dtype)
        out.append(Family("long (10^6)", dtype, [row], prec=120))
    return out


def float16_family() -> Family:
    """float16 in, float16 out (computed in float64): same 1-ulp bound as float32."""
    rng = np.random.default_rng(_seed("float16"))
    rows = [_cast(rng.uniform(-5, 5, n), np.float16) for n in (2, 5, 30) for _ in range(40)]
    return Family("spread", np.dtype(np.float16), rows)


def _group_by_length(rows):
    groups = {}
    for i, r in enumerate(rows):
        groups.setdefault(len(r), []).append(i)
    return groups


def _is_cancel(m: float, exact) -> bool:
    return m < 0 and abs(exact) < abs(m) / 2


def measure(fam: Family) -> list[Result]:
    """Max ulp error of every function of `fam` against the exact reference."""
    dtype = fam.dtype
    c = fam.multiplier()
    results = {f: Result(fam.label(), dtype, f) for f in fam.funcs}
    kw = {}
    if fam.temperature is not None:
        kw["temperature"] = fam.temperature
    if fam.base is not None:
        kw["base"] = fam.base
    for n, idx in _group_by_length(fam.rows).items():
        batch = np.stack([fam.rows[i] for i in idx])
        got = {}
        if "softmax" in fam.funcs:
            got["softmax"] = sm.softmax(batch, axis=-1, **kw)
        if "log_softmax" in fam.funcs:
            got["log_softmax"] = sm.log_softmax(batch, axis=-1, **kw)
        if "logsumexp" in fam.funcs:
            got["logsumexp"] = sm.logsumexp(batch, axis=-1)
        for k, row in enumerate(batch):
            if "softmax" in fam.funcs or "log_softmax" in fam.funcs:
                p, logp = ur.ref_softmax(row, dtype, c=c, prec=fam.prec)
                for f, want in (("softmax", p), ("log_softmax", logp)):
                    if f not in fam.funcs:
                        continue
                    d = ur.ulp_distance(got[f][k], want)
                    _note(results[f], d, row, got[f][k], want)
            if "logsumexp" in fam.funcs:
                exact = ur.ref_logsumexp(row, prec=fam.prec)
                want = np.asarray(ur.round_to(exact, dtype), dtype=dtype)
                have = np.asarray(got["logsumexp"][k], dtype=dtype)
                res = results["logsumexp"]
                m = float(np.max(row))
                d = float(ur.ulp_distance(have, want))
                if _is_cancel(m, exact):
                    with mpmath.workprec(fam.prec):
                        err = abs(ur.mp_value(have) - exact)
                    res.cancel_rows += 1
                    res.cancel_max_ulp_of_max = max(
                        res.cancel_max_ulp_of_max, float(err) / ur.ulp_of(m, dtype)
                    )
                    res.cancel_max_ulp_of_result = max(res.cancel_max_ulp_of_result, d)
                else:
                    _note(res, np.array([d]), row, have, want)
    return list(results.values())


def _note(res: Result, d: np.ndarray, row, have, want):
    res.n_outputs += d.size
    worst = float(np.max(d)) if d.size else 0.0
    if worst > res.max_ulp:
        res.max_ulp = worst
        j = int(np.argmax(d)) if np.ndim(have) else 0
        res.worst = {
            "row": row if row.size <= 8 else f"<{row.size} values>",
            "got": np.ravel(have)[j],
            "want": np.ravel(want)[j],
        }


def all_results(*, long_rows: bool = True, dtypes=DTYPES, with_float16: bool = True):
    out = []
    for dtype in dtypes:
        for fam in families(dtype, long_rows=long_rows):
            out.extend(measure(fam))
    if with_float16:
        out.extend(measure(float16_family()))
    return out


def merge_by_family(results):
    """One row per (family without parameters, dtype, func): the worst case."""
    table = {}
    for r in results:
        key = (r.family.split(" T=")[0].split(" a=")[0], str(r.dtype), r.func)
        cur = table.get(key)
        if cur is None:
            table[key] = Result(key[0], r.dtype, r.func, r.max_ulp, r.n_outputs,
                                r.cancel_rows, r.cancel_max_ulp_of_max, r.cancel_max_ulp_of_result)
        else:
            cur.max_ulp = max(cur.max_ulp, r.max_ulp)
            cur.n_outputs += r.n_outputs
            cur.cancel_rows += r.cancel_rows
            cur.cancel_max_ulp_of_max = max(cur.cancel_max_ulp_of_max, r.cancel_max_ulp_of_max)
            cur.cancel_max_ulp_of_result = max(cur.cancel_max_ulp_of_result, r.cancel_max_ulp_of_result)
    return table


def format_table(results) -> str:
    """Markdown table: max ulp distance per family, dtype and function.

    logsumexp rows in the cancellation zone are left out of the logsumexp
    column and shown apart, as absolute error in ulps of max(x).
    """
    table = merge_by_family(results)
    fams = []
    for fam, _, _ in table:
        if fam not in fams:
            fams.append(fam)
    lines = [
        "| family | dtype | softmax | log_softmax | logsumexp | logsumexp, cancelling rows* | outputs checked |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fam in fams:
        for dt in ("float16", "float32", "float64"):
            rs = {f: table.get((fam, dt, f)) for f in FUNCS}
            if not any(rs.values()):
                continue
            cells = []
            for f in FUNCS:
                r = rs[f]
                cells.append("-" if r is None or not r.n_outputs else f"{r.max_ulp:g}")
            lse = rs["logsumexp"]
            if lse is not None and lse.cancel_rows:
                cells.append(f"{lse.cancel_max_ulp_of_max:.2f} ulp(max) ({lse.cancel_rows} rows)")
            else:
                cells.append("-")
            total = sum(r.n_outputs + r.cancel_rows for r in rs.values() if r is not None)
            lines.append(f"| {fam} | {dt} | " + " | ".join(cells) + f" | {total:,} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10**6-long rows")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = all_results(long_rows=not args.quick)
    print(format_table(results))
    print()
    print("* logsumexp rows with max(x) < 0 and |result| < |max(x)|/2: "
          "absolute error in ulps of max(x) (documented bound: 2 float64, 1 float32)")
    worst = [r for r in results if r.max_ulp > BOUND[r.dtype]]
    for r in worst:
        print(f"OVER BOUND: {r.family} {r.dtype} {r.func}: {r.max_ulp} ulp, e.g. {r.worst}")
    print(f"\n{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
