"""Slow, obviously correct twins of the fast functions: the tests' second opinion.

They share no code with the package (bottleneck's habit of a ``slow/``
twin for every fast function). Each works on the last axis of an array
already laid out as rows, with an optional boolean `mask` of the same shape,
one row at a time in plain Python and NumPy, with the package's edge rules
written out: NaN in a kept entry makes the kept entries NaN; +inf entries
share the mass; a row with nothing kept above -inf is empty (0 / -inf).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["hardmax_last", "softmax_last"]


def _rows(x, mask):
    x = np.asarray(x, dtype=np.float64)
    keep = np.ones(x.shape, dtype=bool) if mask is None else np.broadcast_to(mask, x.shape)
    n = x.shape[-1] if x.ndim else 1
    rows = math.prod(x.shape[:-1]) if x.ndim else 1  # explicit: -1 is ambiguous for n = 0
    return x.reshape(rows, n), keep.reshape(rows, n)


def hardmax_last(x, mask=None, *, sign: float = 1.0, log: bool = False) -> np.ndarray:
    """The temperature -> 0 limit of softmax(sign * x): tied maxima share equally."""
    shape = np.shape(x)
    rows, keeps = _rows(x, mask)
    out = np.empty(rows.shape)
    empty = -math.inf if log else 0.0
    for r, (row, keep) in enumerate(zip(rows, keeps)):
        kept = [sign * float(v) for v, k in zip(row, keep) if k]
        if any(math.isnan(v) for v in kept):
            out[r] = [math.nan if k else empty for k in keep]
            continue
        top = max(kept, default=-math.inf)
        n_top = sum(1 for v in kept if v == top) if top > -math.inf else 0
        for j, (v, k) in enumerate(zip(row, keep)):
            win = k and n_top > 0 and sign * float(v) == top
            share = 1.0 / n_top if win else 0.0
            out[r, j] = (math.log(share) if share > 0 else -math.inf) if log else share
    return out.reshape(shape)


def softmax_last(x, mask=None, *, c: float = 1.0, log: bool = False) -> np.ndarray:
    """softmax (or log_softmax) of c * x along the last axis, row by row in float64.

    The textbook recipe: subtract the max, exponentiate, divide by the sum
    (``math.fsum``: one rounding), plus the edge rules.
    """
    shape = np.shape(x)
    rows, keeps = _rows(x, mask)
    out = np.empty(rows.shape)
    empty = -math.inf if log else 0.0
    for r, (row, keep) in enumerate(zip(rows, keeps)):
        v = [math.copysign(1.0, c) * float(a) if k else -math.inf for a, k in zip(row, keep)]
        if any(math.isnan(a) for a in v):
            out[r] = [math.nan if k else empty for k in keep]
            continue
        top = max(v, default=-math.inf)
        if top == -math.inf:
            out[r] = empty
            continue
        if top == math.inf:
            n = sum(1 for a in v if a == math.inf)
            out[r] = [(math.log(1 / n) if log else 1 / n) if a == math.inf else empty for a in v]
            continue
        y = [(a - top) * abs(c) if a > -math.inf else -math.inf for a in v]
        e = [math.exp(t) if t > -math.inf else 0.0 for t in y]
        s = math.fsum(e)
        out[r] = [t - math.log(s) if log else ei / s for t, ei in zip(y, e)]
    return out.reshape(shape)
