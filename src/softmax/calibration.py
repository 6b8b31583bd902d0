"""Calibration: temperature scaling and the metrics that judge it.

The article's last point: softmax outputs are not guaranteed to be true
probabilities (modern networks are overconfident), so use them as
probabilities and calibrate when needed. Temperature scaling (Guo, Pleiss,
Sun, Weinberger, ICML 2017) divides every logit by one number T > 0 fitted on
held-out data; it never changes the predicted class.

Fitting T is a 1-D problem. The negative log-likelihood is convex in 1/T, so
it has one minimum; the fit runs a safeguarded Newton iteration on
u = log T with exact first and second derivatives, computed in float64 over
row blocks (memory O(N), no float64 copy of the logits, no one-hot matrix).

Metrics take logits (default) or probabilities (``input="probs"``): `nll`,
`brier`, `accuracy`, `ece` (equal-width or equal-mass bins, l1/l2/max norms,
the debiased l2 estimator of Kumar et al. 2019), `mce`, `classwise_ece`,
`reliability_curve` and `reliability_diagram` (matplotlib, optional extra).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from ._functions import softmax as _softmax
from ._arguments import as_float_array

__all__ = [
    "ReliabilityCurve",
    "TemperatureScaling",
    "accuracy",
    "brier",
    "classwise_ece",
    "ece",
    "fit_temperature",
    "mce",
    "nll",
    "reliability_curve",
    "reliability_diagram",
]

# Rows per block hold about this many logits: 2 float64 work buffers of
# 1 MiB each stay in cache while numpy makes its ~8 passes over a block.
_BLOCK_ELEMENTS = 1 << 17
# Relative tolerance on T (an absolute one on u = log T).
_TOL_U = 1e-6
_MAX_EVALUATIONS = 100
_FORMAT = "softmax.calibration.TemperatureScaling"


# ---------------------------------------------------------------- validation


def _is_dask(x) -> bool:
    return type(x).__module__.startswith("dask")


def _choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be {options}, got {value!r}")
    return value


def _positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _class_axis(axis, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int (the class axis), got {axis!r}")
    return np.lib.array_utils.normalize_axis_index(int(axis), ndim)


def _as_rows(scores, name: str, axis) -> tuple[np.ndarray, tuple[int, ...]]:
    """`scores` as a (rows, classes) array (a view when it can be) and the batch shape."""
    arr = as_float_array(scores, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a class axis, got a scalar")
    ax = _class_axis(axis, arr.ndim)
    k = arr.shape[ax]
    batch = arr.shape[:ax] + arr.shape[ax + 1 :]
    if k < 2:
        raise ValueError(
            f"{name} must have at least 2 classes along axis {axis}, got {k} "
            f"(shape {arr.shape}): with one class every probability is 1"
        )
    n = math.prod(batch)
    if n == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {arr.shape}")
    rows = np.moveaxis(arr, ax, -1).reshape(n, k)
    return rows, batch


def _as_labels(labels, batch: tuple[int, ...], k: int, name: str = "labels") -> np.ndarray:
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of integers, got dtype {lab.dtype}")
    if lab.shape != batch:
        raise ValueError(
            f"{name} must have shape {batch} (one label per sample), got shape {lab.shape}"
        )
    flat = lab.reshape(-1)
    bad = np.flatnonzero((flat < 0) | (flat >= k))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} must be class indices in [0, {k}), got {flat[i]} at index {i} "
            f"({bad.size} out of range)"
        )
    return flat.astype(np.intp, copy=False)


def _as_weights(weights, batch: tuple[int, ...]) -> np.ndarray | None:
    if weights is None:
        return None
    w = as_float_array(weights, "weights")
    if w.shape != batch:
        raise ValueError(f"weights must have shape {batch} (one per sample), got shape {w.shape}")
    w = w.reshape(-1).astype(np.float64, copy=False)
    if not np.isfinite(w).all() or (w < 0).any():
        i = int(np.flatnonzero(~(np.isfinite(w) & (w >= 0)))[0])
        raise ValueError(f"weights must be finite and >= 0, got {w[i]} at index {i}")
    if not w.sum() > 0:
        raise ValueError("weights must not all be 0, got a total weight of 0")
    return w


def _check_bounds(bounds) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high) of temperatures, got {bounds!r}") from None
    if not (0 < lo <= 1 <= hi < math.inf):
        raise ValueError(
            f"bounds must satisfy 0 < low <= 1 <= high < inf (T = 1 is the fallback), got {bounds!r}"
        )
    return lo, hi


def _blocks(n_rows: int, k: int):
    step = max(1, _BLOCK_ELEMENTS // k)
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _check_finite_block(block: np.ndarray, start: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Row max and min of a block; NaN or +-inf anywhere shows in one of them."""
    hi = block.max(axis=1)
    lo = block.min(axis=1)
    ok = np.isfinite(hi) & np.isfinite(lo)
    if not ok.all():
        r = int(np.flatnonzero(~ok)[0])
        row = block[r]
        bad = row[~np.isfinite(row)][0]
        raise ValueError(f"{name} must be finite, got {bad} in sample {start + r}")
    return hi, lo


