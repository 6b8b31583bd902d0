"""Side-by-side timing and accuracy of segment softmax (softmax within groups) against peers.

One command, in the manner of ``bench_softmax.py`` (whose machine probe,
interleaved timing and formatting it imports): the machine probe first, then
for each case and dtype the median time of every contender over interleaved
rounds (a noisy neighbour slows every contender alike), peer time / our time
(above 1: we are faster), and the geometric means of those ratios. Then the
same contenders' accuracy on scores of a large dynamic range.

Contenders (one thread count for all: softmax.set_num_threads and
torch.set_num_threads; NumPy is single-threaded, JAX uses XLA's own pool):

  ours           softmax.segment_softmax(x, offsets=...) when the entries are
                 in group order, softmax.segment_softmax(x, ids, num_segments=)
                 when they are not
  numpy          what a NumPy user writes: np.maximum.reduceat, np.exp,
                 np.add.reduceat over the starts of the non-empty groups (in
                 group order; reduceat gives x[start] for an empty group and
                 refuses a start at len(x)), or np.maximum.at / np.add.at
                 (any order)
  pyg            torch_geometric.utils.softmax(src, index, ptr=..., num_nodes=)
                 (ptr only in group order), CPU
  torch_scatter  torch_scatter.scatter_softmax(src, index, dim_size=)
  jraph          jraph.segment_softmax, jitted with num_segments static
                 (indices_are_sorted in group order), block_until_ready;
                 x64 enabled so that float64 stays float64
  torch.sparse   torch.sparse.softmax(t, dim=1) of a COO tensor (groups x
                 longest group) built outside the timing; in group order only

Cases (``--quick`` divides the sizes by 10):

  graph-sorted    10^6 edges into 10^5 nodes, in-degrees by Zipf's law (the
                  k-th busiest node gets a share ~ 1/k: hubs of ~8*10^4
                  edges, ~19% of the nodes without any), edges sorted by
                  target node (CSR)
  graph-unsorted  the same edges in random order (segment ids)
  ranking         10^4 queries x uniform 10..1000 candidates, by query (CSR)

Timing scores are N(0, 3). Every contender's result is checked against ours
once per case before the timing; a disagreement is printed. The run says
which backend PyG found (pyg_lib, torch_scatter, or PyTorch's own
scatter_reduce / _segment_reduce): its speed depends on it.

Accuracy: scores ~ N(0, 30) (exp(x - max) spans up to e^-300) in 2*10^4
Zipf-sized groups holding 2*10^5 entries plus one group of 10^5 entries, in
group order and shuffled. The reference is computed per group in
np.longdouble (the x87 80-bit format on x86-64, 64-bit significand): the
group max exactly, exp by the C library's expl, the sums pairwise (np.sum);
its own error is below 0.1 ulp of float64. The accuracy section is skipped
where np.longdouble is no wider than float64. Errors are in ulps of the
result dtype at the reference value; |sum p - 1| in units of that dtype's eps.

    python benchmarks/bench_groups.py                 # the full run (about 3 minutes)
    python benchmarks/bench_groups.py --quick         # smaller inputs, 3 rounds (under 30 s)
    python benchmarks/bench_groups.py --cases graph-unsorted --dtypes float64 --threads 1
    python benchmarks/bench_groups.py --peers numpy,pyg --no-accuracy
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_softmax as base  # noqa: E402  (the probe, the timing loop, the formats)

import softmax  # noqa: E402

CASES = ("graph-sorted", "graph-unsorted", "ranking")
PEERS = ("numpy", "pyg", "torch_scatter", "jraph", "torch.sparse")
# Why a peer may be missing, and how to get it.
INSTALL = {
    "pyg": "pip install torch_geometric",
    "torch_scatter": "no wheel on PyPI; pip install torch_scatter -f "
                     "https://data.pyg.org/whl/torch-<version>+cpu.html",
    "jraph": "pip install jraph",
    "torch.sparse": "pip install torch",
}
# How a peer ran (which backend PyG found), printed after the table.
NOTES: dict[str, str] = {}


# ---- the data -----------------------------------------------------------------

@dataclasses.dataclass
class Case:
    """Scores in groups along one axis, as ids and (in group order) as CSR offsets."""

    name: str
    x: np.ndarray              # float64 scores
    ids: np.ndarray            # int64, the group of each entry
    offsets: np.ndarray | None  # CSR offsets when the entries are in group order
    num_segments: int

    @property
    def in_order(self) -> bool:
        return self.offsets is not None

    def describe(self) -> str:
        lengths = np.bincount(self.ids, minlength=self.num_segments)
        return (f"{self.x.size:,} entries in {self.num_segments:,} groups "
                f"(longest {lengths.max():,}, {np.count_nonzero(lengths == 0):,} empty), "
                f"{'in group order' if self.in_order else 'in random order'}")


def offsets_of(ids: np.ndarray, num_segments: int) -> np.ndarray:
    offsets = np.zeros(num_segments + 1, np.int64)
    np.cumsum(np.bincount(ids, minlength=num_segments), out=offsets[1:])
    return offsets


def zipf_ids(rng, n_entries: int, n_groups: int) -> np.ndarray:
    """A group per entry, the k-th largest group getting a share ~ 1/k (groups shuffled)."""
    weights = 1.0 / np.arange(1, n_groups + 1)
    weights = weights[rng.permutation(n_groups)]
    return rng.choice(n_groups, size=n_entries, p=weights / weights.sum()).astype(np.int64)


def grouped(name: str, x: np.ndarray, ids: np.ndarray, num_segments: int, *, in_order: bool,
            rng) -> Case:
    """The case with its entries in group order (CSR), or shuffled (ids only)."""
    order = np.argsort(ids, kind="stable")
    x, ids = x[order], ids[order]
    if in_order:
        return Case(name, x, ids, offsets_of(ids, num_segments), num_segments)
    shuffle = rng.permutation(ids.size)
    return Case(name, x[shuffle], ids[shuffle], None, num_segments)


def make_case(name: str, scale: float, rng) -> Case:
    if name.startswith("graph"):
        edges, nodes = int(1_000_000 * scale), int(100_000 * scale)
        ids = zipf_ids(rng, edges, nodes)
        x = rng.standard_normal(edges) * 3
        return grouped(name, x, ids, nodes, in_order=name == "graph-sorted", rng=rng)
    if name == "ranking":
        queries = int(10_000 * scale)
        lengths = rng.integers(10, 1001, size=queries)
        ids = np.repeat(np.arange(queries, dtype=np.int64), lengths)
        x = rng.standard_normal(ids.size) * 3
        return grouped(name, x, ids, queries, in_order=True, rng=rng)
    raise SystemExit(f"unknown case {name!r}: choose from {', '.join(CASES)}")


# ---- contenders: name -> a call with no argument that returns the probabilities -------

def numpy_in_order(x, offsets):
    """Softmax of each group of x (in group order) as a NumPy user writes it."""
    lengths = np.diff(offsets)
    full = lengths > 0  # reduceat: x[start] for an empty group, and no start may be len(x)
    starts, lengths = offsets[:-1][full], lengths[full]
    e = np.exp(x - np.repeat(np.maximum.reduceat(x, starts), lengths))
    return e / np.repeat(np.add.reduceat(e, starts), lengths)


def numpy_any_order(x, ids, num_segments):
    """Softmax of each group of x (ids in any order) with unbuffered ufunc.at."""
    m = np.full(num_segments, -np.inf, x.dtype)
    np.maximum.at(m, ids, x)
    e = np.exp(x - m[ids])
    s = np.zeros(num_segments, x.dtype)
    np.add.at(s, ids, e)
    return e / s[ids]


def ours_cases(case: Case, x) -> dict:
    if case.in_order:
        return {"ours": lambda: softmax.segment_softmax(x, offsets=case.offsets)}
    return {"ours": lambda: softmax.segment_softmax(x, case.ids, num_segments=case.num_segments)}


def numpy_cases(case: Case, x) -> dict:
    if case.in_order:
        return {"numpy": lambda: numpy_in_order(x, case.offsets)}
    return {"numpy": lambda: numpy_any_order(x, case.ids, case.num_segments)}


def _torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    return torch


def pyg_cases(case: Case, x, threads: int) -> dict:
    try:
        torch = _torch(threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch_geometric.utils import softmax as pyg_softmax
    except ImportError as exc:
        base._note_missing("pyg", exc)
        return {}
    import torch_geometric.typing as pyg_typing

    NOTES["pyg"] = ("pyg runs on " + ("pyg_lib's softmax_csr (with ptr)" if pyg_typing.WITH_SOFTMAX
                    else "torch_scatter" if pyg_typing.WITH_TORCH_SCATTER
                    else "PyTorch's scatter_reduce and _segment_reduce (no pyg_lib, "
                         "no torch_scatter)"))
    src, index = torch.from_numpy(x), torch.from_numpy(case.ids)
    n = case.num_segments
    if case.in_order:
        ptr = torch.from_numpy(case.offsets)
        return {"pyg": lambda: pyg_softmax(src, index, ptr=ptr, num_nodes=n)}
    return {"pyg": lambda: pyg_softmax(src, index, num_nodes=n)}


def torch_scatter_cases(case: Case, x, threads: int) -> dict:
    try:
        torch = _torch(threads)
        from torch_scatter import scatter_softmax
    except (ImportError, OSError) as exc:  # OSError: a wheel built for another torch
        base._note_missing("torch_scatter", exc)
        return {}
    src, index = torch.from_numpy(x), torch.from_numpy(case.ids)
    return {"torch_scatter": lambda: scatter_softmax(src, index, dim=0,
                                                     dim_size=case.num_segments)}


def jraph_cases(case: Case, x) -> dict:
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jraph
    except ImportError as exc:
        base._note_missing("jraph", exc)
        return {}
    jax.config.update("jax_enable_x64", True)  # float32 input stays float32
    f = jax.jit(functools.partial(jraph.segment_softmax, num_segments=case.num_segments,
                                  indices_are_sorted=case.in_order))
    xj, ij = jax.device_put(x), jax.device_put(case.ids)
    f(xj, ij).block_until_ready()  # compile outside the timing
    return {"jraph": lambda: f(xj, ij).block_until_ready()}


def torch_sparse_cases(case: Case, x, threads: int) -> dict:
    if not case.in_order:
        return {}  # a COO tensor is coalesced into group order: the same work as in order
    try:
        torch = _torch(threads)
    except ImportError as exc:
        base._note_missing("torch.sparse", exc)
        return {}
    position = np.arange(case.ids.size) - case.offsets[case.ids]
    width = max(1, int(np.diff(case.offsets).max()))
    t = torch.sparse_coo_tensor(torch.from_numpy(np.stack([case.ids, position])),
                                torch.from_numpy(x), size=(case.num_segments, width),
                                check_invariants=True).coalesce()
    return {"torch.sparse": lambda: torch.sparse.softmax(t, dim=1)}


def contenders(case: Case, x, peers, threads: int) -> dict:
    cases = ours_cases(case, x)
    makers = {
        "numpy": lambda: numpy_cases(case, x),
        "pyg": lambda: pyg_cases(case, x, threads),
        "torch_scatter": lambda: torch_scatter_cases(case, x, threads),
        "jraph": lambda: jraph_cases(case, x),
        "torch.sparse": lambda: torch_sparse_cases(case, x, threads),
    }
    for peer in peers:
        cases.update(makers[peer]())
    return cases


def as_numpy(result) -> np.ndarray:
    """A contender's probabilities as a NumPy vector in entry order."""
    if hasattr(result, "is_sparse") and result.is_sparse:
        result = result.coalesce().values()  # row-major: the entries' group order
    if hasattr(result, "detach"):
        return result.detach().numpy()
    return np.asarray(result)


