"""``softmax cat=2.0 dog=1.0 rabbit=0.1``: scores in, a table of shares out.

The default command (no command name). Scores come from the command line
or, when none are given and stdin is not a terminal, from stdin
(``echo 2 1 0.1 | softmax``).
"""

from __future__ import annotations

import argparse
import math
import re

import numpy as np

import softmax as lib

from .args import (
    check_scale,
    dump_json,
    float_arg,
    fmt_number,
    include_mask,
    json_numbers,
    parse_scores,
    precision_arg,
)
from .fileio import read_text
from .status import ExitStatus, UsageError

__all__ = ["DESCRIPTION", "add_arguments", "render_table", "run"]

DESCRIPTION = (
    "Turn scores (logits) into probabilities with softmax: every share lies\n"
    "between 0 and 1 and the shares add up to 1.\n\n"
    "    softmax(z)_i = e^(z_i) / sum_j e^(z_j)\n\n"
    "Without scores, and with stdin not a terminal, the scores are read from\n"
    "stdin (one distribution: blanks, commas or one score per line).\n"
)

LINE_WIDTH = 79
_EIGHTHS = " ▏▎▍▌▋▊▉"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scores",
        nargs="*",
        metavar="SCORE",
        help="LABEL=NUMBER or a bare NUMBER (labelled 1..K by position)",
    )
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "-t",
        "--temperature",
        type=float_arg,
        default=1.0,
        metavar="T",
        help="divide the scores by T (0 = hard max, inf = uniform; default 1)",
    )
    scale.add_argument(
        "--hardmax",
        action="store_true",
        help="the hard max: all the mass on the largest score (temperature 0)",
    )
    parser.add_argument(
        "--base",
        type=float_arg,
        metavar="A",
        help="use A**score instead of e**score (the same as T = 1/ln A)",
    )
    parser.add_argument(
        "--log", action="store_true", help="show log-probabilities (log_softmax)"
    )
    parser.add_argument(
        "--mask",
        action="append",
        metavar="LABEL[,LABEL...]",
        help="leave these labels out (probability 0); repeatable",
    )
    parser.add_argument(
        "--sort", action="store_true", help="sort by probability, largest first"
    )
    parser.add_argument(
        "--precision",
        type=precision_arg,
        default=4,
        metavar="N",
        help="decimals of the probabilities in the table (default 4)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true",
        help='print a JSON object instead of the table ("-inf", "inf" and null '
        "stand for -inf, inf and NaN)",
    )
    output.add_argument(
        "--explain",
        action="store_true",
        help="walk through the computation step by step, with these scores",
    )


def _stdin_tokens(env) -> list[str]:
    """The scores piped in: one distribution, separated by blanks, commas or lines."""
    text = read_text(env.stdin, "<stdin>")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rows = [[t for t in re.split(r"[\s,]+", line.strip()) if t] for line in lines]
    if len(rows) > 1 and any(len(row) > 1 for row in rows):
        raise UsageError(
            f"stdin holds {len(rows)} lines of scores; softmax reads one distribution "
            "(softmax apply - reads one per line)"
        )
    return [token for row in rows for token in row]


def run(args, env) -> ExitStatus:
    """The scores table (or JSON, or ``--explain``) for ``args.scores``."""
    tokens, source = args.scores, ""
    if not tokens and not env.stdin_isatty:
        tokens, source = _stdin_tokens(env), " on stdin"
    scores = parse_scores(tokens, commands=args.commands if not source else (), source=source)
    temperature = 0.0 if args.hardmax else args.temperature
    check_scale(temperature, args.base,
                temperature_option="--hardmax" if args.hardmax else "--temperature")
    where = include_mask(args.mask, scores.labels)
    stdout = env.stdout

    if args.explain:
        from .explain import explain

        if args.hardmax or temperature == 0 or math.isinf(temperature):
            raise UsageError(
                "--explain needs a finite temperature > 0 "
                "(its temperature table shows the hard max and the uniform limits)"
            )
        bad = [f"{lab}={txt}" for lab, txt, v in zip(scores.labels, scores.texts, scores.values)
               if not math.isfinite(v)]
        if bad:
            raise UsageError(
                f"--explain needs finite scores, got {', '.join(bad[:5])}"
                f"{' ...' if len(bad) > 5 else ''} "
                "(without --explain the table shows how inf and nan are handled)"
            )
        if where is not None and not where.any():
            raise UsageError("--explain needs at least one label that is not masked")
        stdout.write(explain(scores, temperature=temperature, base=args.base,
                             where=where, digits=args.precision, log=args.log))
        return ExitStatus.SUCCESS

    p = lib.softmax(scores.values, temperature=temperature, base=args.base, where=where)
    logp = lib.log_softmax(scores.values, temperature=temperature, base=args.base, where=where)
    order = np.argsort(-p, kind="stable") if args.sort else np.arange(len(p))
    if args.json:
        stdout.write(_json(scores, p, logp, where, order, temperature, args) + "\n")
        return ExitStatus.SUCCESS
    unicode = _can_draw_blocks(stdout)
    for line in render_table(scores, p, logp, where, order, digits=args.precision,
                             log=args.log, unicode=unicode):
        stdout.write(line + "\n")
    return ExitStatus.SUCCESS


def _json(scores, p, logp, where, order, temperature, args) -> str:
    # JSON has no inf or NaN: "inf", "-inf" and null stand for them, so a
    # masked label's log-probability ("-inf") stays apart from NaN (null).
    labels = [scores.labels[i] for i in order]
    obj = {
        "labels": labels,
        "scores": json_numbers(scores.values[order]),
        "temperature": json_numbers(temperature),
        "base": args.base if args.base is None else json_numbers(args.base),
        "masked": [] if where is None else [scores.labels[i] for i in order if not where[i]],
    }
    if args.log:
        obj["log_probabilities"] = json_numbers(logp[order])
    else:
        obj["probabilities"] = json_numbers(p[order])
    return dump_json(obj)


def _can_draw_blocks(stream) -> bool:
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True
    try:
        ("█" + _EIGHTHS).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def bar(share: float, width: int, *, unicode: bool) -> str:
    """A horizontal bar: `width` cells stand for probability 1."""
    if not math.isfinite(share) or share <= 0:
        return ""
    cells = min(share, 1.0) * width
    if not unicode:
        return "#" * round(cells)
    full = int(cells)
    eighths = int((cells - full) * 8)
    return "█" * full + (_EIGHTHS[eighths] if eighths else "")


def render_table(scores, p, logp, where, order, *, digits: int, log: bool, unicode: bool):
    """Lines of the table: label, score, probability (share or log), percent, bar."""
    value_head = "log-probability" if log else "probability"
    values = logp if log else p
    rows = []
    for i in order:
        rows.append((
            scores.labels[i],
            scores.texts[i],
            fmt_number(float(values[i]), digits),
            fmt_number(100.0 * float(p[i]), max(digits - 2, 0)) + "%",
        ))
    heads = ("label", "score", value_head, "percent")
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(heads)]
    used = sum(widths) + 2 * len(widths)
    bar_width = max(10, LINE_WIDTH - used)

    def line(cells, tail=""):
        label, score, value, pct = cells
        text = (f"{label:<{widths[0]}}  {score:>{widths[1]}}  "
                f"{value:>{widths[2]}}  {pct:>{widths[3]}}")
        return (text + "  " + tail) if tail else text

    lines = [line(heads)]
    for i, cells in zip(order, rows):
        masked = where is not None and not where[i]
        tail = "(masked)" if masked else bar(float(p[i]), bar_width, unicode=unicode)
        lines.append(line(cells, tail))
    return lines