# ------------------------------------------------------ the fit's objective


class _NumpyObjective:
    """Weighted NLL of softmax(z / e^u) and its first two u-derivatives.

    For one row with b = (z - max z) / T and p = softmax(b):

        NLL   = log sum_j e^{b_j} - b_y
        dNLL  = b_y - E_p[b]                       (d/du, T = e^u)
        d2NLL = Var_p[b] - dNLL

    e^{b_y} is taken out of the sum before adding it back, so that a row
    whose label is the arg max keeps log1p accuracy (NLL ~ 1e-20 stays
    visible instead of rounding to 0).
    """

    def __init__(self, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None):
        self.rows = rows
        self.labels = labels
        self.weights = weights
        n, k = rows.shape
        self.total_weight = float(n) if weights is None else float(weights.sum())
        self.zmax = np.empty(n, dtype=np.float64)
        self.zy = np.empty(n, dtype=np.float64)
        for start, stop in _blocks(n, k):
            block = rows[start:stop]
            # NaN and +-inf are caught by the first evaluation (they make
            # it non-finite), which saves a min pass here.
            self.zmax[start:stop] = block.max(axis=1)
            self.zy[start:stop] = block[np.arange(stop - start), labels[start:stop]]
        step = max(1, _BLOCK_ELEMENTS // k)
        self._buf_b = np.empty((min(step, n), k), dtype=np.float64)
        self._buf_e = np.empty_like(self._buf_b)
        self._ones = np.ones(k, dtype=np.float64)
        self.evaluations = 0

    def __call__(self, u: float) -> tuple[float, float, float, float, float]:
        """(f, df/du, d2f/du2, total weight, d3f/du3); f is a weighted sum."""
        self.evaluations += 1
        s = math.exp(-u)
        n, k = self.rows.shape
        f = g = h = h3 = 0.0
        # Non-finite logits turn the sums into NaN/inf, checked below.
        with np.errstate(invalid="ignore", over="ignore"):
            f, g, h, h3 = self._sums(s)
        if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
            self._raise_not_finite(u)
        return f, g, h, self.total_weight, h3

    def _sums(self, s: float) -> tuple[float, float, float, float]:
        n, k = self.rows.shape
        f = g = h = h3 = 0.0
        for start, stop in _blocks(n, k):
            m = stop - start
            r = np.arange(m)
            y = self.labels[start:stop]
            b = self._buf_b[:m]
            e = self._buf_e[:m]
            np.subtract(self.rows[start:stop], self.zmax[start:stop, None], out=b, dtype=np.float64)
            b *= s
            np.exp(b, out=e)
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

    def _raise_not_finite(self, u: float):
        n, k = self.rows.shape
        for start, stop in _blocks(n, k):
            _check_finite_block(self.rows[start:stop], start, "logits")
        raise ValueError(
            f"logits must be small enough in magnitude for a finite NLL at T = {math.exp(u):.6g}, "
            f"got a largest |logit| of {float(np.abs(self.zmax).max()):.3g}"
        )


class _Solution(NamedTuple):
    u: float
    f: float
    f0: float
    total_weight: float
    converged: bool
    at_bound: bool
    evaluations: int
    message: str


def _minimize_log_temperature(objective, lo: float, hi: float) -> _Solution:
    """Minimize a unimodal f(u) on [lo, hi], starting at u = 0 (T = 1).

    Newton steps inside a shrinking bracket [a, b] that holds the minimum
    (f' < 0 left of it, > 0 right of it); a step that leaves the bracket,
    meets f'' <= 0, or shrinks too slowly (the exponential tail of nearly
    separable data, where Newton crawls) is replaced by a probe of the bound
    on that side, then by bisection.
    """
    a, b = lo, hi
    a_seen = b_seen = False
    u = 0.0
    best_u, best_f = 0.0, math.inf
    f0 = math.nan
    prev_step = None
    for evaluation in range(1, _MAX_EVALUATIONS + 1):
        res = objective(u)
        f, g, h, w = res[:4]
        h3 = res[4] if len(res) > 4 else None
        if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
            raise ValueError(
                f"logits must give a finite NLL at T = {math.exp(u):.6g}, got f={f}, f'={g}"
            )
        if evaluation == 1:
            f0 = f
        if f <= best_f:
            best_u, best_f = u, f

        def done(u_end, f_end, converged, at_bound, message):
            # The T = 1 fallback: never hand back something worse than no scaling.
            if f_end > f0:
                return _Solution(0.0, f0, f0, w, converged, False, evaluation,
                                 message + "; T = 1 kept (no improvement)")
            return _Solution(u_end, f_end, f0, w, converged, at_bound, evaluation, message)

        if g == 0.0:
            return done(u, f, True, False, "converged: zero derivative")
        if g > 0:
            b, b_seen = u, True
        else:
            a, a_seen = u, True
        if u == lo and g > 0:
            return done(u, f, True, True,
                        f"at the lower bound T = {math.exp(lo):.6g}: the NLL still decreases as T "
                        "shrinks (the data are (nearly) separable: the predicted class is always "
                        "right); widen bounds to go further")
        if u == hi and g < 0:
            return done(u, f, True, True,
                        f"at the upper bound T = {math.exp(hi):.6g}: the NLL still decreases as T "
                        "grows (the logits carry little information about the labels); widen "
                        "bounds to go further")
        if b - a <= _TOL_U:
            return done(best_u, best_f, True, False, f"converged: bracket on T narrower than {_TOL_U:g} relative")

        newton = -g / h if h > 0 else None
        halley = False
        curve = math.inf
        if newton is not None and h3 is not None and math.isfinite(h3):
            curve = abs(h3 / (2.0 * h))
            # Halley's correction (cubic convergence) when it is a mild one.
            c = newton * h3 / (2.0 * h)
            if abs(c) < 0.5:
                newton = newton / (1.0 + c)
                halley = True
        if newton is not None and a <= u + newton <= b:
            # Error left after this step, estimated from the local Taylor
            # coefficients: ~ c^2 |step|^3 for Halley (taken with a 1000x
            # margin, as the 4th derivative is not known), c |step|^2 for
            # Newton, with c = |f3 / (2 f2)|.
            step = abs(newton)
            small = (
                step <= _TOL_U
                or curve * step**2 <= 0.1 * _TOL_U
                or (halley and (curve**2 + 1.0) * step**3 <= 1e-3 * _TOL_U)
            )
            if small:
                # Take the last step without another pass over the data; its
                # NLL from the Taylor model (error O(step^4), below the
                # rounding of the sum itself).
                step = newton
                f_end = f + step * (g + step * (0.5 * h + step * (h3 or 0.0) / 6.0))
                return done(u + step, f_end, True, False,
                            f"converged: last step in log T {abs(step):.1e}, error below {_TOL_U:g}")

        if newton is not None and a < u + newton < b:
            cand = u + newton
            slow = (
                prev_step is not None
                and (newton > 0) == (prev_step > 0)
                and abs(newton) > 0.5 * abs(prev_step)
            )
            if slow:
                if g > 0 and not a_seen:
                    cand = lo
                elif g < 0 and not b_seen:
                    cand = hi
        elif g > 0 and not a_seen and prev_step is not None:
            cand = lo
        elif g < 0 and not b_seen and prev_step is not None:
            cand = hi
        else:
            cand = 0.5 * (a + b)
        prev_step = cand - u
        u = cand
    return _Solution(best_u, best_f, f0, w, False, False, _MAX_EVALUATIONS,
                     f"not converged after {_MAX_EVALUATIONS} evaluations; best T returned")


# ----------------------------------------------------------- the fitted T


@dataclass(frozen=True)
class TemperatureScaling:
    """A fitted temperature: ``softmax(logits / temperature)`` is calibrated.

    Returned by `fit_temperature`; can also be built from a known T
    (``TemperatureScaling(2.0)``), saved to and loaded from JSON.

    Attributes
    ----------
    temperature : float
        T > 0. Above 1 softens overconfident predictions, below 1 sharpens.
    nll_before, nll_after : float or None
        Mean (weighted) negative log-likelihood on the fitted data at T = 1
        and at `temperature`, in nats.
    converged : bool
        The fit met its tolerance (1e-6 relative on T), or stopped at a
        bound for a reason given in `message`.
    iterations : int
        Passes over the data (objective evaluations), including T = 1.
    at_bound : bool
        The NLL still decreased at the edge of `bounds`: T is that bound.
    message : str
        How the fit ended, in words.
    bounds : tuple of float or None
        The (low, high) range searched.
    n_samples : int or None
        Number of samples fitted.
    """

    temperature: float
    nll_before: float | None = None
    nll_after: float | None = None
    converged: bool = True
    iterations: int = 0
    at_bound: bool = False
    message: str = ""
    bounds: tuple[float, float] | None = None
    n_samples: int | None = None

    def __post_init__(self):
        t = self.temperature
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real) or not (0 < t < math.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {t!r}")
        object.__setattr__(self, "temperature", float(t))

    def transform_logits(self, logits):
        """Scaled logits ``logits / temperature`` (dtype kept).

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).transform_logits([4.0, 2.0, 0.0])
        array([2., 1., 0.])
        """
        if _is_dask(logits) or (not isinstance(logits, np.ndarray) and hasattr(logits, "__array_namespace__")):
            return logits / self.temperature
        arr = as_float_array(logits, "logits")
        return arr / arr.dtype.type(self.temperature)

    def transform(self, logits, axis=-1):
        """Calibrated probabilities ``softmax(logits / temperature, axis)``.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).transform([4.0, 2.0, 0.0]).round(4)
        array([0.6652, 0.2447, 0.09  ])
        """
        return _softmax(logits, axis, temperature=self.temperature)

    def to_dict(self) -> dict:
        """A JSON-safe dict (plain floats, ints, bools, strings, lists).

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(1.5).to_dict()["temperature"]
        1.5
        """
        d = asdict(self)
        d["bounds"] = None if self.bounds is None else [float(b) for b in self.bounds]
        return {"format": _FORMAT, "version": 1, **d}

    @classmethod
    def from_dict(cls, data: dict) -> "TemperatureScaling":
        """Inverse of `to_dict`; unknown keys are ignored.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> ts = TemperatureScaling(1.5, nll_before=0.4, nll_after=0.3)
        >>> TemperatureScaling.from_dict(ts.to_dict()) == ts
        True
        """
        if not isinstance(data, dict) or "temperature" not in data:
            raise ValueError(f"data must be a dict with a 'temperature' entry, got {data!r}")
        fmt = data.get("format", _FORMAT)
        if fmt != _FORMAT:
            raise ValueError(f"data must be in format {_FORMAT!r}, got {fmt!r}")
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if fields.get("bounds") is not None:
            fields["bounds"] = tuple(float(b) for b in fields["bounds"])
        return cls(**fields)

    def save(self, path) -> None:
        """Write `to_dict` as JSON to `path`.

        Examples
        --------
        >>> import os, tempfile
        >>> from softmax.calibration import TemperatureScaling
        >>> path = os.path.join(tempfile.mkdtemp(), "temperature.json")
        >>> TemperatureScaling(1.5).save(path)
        >>> TemperatureScaling.load(path).temperature
        1.5
        """
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        with open(os.fspath(path), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")

    @classmethod
    def load(cls, path) -> "TemperatureScaling":
        """Read a JSON file written by `save`; errors name the file.

        Examples
        --------
        See `save`.
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a temperature file (invalid JSON: {exc})") from None
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None


def fit_temperature(logits, labels, *, axis=-1, bounds=(1e-2, 1e2), weights=None) -> TemperatureScaling:
    """Fit the temperature T that minimizes the NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al. 2017): one T > 0 for all samples,
    fitted on held-out data. It never changes the predicted class.

    Parameters
    ----------
    logits : array_like or dask array
        Pre-softmax scores, classes along `axis`. Must be finite.
    labels : array_like of int
        True class of each sample, shaped like `logits` without `axis`.
    axis : int, optional
        The class axis. Default: the last.
    bounds : (float, float), optional
        Range searched for T, with ``low <= 1 <= high``. Default (0.01, 100).
    weights : array_like, optional
        Non-negative weight per sample (default: all 1).

    Returns
    -------
    TemperatureScaling
        The fitted T and how the fit went (`nll_before`, `nll_after`,
        `converged`, `iterations`, `at_bound`, `message`).

    Raises
    ------
    ValueError
        Labels out of range, non-finite logits, mismatched shapes, fewer
        than two classes, no samples.

    Notes
    -----
    The objective is convex in 1/T, so it has a single minimum. The fit
    runs a safeguarded Newton iteration on u = log T with exact
    derivatives (float64 sums over row blocks: memory O(N), no float64
    copy of the logits), bisecting when a step is unsafe, to 1e-6
    relative on T; there is no learning rate or iteration count to tune.
    Perfectly separable data have no finite minimum (the NLL keeps
    shrinking as T -> 0): the fit stops at the lower bound and says so
    (``at_bound=True``). The returned T never has a larger NLL on the
    fitted data than T = 1.

    Dask arrays are fitted through ``softmax._dask.temperature_objective``
    (one reduction over the chunks per iteration).

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern
    Neural Networks", ICML 2017.

    Examples
    --------
    Logits from a calibrated model, made three times too confident:

    >>> import numpy as np
    >>> from softmax.calibration import fit_temperature
    >>> rng = np.random.default_rng(0)
    >>> calibrated = rng.normal(size=(2000, 5))
    >>> p = np.exp(calibrated) / np.exp(calibrated).sum(1, keepdims=True)
    >>> labels = (rng.random((2000, 1)) > p.cumsum(1)).sum(1)
    >>> ts = fit_temperature(3.0 * calibrated, labels)
    >>> round(ts.temperature, 1), ts.converged
    (3.0, True)
    >>> bool(ts.nll_after < ts.nll_before)
    True
    >>> ts.transform(3.0 * calibrated[:1]).round(3)
    array([[0.202, 0.156, 0.341, 0.198, 0.103]])

    Separable data: T runs to the lower bound, and the result says so.

    >>> ts = fit_temperature([[5.0, 0.0], [0.0, 5.0]], [0, 1])
    >>> ts.temperature, ts.at_bound
    (0.01, True)
    """
    lo, hi = _check_bounds(bounds)
    if _is_dask(logits):
        from ._backends.dask import temperature_objective

        objective = temperature_objective(logits, labels, axis=_class_axis(axis, logits.ndim),
                                          weights=weights)
        n_samples = None
    else:
        rows, batch = _as_rows(logits, "logits", axis)
        y = _as_labels(labels, batch, rows.shape[1])
        w = _as_weights(weights, batch)
        objective = _NumpyObjective(rows, y, w)
        n_samples = rows.shape[0]
    sol = _minimize_log_temperature(objective, math.log(lo), math.log(hi))
    if n_samples is None:
        n_samples = getattr(objective, "n_samples", None)
    # The bounds themselves, not exp(log(bound)), which may be off by an ulp.
    t = lo if sol.u <= math.log(lo) else hi if sol.u >= math.log(hi) else math.exp(sol.u)
    return TemperatureScaling(
        temperature=t,
        nll_before=sol.f0 / sol.total_weight,
        nll_after=sol.f / sol.total_weight,
        converged=sol.converged,
        iterations=sol.evaluations,
        at_bound=sol.at_bound,
        message=sol.message,
        bounds=(lo, hi),
        n_samples=n_samples,
    )


# ------------------------------------------------------------------ metrics


class _RowStats(NamedTuple):
    confidence: np.ndarray  # top-label probability, float64
    correct: np.ndarray  # arg max == label
    nll: np.ndarray  # -log p_label
    brier: np.ndarray  # sum_k (p_k - [k == label])^2


def _prob_tolerance(dtype: np.dtype, k: int) -> float:
    return max(1e-6, 4.0 * k * float(np.finfo(dtype).eps))


def _row_stats(scores, labels, input, axis) -> _RowStats:
    """Per-sample confidence, correctness, NLL and Brier score, by row blocks."""
    kind = _choice(input, "input", ("logits", "probs"))
    name = "logits" if kind == "logits" else "probs"
    rows, batch = _as_rows(scores, name, axis)
    n, k = rows.shape
    y = _as_labels(labels, batch, k)
    conf = np.empty(n)
    correct = np.empty(n, dtype=bool)
    nll_rows = np.empty(n)
    brier_rows = np.empty(n)
    tol = _prob_tolerance(rows.dtype, k)
    for start, stop in _blocks(n, k):
        block = rows[start:stop]
        r = np.arange(stop - start)
        yb = y[start:stop]
        hi, lo = _check_finite_block(block, start, name)
        correct[start:stop] = block.argmax(axis=1) == yb
        if kind == "logits":
            c = np.subtract(block, hi[:, None], dtype=np.float64)
            e = np.exp(c)
            cy = c[r, yb]
            ey = e[r, yb].copy()
            total = e.sum(axis=1)
            sum_p2 = np.einsum("ij,ij->i", e, e) / (total * total)
            e[r, yb] = 0.0
            rest = e.sum(axis=1)
            conf[start:stop] = 1.0 / total
            nll_rows[start:stop] = np.log1p(rest + (ey - 1.0)) - cy
            py = ey / total
        else:
            if (lo < 0).any() or (hi > 1).any():
                i = int(np.flatnonzero((lo < 0) | (hi > 1))[0])
                raise ValueError(
                    f"probs must lie in [0, 1], got {block[i].min() if lo[i] < 0 else block[i].max()} "
                    f"in sample {start + i}"
                )
            p = block.astype(np.float64)
            sums = p.sum(axis=1)
            off = np.abs(sums - 1.0) > tol
            if off.any():
                i = int(np.flatnonzero(off)[0])
                raise ValueError(
                    f"probs must sum to 1 along the class axis (within {tol:.1e}), got "
                    f"{float(sums[i])!r} in sample {start + i}; pass logits with input='logits' "
                    "or normalize first"
                )
            py = p[r, yb]
            conf[start:stop] = hi
            sum_p2 = np.einsum("ij,ij->i", p, p)
            with np.errstate(divide="ignore"):
                nll_rows[start:stop] = -np.log(py)
        brier_rows[start:stop] = sum_p2 - 2.0 * py + 1.0
    return _RowStats(conf, correct, nll_rows, np.maximum(brier_rows, 0.0))


_INPUT_DOC = """scores : array_like
        Logits (default) or probabilities, classes along `axis`.
    labels : array_like of int
        True class of each sample, shaped like `scores` without `axis`.
    input : {"logits", "probs"}, optional
        What `scores` holds. Probabilities must lie in [0, 1] and sum to 1
        along `axis` (within a few ulp per class); they are not
        renormalized.
    axis : int, optional
        The class axis. Default: the last."""


def nll(scores, labels, *, input="logits", axis=-1):
    """Mean negative log-likelihood of the labels (natural log, nats).

    Parameters
    ----------
    {input_doc}

    Returns
    -------
    float
        ``mean(-log p[label])``; ``inf`` if some label has probability 0.

    Examples
    --------
    >>> from softmax.calibration import nll
    >>> round(nll([[2.0, 1.0, 0.1]], [0]), 4)   # -log 0.659
    0.417
    >>> round(nll([[0.5, 0.5], [0.25, 0.75]], [0, 1], input="probs"), 4)
    0.4904
    """
    return float(_row_stats(scores, labels, input, axis).nll.mean())


def brier(scores, labels, *, input="logits", axis=-1):
    """Mean multiclass Brier score: ``mean(sum_k (p_k - [k == label])**2)``.

    Between 0 (certain and right) and 2 (certain and wrong).

    Parameters
    ----------
    {input_doc}

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import brier
    >>> float(brier([[0.5, 0.5], [0.25, 0.75]], [0, 1], input="probs"))
    0.3125
    """
    return float(_row_stats(scores, labels, input, axis).brier.mean())


def accuracy(scores, labels, *, input="logits", axis=-1):
    """Fraction of samples whose arg max is the label (ties: the first).

    Parameters
    ----------
    {input_doc}

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import accuracy
    >>> float(accuracy([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]], [0, 1, 1]))
    0.6666666666666666
    """
    return float(_row_stats(scores, labels, input, axis).correct.mean())


class ReliabilityCurve(NamedTuple):
    """Per-bin summary behind a reliability diagram.

    Attributes
    ----------
    edges : ndarray, shape (n + 1,)
        Bin edges; bin i holds confidences in ``(edges[i], edges[i+1]]``
        (the first bin also holds ``edges[0]``).
    confidence : ndarray, shape (n,)
        Mean confidence in each bin (NaN for an empty bin).
    accuracy : ndarray, shape (n,)
        Fraction correct in each bin (NaN for an empty bin).
    counts : ndarray of int, shape (n,)
        Samples per bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray


