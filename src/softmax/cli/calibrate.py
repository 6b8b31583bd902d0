"""``softmax calibrate``: fit a temperature and report calibration before and after.

A thin layer over `softmax.calibration`: read logits (or probabilities, with
``--input probs``) and labels (.npy, .npz, .csv), choose the split that T is
fitted on, fit, and print T with a before/after table (or JSON). Bad input
files exit with status 2 and one line naming the file and the problem;
anything else that fails exits with 1.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from softmax import calibration as cal

from .args import nonnegative_int_arg, positive_int_arg
from .fileio import read_table, read_text, replaced_on_success
from .status import ExitStatus, InputError, MissingDependency, UsageError, clip

__all__ = ["add_arguments", "run"]

HELP = "fit a temperature T to logits and labels; NLL/ECE/Brier before and after"
DESCRIPTION = (
    "Temperature scaling (Guo et al. 2017): find the T > 0 that minimizes the\n"
    "negative log-likelihood of softmax(logits / T) on held-out data, then\n"
    "report accuracy, NLL, ECE, MCE and Brier score before and after."
)
EPILOG = """\
examples:
  softmax calibrate val_logits.npy val_labels.npy \\
                    --test test_logits.npy test_labels.npy
      fit T on the validation split, report on the test split
  softmax calibrate logits.npy labels.npy --val-fraction 0.5
      fit on a random half (--seed), report on the other half
  softmax calibrate logits.csv labels.csv --plot diagram.png \\
                    --save temperature.json
      also draw a reliability diagram (.png, .svg or .pdf), and keep T for
      `softmax apply --temperature-file`
  softmax calibrate probs.npy labels.npy --input probs
      the model's probabilities (softmax outputs) instead of its logits
  softmax calibrate data.npz data.npz --key logits --labels-key labels --json
  softmax calibrate resnet110_cifar10
      the sample data shipped with the package: fit on its validation
      split, report on its test split

input files: .npy, .npz (the first array, or --key / --labels-key), .csv
  (comma-separated, one sample per row; a header line is skipped). Logits are
  (samples, classes); labels are class indices 0..K-1. With --input probs each
  row is a distribution (in [0, 1], summing to 1); probabilities given as
  logits, or the reverse, are refused rather than silently misread.
without --test or --val-fraction, T is fitted and evaluated on the same data
  (in-sample).
--save and --plot write their files whole or not at all and report them on
  stderr; stdout holds only the table or the JSON.

exit status: 0 success, 1 failure, 2 bad command line or unreadable input
"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {clip(text)}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {clip(text)}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``softmax calibrate``."""
    parser.add_argument("logits", metavar="LOGITS",
                        help="logits file (samples x classes), or probabilities with --input "
                             "probs; or the name of a shipped data set (resnet110_cifar10)")
    parser.add_argument("labels", metavar="LABELS", nargs="?", default=None,
                        help="labels file (one class index per sample); not with a data set name")
    parser.add_argument("--input", choices=("logits", "probs"), default="logits",
                        help="what LOGITS holds: logits (default) or probabilities")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--val-fraction", type=_fraction, metavar="F",
                       help="fit T on a random fraction F of the samples, report on the rest")
    split.add_argument("--test", nargs=2, metavar=("LOGITS", "LABELS"),
                       help="report on these files instead (T is fitted on all of LOGITS LABELS)")
    parser.add_argument("--seed", type=nonnegative_int_arg, default=0, metavar="S",
                        help="random seed of the --val-fraction split (default 0)")
    parser.add_argument("--bins", type=positive_int_arg, default=15, metavar="N",
                        help="number of confidence bins for ECE/MCE (default 15)")
    parser.add_argument("--strategy", choices=("uniform", "quantile"), default="uniform",
                        help="equal-width (default) or equal-mass bins")
    parser.add_argument("--key", metavar="NAME", help="array to read from .npz logits files")
    parser.add_argument("--labels-key", metavar="NAME", help="array to read from .npz label files")
    parser.add_argument("--plot", metavar="FILE",
                        help="write a reliability diagram (.png, .svg, .pdf; needs matplotlib)")
    parser.add_argument("--save", metavar="JSON", help="write the fitted temperature as JSON")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


