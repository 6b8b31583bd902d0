"""Argument checks for softmax.calibration: every message of the subpackage lives here.

Each public function calls one ``check_*`` here, once, at its entry; the
objective, the solver and the metrics trust what they receive.

Scores are brought into one shape: a 2-D ``(rows, classes)`` array in the
caller's floating dtype. Binary scores (one number per sample: the positive
class) become the two-class form, ``[0, z]`` for a logit ``z`` and
``[1 - p, p]`` for a probability ``p``. Excluded classes (``numpy.ma`` masks,
``where=False``) become ``-inf`` logits or probability 0; a row with no class
left, or whose label or weight is masked, is dropped.

Messages follow ``<argument> must be <expectation>, got <value>``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple, cast

import numpy as np

from .._arguments import as_float_array, library_of
from .._typing import Array, FloatArray, NDArray

Input = Literal["logits", "probs"]
Strategy = Literal["uniform", "quantile"]

# Rows per block hold about this many scores: a few float64 work buffers of
# 1 MiB each stay in cache while NumPy makes its passes over a block.
BLOCK_ELEMENTS = 1 << 17


def blocks(n_rows: int, k: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of row blocks of about BLOCK_ELEMENTS scores."""
    step = max(1, BLOCK_ELEMENTS // max(k, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


class Scores(NamedTuple):
    """Checked scores and labels, ready for the objective and the metrics."""

    rows: FloatArray  # (n, k), float dtype of the input; excluded: -inf (logits) / 0 (probs)
    labels: NDArray[np.intp]  # (n,) intp in [0, k)
    weights: FloatArray | None  # (n,) float64, max 1 (scaled), or None
    kind: str  # "logits" or "probs"
    binary: bool  # given as (N,) scores of the positive class
    n_features: int  # size of the class axis as given (1 when binary)
    excluded: bool  # some entries are excluded (-inf / 0)
    n_dropped: int  # rows left out (masked label or weight, no class left)


# ------------------------------------------------------------ small options


def is_dask(x: Any) -> bool:
    return library_of(x) == "dask"  # the package's one detector


def choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be {options}, got {value!r}")
    return value


def check_input(value: Any) -> Input:
    return cast(Input, choice(value, "input", ("logits", "probs")))


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_axis(axis: Any) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int (the class axis), got {axis!r}")
    return int(axis)


def check_bins(n_bins: Any, strategy: Any) -> tuple[int, Strategy]:
    return positive_int(n_bins, "n_bins"), cast(Strategy, choice(strategy, "strategy",
                                                                 ("uniform", "quantile")))


def check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high) of temperatures, got {bounds!r}") from None
    if not (0 < lo <= 1 <= hi < math.inf):
        raise ValueError(
            f"bounds must satisfy 0 < low <= 1 <= high < inf (T = 1 is the fallback), got {bounds!r}"
        )
    return lo, hi


def check_temperature(t: Any, name: str = "temperature") -> float:
    # typeshed's numbers.Real declares no comparison with an int
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real) or not (
            0 < t < math.inf):  # type: ignore[operator]
        raise ValueError(f"{name} must be a finite number > 0, got {t!r}")
    return float(t)


def prob_tolerance(dtype: np.dtype[Any], k: int) -> float:
    """How far from 1 a row of probabilities may sum: a few rounding errors per class."""
    return max(1e-6, 4.0 * k * float(np.finfo(dtype).eps))


# ------------------------------------------------------------------ labels


def _labels(labels: Any, shape: tuple[int, ...], k: int, binary: bool
            ) -> tuple[NDArray[np.intp], NDArray[np.bool] | None]:
    """Labels as a flat intp array, and the mask of masked labels (or None)."""
    masked = None
    if isinstance(labels, np.ma.MaskedArray):
        m = np.ma.getmaskarray(labels)
        masked = m.reshape(-1) if m.any() else None
        labels = np.ma.getdata(labels)
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iub":
        raise TypeError(f"labels must be an array of integers, got dtype {lab.dtype}")
    if lab.shape != shape:
        raise ValueError(
            f"labels must have shape {shape} (one label per sample), got shape {lab.shape}"
        )
    flat = lab.reshape(-1)
    if flat.dtype.kind == "b":
        flat = flat.astype(np.intp)
    live = flat if masked is None else flat[~masked]
    bad = np.flatnonzero((live < 0) | (live >= k))
    if bad.size:
        i = int(bad[0]) if masked is None else int(np.flatnonzero(~masked)[bad[0]])
        what = "0 or 1 (or bool) for binary scores" if binary else f"class indices in [0, {k})"
        raise ValueError(
            f"labels must be {what}, got {flat[i]} at index {i} ({bad.size} out of range)"
        )
    return flat.astype(np.intp, copy=False), masked


