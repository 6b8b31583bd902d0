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
# every dtype with families (float16 has its own, scaled to its range)
ALL_DTYPES = (np.dtype(np.float16),) + DTYPES
MODES = ("high", "fast")
# The promise: max ulp distance from the correctly rounded value.
BOUND = {np.dtype(np.float16): 1, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
# logsumexp that cancels (max < 0, |result| < |max| / 2): bound in ulps of max.
CANCEL_BOUND = {np.dtype(np.float16): 1, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
# accuracy="fast": the documented bound, every dtype (cancelling logsumexp
# rows in ulps of max(x), as above)
FAST_BOUND = {np.dtype(np.float16): 4, np.dtype(np.float32): 4, np.dtype(np.float64): 4}
FAST_CANCEL_BOUND = FAST_BOUND


def bound(dtype, mode="high") -> float:
    return (FAST_BOUND if mode == "fast" else BOUND)[np.dtype(dtype)]


def cancel_bound(dtype, mode="high") -> float:
    return (FAST_CANCEL_BOUND if mode == "fast" else CANCEL_BOUND)[np.dtype(dtype)]


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
    # "rows": reduced along the last axis; "columns": the same rows laid out
    # as the columns of a C-ordered array and reduced along axis 0
    layout: str = "rows"
    # one bool mask per row (where=), or None
    masks: list | None = None

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

    def with_rows(self, idx):
        """This family restricted to the rows `idx` (a quick subset)."""
        masks = None if self.masks is None else [self.masks[i] for i in idx]
        return Family(self.name, self.dtype, [self.rows[i] for i in idx], self.temperature,
                      self.base, self.funcs, self.prec, self.layout, masks)


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
    # differences whose exp spans the dtype's range down to its subnormals
    return {2: 20.0, 4: 80.0}.get(np.dtype(dtype).itemsize, 700.0)


# float16 holds magnitudes up to 65504: its offsets, temperatures and bases
# are scaled to stay finite
_OFFSETS = {2: (1e2, 3e4), 4: (1e3, 1e8, 1e15, 1e30), 8: (1e3, 1e8, 1e15, 1e30)}
_TEMPERATURES = {2: (1e-3, 0.37, 3.3, 100.0), 4: (1e-3, 0.37, 3.3, 1e4), 8: (1e-3, 0.37, 3.3, 1e4)}
_TEMP_OFFSETS = {2: (3e4, -1e3), 4: (1e15, -1e30), 8: (1e15, -1e30)}


def families(dtype, *, long_rows: bool = True) -> list[Family]:
    """The seeded families for one dtype (float16, float32 or float64)."""
    dtype = np.dtype(dtype)
    dmax = _dmax(dtype)
    big = float(np.finfo(dtype).max) / 4
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
    for mag in _OFFSETS[dtype.itemsize]:
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
    for t in _TEMPERATURES[dtype.itemsize]:
        rows = []
        for n in (2, 7, 64):
            for _ in range(30):
                rows.append(_cast(rng.uniform(-0.5, 0.5, n) * min(dmax * t, big), dtype))
        out.append(Family("temperature", dtype, rows, temperature=t, funcs=FUNCS[:2]))
    # Temperature against a huge offset: only the exact difference survives.
    for mag in _TEMP_OFFSETS[dtype.itemsize]:
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
                rows.append(_cast(rng.uniform(-0.5, 0.5, n) * min(dmax * scale, big), dtype))
        out.append(Family("base", dtype, rows, base=a, funcs=FUNCS[:2]))

    # where= masks: a random part of each row kept (at least one entry)
    rows, masks = [], []
    for n in (3, 17, 100, 700):
        for _ in range(max(2, 1200 // n)):
            row = _cast(rng.uniform(-dmax / 2, dmax / 2, n), dtype)
            keep = rng.random(n) < rng.uniform(0.2, 0.9)
            keep[rng.integers(n)] = True
            rows.append(row)
            masks.append(keep)
    out.append(Family("masked", dtype, rows, masks=masks))

    # Columns: rows laid out along axis 0 (the column panels of the core),
    # spread and dominant values, T = 1 and T = 0.37
    for t in (None, 0.37):
        rows = []
        for n in (5, 64, 300):
            for _ in range(max(16, 1600 // n)):
                row = rng.uniform(-dmax / 2, dmax / 2, n)
                if rng.random() < 0.3:
                    row[rng.integers(n)] += 30.0 + math.log(n)
                rows.append(_cast(row, dtype))
        out.append(Family("columns", dtype, rows, temperature=t, layout="columns",
                          funcs=FUNCS if t is None else FUNCS[:2]))

    # Long rows: the segment merge of the core (rows over 131,072 entries)
    # and long rows held in the row scratch; values of a vocabulary's
    # logits and a few dominant ones
    lrng = np.random.default_rng([_seed("long rows"), dtype.itemsize])
    rows = []
    for n in (20_000, 140_000):
        row = lrng.standard_normal(n) * 3
        row[lrng.integers(n, size=3)] += 25.0
        rows.append(_cast(row, dtype))
    out.append(Family("long rows", dtype, rows, prec=120))

    # logsumexp whose max is negative and whose result nearly cancels it.
    rows = []
    for n in (2, 3, 7, 100, 1000):
        for _ in range(20):
            noise = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-12 if dtype.itemsize > 2 else -4, -1)
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
    """float16 in, float16 out: a small spread family (the full set: families(float16))."""
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


def _run(fam: Family, batch, mask, kw, accuracy):
    """The package's outputs for a batch of rows, in the family's layout."""
    got = {}
    acc = {} if accuracy is None else {"accuracy": accuracy}
    cols = fam.layout == "columns"
    x = np.ascontiguousarray(batch.T) if cols else batch
    where = {} if mask is None else {"where": mask.T if cols else mask}
    axis = 0 if cols else -1
    for f in ("softmax", "log_softmax"):
        if f in fam.funcs:
            r = getattr(sm, f)(x, axis=axis, **kw, **where, **acc)
            got[f] = r.T if cols else r
    if "logsumexp" in fam.funcs:
        got["logsumexp"] = sm.logsumexp(x, axis=axis, **where, **acc)
    return got


def measure(fam: Family, accuracy: str | None = None) -> list[Result]:
    """Max ulp error of every function of `fam` against the exact reference.

    `accuracy` is passed to the package (None: its default mode).
    """
    dtype = fam.dtype
    c = fam.multiplier()
    label = fam.label() if accuracy is None else f"{fam.label()} [{accuracy}]"
    results = {f: Result(label, dtype, f) for f in fam.funcs}
    kw = {}
    if fam.temperature is not None:
        kw["temperature"] = fam.temperature
    if fam.base is not None:
        kw["base"] = fam.base
    for n, idx in _group_by_length(fam.rows).items():
        batch = np.stack([fam.rows[i] for i in idx])
        masks = None if fam.masks is None else np.stack([fam.masks[i] for i in idx])
        got = _run(fam, batch, masks, kw, accuracy)
        for k, row in enumerate(batch):
            mask = None if masks is None else masks[k]
            if "softmax" in fam.funcs or "log_softmax" in fam.funcs:
                p, logp = ur.ref_softmax(row, dtype, c=c, mask=mask, prec=fam.prec)
                for f, want in (("softmax", p), ("log_softmax", logp)):
                    if f not in fam.funcs:
                        continue
                    d = ur.ulp_distance(got[f][k], want)
                    _note(results[f], d, row, got[f][k], want)
            if "logsumexp" in fam.funcs:
                exact = ur.ref_logsumexp(row, mask=mask, prec=fam.prec)
                want = np.asarray(ur.round_to(exact, dtype), dtype=dtype)
                have = np.asarray(got["logsumexp"][k], dtype=dtype)
                res = results["logsumexp"]
                m = float(np.max(row if mask is None else row[mask]))
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


def all_results(*, long_rows: bool = True, dtypes=ALL_DTYPES, accuracy: str | None = None):
    out = []
    for dtype in dtypes:
        for fam in families(dtype, long_rows=long_rows):
            out.extend(measure(fam, accuracy))
    return out


def merge_by_family(results):
    """One row per (family without parameters, dtype, func): the worst case."""
    table = {}
    for r in results:
        mode = r.family[r.family.index(" ["):] if " [" in r.family else ""
        key = (r.family.split(" [")[0].split(" T=")[0].split(" a=")[0] + mode, str(r.dtype), r.func)
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
    parser.add_argument("--accuracy", choices=MODES, default="high",
                        help="the package's accuracy mode to measure (default high)")
    parser.add_argument("--dtypes", default=",".join(str(d) for d in ALL_DTYPES))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    dtypes = tuple(np.dtype(d) for d in args.dtypes.split(","))
    results = all_results(long_rows=not args.quick, dtypes=dtypes, accuracy=args.accuracy)
    print(format_table(results))
    print()
    print("* logsumexp rows with max(x) < 0 and |result| < |max(x)|/2: "
          "absolute error in ulps of max(x) (documented bound: "
          + ("4 every dtype)" if args.accuracy == "fast" else "2 float64, 1 float32 and float16)"))
    worst = [r for r in results if r.max_ulp > bound(r.dtype, args.accuracy)]
    for r in worst:
        print(f"OVER BOUND: {r.family} {r.dtype} {r.func}: {r.max_ulp} ulp, e.g. {r.worst}")
    print(f"\n{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