_BadInput = InputError


# ------------------------------------------------------------------ reading


def _read_csv(path: str) -> np.ndarray:
    table = read_table(read_text(path, path), path, ",")
    widths = {len(r) for r in table.rows}
    if len(widths) > 1:
        raise _BadInput(f"{path}: rows have different numbers of columns {sorted(widths)}")
    return np.vstack(table.rows)


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
                    raise _BadInput(f"{path}: no array named {clip(key)} ({option}); "
                                    f"it holds {clip(str(names), 200, quote=False)}")
                return archive[key]
        if suffix == ".csv":
            return _read_csv(path)
    except _BadInput:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise _BadInput(f"{path}: cannot read it ({clip(str(exc), 200, quote=False)})") from None
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
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all()
                                         and (labels == np.round(labels)).all()):
        raise _BadInput(f"{labels_path}: labels must be whole numbers (class indices)")
    if labels.shape[0] != logits.shape[0]:
        raise _BadInput(
            f"{labels_path}: {labels.shape[0]} labels for {logits.shape[0]} rows of logits "
            f"in {logits_path}"
        )
    k = logits.shape[1]
    # The range is checked before any cast: 1e300 is a whole number too.
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        i = int(bad[0])
        raise _BadInput(
            f"{labels_path}: labels must be class indices in [0, {k}) for the {k} columns of "
            f"{logits_path}, got {labels[i]} at row {i}"
        )
    labels = labels.astype(np.int64)
    what = "probabilities" if args.input == "probs" else "logits"
    if logits.shape[0] and not np.isfinite(logits).all():
        row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
        raise _BadInput(f"{logits_path}: {what} must be finite, got a NaN or inf in row {row}")
    _check_input_kind(logits, logits_path, args.input)
    return logits, labels


def _distributions(x: np.ndarray) -> np.ndarray:
    """Rows that lie in [0, 1] and sum to 1 within a tolerance for their dtype."""
    k = x.shape[1]
    eps = np.finfo(x.dtype).eps if x.dtype.kind == "f" else np.finfo(np.float64).eps
    tol = max(1e-6, 100 * k * float(eps))
    x64 = x.astype(np.float64)
    return ((x64 >= 0) & (x64 <= 1)).all(axis=1) & (np.abs(x64.sum(axis=1) - 1) <= tol)


def _check_input_kind(x: np.ndarray, path: str, kind: str) -> None:
    """Refuse probabilities read as logits, and non-distributions read as probabilities.

    Probabilities read as logits give a confident, wrong T (the issue saw
    T = 0.185 and an ECE of 0.717 where the truth was 0.139).
    """
    if x.shape[0] == 0 or x.shape[1] < 2:
        return
    rows = _distributions(x)
    if kind == "logits" and rows.all():
        raise UsageError(
            f"{path} holds probabilities (every row lies in [0, 1] and sums to 1), "
            "not logits: add --input probs"
        )
    if kind == "probs" and not rows.all():
        row = int(np.flatnonzero(~rows)[0])
        raise UsageError(
            f"{path}: --input probs needs rows in [0, 1] that sum to 1, got row {row} "
            f"summing to {float(x[row].astype(np.float64).sum()):.6g}; "
            "for logits leave out --input probs"
        )


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


def run(args, env) -> ExitStatus:
    """Run ``softmax calibrate`` with parsed `args`."""
    try:
        return _run(args, env)
    except ValueError as exc:
        # The calibration functions' own checks of what the files hold.
        raise InputError(clip(str(exc), 300, quote=False)) from None


def _as_logits(x: np.ndarray, kind: str) -> np.ndarray:
    """What `fit_temperature`, the report and the diagram take: logits.

    Log-probabilities are valid logits (softmax(log p) = p), and the fitted
    model then scales logits by 1/T everywhere (the report's "after" side,
    the diagram), which a model fitted with ``input="probs"`` would not take. A zero probability becomes the log of the
    smallest normal double (-708.4): its share at T is about e^(-708.4 / T),
    0 to the last bit for T < 1 and below 1e-128 at the fitted T of real
    networks (1 to 3).
    """
    if kind == "logits":
        return x
    x64 = x.astype(np.float64)
    return np.log(np.maximum(x64, np.finfo(np.float64).tiny))


