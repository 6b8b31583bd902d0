"""``softmax sweep``: how each share moves with the temperature."""

from __future__ import annotations

import math

import numpy as np

from ._functions import softmax
from ._cli_args import (
    HelpFormatter,
    check_scale,
    dump_json,
    fmt_number,
    fmt_short,
    parse_scores,
    positive_int_arg,
    precision_arg,
)
from ._cli_exit import CLIError, MissingDependency, UsageError

__all__ = ["register", "run", "temperatures"]

_EPILOG = """\
examples:
  softmax sweep cat=2 dog=1 rabbit=0.1
  softmax sweep cat=2 dog=1 rabbit=0.1 --temperatures 0.1:10 --steps 21
  softmax sweep cat=2 dog=1 rabbit=0.1 --temperatures 0,0.5,1,2,inf
  softmax sweep cat=2 dog=1 rabbit=0.1 --plot sweep.png   (needs matplotlib)
  softmax sweep 2 1 0.1 --json

--temperatures LO:HI gives --steps temperatures spaced evenly on a log
scale; a comma-separated list is taken as it is (0 = hard max, inf =
uniform). The plot has a log-scale temperature axis and leaves out 0 and inf.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="how each share moves with the temperature (table, PNG plot)",
        description="Softmax of the scores at a range of temperatures, softmax(z / T):\n"
        "small T approaches the hard max, large T the uniform distribution.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("scores", nargs="*", metavar="SCORE",
                        help="LABEL=NUMBER or a bare NUMBER, as for softmax")
    parser.add_argument("--temperatures", default="0.1:10", metavar="LO:HI|T,T,...",
                        help="temperature range or list (default 0.1:10)")
    parser.add_argument("--steps", type=positive_int_arg, default=9, metavar="N",
                        help="temperatures in a LO:HI range (default 9)")
    parser.add_argument("--plot", metavar="PNG", help="also draw the shares against T into PNG")
    parser.add_argument("--precision", type=precision_arg, default=4, metavar="N",
                        help="decimals in the table (default 4)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    parser.set_defaults(func=run)


def temperatures(spec: str, steps: int) -> np.ndarray:
    """``"LO:HI"`` (log-spaced, `steps` values) or ``"T1,T2,..."`` (as given)."""
    spec = spec.strip()
    if ":" in spec:
        lo_text, _, hi_text = spec.partition(":")
        try:
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            raise UsageError(
                f"--temperatures must be LO:HI or a comma-separated list, got {spec!r}"
            ) from None
        if not (0 < lo < hi < math.inf):
            raise UsageError(
                f"--temperatures LO:HI must have 0 < LO < HI < inf, got {spec!r}"
            )
        if steps == 1:
            return np.array([lo])
        return np.geomspace(lo, hi, steps)
    values = []
    for part in spec.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise UsageError(
                f"--temperatures must be LO:HI or a comma-separated list, got {part.strip()!r}"
            ) from None
    for t in values:
        check_scale(t, None)
    return np.array(values)


def run(args, stdout, stderr) -> int:
    scores = parse_scores(args.scores)
    temps = temperatures(args.temperatures, args.steps)
    probs = np.array([softmax(scores.values, temperature=float(t)) for t in temps])
    if args.plot:
        _plot(args.plot, scores.labels, temps, probs)
    if args.json:
        obj = {
            "labels": scores.labels,
            "scores": [float(v) if math.isfinite(v) else None for v in scores.values],
            # JSON has no inf: the uniform limit is written as null.
            "temperatures": [float(t) if math.isfinite(t) else None for t in temps],
            "probabilities": [
                [float(v) if math.isfinite(v) else None for v in row] for row in probs
            ],
        }
        stdout.write(dump_json(obj) + "\n")
        return 0
    header = ["T", *scores.labels]
    rows = [[fmt_short(float(t), 4), *(fmt_number(float(v), args.precision) for v in row)]
            for t, row in zip(temps, probs)]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for row in [header, *rows]:
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(row[1:], widths[1:])]
        stdout.write("  ".join(cells) + "\n")
    return 0


def _plot(path: str, labels, temps, probs) -> None:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency(
            "softmax sweep --plot needs matplotlib: pip install 'softmax[plot]'"
        ) from None
    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    shown = np.isfinite(temps) & (temps > 0)
    if shown.sum() < 2:
        raise UsageError("--plot needs at least two finite temperatures > 0")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for j, label in enumerate(labels):
            ax.plot(temps[shown], probs[shown, j], marker="o", markersize=3, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("temperature T (log scale)")
        ax.set_ylabel("share: softmax(z / T)")
        ax.set_ylim(0, 1)
        ax.set_title("Small T: toward the hard max; large T: toward uniform")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        try:
            fig.savefig(path, format="png")
        except OSError as exc:
            raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
