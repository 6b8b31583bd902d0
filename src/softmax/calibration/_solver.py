"""The 1-D solver behind `fit_temperature` and `TemperatureScaling.fit`.

The NLL is convex in 1/T, so it has one minimum; the solver runs a
safeguarded Newton (Halley when the third derivative is known) iteration
on u = log T from u = 0 (T = 1), with the exact derivatives of
`softmax.calibration._objective`, bisecting when a step is unsafe.
`fit` checks nothing: its callers check their arguments once.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ._inputs import DaskScores, Scores, log_probs
from ._objective import DaskObjective, NumpyObjective, ObjectiveValue

Objective = Callable[[float], ObjectiveValue]

# Relative tolerance on T (an absolute one on u = log T).
_TOL_U = 1e-6
_MAX_EVALUATIONS = 100


class Solution(NamedTuple):
    u: float
    f: float
    f0: float
    total_weight: float
    converged: bool
    at_bound: bool
    evaluations: int
    message: str


def minimize_log_temperature(objective: Objective, lo: float, hi: float) -> Solution:
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
        f, g, h, w, h3 = res.f, res.df, res.d2f, res.total_weight, res.d3f
        if not (math.isfinite(f) and math.isfinite(g) and math.isfinite(h)):
            raise ValueError(
                f"logits must give a finite NLL at T = {math.exp(u):.6g}, got f={f}, f'={g}"
            )
        if evaluation == 1:
            f0 = f
        if f <= best_f:
            best_u, best_f = u, f

        def done(u_end: float, f_end: float, converged: bool, at_bound: bool,
                 message: str) -> Solution:
            # The T = 1 fallback: never hand back something worse than no scaling.
            if f_end > f0:
                return Solution(0.0, f0, f0, w, converged, False, evaluation,
                                 message + "; T = 1 kept (no improvement)")
            return Solution(u_end, f_end, f0, w, converged, at_bound, evaluation, message)

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
    return Solution(best_u, best_f, f0, w, False, False, _MAX_EVALUATIONS,
                     f"not converged after {_MAX_EVALUATIONS} evaluations; best T returned")


class Fit(NamedTuple):
    """A solved fit, in the units the estimator records."""

    temperature: float
    nll_before: float | None  # None: infinite (JSON has no infinity)
    nll_after: float | None
    converged: bool
    iterations: int
    at_bound: bool
    message: str
    bounds: tuple[float, float]
    n_samples: int


def _objective(checked: Scores | DaskScores) -> tuple[Objective, int]:
    objective: Objective
    if isinstance(checked, DaskScores):
        objective = DaskObjective(checked)
        n_samples = checked.n_samples
    else:
        rows = checked.rows
        if checked.kind == "probs":
            # log p are logits of p; p = 0 is the logit -inf (weight 0).
            rows = log_probs(rows)
            zero = ~np.isfinite(rows[np.arange(rows.shape[0]), checked.labels])
            if zero.any():
                i = int(np.flatnonzero(zero)[0])
                raise ValueError(
                    "probs must give each label a probability > 0 to fit a temperature, "
                    f"got 0 for label {checked.labels[i]} in sample {i}"
                )
        objective = NumpyObjective(rows, checked.labels, checked.weights)
        n_samples = rows.shape[0]
    return objective, n_samples


def fit(checked: Scores | DaskScores, bounds: tuple[float, float]) -> Fit:
    """Minimize the NLL of checked scores over T in `bounds`."""
    lo, hi = bounds
    objective, n_samples = _objective(checked)
    sol = minimize_log_temperature(objective, math.log(lo), math.log(hi))
    # The bounds themselves, not exp(log(bound)), which may be off by an ulp.
    t = lo if sol.u <= math.log(lo) else hi if sol.u >= math.log(hi) else math.exp(sol.u)
    return Fit(t, sol.f0 / sol.total_weight, sol.f / sol.total_weight, sol.converged,
               sol.evaluations, sol.at_bound, sol.message, (lo, hi), n_samples)


def evaluate(checked: Scores | DaskScores, temperature: float, bounds: tuple[float, float]) -> Fit:
    """The record of a given T: the NLL at T = 1 and at T (nothing fitted).

    An NLL that is infinite (T so small that a wrong label gets
    probability 0) is recorded as None, as JSON has no infinity.
    """
    if isinstance(checked, DaskScores):
        objective, n_samples = _objective(checked)
        at_one = objective(0.0)
        before = at_one.f / at_one.total_weight
        try:
            at_t = objective(math.log(temperature))
            after = at_t.f / at_t.total_weight
        except (OverflowError, ValueError):
            after = math.inf
    else:
        from .._functions import log_softmax  # the public function, exact at every T

        rows = log_probs(checked.rows) if checked.kind == "probs" else checked.rows
        n_samples = rows.shape[0]
        pick = (np.arange(n_samples), checked.labels)

        def mean_nll(t: float) -> float:
            lp = log_softmax(rows, axis=-1, temperature=t)[pick].astype(np.float64)
            return -float(np.average(lp, weights=checked.weights))

        before, after = mean_nll(1.0), mean_nll(temperature)
    return Fit(temperature, before if math.isfinite(before) else None,
               after if math.isfinite(after) else None, True, 0, False,
               "temperature given, not fitted", bounds, n_samples)
