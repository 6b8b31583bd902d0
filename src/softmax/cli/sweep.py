"""``softmax sweep``: how each share moves with the temperature.

All temperatures go through one library call: the max-shifted scores
``z - max(z)`` divided by every T form a 2-D array, and `softmax.softmax`
normalizes its rows. A million temperatures take well under a second.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import softmax as lib

from .args import (
    check_scale,
    dump_json,
    json_numbers,
    parse_scores,
    positive_int_arg,
    precision_arg,
)
from .fileio import replaced_on_success
from .status import ExitStatus, MissingDependency, UsageError, clip

__all__ = ["MAX_CELLS", "MAX_STEPS", "add_arguments", "run", "sweep", "temperatures"]

#: The most temperatures a sweep shows: beyond a million rows no table,
#: plot or JSON is read by anyone, and the work would only fill memory.
MAX_STEPS = 1_000_000
#: The most shares (temperatures x scores) computed at once: 80 MB of float64.
MAX_CELLS = 10_000_000
#: Plot formats, by the suffix of --plot (as for calibrate --plot).
PLOT_FORMATS = (".png", ".svg", ".pdf")

HELP = "how each share moves with the temperature (table, JSON, plot)"
DESCRIPTION = ("Softmax of the scores at a range of temperatures, softmax(z / T):\n"
               "small T approaches the hard max, large T the uniform distribution.")
EPILOG = f"""\
examples:
  softmax sweep cat=2 dog=1 rabbit=0.1
  softmax sweep cat=2 dog=1 rabbit=0.1 --temperatures 0.1:10 --steps 21
  softmax sweep cat=2 dog=1 rabbit=0.1 --temperatures 0,0.5,1,2,inf
  softmax sweep cat=2 dog=1 rabbit=0.1 --plot sweep.svg   (.png, .svg, .pdf)
  softmax sweep 2 1 0.1 --json

