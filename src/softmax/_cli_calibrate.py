"""``softmax calibrate``: fit a temperature and report calibration before and after.

A thin layer over `softmax.calibration`: read logits and labels (.npy, .npz,
.csv), choose the split that T is fitted on, fit, and print T with a
before/after table (or JSON). Bad input files exit with status 2 and one line
naming the file and the problem; anything else that fails exits with 1.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from ._cli_args import positive_int_arg

__all__ = ["register", "run"]

_EPILOG = """\
examples:
  softmax calibrate val_logits.npy val_labels.npy --test test_logits.npy test_labels.npy
      fit T on the validation split, report on the test split
  softmax calibrate logits.npy labels.npy --val-fraction 0.5
      fit on a random half (--seed), report on the other half
  softmax calibrate logits.csv labels.csv --plot diagram.png --save temperature.json
      also draw a reliability diagram and keep T for `softmax apply --temperature-file`
  softmax calibrate data.npz data.npz --key logits --labels-key labels --json

input files: .npy, .npz (the first array, or --key / --labels-key), .csv (comma-separated,
  one sample per row; a header line is skipped). Logits are (samples, classes); labels are
  class indices 0..K-1.
without --test or --val-fraction, T is fitted and evaluated on the same data (in-sample).

exit status: 0 success, 1 failure, 2 bad command line or unreadable input
"""


class _BadInput(Exception):
    """An input file that cannot be read or does not hold what it should (exit 2)."""


class _Failure(Exception):
    """Anything else that goes wrong (exit 1)."""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value




def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``calibrate`` subcommand to an argparse subparsers action."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit a temperature T to logits and labels; NLL/ECE/Brier before and after",
        description=(
            "Temperature scaling (Guo et al. 2017): find the T > 0 that minimizes the\n"
            "negative log-likelihood of softmax(logits / T) on held-out data, then\n"
            "report accuracy, NLL, ECE, MCE and Brier score before and after."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("logits", metavar="LOGITS", help="logits file (samples x classes)")
    parser.add_argument("labels", metavar="LABELS", help="labels file (one class index per sample)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--val-fraction", type=_fraction, metavar="F",
                       help="fit T on a random fraction F of the samples, report on the rest")
    split.add_argument("--test", nargs=2, metavar=("LOGITS", "LABELS"),
                       help="report on these files instead (T is fitted on all of LOGITS LABELS)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the --val-fraction split (default 0)")
    parser.add_argument("--bins", type=positive_int_arg, default=15, metavar="N",
                        help="number of confidence bins for ECE/MCE (default 15)")
    parser.add_argument("--strategy", choices=("uniform", "quantile"), default="uniform",
                        help="equal-width (default) or equal-mass bins")
    parser.add_argument("--key", metavar="NAME", help="array to read from .npz logits files")
    parser.add_argument("--labels-key", metavar="NAME", help="array to read from .npz label files")
    parser.add_argument("--plot", metavar="PNG", help="write a reliability diagram (needs matplotlib)")
    parser.add_argument("--save", metavar="JSON", help="write the fitted temperature as JSON")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)
    return parser


# ------------------------------------------------------------------ reading


def _read_csv(path: str) -> np.ndarray:
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    if not lines:
        raise _BadInput(f"{path}: the file is empty")
    try:
        [float(v) for v in lines[0].split(",")]
    except ValueError:
        lines = lines[1:]  # a header
    try:
        rows = [[float(v) for v in line.split(",")] for line in lines]
    except ValueError as exc:
        raise _BadInput(f"{path}: not a comma-separated table of numbers ({exc})") from None
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise _BadInput(f"{path}: rows have different numbers of columns {sorted(widths)}")
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def _read_array(path: str, key: str | None, option: str) -> np.ndarray:
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise _BadInput(f"{path}: no such file")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if not names:
                    raise _BadInput(f"{path}: the archive holds no arrays")
                if key is None:
                    return archive[names[0]]
                if key not in names:
                    raise _BadInput(f"{path}: no array named {key!r} ({option}); it holds {names}")
                return archive[key]
        if suffix == ".csv":
            return _read_csv(path)
    except _BadInput:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise _BadInput(f"{path}: cannot read it ({exc})") from None
    raise _BadInput(f"{path}: unsupported file type {suffix or '(none)'!r}; use .npy, .npz or .csv")


def _read_pair(logits_path, labels_path, args) -> tuple[np.ndarray, np.ndarray]:
    logits = _read_array(logits_path, args.key, "--key")
    labels = _read_array(labels_path, args.labels_key, "--labels-key")
    if logits.dtype.kind not in "fiu" or logits.ndim != 2:
        raise _BadInput(
            f"{logits_path}: logits must be a 2-D numeric array (samples, classes), "
            f"got shape {logits.shape} dtype {logits.dtype}"
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "fiu":
        raise _BadInput(
            f"{labels_path}: labels must be a 1-D array of class indices, got shape "
            f"{labels.shape} dtype {labels.dtype}"
        )
    if labels.dtype.kind == "f":
        if not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
            raise _BadInput(f"{labels_path}: labels must be whole numbers (class indices)")
        labels = labels.astype(np.int64)
    if labels.shape[0] != logits.shape[0]:
        raise _BadInput(
            f"{labels_path}: {labels.shape[0]} labels for {logits.shape[0]} rows of logits "
            f"in {logits_path}"
        )
    k = logits.shape[1]
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        i = int(bad[0])
        raise _BadInput(
            f"{labels_path}: labels must be class indices in [0, {k}) for the {k} columns of "
            f"{logits_path}, got {labels[i]} at row {i}"
        )
    if logits.shape[0] and not np.isfinite(logits).all():
        row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
        raise _BadInput(f"{logits_path}: logits must be finite, got a NaN or inf in row {row}")
    return logits, labels


# ------------------------------------------------------------------- output


_METRICS = (("accuracy", "accuracy"), ("nll", "NLL"), ("ece", "ECE"), ("mce", "MCE"),
            ("brier", "Brier"))


def _table(result, stdout) -> None:
    fit, ev = result["fit"], result["evaluated_on"]
    w = stdout.write
    w(f"temperature  T = {fit['temperature']:.6g}\n")
    w(f"fitted on    {fit['source']}: {fit['n_samples']} samples, {fit['n_classes']} classes; "
      f"{fit['message']} ({fit['iterations']} passes)\n")
    w(f"evaluated on {ev['source']}: {ev['n_samples']} samples")
    w(" (the fitted data: in-sample)\n" if ev["in_sample"] else "\n")
    bins = f"({result['bins']} {result['strategy']} bins)"
    w("\n")
    w(f"{'metric':<24}{'before':>10}{'after':>10}{'change':>10}\n")
    for key, label in _METRICS:
        b, a = result["before"][key], result["after"][key]
        name = f"{label} {bins}" if key in ("ece", "mce") else label
        w(f"{name:<24}{b:>10.4f}{a:>10.4f}{a - b:>+10.4f}\n")


def run(args, stdout, stderr) -> int:
    """Run ``softmax calibrate`` with parsed `args`; return the exit status."""
    try:
        return _run(args, stdout)
    except _BadInput as exc:
        stderr.write(f"softmax calibrate: error: {exc}\n")
        return 2
    except _Failure as exc:
        stderr.write(f"softmax calibrate: error: {exc}\n")
        return 1
    except ValueError as exc:
        stderr.write(f"softmax calibrate: error: {exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        stderr.write(f"softmax calibrate: error: {type(exc).__name__}: {exc}\n")
        return 1


def _run(args, stdout) -> int:
    from . import calibration as cal

    logits, labels = _read_pair(args.logits, args.labels, args)
    if logits.shape[0] == 0:
        raise _BadInput(f"{args.logits}: no samples")
    source = os.path.basename(args.logits)
    if args.test:
        fit_z, fit_y = logits, labels
        eval_z, eval_y = _read_pair(args.test[0], args.test[1], args)
        if eval_z.shape[1] != logits.shape[1]:
            raise _BadInput(
                f"{args.test[0]}: {eval_z.shape[1]} classes, but {args.logits} has {logits.shape[1]}"
            )
        if eval_z.shape[0] == 0:
            raise _BadInput(f"{args.test[0]}: no samples")
        fit_src, eval_src, in_sample = source, os.path.basename(args.test[0]), False
    elif args.val_fraction is not None:
        n = logits.shape[0]
        n_val = int(round(args.val_fraction * n))
        if not 1 <= n_val <= n - 1:
            raise _BadInput(
                f"{args.logits}: {n} samples cannot be split with --val-fraction {args.val_fraction}"
            )
        order = np.random.default_rng(args.seed).permutation(n)
        fit_idx, eval_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        fit_z, fit_y, eval_z, eval_y = logits[fit_idx], labels[fit_idx], logits[eval_idx], labels[eval_idx]
        fit_src = f"{source} (random {n_val}, seed {args.seed})"
        eval_src = f"{source} (the other {n - n_val})"
        in_sample = False
    else:
        fit_z, fit_y, eval_z, eval_y = logits, labels, logits, labels
        fit_src = eval_src = source
        in_sample = True

    ts = cal.fit_temperature(fit_z, fit_y)
    scaled = ts.transform_logits(eval_z)
    result = {
        "temperature": ts.temperature,
        "fit": {**ts.to_dict(), "source": fit_src, "n_classes": int(logits.shape[1])},
        "evaluated_on": {"source": eval_src, "n_samples": int(eval_z.shape[0]), "in_sample": in_sample},
        "bins": args.bins,
        "strategy": args.strategy,
        "before": cal._summary(eval_z, eval_y, n_bins=args.bins, strategy=args.strategy),
        "after": cal._summary(scaled, eval_y, n_bins=args.bins, strategy=args.strategy),
    }

    if args.save:
        try:
            ts.save(args.save)
        except OSError as exc:
            raise _Failure(f"{args.save}: cannot write the temperature ({exc.strerror or exc})") from None
        result["saved"] = args.save
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _Failure("--plot needs matplotlib: pip install 'softmax[plot]'") from None
        try:
            cal.reliability_diagram(eval_z, eval_y, calibrated=ts, n_bins=args.bins,
                                    strategy=args.strategy, path=args.plot,
                                    title=f"temperature scaling, T = {ts.temperature:.4g}")
        except OSError as exc:
            raise _Failure(f"{args.plot}: cannot write the diagram ({exc.strerror or exc})") from None
        result["plot"] = args.plot

    if args.json:
        stdout.write(json.dumps(result, indent=2, allow_nan=False) + "\n")
    else:
        _table(result, stdout)
        if args.save:
            stdout.write(f"\ntemperature saved to {args.save}\n")
        if args.plot:
            stdout.write(f"reliability diagram written to {args.plot}\n")
    return 0