def _weights(weights: Any, shape: tuple[int, ...]
             ) -> tuple[FloatArray | None, NDArray[np.bool] | None]:
    """Weights as flat float64 (not yet scaled) and the mask of masked ones (or None)."""
    if weights is None:
        return None, None
    masked = None
    if isinstance(weights, np.ma.MaskedArray):
        m = np.ma.getmaskarray(weights)
        masked = m.reshape(-1) if m.any() else None
        weights = np.ma.getdata(weights)
    w = as_float_array(weights, "weights")
    if w.shape != shape:
        raise ValueError(f"weights must have shape {shape} (one per sample), got shape {w.shape}")
    w = w.reshape(-1).astype(np.float64, copy=False)
    bad = ~(np.isfinite(w) & (w >= 0))
    if masked is not None:
        bad &= ~masked
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"weights must be finite and >= 0, got {w[i]} at index {i}")
    return w, masked


def scale_weights(w: FloatArray) -> FloatArray | None:
    """Divide by the largest weight: the sum can neither overflow nor lose
    subnormal digits. Equal weights (of any size) are no weights: None."""
    top = float(w.max()) if w.size else 0.0
    if not top > 0:
        raise ValueError("weights must not all be 0, got a total weight of 0")
    if (w == top).all():
        return None
    return w / top


# ------------------------------------------------------------------ scores


def _rows_of(arr: NDArray[Any], axis: int, name: str) -> tuple[int, int, tuple[int, ...]]:
    """(rows, k, batch shape) with classes last."""
    if arr.ndim == 0:
        raise ValueError(
            f"{name} must have a class axis, or be a 1-D array of binary scores, got a scalar"
        )
    ax = np.lib.array_utils.normalize_axis_index(axis, arr.ndim)
    k = arr.shape[ax]
    batch = arr.shape[:ax] + arr.shape[ax + 1:]
    return ax, k, batch


def check_scores(scores: Any, labels: Any, *, input: Any = "logits", axis: Any = -1,
                 where: Any = None, weights: Any = None,
                 need_samples: bool = True) -> Scores:
    """Check scores, labels, where and weights together; see the module docstring."""
    kind = check_input(input)
    axis = check_axis(axis)
    name = kind
    mask = None
    if isinstance(scores, np.ma.MaskedArray):
        m = np.ma.getmaskarray(scores)
        mask = m if m.any() else None
        scores = np.ma.getdata(scores)
    arr = as_float_array(scores, name)
    binary = arr.ndim == 1
    if binary:
        if axis not in (0, -1):
            raise np.exceptions.AxisError(axis, 1)
        batch = arr.shape
        arr2 = arr[:, None]
        keep = None
        if where is not None or mask is not None:
            keep = _keep(where, mask, arr.shape)
            keep = None if keep is None else keep[:, None]
        k_given = 1
    else:
        ax, k_given, batch = _rows_of(arr, axis, name)
        if k_given < 2:
            raise ValueError(
                f"{name} must have at least 2 classes along axis {axis}, got {k_given} "
                f"(shape {arr.shape}): with one class every probability is 1"
            )
        keep = _keep(where, mask, arr.shape) if (where is not None or mask is not None) else None
        n = math.prod(batch)
        arr2 = np.moveaxis(arr, ax, -1).reshape(n, k_given)
        if keep is not None:
            keep = np.moveaxis(keep, ax, -1).reshape(n, k_given)
    n = arr2.shape[0]
    if need_samples and n == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {arr.shape}")
    k = 2 if binary else k_given
    y, y_masked = _labels(labels, batch, k, binary)
    w, w_masked = _weights(weights, batch)

    # Rows left out: a masked label or weight, or no class left.
    drop: NDArray[np.bool] | np.bool | None = None
    for dropped in (y_masked, w_masked):
        if dropped is not None:
            drop = dropped if drop is None else drop | dropped
    if keep is not None:
        empty = ~keep.any(axis=1)
        if empty.any():
            drop = empty if drop is None else drop | empty
    n_dropped = 0
    if drop is not None and drop.any():
        n_dropped = int(drop.sum())
        live = ~drop
        arr2, y = arr2[live], y[live]
        w = None if w is None else w[live]
        keep = None if keep is None else keep[live]
        if need_samples and arr2.shape[0] == 0:
            raise ValueError(
                f"{name} must keep at least one sample, got every sample masked "
                "(masked label or weight, or every class masked)"
            )
    if keep is not None and keep.all():
        keep = None
    if w is not None:
        w = scale_weights(w)

    _check_values(arr2, keep, kind, binary)
    if keep is not None:
        # The label's class must be kept (binary rows are one entry, kept).
        if not binary:
            hit = keep[np.arange(arr2.shape[0]), y]
            if not hit.all():
                i = int(np.flatnonzero(~hit)[0])
                raise ValueError(
                    f"labels must name a class that is not masked, got class {y[i]} in sample {i} "
                    "(masked or where=False)"
                )
    if binary:
        rows = _two_class(arr2[:, 0], kind)
    else:
        rows = arr2
        if keep is not None:
            rows = np.where(keep, arr2, arr2.dtype.type(-np.inf if kind == "logits" else 0.0))
    return Scores(rows, y, w, kind, binary, k_given, keep is not None, n_dropped)


