"""Command-line argument helpers shared by the `softmax` subcommands.

Argument types for argparse, the ``LABEL=NUMBER`` score syntax, masks, the
small trick that lets negative numbers stand as scores, number formatting
and the JSON encoding of non-finite numbers.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
from fractions import Fraction
from typing import NamedTuple

import numpy as np

import softmax as lib

from .status import UsageError, clip

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
    "is_number",
    "json_number",
    "json_numbers",
    "nonnegative_int_arg",
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
        raise argparse.ArgumentTypeError(f"must be a number, got {clip(text.strip())}") from None


def _int(text: str) -> int:
    # int() refuses strings of more than 4300 digits with a ValueError, and
    # a number that long is no count anyone meant.
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {clip(text)}") from None


def positive_int_arg(text: str) -> int:
    """A whole number >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {clip(str(value), quote=False)}")
    return value


def nonnegative_int_arg(text: str) -> int:
    """A whole number >= 0 (a random seed)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {clip(str(value), quote=False)}")
    return value


def precision_arg(text: str) -> int:
    """Decimals to print: 0 to 17 (17 is the most a double can need)."""
    value = _int(text)
    if not 0 <= value <= 17:
        raise argparse.ArgumentTypeError(f"must be between 0 and 17, got {clip(str(value), quote=False)}")
    return value


_BYTES = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
#: The largest size accepted: what a signed 64-bit offset can address.
MAX_BYTES = 2**63 - 1


def bytes_arg(text: str) -> int:
    """A size in bytes: ``1048576``, ``512K``, ``256M``, ``1.5G`` (powers of 1024).

    Exact arithmetic (no float): a 400-digit size is refused with a message,
    not an OverflowError.
    """
    match = _BYTES.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"must be a size in bytes such as 1048576, 512K or 256M, got {clip(text)}"
        )
    number = match.group(1)
    if len(number) > 40:
        value = MAX_BYTES + 1  # no need to convert it to know it is too large
    else:
        value = int(Fraction(number) * _UNITS[match.group(2).lower()])
    if value > MAX_BYTES:
        raise argparse.ArgumentTypeError(f"must be at most 8E (2**63 - 1 bytes), got {clip(text)}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {clip(text)}")
    return value


def axis_arg(text: str):
    """An axis as the library takes it: ``-1``, ``0,1`` (a tuple) or ``none`` (all)."""
    if text.strip().lower() in ("none", "all"):
        return None
    try:
        items = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer, a comma-separated list of integers or 'none', got {clip(text)}"
        ) from None
    if any(abs(i) > 64 for i in items):
        # NumPy arrays have at most 64 dimensions; a 400-digit axis would
        # overflow a C long on its way to NumPy's own check.
        raise argparse.ArgumentTypeError(f"must be between -64 and 64, got {clip(text)}")
    return items[0] if len(items) == 1 else items


def _name_option(message: str, options: dict) -> str:
    """Put the option the user typed in place of the library's argument name."""
    for word, option in options.items():
        if message.startswith(word + " "):
            return option + message[len(word):]
    return message


def check_scale(temperature: float, base: float | None, *,
                temperature_option: str = "--temperature", base_option: str = "--base") -> None:
    """Reject a bad temperature or base now, with the library's own words.

    The library is asked on a two-element array; its ValueError or
    TypeError becomes a usage error that names the option (or the file the
    temperature came from), never an argument the user did not give.
    """
    try:
        lib.softmax(np.zeros(2), temperature=temperature, base=base)
    except (TypeError, ValueError) as exc:
        message = _name_option(str(exc), {"temperature": temperature_option,
                                          "base": base_option})
        raise UsageError(message) from None


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
        if token.startswith("-") and token not in option_strings and is_number(token):
            token = " " + token
        result.append(token)
    return result


def is_number(text: str) -> bool:
    """True when float() reads `text` (inf and nan included)."""
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


def parse_scores(tokens, *, commands=(), source: str = "") -> Scores:
    """``cat=2.0`` or a bare ``2.0`` (labelled by its position, 1..K).

    `commands` are the subcommand names: a bare word close to one of them
    is reported as a likely typo. `source` names where the tokens came
    from (``" on stdin"``) for messages.
    """
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
            raise UsageError(
                f"a score must be NUMBER or LABEL=NUMBER, got {clip(token)}{source} (empty label)"
            )
        try:
            value = float(text)
        except ValueError:
            if not sep:
                message = f"a score must be NUMBER or LABEL=NUMBER, got {clip(token)}{source}"
                if commands:
                    close = difflib.get_close_matches(token, commands, n=1)
                    if close:
                        message = (f"{clip(token)} is not a command or a score; "
                                   f"did you mean {close[0]!r}?")
                    message += f" (commands: {', '.join(commands)})"
                raise UsageError(message) from None
            raise UsageError(
                f"the score of {clip(label)} must be a number, got {clip(text)}{source}"
            ) from None
        if label in seen:
            raise UsageError(
                f"labels must be unique, got {clip(label)} at positions {seen[label]} "
                f"and {position}{source}"
            )
        seen[label] = position
        labels.append(label)
        texts.append(text)
        values.append(value)
    if not labels:
        raise UsageError(
            "no scores given; for example: softmax cat=2.0 dog=1.0 rabbit=0.1 "
            "(or pipe them: echo 2 1 0.1 | softmax; a table: softmax apply FILE)"
        )
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
                    f"--mask must name given labels ({clip(', '.join(labels), 200, quote=False)}), "
                    f"got {clip(label)}"
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


def json_number(value):
    """A float for JSON, which has no inf or NaN: ``"inf"``, ``"-inf"``, ``null``.

    The strings keep a masked label's log-probability (``"-inf"``) apart
    from an undefined result (NaN, ``null``), and the output stays strict
    JSON that every parser reads.

    Examples
    --------
    >>> [json_number(v) for v in (0.5, float("-inf"), float("inf"), float("nan"))]
    [0.5, '-inf', 'inf', None]
    """
    value = float(value)
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return None
    return "inf" if value > 0 else "-inf"


def json_numbers(values) -> list:
    """`json_number` over an array of any shape, as nested lists."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        return json_number(arr)
    if np.isfinite(arr).all():
        return arr.tolist()  # the common case, at C speed
    return [json_numbers(v) for v in arr] if arr.ndim > 1 else [json_number(v) for v in arr]


def dump_json(obj: dict) -> str:
    """A JSON object with one key per line and each value on its line.

    Strict JSON (no NaN or Infinity: callers encode them with
    `json_number`), readable in a terminal without spreading a list over
    one line per number.
    """
    items = [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + "\n}"