# ---- accuracy -------------------------------------------------------------------

def accuracy_cases(scale: float, rng) -> list[Case]:
    small, groups, big = int(200_000 * scale), int(20_000 * scale), 100_000
    ids = np.concatenate([zipf_ids(rng, small, groups), np.full(big, groups, np.int64)])
    x = rng.normal(0.0, 30.0, ids.size)
    return [grouped(layout, x, ids, groups + 1, in_order=layout == "in order", rng=rng)
            for layout in ("in order", "shuffled")]


def reference(x: np.ndarray, ids: np.ndarray, num_segments: int) -> np.ndarray:
    """Softmax of each group in np.longdouble (entries in any order)."""
    order = np.argsort(ids, kind="stable")
    xs = x[order].astype(np.longdouble)
    offsets = offsets_of(ids, num_segments)
    lengths = np.diff(offsets)
    full = lengths > 0
    starts, filled = offsets[:-1][full], lengths[full]
    e = np.exp(xs - np.repeat(np.maximum.reduceat(xs, starts), filled))  # max: exact
    sums = np.add.reduceat(e, starts)
    for k in np.flatnonzero(filled > 16):  # reduceat adds in sequence: pairwise for the long
        sums[k] = np.sum(e[starts[k]:starts[k] + filled[k]])
    p = np.empty_like(e)
    p[order] = e / np.repeat(sums, filled)
    return p