def _keep(where: Any, mask: NDArray[np.bool] | None, shape: tuple[int, ...]
          ) -> NDArray[np.bool] | None:
    keep = None
    if where is not None:
        if isinstance(where, np.ma.MaskedArray):
            where = where.filled(False)
        wh = np.asarray(where)
        if wh.dtype != np.bool_:
            raise TypeError(f"where must be a boolean array, got dtype {wh.dtype}")
        try:
            keep = np.broadcast_to(wh, shape)
        except ValueError:
            raise ValueError(
                f"where must broadcast to the scores' shape {shape}, got shape {wh.shape}"
            ) from None
    if mask is not None:
        keep = ~mask if keep is None else keep & ~mask
    return keep


def log_probs(p: FloatArray) -> FloatArray:
    """log(p) as logits: probability 0 is the logit -inf (an excluded class)."""
    with np.errstate(divide="ignore"):
        return np.log(p)


def _two_class(v: FloatArray, kind: str) -> FloatArray:
    if kind == "logits":
        return np.stack([np.zeros_like(v), v], axis=1)
    return np.stack([1 - v, v], axis=1)


def _check_values(rows: FloatArray, keep: NDArray[np.bool] | None, kind: str,
                  binary: bool) -> None:
    """Finite where kept; probabilities are distributions; logits are not."""
    n, k = rows.shape
    tol = prob_tolerance(rows.dtype, 2 if binary else k)
    looks_like_probs = True
    for start, stop in blocks(n, k):
        block = rows[start:stop]
        kb = None if keep is None else keep[start:stop]
        fin = np.isfinite(block)
        bad = ~fin if kb is None else ~fin & kb
        if bad.any():
            r, c = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
            raise ValueError(f"{kind} must be finite, got {block[r, c]} in sample {start + r}")
        if kb is None:
            lo, hi = block.min(axis=1), block.max(axis=1)
            sums = None if binary else block.sum(axis=1, dtype=np.float64)
        else:
            lo = np.where(kb, block, np.inf).min(axis=1)
            hi = np.where(kb, block, -np.inf).max(axis=1)
            sums = np.where(kb, block, 0).sum(axis=1, dtype=np.float64)
        inside = (lo >= 0) & (hi <= 1)
        if kind == "probs":
            if not inside.all():
                i = int(np.flatnonzero(~inside)[0])
                raise ValueError(
                    f"probs must lie in [0, 1], got {lo[i] if lo[i] < 0 else hi[i]} "
                    f"in sample {start + i}"
                )
            if sums is not None:
                off = np.abs(sums - 1.0) > tol
                if off.any():
                    i = int(np.flatnonzero(off)[0])
                    raise ValueError(
                        f"probs must sum to 1 along the class axis (within {tol:.1e}), got "
                        f"{float(sums[i])!r} in sample {start + i}; pass logits with "
                        "input='logits', or normalize first"
                    )
        elif looks_like_probs:
            if sums is not None:
                inside &= np.abs(sums - 1.0) <= tol
            looks_like_probs = bool(inside.all())
    if kind == "logits" and looks_like_probs:
        if binary:
            raise ValueError(
                "logits must not all lie in [0, 1]: these look like probabilities of the positive "
                "class; pass input=\"probs\" (if they really are logits, pass the two-class form "
                "np.stack([np.zeros_like(z), z], axis=-1))"
            )
        raise ValueError(
            "logits must not be probabilities, got rows that all lie in [0, 1] and sum to 1 "
            f"(within {tol:.1e}); pass input=\"probs\" (if they really are logits, subtract "
            "each row's max first: softmax does not change)"
        )