def _bin_edges(conf: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    # Equal mass: split the sorted confidences into n_bins runs of sizes as
    # in np.array_split. A bin must be a confidence interval, so a split
    # that falls inside a run of tied values moves to the nearest place
    # where the value changes; splits that meet are merged (fewer bins).
    s = np.sort(conf)
    n = s.size
    sizes = np.full(n_bins, n // n_bins)
    sizes[: n % n_bins] += 1
    targets = np.cumsum(sizes)[:-1]
    changes = np.flatnonzero(s[1:] != s[:-1]) + 1  # s[p - 1] < s[p]
    if changes.size == 0 or targets.size == 0:
        return np.array([0.0, 1.0])
    k = np.searchsorted(changes, targets)
    below = changes[np.maximum(k - 1, 0)]
    above = changes[np.minimum(k, changes.size - 1)]
    nearest = np.where(np.abs(targets - below) <= np.abs(above - targets), below, above)
    inner = s[nearest - 1]  # right-closed bins: the last value of the lower bin
    return np.unique(np.concatenate(([0.0], inner, [1.0])))


def _binned(conf, target, n_bins, strategy):
    """Edges, counts, sums of confidence and of target per bin."""
    n_bins = _positive_int(n_bins, "n_bins")
    strategy = _choice(strategy, "strategy", ("uniform", "quantile"))
    edges = _bin_edges(conf, n_bins, strategy)
    nb = edges.size - 1
    # Right-closed bins (lo, hi], as in Guo et al.; 0 joins the first bin.
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, nb - 1)
    counts = np.bincount(index, minlength=nb)
    sum_conf = np.bincount(index, weights=conf, minlength=nb)
    sum_target = np.bincount(index, weights=target.astype(np.float64), minlength=nb)
    return edges, counts, sum_conf, sum_target


def _calibration_error(counts, sum_conf, sum_target, norm, debias):
    n = counts.sum()
    full = counts > 0
    cnt = counts[full].astype(np.float64)
    conf = sum_conf[full] / cnt
    acc = sum_target[full] / cnt
    gap = np.abs(acc - conf)
    weight = cnt / n
    if norm == "max":
        return float(gap.max())
    if norm == "l1":
        return float(weight @ gap)
    sq = gap * gap
    if debias:
        # Kumar et al. 2019: the plug-in squared gap overestimates by the
        # variance of the bin's mean label, acc (1 - acc) / (n_b - 1).
        many = cnt > 1
        sq = np.where(many, sq - acc * (1.0 - acc) / np.where(many, cnt - 1.0, 1.0), 0.0)
        return math.sqrt(max(float(weight @ sq), 0.0))
    return math.sqrt(float(weight @ sq))


def ece(scores, labels, *, input="logits", axis=-1, n_bins=15, strategy="uniform", norm="l1",
        debias=False):
    """Top-label expected calibration error.

    Samples are binned by confidence (the largest probability); the error
    is the bin-size-weighted gap between accuracy and mean confidence.

    Parameters
    ----------
    {input_doc}
    n_bins : int, optional
        Number of bins (default 15, as in Guo et al.).
    strategy : {{"uniform", "quantile"}}, optional
        Equal-width bins on [0, 1], or equal-mass bins (about the same
        number of samples each; tied confidences are never split, so there
        may be fewer bins).
    norm : {{"l1", "l2", "max"}}, optional
        ``l1``: sum_b (n_b/N) |acc_b - conf_b| (the usual ECE);
        ``l2``: sqrt(sum_b (n_b/N) (acc_b - conf_b)^2);
        ``max``: max_b |acc_b - conf_b| (the MCE).
    debias : bool, optional
        With ``norm="l2"``: subtract each bin's sampling variance
        ``acc_b (1 - acc_b) / (n_b - 1)`` from its squared gap before the
        root (Kumar, Liang, Ma 2019), clipped at 0; bins with one sample
        count 0.

    Returns
    -------
    float

    Notes
    -----
    Bins are right-closed, ``(lo, hi]``, as in Guo et al.'s code; a
    confidence of exactly 0 falls in the first bin and 1 in the last.

    References
    ----------
    A. Kumar, P. Liang, T. Ma, "Verified Uncertainty Calibration",
    NeurIPS 2019.

    Examples
    --------
    Two samples at confidence 0.9, one right, one wrong: gap 0.4.

    >>> from softmax.calibration import ece
    >>> float(ece([[0.9, 0.1], [0.9, 0.1]], [0, 1], input="probs"))
    0.4
    >>> float(ece([[0.9, 0.1], [0.6, 0.4]], [0, 1], input="probs", norm="max"))
    0.6
    """
    norm = _choice(norm, "norm", ("l1", "l2", "max"))
    if debias and norm != "l2":
        raise ValueError(f"debias=True needs norm='l2' (the estimator is for the squared error), got norm={norm!r}")
    st = _row_stats(scores, labels, input, axis)
    _, counts, sc, sa = _binned(st.confidence, st.correct, n_bins, strategy)
    return _calibration_error(counts, sc, sa, norm, bool(debias))


def mce(scores, labels, *, input="logits", axis=-1, n_bins=15, strategy="uniform"):
    """Maximum calibration error: the largest per-bin gap (`ece` with ``norm="max"``).

    Parameters
    ----------
    {input_doc}
    n_bins, strategy
        As for `ece`.

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import mce
    >>> float(mce([[0.9, 0.1], [0.6, 0.4]], [0, 1], input="probs"))
    0.6
    """
    return ece(scores, labels, input=input, axis=axis, n_bins=n_bins, strategy=strategy, norm="max")


def classwise_ece(scores, labels, *, input="logits", axis=-1, n_bins=15, strategy="uniform"):
    """Class-wise ECE: the mean over classes of each class's ECE.

    For class k every sample counts, binned by p_k, against the indicator
    ``label == k`` (Kull et al. 2019). Needs the full probability matrix
    in float64 (N x K).

    Parameters
    ----------
    {input_doc}
    n_bins, strategy
        As for `ece`; probabilities of exactly 0 fall in the first bin.

    Returns
    -------
    float

    Examples
    --------
    >>> from softmax.calibration import classwise_ece
    >>> float(classwise_ece([[0.9, 0.1], [0.9, 0.1]], [0, 1], input="probs"))
    0.4
    """
    kind = _choice(input, "input", ("logits", "probs"))
    st = _row_stats(scores, labels, kind, axis)  # validates everything
    rows, batch = _as_rows(scores, "logits" if kind == "logits" else "probs", axis)
    y = _as_labels(labels, batch, rows.shape[1])
    p = _softmax(rows.astype(np.float64), -1) if kind == "logits" else rows.astype(np.float64)
    del st
    total = 0.0
    k = rows.shape[1]
    for cls in range(k):
        _, counts, sc, sa = _binned(p[:, cls], y == cls, n_bins, strategy)
        total += float(_calibration_error(counts, sc, sa, "l1", False))
    return total / k


def _summary(scores, labels, *, n_bins=15, strategy="uniform", input="logits", axis=-1) -> dict:
    """Accuracy, NLL, ECE, MCE and Brier from one pass (for the command line)."""
    st = _row_stats(scores, labels, input, axis)
    _, counts, sc, sa = _binned(st.confidence, st.correct, n_bins, strategy)
    return {
        "accuracy": float(st.correct.mean()),
        "nll": float(st.nll.mean()),
        "ece": _calibration_error(counts, sc, sa, "l1", False),
        "mce": _calibration_error(counts, sc, sa, "max", False),
        "brier": float(st.brier.mean()),
    }


def reliability_curve(scores, labels, *, input="logits", axis=-1, n_bins=15, strategy="uniform"):
    """Per-bin mean confidence, accuracy and count of the top label.

    Parameters
    ----------
    {input_doc}
    n_bins, strategy
        As for `ece`.

    Returns
    -------
    ReliabilityCurve
        ``(edges, confidence, accuracy, counts)``; empty bins have NaN
        confidence and accuracy.

    Examples
    --------
    >>> from softmax.calibration import reliability_curve
    >>> c = reliability_curve([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7]], [0, 1, 1],
    ...                       input="probs", n_bins=2)
    >>> c.counts, c.accuracy
    (array([0, 3]), array([       nan, 0.66666667]))
    """
    st = _row_stats(scores, labels, input, axis)
    edges, counts, sc, sa = _binned(st.confidence, st.correct, n_bins, strategy)
    full = counts > 0
    conf = np.full(counts.shape, np.nan)
    acc = np.full(counts.shape, np.nan)
    conf[full] = sc[full] / counts[full]
    acc[full] = sa[full] / counts[full]
    return ReliabilityCurve(edges, conf, acc, counts)


def reliability_diagram(scores, labels, *, calibrated=None, input="logits", axis=-1, n_bins=15,
                        strategy="uniform", path=None, ax=None, title=None):
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    Bars show each bin's accuracy, a hatched band the gap to perfect
    calibration, the numbers the samples per bin; the ECE is in the title.
    Needs matplotlib (``pip install 'softmax[plot]'``); drawn with the Agg
    backend without touching pyplot's global state.

    Parameters
    ----------
    {input_doc}
    calibrated : array_like or TemperatureScaling, optional
        A second set of scores for the same samples (same `input` kind), or
        a fitted `TemperatureScaling` to apply to logit `scores`. Draws
        "before" and "after" side by side with both ECEs.
    n_bins, strategy
        As for `ece`.
    path : str or path-like, optional
        Save the figure there (format from the suffix, e.g. ``.png``).
    ax : matplotlib Axes or pair of Axes, optional
        Draw into these (two when `calibrated` is given) instead of a new
        figure.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from softmax.calibration import fit_temperature, reliability_diagram
    >>> rng = np.random.default_rng(0)
    >>> logits = 4 * rng.normal(size=(500, 3))
    >>> labels = rng.integers(0, 3, size=500)
    >>> fig = reliability_diagram(logits, labels, calibrated=fit_temperature(logits, labels))
    >>> len(fig.axes) >= 2
    True
    """
    try:
        from . import _calibration_plot
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reliability_diagram needs matplotlib: pip install 'softmax[plot]' ({exc})"
        ) from None
    return _calibration_plot.reliability_diagram(
        scores, labels, calibrated=calibrated, input=input, axis=axis, n_bins=n_bins,
        strategy=strategy, path=path, ax=ax, title=title,
    )


for _f in (nll, brier, accuracy, ece, mce, classwise_ece, reliability_curve, reliability_diagram):
    _f.__doc__ = _f.__doc__.format(input_doc=_INPUT_DOC)
del _f