def ulp_errors(got: np.ndarray, want: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """|got - want| in ulps of dtype at want (want in longdouble; NaN counts as inf),
    and where got is 0 for a want that is not 0 in dtype (a subnormal flushed to zero)."""
    got = np.asarray(got, dtype=dtype)
    rounded = np.abs(want).astype(dtype)
    err = np.abs(got.astype(np.longdouble) - want) / np.spacing(rounded).astype(np.longdouble)
    return np.where(np.isnan(err), np.inf, err).astype(np.float64), (got == 0) & (rounded != 0)


def sum_errors(p: np.ndarray, case: Case, dtype) -> float:
    """max over groups of |sum p - 1|, in eps of dtype (sums in longdouble)."""
    sums = np.zeros(case.num_segments, np.longdouble)
    np.add.at(sums, case.ids, np.asarray(p, dtype=dtype).astype(np.longdouble))
    filled = np.bincount(case.ids, minlength=case.num_segments) > 0
    err = np.abs(sums[filled] - 1) / np.finfo(dtype).eps
    return float(np.nan_to_num(err, nan=np.inf).max())


def run_accuracy(dtypes, peers, threads: int, scale: float, rng) -> None:
    if np.finfo(np.longdouble).nmant < 63:
        print(f"accuracy: skipped (np.longdouble has a {np.finfo(np.longdouble).nmant + 1}-bit "
              "significand here: no wider reference than float64)")
        return
    cases = accuracy_cases(scale, rng)
    first = cases[0]
    big = first.num_segments - 1
    print(f"accuracy: scores ~ N(0, 30), {first.describe().split(', in')[0]}; "
          "group order and shuffled")
    print("  reference: per group in np.longdouble (64-bit significand; its error < 0.1 ulp "
          "of float64)")
    print("  ulp: |p - reference| in ulps of the dtype, over the results not flushed to 0;")
    print("  to 0: results flushed to zero where the reference is a nonzero (subnormal) number;")
    print("  big: the group of 100,000; sum: max over groups of |sum p - 1| / eps")
    print()
    header = (f"{'dtype':>7} {'layout':>9} {'contender':>13} {'max ulp':>10} "
              f"{'max ulp, big':>13} {'mean ulp':>9} {'to 0':>7} {'sum':>9}")
    print(header)
    print("-" * len(header))
    for dtype in dtypes:
        for case in cases:
            x = case.x.astype(dtype)
            want = reference(x, case.ids, case.num_segments)
            in_big = case.ids == big
            for name, fn in contenders(case, x, peers, threads).items():
                got = as_numpy(fn())
                err, flushed = ulp_errors(got, want, dtype)
                kept = ~flushed
                print(f"{dtype:>7} {case.name:>9} {name:>13} {err[kept].max():10.3g} "
                      f"{err[kept & in_big].max():13.3g} {err[kept].mean():9.3g} "
                      f"{np.count_nonzero(flushed):7d} {sum_errors(got, case, dtype):9.3g}",
                      flush=True)
            del x, want
            gc.collect()


# ---- the timing run ---------------------------------------------------------------

def check_agreement(case: Case, cases: dict, dtype) -> None:
    """Print any contender whose result differs from ours by more than rounding can.

    The tolerance is loose (float32 peers sum a hub's 10^5 terms in float32): it
    is there to catch a peer called wrongly, whose results would be off by O(p).
    """
    ours = as_numpy(cases["ours"]())
    tol = 1e-2 if np.dtype(dtype) == np.float32 else 1e-6
    for name, fn in cases.items():
        got = as_numpy(fn())
        if got.shape != ours.shape or not np.allclose(got, ours, rtol=tol, atol=tol * 1e-3):
            diff = np.max(np.abs(got - ours)) if got.shape == ours.shape else got.shape
            print(f"    ! {name} disagrees with ours on {case.name} {dtype}: {diff}")


def _width(peer: str) -> int:
    return max(9, len(peer) + 5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="inputs 10x smaller, 3 rounds")
    p.add_argument("--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    p.add_argument("--threads", type=int, default=base.default_threads(),
                   help="threads for us and torch (default: cores available)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma list of peers to time")
    p.add_argument("--no-probe", action="store_true", help="skip the machine probe")
    p.add_argument("--no-accuracy", action="store_true", help="skip the accuracy section")
    args = p.parse_args(argv)

    peers = [s for s in args.peers.split(",") if s]
    unknown = set(peers) - set(PEERS)
    if unknown:
        p.error(f"unknown peers {', '.join(sorted(unknown))}: choose from {', '.join(PEERS)}")
    dtypes = [s for s in args.dtypes.split(",") if s]
    scale = 0.1 if args.quick else 1.0
    rounds = args.rounds or (3 if args.quick else 5)
    target = 0.02 if args.quick else 0.05
    softmax.set_num_threads(args.threads)
    softmax.show_config()
    print()
    if not args.no_probe:
        base.machine_probe(args.threads)
        print()
    print("ours runs on the C core (a group is a row of the core)")
    print(f"threads: {args.threads}   rounds: {rounds} (median of interleaved rounds)")
    print("times: median per call; ratios: peer time / our time (above 1: softmax faster)")
    print()

    rng = np.random.default_rng(0)
    ratios = {}  # (dtype, peer) -> [peer / ours]
    names = ["ours", *peers]
    header = (f"{'case':>14} {'dtype':>7} " + " ".join(f"{n:>13}" for n in names) + "   "
              + " ".join(f"{n + '/ours':>{_width(n)}}" for n in peers))
    all_cases = [make_case(name, scale, rng) for name in args.cases.split(",") if name]
    for case in all_cases:
        print(f"{case.name}: {case.describe()}")
    print()
    print(header)
    print("-" * len(header))
    for case in all_cases:
        for dtype in dtypes:
            x = case.x.astype(dtype)
            cases = contenders(case, x, peers, args.threads)
            check_agreement(case, cases, dtype)
            gc.collect()
            med = base.time_round_robin(cases, rounds, target)
            for peer in peers:
                if peer in med:
                    ratios.setdefault((dtype, peer), []).append(med[peer] / med["ours"])
            cells = " ".join(f"{base.fmt_time(med.get(n)):>13}" for n in names)
            rs = " ".join(
                f"{base.fmt_ratio(med[n] / med['ours'] if n in med else None):>{_width(n)}}"
                for n in peers)
            print(f"{case.name:>14} {dtype:>7} {cells}   {rs}", flush=True)
            del x, cases
        gc.collect()
    del all_cases

    if base._missing or NOTES:
        print()
        for note in NOTES.values():
            print(note)
        for name, why in base._missing.items():
            hint = f"; {INSTALL[name]}" if name in INSTALL else ""
            print(f"skipped {name}: not installed ({why}{hint})")
    print()
    print("geometric mean of peer time / our time (above 1: softmax is faster)")
    for dtype in dtypes:
        for peer in peers:
            rs = ratios.get((dtype, peer))
            if rs:
                g = math.exp(sum(math.log(r) for r in rs) / len(rs))
                print(f"  {dtype:>7} vs {peer:<13} {g:6.2f}x  (min {min(rs):.2f}x) "
                      f"over {len(rs)} cases")
    if not args.no_accuracy:
        print()
        run_accuracy(dtypes, peers, args.threads, scale, np.random.default_rng(1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