--temperatures LO:HI gives --steps temperatures spaced evenly on a log
scale (at most {MAX_STEPS:,}); a comma-separated list is taken as it is
(0 = hard max, inf = uniform). The plot has a log-scale temperature axis and
leaves out 0 and inf; its format follows the suffix (needs matplotlib).
--json: JSON has no inf or NaN; inf is written "inf", NaN null.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``softmax sweep``."""
    parser.add_argument("scores", nargs="*", metavar="SCORE",
                        help="LABEL=NUMBER or a bare NUMBER, as for softmax")
    parser.add_argument("--temperatures", default="0.1:10", metavar="LO:HI|T,T,...",
                        help="temperature range or list (default 0.1:10)")
    parser.add_argument("--steps", type=positive_int_arg, default=9, metavar="N",
                        help=f"temperatures in a LO:HI range (default 9, at most {MAX_STEPS:,})")
    parser.add_argument("--plot", metavar="FILE",
                        help="also draw the shares against T into FILE (.png, .svg or .pdf)")
    parser.add_argument("--precision", type=precision_arg, default=4, metavar="N",
                        help="decimals in the table (default 4)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")


def temperatures(spec: str, steps: int) -> np.ndarray:
    """``"LO:HI"`` (log-spaced, `steps` values) or ``"T1,T2,..."`` (as given)."""
    spec = spec.strip()
    if steps > MAX_STEPS:
        raise UsageError(f"--steps must be at most {MAX_STEPS:,} (no table or plot shows "
                         f"more), got {steps:,}" if steps < 10**30 else
                         f"--steps must be at most {MAX_STEPS:,}, got a {len(str(steps))}-digit number")
    if ":" in spec:
        lo_text, _, hi_text = spec.partition(":")
        try:
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            raise UsageError(
                f"--temperatures must be LO:HI or a comma-separated list, got {clip(spec)}"
            ) from None
        if not (0 < lo < hi < math.inf):
            raise UsageError(
                f"--temperatures LO:HI must have 0 < LO < HI < inf, got {clip(spec)}"
            )
        if steps == 1:
            return np.array([lo])
        with np.errstate(over="ignore", invalid="ignore"):
            temps = np.geomspace(lo, hi, steps)
        if not np.isfinite(temps).all():
            # Near the largest double geomspace's own arithmetic overflows: the
            # same log-spaced points from their logarithms, kept inside [lo, hi].
            temps = np.clip(np.exp(np.linspace(math.log(lo), math.log(hi), steps)), lo, hi)
            temps[0], temps[-1] = lo, hi
        return temps
    values = []
    for part in spec.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise UsageError(
                f"--temperatures must be LO:HI or a comma-separated list, got {clip(part.strip())}"
            ) from None
    if len(values) > MAX_STEPS:
        raise UsageError(f"--temperatures must list at most {MAX_STEPS:,} values, "
                         f"got {len(values):,}")
    for t in values:
        check_scale(t, None, temperature_option="--temperatures: temperature")
    return np.array(values)


def sweep(z: np.ndarray, temps: np.ndarray) -> np.ndarray:
    """``softmax(z, temperature=T)`` for every T in `temps`, as rows, in one call.

    The finite, positive temperatures share one 2-D array of max-shifted
    scores ``(z - max z) / T`` (every entry <= 0, so nothing overflows; a
    difference too large for a double is divided in halves, since for
    T > 1 its share need not be 0, and is -inf, whose share 0 is the limit,
    only where the quotient is beyond a double too), normalized row by row
    by a single `softmax.softmax` call. T = 0 (the hard max) and T = inf
    (uniform) are the library's own limits.

    Examples
    --------
    >>> sweep(np.array([2.0, 1.0, 0.1]), np.array([0.0, 1.0, np.inf])).round(4)
    array([[1.    , 0.    , 0.    ],
           [0.659 , 0.2424, 0.0986],
           [0.3333, 0.3333, 0.3333]])
    """
    z = np.asarray(z, dtype=np.float64)
    out = np.empty((len(temps), len(z)))
    regular = np.isfinite(temps) & (temps > 0)
    finite = np.isfinite(z)
    if regular.any():
        if finite.all():
            with np.errstate(over="ignore"):
                d = z - z.max()
                over = np.isinf(d)
                shifted = np.where(over, z / 2 - z.max() / 2, d)[None, :] / temps[regular, None]
                shifted = np.where(over, 2 * shifted, shifted)
            out[regular] = lib.softmax(shifted, axis=-1)
        else:
            # inf or nan among the scores: the library's rules, one T at a time
            # for the (few) temperatures of a sweep with such scores.
            out[regular] = [lib.softmax(z, temperature=float(t)) for t in temps[regular]]
    for t in (0.0, math.inf):
        rows = temps == t
        if rows.any():
            out[rows] = lib.softmax(z, temperature=t)
    return out


def run(args, env) -> ExitStatus:
    """The sweep table (or JSON), and the plot when asked."""
    scores = parse_scores(args.scores)
    temps = temperatures(args.temperatures, args.steps)
    if len(temps) * len(scores.values) > MAX_CELLS:
        raise UsageError(
            f"--steps {len(temps):,} x {len(scores.values):,} scores is more than "
            f"{MAX_CELLS:,} shares; sweep fewer temperatures or scores"
        )
    if args.plot:
        _check_plot_path(args.plot)
    probs = sweep(scores.values, temps)
    if args.plot:
        _plot(args.plot, scores.labels, temps, probs)
    stdout = env.stdout
    if args.json:
        obj = {
            "labels": scores.labels,
            "scores": json_numbers(scores.values),
            # JSON has no inf: the uniform limit's T is written "inf".
            "temperatures": json_numbers(temps),
            "probabilities": json_numbers(probs),
        }
        stdout.write(dump_json(obj) + "\n")
        return ExitStatus.SUCCESS
    stdout.write(_table(scores.labels, temps, probs, args.precision))
    return ExitStatus.SUCCESS


def _table(labels, temps, probs, digits: int) -> str:
    """The sweep table: one %-format per row (a million rows in about a second)."""
    # T as fmt_short writes it (4 significant digits), shares as fmt_number
    # (fixed point; "+ 0.0" turns a -0.0 into 0.0, never "-0.0000").
    t_cells = ["%.4g" % t for t in temps.tolist()]
    width_t = max(1, *(len(c) for c in t_cells)) if t_cells else 1
    width_p = max(len("%.*f" % (digits, 1.0)), 3)  # 3: "nan", "inf"
    widths = [max(len(label), width_p) for label in labels]
    head = "  ".join([f"{'T':<{width_t}}"] + [f"{h:>{w}}" for h, w in zip(labels, widths)])
    row = "  ".join([f"%-{width_t}s"] + [f"%{w}.{digits}f" for w in widths])
    body = "\n".join(row % (t, *values) for t, values in zip(t_cells, (probs + 0.0).tolist()))
    return head + "\n" + body + ("\n" if body else "")


def _check_plot_path(path: str) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise UsageError(f"--plot must end in {', '.join(PLOT_FORMATS)}, got {clip(path)}")


def _plot(path: str, labels, temps, probs) -> None:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency(
            "softmax sweep --plot needs matplotlib: pip install matplotlib"
        ) from None
    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    shown = np.isfinite(temps) & (temps > 0)
    if shown.sum() < 2:
        raise UsageError("--plot needs at least two finite temperatures > 0")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        # Markers only where they can be told apart.
        marker = "o" if shown.sum() <= 60 else None
        for j, label in enumerate(labels):
            ax.plot(temps[shown], probs[shown, j], marker=marker, markersize=3, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("temperature T (log scale)")
        ax.set_ylabel("share: softmax(z / T)")
        ax.set_ylim(0, 1)
        ax.set_title("Small T: toward the hard max; large T: toward uniform")
        ax.grid(True, which="both", alpha=0.3)
        if len(labels) <= 20:  # a longer legend would cover the plot
            ax.legend()
        fig.tight_layout()
        # The format follows the suffix; the file appears whole or not at all.
        with replaced_on_success(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lower()[1:])
    finally:
        plt.close(fig)
