"""``softmax apply --group-by COLUMN``: shares within the groups of rows of a table.

The typical input is one row per scored item, ``query,doc,score``: the
``--group-by`` column holds a key (any text: a query id), one other column
the scores (``--column``, or the only other column that holds numbers). The
output is the same table, every field as it was and the rows in their
order, with a ``probability`` column added (``log_probability`` with
``--log``): the softmax of the scores within each key's rows, whether those
rows are together or interleaved. The keys are numbered with
``np.unique(keys, return_inverse=True)`` and the scores go through
`softmax.segment_softmax` once.
"""

from __future__ import annotations

import numpy as np

import softmax as lib

from .args import dump_json, is_number, json_numbers
from .fileio import (
    FieldTable,
    column_index,
    output_delimiter,
    read_fields,
    read_text,
    text_delimiter,
    write_binary,
    write_fields,
    write_output,
)
from .status import InputError, UsageError, clip

__all__ = ["check_options", "run"]


def check_options(args, in_kind: str) -> None:
    """Refuse the options that do not go with ``--group-by`` (or ``--column`` without it)."""
    if args.group_by is None:
        if args.column is not None:
            raise UsageError(f"--column names the scores for --group-by; without --group-by "
                             f"every column holds scores, got --column {clip(args.column)}")
        return
    if in_kind != "text":
        raise UsageError(f"--group-by is for text tables (.csv, .tsv, .txt or -), "
                         f"got INPUT {clip(args.input)}")
    if args.axis != -1:
        raise UsageError(f"--group-by takes the groups from a column; --axis does not apply, "
                         f"got --axis {args.axis}")
    if args.label_column is not None:
        raise UsageError("--label-column does not apply with --group-by: every column is kept")


def _column_label(table: FieldTable, index: int) -> str:
    if table.header is not None and index < len(table.header):
        return f"field {index + 1} ({clip(table.header[index], quote=False)})"
    return f"field {index + 1}"


def _score_column(args, table: FieldTable, key: int, name: str) -> int:
    """``--column``, or the one column besides the keys whose first row is a number."""
    if args.column is not None:
        index = column_index(args.column, table.header, name, "--column")
        if index == key:
            raise UsageError(f"--column and --group-by must be different columns, got "
                             f"{clip(args.column)} and {clip(args.group_by)}")
        return index
    first = table.rows[0]
    numeric = [k for k, field in enumerate(first) if k != key and is_number(field)]
    if len(numeric) == 1:
        return numeric[0]
    if table.header is not None:
        names = [table.header[k] if k < len(table.header) else str(k) for k in numeric]
    else:
        names = [str(k) for k in numeric]
    if not numeric:
        raise UsageError(f"{name} has no column of numbers besides --group-by "
                         f"{clip(args.group_by)} (line {table.lines[0]}); "
                         "name the scores with --column")
    raise UsageError(f"{name} has several columns of numbers besides --group-by "
                     f"{clip(args.group_by)} ({clip(', '.join(names), 200, quote=False)}): "
                     "choose the scores with --column")


def _check_widths(args, table: FieldTable, key: int, score: int, name: str) -> None:
    scores = "the score column" if args.column is None else f"--column {clip(args.column)}"
    for what, index in ((f"--group-by {clip(args.group_by)}", key), (scores, score)):
        for fields, lineno in zip(table.rows, table.lines):
            n = len(fields)
            if index >= n:
                raise InputError(f"{name}, line {lineno}: {what} needs field {index + 1}; "
                                 f"the line has {n} field{'' if n == 1 else 's'}")


def _scores(table: FieldTable, score: int, name: str) -> np.ndarray:
    try:
        return np.array([float(fields[score]) for fields in table.rows], dtype=np.float64)
    except ValueError:
        row = next(i for i, fields in enumerate(table.rows) if not is_number(fields[score]))
        raise InputError(f"{name}, line {table.lines[row]}: {_column_label(table, score)} "
                         f"must be a number, got {clip(table.rows[row][score])}") from None


def run(args, env, out_kind: str, options: dict) -> None:
    """Read the table, normalize the scores within each key's rows, write the result."""
    name = "<stdin>" if args.input == "-" else args.input
    text = read_text(env.stdin if args.input == "-" else args.input, name)
    table = read_fields(text, name, text_delimiter(args.input),
                        names=[s for s in (args.group_by, args.column) if s is not None])
    if not table.rows:
        raise InputError(f"{name} holds no rows of data")
    column = "log_probability" if args.log else "probability"
    if out_kind == "text" and table.header is not None and column in table.header:
        raise InputError(f"{name} already has a column {column!r}, which --group-by adds; "
                         "remove it first")
    key = column_index(args.group_by, table.header, name, "--group-by")
    score = _score_column(args, table, key, name)
    _check_widths(args, table, key, score, name)
    scores = _scores(table, score, name)
    keys = [fields[key] for fields in table.rows]
    unique, ids = np.unique(np.array(keys), return_inverse=True)
    func = lib.segment_log_softmax if args.log else lib.segment_softmax
    result = func(scores, ids.reshape(-1), num_segments=unique.size, **options)

    if out_kind == "json":
        obj = {
            "group_by": args.group_by,
            "column": table.header[score] if table.header is not None else score,
            "keys": keys,
            "log_probabilities" if args.log else "probabilities": json_numbers(result),
        }
        text = dump_json(obj) + "\n"
        write_output(args.output, env.stdout, lambda stream: stream.write(text))
    elif out_kind == "text":
        header = None if table.header is None else [*table.header, column]
        rows = ([*fields, repr(value)] for fields, value in zip(table.rows, result.tolist()))
        delimiter = output_delimiter(args.output, table.delimiter)
        write_output(args.output, env.stdout,
                     lambda stream: write_fields(stream, rows, delimiter, header))
    else:
        write_binary(args.output, out_kind, result, args.key)