def _summary(scores, labels, *, kind, bins, strategy) -> dict:
    options = {"input": "probs" if kind == "probs" else "logits"}
    binned = {**options, "n_bins": bins, "strategy": strategy}
    return {
        "accuracy": float(cal.accuracy(scores, labels, **options)),
        "nll": float(cal.nll(scores, labels, **options)),
        "ece": float(cal.ece(scores, labels, **binned)),
        "mce": float(cal.mce(scores, labels, **binned)),
        "brier": float(cal.brier(scores, labels, **options)),
    }


def _shipped(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """A shipped data set named as LOGITS (no LABELS): (val z, val y, test z, test y)."""
    from softmax import datasets

    if args.labels is not None:
        return None
    if args.logits not in datasets.available() or os.path.exists(args.logits):
        raise UsageError(
            f"LABELS is required with a logits file, got only {clip(args.logits)} "
            f"(without LABELS, LOGITS names a shipped data set: "
            f"{', '.join(datasets.available())})"
        )
    if args.input != "logits" or args.key or args.labels_key:
        raise UsageError("a shipped data set holds logits: --input probs, --key and "
                         "--labels-key do not apply to it")
    data = datasets.load_logits(args.logits)
    return data.logits_val, data.labels_val, data.logits_test, data.labels_test


def _run(args, env) -> ExitStatus:
    shipped = _shipped(args)
    # a shipped set without --test / --val-fraction: fit on its validation
    # split, report on its own test split
    own_test = shipped is not None and args.test is None and args.val_fraction is None
    if shipped is not None:
        logits, labels = shipped[0], shipped[1]
    else:
        logits, labels = _read_pair(args.logits, args.labels, args)
    if logits.shape[0] == 0:
        raise _BadInput(f"{args.logits}: no samples")
    if args.plot and os.path.splitext(args.plot)[1].lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot must end in .png, .svg or .pdf, got {clip(args.plot)}")
    source = os.path.basename(args.logits)
    if own_test:
        assert shipped is not None
        fit_z, fit_y, eval_z, eval_y = logits, labels, shipped[2], shipped[3]
        fit_src = f"{args.logits} (validation split)"
        eval_src, in_sample = f"{args.logits} (test split)", False
    elif args.test:
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

    ts = cal.fit_temperature(_as_logits(fit_z, args.input), fit_y)
    eval_logits = _as_logits(eval_z, args.input)
    scaled = ts.transform_logits(eval_logits)
    result = {
        "temperature": ts.temperature,
        "input": args.input,
        "fit": {**ts.to_dict(), "source": fit_src, "n_classes": int(logits.shape[1])},
        "evaluated_on": {"source": eval_src, "n_samples": int(eval_z.shape[0]), "in_sample": in_sample},
        "bins": args.bins,
        "strategy": args.strategy,
        "before": _summary(eval_z, eval_y, kind=args.input, bins=args.bins, strategy=args.strategy),
        "after": _summary(scaled, eval_y, kind="logits", bins=args.bins, strategy=args.strategy),
    }

    if args.save:
        with replaced_on_success(args.save, "the temperature to ") as tmp:
            ts.save(tmp)
        result["saved"] = args.save
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise MissingDependency("--plot needs matplotlib: pip install matplotlib") from None
        with replaced_on_success(args.plot, "the diagram to ") as tmp:
            cal.reliability_diagram(eval_logits, eval_y, calibrated=ts, n_bins=args.bins,
                                    strategy=args.strategy, path=str(tmp),
                                    title=f"temperature scaling, T = {ts.temperature:.4g}")
        result["plot"] = args.plot

    if args.json:
        env.stdout.write(json.dumps(result, indent=2, allow_nan=False) + "\n")
    else:
        _table(result, env.stdout)
    # Reports go to stderr, so stdout stays the table or the JSON alone.
    if args.save:
        env.stderr.write(f"temperature saved to {args.save}\n")
    if args.plot:
        env.stderr.write(f"reliability diagram written to {args.plot}\n")
    return ExitStatus.SUCCESS
