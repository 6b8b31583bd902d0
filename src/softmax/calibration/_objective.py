"""The temperature-scaling objective: the NLL of ``softmax(z / T)`` as a function of u = log T.

Two backends with one return type, `ObjectiveValue`:

- `NumpyObjective`: float64 sums over row blocks of the caller's array
  (memory O(N): no float64 copy of the logits, no one-hot matrix), with the
  first three u-derivatives;
- `DaskObjective`: one map-reduce per call, per chunk the (max, moments)
  state of each row merged in a tree when the class axis is split, with the
  first two derivatives (``d3f`` is None).

Both take logits that may hold ``-inf`` (an excluded class, probability 0)
and trust their input: `softmax.calibration._inputs` checked it.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .._typing import Array, FloatArray, NDArray
from ._inputs import DaskScores, blocks


class ObjectiveValue(NamedTuple):
    """Weighted sums (not means) at one u = log T."""

    f: float  # sum_i w_i NLL_i
    df: float  # d f / du
    d2f: float  # d^2 f / du^2
    total_weight: float  # sum_i w_i
    d3f: float | None = None  # d^3 f / du^3 when the backend has it


class NumpyObjective:
    """Weighted NLL of softmax(z / e^u) and its first three u-derivatives.

    For one row with b = (z - max z) / T and p = softmax(b):

        NLL   = log sum_j e^{b_j} - b_y
        dNLL  = b_y - E_p[b]                       (d/du, T = e^u)
        d2NLL = Var_p[b] - dNLL

    e^{b_y} is taken out of the sum before adding it back, so that a row
    whose label is the arg max keeps log1p accuracy (NLL ~ 1e-20 stays
    visible instead of rounding to 0). A logit of -inf (excluded class, or
    a difference that overflows) has e^b = 0 and adds nothing.
    """

    def __init__(self, rows: FloatArray, labels: NDArray[np.intp], weights: FloatArray | None
                 ) -> None:
        self.rows = rows
        self.labels = labels
        self.weights = weights
        n, k = rows.shape
        self.total_weight = float(n) if weights is None else float(weights.sum())
        self.zmax = np.empty(n, dtype=np.float64)
        self.zy = np.empty(n, dtype=np.float64)
        for start, stop in blocks(n, k):
            block = rows[start:stop]
            self.zmax[start:stop] = block.max(axis=1)
            self.zy[start:stop] = block[np.arange(stop - start), labels[start:stop]]
        step = max(1, (1 << 17) // k)
        self._buf_b = np.empty((min(step, n), k), dtype=np.float64)
        self._buf_e = np.empty_like(self._buf_b)
        self._ones = np.ones(k, dtype=np.float64)
        self.evaluations = 0

    def __call__(self, u: float) -> ObjectiveValue:
        self.evaluations += 1
        s = math.exp(-u)
        # -inf - max and 0 * inf are masked out below; overflow shows in f.
        with np.errstate(invalid="ignore", over="ignore"):
            f, g, h, h3 = self._sums(s)
        if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
            raise ValueError(
                f"logits must be small enough in magnitude for a finite NLL at "
                f"T = {math.exp(u):.6g}, got a largest |logit| of "
                f"{float(np.abs(self.zmax).max()):.3g}"
            )
        return ObjectiveValue(f, g, h, self.total_weight, h3)

    def _sums(self, s: float) -> tuple[float, float, float, float]:
        n, k = self.rows.shape
        f = g = h = h3 = 0.0
        for start, stop in blocks(n, k):
            m = stop - start
            r = np.arange(m)
            y = self.labels[start:stop]
            b = self._buf_b[:m]
            e = self._buf_e[:m]
            np.subtract(self.rows[start:stop], self.zmax[start:stop, None], out=b, dtype=np.float64)
            b *= s
            np.exp(b, out=e)
            # e = 0 (b = -inf, or underflow): b must not meet e in 0 * inf.
            np.copyto(b, 0.0, where=e == 0.0)
            by = s * (self.zy[start:stop] - self.zmax[start:stop])
            ey = e[r, y]
            e[r, y] = 0.0
            rest = e @ self._ones
            np.multiply(e, b, out=e)
            sum_eb = e @ self._ones
            sum_eb2 = np.einsum("ij,ij->i", e, b)
            np.multiply(e, b, out=e)
            sum_eb3 = np.einsum("ij,ij->i", e, b)
            total = rest + ey
            # rest >= 1 unless y is the arg max, where ey - 1 == 0 exactly.
            log_total = np.log1p(rest + (ey - 1.0))
            nll_rows = log_total - by
            mean_b = (sum_eb + ey * by) / total
            m2 = (sum_eb2 + ey * by * by) / total
            m3 = (sum_eb3 + ey * by * by * by) / total
            var_b = np.maximum(m2 - mean_b * mean_b, 0.0)
            skew_b = m3 - 3.0 * mean_b * m2 + 2.0 * mean_b**3
            d1 = by - mean_b
            d2 = var_b - d1
            # d/du Var_p[b] = -(third central moment) - 2 Var_p[b].
            d3 = -skew_b - 2.0 * var_b - d2
            if self.weights is None:
                f += float(nll_rows.sum())
                g += float(d1.sum())
                h += float(d2.sum())
                h3 += float(d3.sum())
            else:
                w = self.weights[start:stop]
                f += float(w @ nll_rows)
                g += float(w @ d1)
                h += float(w @ d2)
                h3 += float(w @ d3)
        return f, g, h, h3


# -------------------------------------------------------------------- Dask

MOMENTS_DTYPE = np.dtype([("m", "f8"), ("s0", "f8"), ("s1", "f8"), ("s2", "f8")])
SUMS_DTYPE = np.dtype([("f", "f8"), ("df", "f8"), ("d2f", "f8"), ("w", "f8")])


def _moments_chunk(xb: FloatArray, axis: tuple[int, ...], keepdims: bool, *, t: float,
                   computing_meta: bool = False, **kwargs: Any) -> NDArray[np.void]:
    """Per row of one chunk: m = max x and, with e = exp(t (x - m)) and
    d = t (x - m), the sums s0 = sum e, s1 = sum e d, s2 = sum e d^2."""
    kept = tuple(1 if i in axis else n for i, n in enumerate(xb.shape))
    packed = np.zeros(kept, dtype=MOMENTS_DTYPE)
    packed["m"] = -np.inf
    if computing_meta or math.prod(xb.shape[i] for i in axis) == 0:
        return packed
    with np.errstate(all="ignore"):
        m = np.max(xb, axis=axis, keepdims=True)
        m_safe = np.where(np.isfinite(m), m, 0.0)
        # -inf logits (excluded classes) weigh 0 whatever t is
        d = np.where(xb > -np.inf, t * (xb - m_safe), -np.inf)
        e = np.exp(d)
        d = np.where(e > 0, d, 0.0)
        packed["m"] = m
        packed["s0"] = np.sum(e, axis=axis, keepdims=True)
        packed["s1"] = np.sum(e * d, axis=axis, keepdims=True)
        packed["s2"] = np.sum(e * d * d, axis=axis, keepdims=True)
    return packed


def _moments_merge(packed: NDArray[np.void], axis: tuple[int, ...], *, t: float
                   ) -> NDArray[np.void]:
    """Shift every state to the common max M: with delta = t (m - M) <= 0 and
    g = exp(delta): s0 g, (s1 + delta s0) g, (s2 + 2 delta s1 + delta^2 s0) g."""
    m = packed["m"]
    with np.errstate(all="ignore"):
        big = np.max(m, axis=axis, keepdims=True)
        delta = np.where(m == big, 0.0, t * (m - np.where(np.isfinite(big), big, 0.0)))
        g = np.exp(delta)
        live = packed["s0"] > 0
        delta = np.where(live, delta, 0.0)
        g = np.where(live, g, 0.0)
        s0, s1, s2 = packed["s0"], packed["s1"], packed["s2"]
        out = np.empty(big.shape, dtype=MOMENTS_DTYPE)
        out["m"] = big
        out["s0"] = np.sum(g * s0, axis=axis, keepdims=True)
        out["s1"] = np.sum(g * (s1 + delta * s0), axis=axis, keepdims=True)
        out["s2"] = np.sum(g * (s2 + 2 * delta * s1 + delta * delta * s0), axis=axis, keepdims=True)
    return out


def _moments_combine(packed: NDArray[np.void], axis: tuple[int, ...], keepdims: bool, *, t: float,
                     computing_meta: bool = False, **kwargs: Any) -> NDArray[np.void]:
    if computing_meta:
        return packed
    out = _moments_merge(packed, axis, t=t)
    return out if keepdims else np.squeeze(out, axis=axis)


def _row_sums(packed: NDArray[np.void], x_label: FloatArray, w: FloatArray, *, t: float
              ) -> NDArray[np.void]:
    """Partial sums of one block of rows: f = sum w NLL and its u-derivatives.

    With z = t x and z* = t m: NLL = log s0 + t (m - x_y),
    dNLL/du = t (x_y - m) - s1/s0, d2NLL/du2 = t (m - x_y) + s1/s0 + Var,
    Var = s2/s0 - (s1/s0)^2 (the variance of z under the softmax).
    """
    with np.errstate(all="ignore"):
        m, s0, s1, s2 = packed["m"], packed["s0"], packed["s1"], packed["s2"]
        gap = t * (m - x_label)
        gap = np.where(m == x_label, 0.0, gap)
        mean = s1 / s0
        var = np.maximum(s2 / s0 - mean * mean, 0.0)
        nll = np.log(s0) + gap
        out = np.empty((1,) * packed.ndim, dtype=SUMS_DTYPE)
        out["f"] = np.sum(w * nll)
        out["df"] = np.sum(w * (-gap - mean))
        out["d2f"] = np.sum(w * (gap + mean + var))
        out["w"] = np.sum(w)
    return out


def _sums_chunk(packed: NDArray[np.void], axis: Any, keepdims: bool, computing_meta: bool = False,
                **kwargs: Any) -> NDArray[np.void]:
    return packed


def _sums_combine(packed: NDArray[np.void], axis: Any, keepdims: bool, computing_meta: bool = False,
                  **kwargs: Any) -> NDArray[np.void]:
    if computing_meta:
        return packed
    out = np.empty((1,) * packed.ndim, dtype=SUMS_DTYPE)
    for name in SUMS_DTYPE.names:  # type: ignore[union-attr]  # a structured dtype has names
        out[name] = np.sum(packed[name])
    return out if keepdims else out.reshape(())


class DaskObjective:
    """The objective of checked Dask logits: one graph computed per call."""

    def __init__(self, checked: DaskScores, split_every: int | None = None) -> None:
        import dask.array as da

        self._da = da
        self.x, self.w = checked.x, checked.weights
        self.split_every = split_every
        self.n_samples = checked.n_samples
        x, y = checked.x, checked.labels
        # The label's logit: exactly one class matches, so the sum is exact.
        classes = da.arange(checked.n_classes, chunks=x.chunks[-1])
        self.x_label = da.where(classes == y[..., None], x, 0.0).sum(axis=-1)
        self.evaluations = 0

    def __call__(self, u: float) -> ObjectiveValue:
        da = self._da
        self.evaluations += 1
        t = math.exp(-float(u))
        x = self.x
        states = da.reduction(
            x,
            partial(_moments_chunk, t=t),
            partial(_moments_combine, t=t),
            combine=partial(_moments_combine, t=t),
            axis=-1,
            keepdims=False,
            dtype=MOMENTS_DTYPE,
            split_every=self.split_every,
            concatenate=True,
            meta=np.empty((0,) * (x.ndim - 1), dtype=MOMENTS_DTYPE),
            name="softmax-moments",
        )
        if states.ndim == 0:
            states, xl, ww = states[None], self.x_label[None], self.w[None]
        else:
            xl, ww = self.x_label, self.w
        per_block = da.map_blocks(
            partial(_row_sums, t=t), states, xl, ww,
            dtype=SUMS_DTYPE, chunks=tuple((1,) * len(c) for c in states.chunks),
            meta=np.empty((0,) * states.ndim, dtype=SUMS_DTYPE),
        )
        total = da.reduction(
            per_block,
            _sums_chunk,
            _sums_combine,
            combine=_sums_combine,
            axis=None,
            keepdims=False,
            dtype=SUMS_DTYPE,
            split_every=self.split_every,
            concatenate=True,
            meta=np.empty((), dtype=SUMS_DTYPE),
            name="softmax-nll-sums",
        ).compute()
        value = ObjectiveValue(float(total["f"]), float(total["df"]), float(total["d2f"]),
                               float(total["w"]), None)
        if not (math.isfinite(value.f) and math.isfinite(value.df) and math.isfinite(value.d2f)):
            raise ValueError(
                f"logits must give a finite NLL at T = {math.exp(u):.6g}, got f = {value.f}: "
                "every logit must be finite where it is not masked (NaN or +inf found, or -inf "
                "on a label's class, or a row with every class masked)"
            )
        return value
