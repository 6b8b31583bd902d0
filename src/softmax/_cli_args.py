"""Command-line argument helpers shared by the `softmax` subcommands.

Argument types for argparse, the ``LABEL=NUMBER`` score syntax, masks, and
the small trick that lets negative numbers stand as scores.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import NamedTuple

import numpy as np

from ._cli_exit import UsageError
from ._arguments import parse_scale

__all__ = [
    "HelpFormatter",
    "Scores",
    "axis_arg",
    "bytes_arg",
    "check_scale",
    "dump_json",
    "float_arg",
    "fmt_number",
    "fmt_short",
    "include_mask",
    "parse_scores",
    "positive_int_arg",
    "precision_arg",
    "protect_negative_numbers",
]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the hand-made layout of descriptions and example epilogs."""

    def __init__(self, prog, indent_increment=2, max_help_position=28, width=None):
        super().__init__(prog, indent_increment, max_help_position, width)


def float_arg(text: str) -> float:
    """A real number (``inf`` and ``nan`` included; ranges are checked later)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text.strip()!r}") from None


def positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def precision_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= 17:
        raise argparse.ArgumentTypeError(f"must be between 0 and 17, got {value}")
    return value


_BYTES = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def bytes_arg(text: str) -> int:
    """A size in bytes: ``1048576``, ``512K``, ``256M``, ``1.5G`` (powers of 1024)."""
    match = _BYTES.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"must be a size in bytes such as 1048576, 512K or 256M, got {text!r}"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def axis_arg(text: str):
    """An axis as the library takes it: ``-1``, ``0,1`` (a tuple) or ``none`` (all)."""
    if text.strip().lower() in ("none", "all"):
        return None
    try:
        items = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer, a comma-separated list of integers or 'none', got {text!r}"
        ) from None
    return items[0] if len(items) == 1 else items


def check_scale(temperature: float, base: float | None) -> None:
    """Reject a bad temperature or base now, with the library's own message."""
    try:
        parse_scale(temperature, base)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def protect_negative_numbers(argv: list[str], option_strings) -> list[str]:
    """Let ``softmax -1 -2`` mean two scores.

    argparse already takes ``-1`` and ``-0.5`` as positionals (the parsers
    define no option that looks like a number), but not ``-1e3`` or
    ``-inf``. A leading space keeps any negative number out of argparse's
    option matching; ``float()`` and the score parser ignore it. Nothing
    after ``--`` is touched.
    """
    result = []
    for i, token in enumerate(argv):
        if token == "--":
            return result + argv[i:]
        if token.startswith("-") and token not in option_strings and _is_number(token):
            token = " " + token
        result.append(token)
    return result


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Scores(NamedTuple):
    """Scores from the command line, in the order given."""

    labels: list[str]
    texts: list[str]  # each number as typed, for display
    values: np.ndarray  # float64


def parse_scores(tokens, *, commands=()) -> Scores:
    """``cat=2.0`` or a bare ``2.0`` (labelled by its position, 1..K)."""
    labels, texts, values = [], [], []
    seen = {}
    for position, raw in enumerate(tokens, 1):
        token = raw.strip()
        label, sep, text = token.rpartition("=")
        if not sep:
            label, text = str(position), token
        label = label.strip()
        text = text.strip()
        if sep and not label:
            raise UsageError(f"a score must be NUMBER or LABEL=NUMBER, got {token!r} (empty label)")
        try:
            value = float(text)
        except ValueError:
            if not sep:
                message = f"a score must be NUMBER or LABEL=NUMBER, got {token!r}"
                if commands:
                    message += f" (commands: {', '.join(commands)})"
                raise UsageError(message) from None
            raise UsageError(f"the score of {label!r} must be a number, got {text!r}") from None
        if label in seen:
            raise UsageError(
                f"labels must be unique, got {label!r} at positions {seen[label]} and {position}"
            )
        seen[label] = position
        labels.append(label)
        texts.append(text)
        values.append(value)
    if not labels:
        raise UsageError("no scores given; for example: softmax cat=2.0 dog=1.0 rabbit=0.1")
    return Scores(labels, texts, np.array(values, dtype=np.float64))


def include_mask(mask_items, labels: list[str]) -> np.ndarray | None:
    """``--mask cat,dog`` as the library's ``where`` (True = included), or None."""
    if not mask_items:
        return None
    where = np.ones(len(labels), dtype=bool)
    index = {label: i for i, label in enumerate(labels)}
    for item in mask_items:
        for label in item.split(","):
            label = label.strip()
            if label not in index:
                raise UsageError(
                    f"--mask must name given labels ({', '.join(labels)}), got {label!r}"
                )
            where[index[label]] = False
    return where


def fmt_number(value: float, digits: int) -> str:
    """Fixed-point with `digits` decimals; inf and nan spelled as Python does."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{digits}f}"
    # "-0.0000" for a tiny negative (a log-probability) reads as a sign error.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_short(value: float, digits: int = 4) -> str:
    """At most `digits` significant digits, without trailing zeros: 1.443, 0.1, 100."""
    if math.isnan(value) or math.isinf(value):
        return fmt_number(value, digits)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def dump_json(obj: dict) -> str:
    """A JSON object with one key per line and each value on its line.

    Strict JSON (no NaN or Infinity: callers put null there), readable in a
    terminal without spreading a list over one line per number.
    """
    items = [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + "\n}"