# ------------------------------------------------------------------- Dask


class DaskScores(NamedTuple):
    x: Array  # dask array (rows..., k) float64, classes last; excluded -inf
    labels: Array  # dask array of intp, shape rows...
    weights: Array  # dask array of float64 (scaled to max 1)
    n_classes: int
    n_samples: int


def check_dask_scores(logits: Any, labels: Any, *, input: Any = "logits", axis: Any = -1,
                      where: Any = None, weights: Any = None) -> DaskScores:
    """The Dask counterpart of `check_scores` (labels, weights, class count).

    Computes the labels' and weights' min and max once. Rows are not
    dropped on Dask: a row with every class masked, or whose label's class
    is masked, makes the objective non-finite and the fit says so.
    """
    import dask.array as da

    kind = check_input(input)
    axis = check_axis(axis)
    x = logits if isinstance(logits, da.Array) else da.from_array(np.asarray(logits))
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{kind} must be an array of real numbers, got dtype {x.dtype}")
    if isinstance(getattr(x, "_meta", None), np.ma.MaskedArray):
        keep_m = ~da.ma.getmaskarray(x)
        x = da.ma.getdata(x)
        where = keep_m if where is None else da.logical_and(where, keep_m)
    binary = x.ndim == 1
    if x.ndim == 0:
        raise ValueError(f"{kind} must have a class axis, or be a 1-D array of binary scores, "
                         "got a scalar")
    x = x.astype(np.float64)
    if where is not None:
        wh = where if isinstance(where, da.Array) else np.asarray(where)
        if wh.dtype != np.bool_:
            raise TypeError(f"where must be a boolean array, got dtype {wh.dtype}")
        try:
            np.broadcast_shapes(wh.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"where must broadcast to the scores' shape {x.shape}, got shape {wh.shape}"
            ) from None
        x = da.where(wh, x, -np.inf if kind == "logits" else 0.0)
    if binary:
        if axis not in (0, -1):
            raise np.exceptions.AxisError(axis, 1)
        x = x[:, None]
        x = da.concatenate([da.zeros_like(x), x] if kind == "logits" else [1 - x, x], axis=1)
        ax = 1
    else:
        ax = np.lib.array_utils.normalize_axis_index(axis, x.ndim)
    x = da.moveaxis(x, ax, -1)
    if kind == "probs":
        x = x.map_blocks(log_probs, dtype=np.float64)
    rows, n_classes = x.shape[:-1], x.shape[-1]
    if n_classes < 2:
        raise ValueError(
            f"{kind} must have at least 2 classes along axis {axis}, got {n_classes} "
            f"(shape {x.shape}): with one class every probability is 1"
        )
    n = math.prod(rows)
    if n == 0:
        raise ValueError(f"{kind} must hold at least one sample, got shape {x.shape}")
    y = labels if isinstance(labels, da.Array) else da.from_array(np.asarray(labels))
    if y.dtype.kind not in "iub":
        raise TypeError(f"labels must be an array of integers, got dtype {y.dtype}")
    if y.shape != rows:
        raise ValueError(f"labels must have shape {rows} (one label per sample), got shape {y.shape}")
    y = y.astype(np.intp).rechunk(x.chunks[:-1])
    if weights is None:
        w = da.ones(rows, chunks=x.chunks[:-1], dtype=np.float64)
        lo, hi = da.compute(y.min(), y.max())
    else:
        w = weights if isinstance(weights, da.Array) else da.from_array(np.asarray(weights))
        if w.dtype.kind not in "biuf":
            raise TypeError(f"weights must be an array of real numbers, got dtype {w.dtype}")
        if w.shape != rows:
            raise ValueError(f"weights must have shape {rows} (one per sample), got shape {w.shape}")
        w = w.astype(np.float64).rechunk(x.chunks[:-1])
        lo, hi, wbad, wmax = da.compute(y.min(), y.max(), (~(da.isfinite(w) & (w >= 0))).any(),
                                        w.max())
        if wbad:
            raise ValueError("weights must be finite and >= 0, got a negative or non-finite weight")
        if not wmax > 0:
            raise ValueError("weights must not all be 0, got a total weight of 0")
        w = w / float(wmax)
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        what = "0 or 1 (or bool) for binary scores" if binary else f"class indices in [0, {n_classes})"
        raise ValueError(f"labels must be {what}, got {int(bad)}")
    return DaskScores(x, y, w, int(n_classes), int(n))
