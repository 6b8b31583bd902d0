"""``softmax apply``: softmax over arrays in files and pipes.

Small inputs are read whole, go through `softmax.softmax` (or
`softmax.log_softmax`) once and are written out; ``--group-by`` tables go to
`grouped` (`softmax.segment_softmax` over the rows that share a key). A .npy
input larger than the block threshold (to a .npy output) goes to
`softmax.stream.softmax_file`, which maps the file a block at a time, so
memory stays near one block whatever the file size. Every output file is written under a temporary name
and renamed into place when complete (`fileio.replaced_on_success`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import softmax as lib
from softmax.stream import softmax_file

from . import grouped
from .args import axis_arg, bytes_arg, check_scale, dump_json, float_arg, json_numbers
from .fileio import (
    format_of,
    label_column_arg,
    output_delimiter,
    read_binary,
    read_table,
    read_temperature_file,
    read_text,
    text_delimiter,
    write_binary,
    write_output,
    write_text,
)
from .status import CLIError, ExitStatus, InputError, UsageError, clip

__all__ = ["DEFAULT_BLOCK_BYTES", "DEFAULT_THRESHOLD", "add_arguments", "run"]

#: .npy inputs above this size (bytes) are processed block by block.
DEFAULT_THRESHOLD = 256 * 2**20
#: Working memory of one block in the block path (softmax_file's block_bytes).
DEFAULT_BLOCK_BYTES = 16 * 2**20
THRESHOLD_ENV = "SOFTMAX_CLI_BLOCK_THRESHOLD"

HELP = "softmax over arrays in files or pipes (.npy, .npz, .csv, .tsv, -)"
DESCRIPTION = ("Apply softmax (or log_softmax) to an array from a file or stdin\n"
               "and write the result to a file or stdout; or, with --group-by,\n"
               "within the groups of rows of a table that share a key.")
EPILOG = f"""\
examples:
  softmax apply logits.npy -o probs.npy
  softmax apply logits.npz --key val -o probs.npz --temperature 1.5
  softmax apply scores.csv -o probs.csv --axis 0     columns are distributions
  softmax apply scores.tsv -o - --log                log-probabilities to stdout
  printf '2 1 0.1\\n0 0 0\\n' | softmax apply          a pipe, one row per line
  softmax apply df.csv --label-column 0              keep pandas' index column
  softmax apply runs.csv --group-by query            per-query shares
  softmax apply logits.npy --json                    JSON for programs
  softmax apply logits.npy -o probs.npy --temperature-file temperature.json

formats (by suffix): .npy; .npz (--key picks the array; the output keeps
its name, or takes --key, or arr_0); .csv, .tsv, .txt (one distribution per
line; lines may differ in length; a first line without numbers is a header
and is copied); .json (as --json); '-' is stdin or stdout, as text.

Text is read with Python's csv module: quoted fields, any line ending
(\\n, \\r\\n, \\r), and for '-' and .txt a sniffed delimiter (commas, tabs or
blanks). Without INPUT, stdin is read when it is not a terminal.

--label-column NAME|INDEX keeps a column of labels (ids, what pandas.to_csv
writes as its index) out of the numbers and puts it back in text output and
as "labels" in JSON. A header whose first field is empty (pandas' index) is
refused without it; --label-column none reads that column as numbers.

--group-by NAME|INDEX (text tables) normalizes within groups of rows: the
column holds a key (a query id; rows of a key need not be together), the
scores are --column or the only other column of numbers, and the table is
written back with a "probability" column added ("log_probability" with
--log), every field and the row order kept. A .npy or .npz OUTPUT holds the
probabilities in row order; JSON has {{"group_by", "column", "keys",
"probabilities"}}.

--json writes {{"shape", "axis", "probabilities" or "log_probabilities"}};
JSON has no inf or NaN: -inf is written "-inf", inf "inf", NaN null.

--temperature-file reads the JSON that TemperatureScaling.save writes
(softmax calibrate): an object with the key "temperature".

A .npy input larger than 256 MiB (set {THRESHOLD_ENV}, in bytes or
with K/M/G) is processed in row blocks through a memory map, with a progress
bar on stderr when it is a terminal (tqdm if installed; --quiet hides it).
No output file is left behind by a failure, Ctrl-C or SIGTERM.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``softmax apply``."""
    parser.add_argument("input", metavar="INPUT", nargs="?",
                        help="input file, or - for stdin (the default when stdin is a pipe)")
    parser.add_argument("-o", "--output", default="-", metavar="OUTPUT",
                        help="output file, or - for stdout (the default)")
    parser.add_argument("--axis", type=axis_arg, default=-1, metavar="A",
                        help="axis the probabilities sum along: an int, a list "
                        "like 0,1, or none for all (default -1)")
    parser.add_argument("--log", action="store_true", help="write log-probabilities")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("-t", "--temperature", type=float_arg, metavar="T",
                       help="divide the scores by T (default 1)")
    scale.add_argument("--temperature-file", metavar="FILE",
                       help="read T from a JSON file saved by calibration")
    parser.add_argument("--base", type=float_arg, metavar="A",
                        help="use A**x instead of e**x (T = 1/ln A)")
    parser.add_argument("--key", metavar="NAME", help="the array to use in an .npz input")
    parser.add_argument("--label-column", type=label_column_arg, metavar="NAME|INDEX",
                        help="a text column of labels (0 is the first), kept out of the "
                        "numbers; 'none': there is none")
    parser.add_argument("--group-by", metavar="NAME|INDEX",
                        help="a text column of group keys (a query id): the shares sum to 1 "
                        "within each key's rows, written in an added column")
    parser.add_argument("--column", metavar="NAME|INDEX",
                        help="with --group-by: the column of scores (default: the only "
                        "other column of numbers)")
    parser.add_argument("--json", action="store_true",
                        help="write a JSON object (to OUTPUT or stdout)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    # For tests and tuning; the environment variable is the documented knob.
    parser.add_argument("--block-threshold", type=bytes_arg, help=argparse.SUPPRESS)
    parser.add_argument("--block-bytes", type=bytes_arg, default=DEFAULT_BLOCK_BYTES,
                        help=argparse.SUPPRESS)


def _threshold(args) -> int:
    if args.block_threshold is not None:
        return args.block_threshold
    text = os.environ.get(THRESHOLD_ENV)
    if not text:
        return DEFAULT_THRESHOLD
    try:
        return bytes_arg(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{THRESHOLD_ENV} {exc}") from None


def _output_kind(args) -> str:
    if args.json:
        if args.output != "-" and not args.output.lower().endswith(".json"):
            raise UsageError(f"--json writes JSON: OUTPUT must be - or a .json file, "
                             f"got {clip(args.output)}")
        return "json"
    if args.output.lower().endswith(".json"):
        return "json"
    return format_of(args.output, "OUTPUT")


def run(args, env) -> ExitStatus:
    """Read INPUT, apply softmax along ``--axis``, write OUTPUT."""
    if args.input is None:
        if env.stdin_isatty:
            raise UsageError("INPUT is required (a file, or - for stdin; "
                             "or pipe the data in: ... | softmax apply)")
        args.input = "-"
    in_kind = format_of(args.input, "INPUT")
    out_kind = _output_kind(args)
    if args.key is not None and "npz" not in (in_kind, out_kind):
        raise UsageError(f"--key is for .npz files, got INPUT {clip(args.input)}")
    if args.label_column not in (None, False) and in_kind != "text":
        raise UsageError(f"--label-column is for text tables, got INPUT {clip(args.input)}")
    grouped.check_options(args, in_kind)
    if args.temperature_file is not None:
        temperature = read_temperature_file(args.temperature_file)
        check_scale(temperature, args.base,
                    temperature_option=f"the temperature in {args.temperature_file}")
    else:
        temperature = 1.0 if args.temperature is None else args.temperature
        check_scale(temperature, args.base)
    func = lib.log_softmax if args.log else lib.softmax
    options = {"temperature": temperature, "base": args.base}
    if args.group_by is not None:
        grouped.run(args, env, out_kind, options)
        return ExitStatus.SUCCESS

    if in_kind == "npy" and out_kind == "npy":
        try:
            size = os.path.getsize(args.input)
        except OSError as exc:
            raise InputError(f"cannot read {args.input}: {exc.strerror or exc}") from None
        if size > _threshold(args):
            _apply_blocks(args, temperature)
            return ExitStatus.SUCCESS

    table = None
    ragged = False
    key = args.key
    if in_kind == "text":
        name = "<stdin>" if args.input == "-" else args.input
        text = read_text(env.stdin if args.input == "-" else args.input, name)
        table = read_table(text, name, text_delimiter(args.input), args.label_column)
        ragged = len({len(row) for row in table.rows}) > 1
        x = None if ragged else np.vstack(table.rows)
    else:
        name = args.input
        x, in_key = read_binary(args.input, in_kind, args.key)
        key = args.key or in_key

    if ragged:
        if args.axis not in (-1, 1):
            a, b = _first_mismatch(table)
            raise UsageError(
                f"--axis {args.axis} needs lines of equal length; {name} has "
                f"{len(table.rows[a])} values on line {table.lines[a]} and "
                f"{len(table.rows[b])} on line {table.lines[b]}"
            )
        result = [func(row, **options) for row in table.rows]
        dtype = np.float64
    else:
        try:
            result = np.asarray(func(x, axis=args.axis, **options))
        except (ValueError, TypeError) as exc:  # numpy.exceptions.AxisError is a ValueError
            raise UsageError(f"{exc} (INPUT {name} has shape {x.shape})") from None
        dtype = result.dtype

    labels = table.labels if table is not None else None
    if out_kind == "json":
        _write_json(args, env, result, labels, ragged)
    elif out_kind == "text":
        _write_table(args, env, result, ragged, table, dtype)
    else:
        if ragged:
            a, b = _first_mismatch(table)
            raise InputError(
                f".{out_kind} OUTPUT needs lines of equal length; {name} has "
                f"{len(table.rows[a])} values on line {table.lines[a]} and "
                f"{len(table.rows[b])} on line {table.lines[b]}"
            )
        write_binary(args.output, out_kind, result, key)
    return ExitStatus.SUCCESS


def _write_table(args, env, result, ragged, table, dtype) -> None:
    if not ragged:
        if result.ndim > 2:
            raise UsageError(
                f"text OUTPUT holds 1-D or 2-D arrays, got shape {result.shape}; "
                "write .npy, .npz or --json instead"
            )
        rows = result.reshape(1, -1) if result.ndim < 2 else result
    else:
        rows = result
    header = labels = label_index = None
    if table is not None:
        header, labels, label_index = table.header, table.labels, table.label_index
        if labels is not None and len(labels) != len(rows):
            labels = None  # --axis none or 0 of a single row: no row labels to keep
    delimiter = output_delimiter(args.output, table.delimiter if table is not None else None)

    write_output(args.output, env.stdout,
                 lambda stream: write_text(stream, rows, delimiter, header, dtype, labels,
                                           label_index))


def _write_json(args, env, result, labels, ragged) -> None:
    values = [json_numbers(row) for row in result] if ragged else json_numbers(result)
    obj = {
        "shape": None if ragged else list(np.shape(result)),
        "axis": list(args.axis) if isinstance(args.axis, tuple) else args.axis,
        "log_probabilities" if args.log else "probabilities": values,
    }
    if labels is not None:
        obj = {"labels": labels, **obj}
    text = dump_json(obj) + "\n"
    write_output(args.output, env.stdout, lambda stream: stream.write(text))


def _first_mismatch(table):
    n0 = len(table.rows[0])
    for i, row in enumerate(table.rows):
        if len(row) != n0:
            return 0, i
    return 0, 0


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _apply_blocks(args, temperature) -> None:
    """The large-file path: `softmax.stream.softmax_file` (any axis, bounded memory).

    softmax_file writes to a temporary file and renames it on success; an
    exception (Ctrl-C, the command's SIGTERM) removes it on the way up.
    """
    if _same_file(args.input, args.output):
        raise UsageError(
            f"OUTPUT must be another file than INPUT, got {clip(args.output)} for both"
        )
    try:
        softmax_file(args.input, args.output, axis=args.axis, log=args.log,
                     temperature=temperature, base=args.base,
                     block_bytes=args.block_bytes,
                     # None: a tqdm bar on stderr only when it is a terminal.
                     progress=False if args.quiet else None)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if message.startswith("input_path "):
            # The library names the file and says what is wrong with it.
            message = message.removeprefix("input_path ")
            raise InputError(message.replace(repr(str(Path(args.input))), args.input, 1)) from None
        raise UsageError(f"{message} (INPUT {args.input})") from None
    except OSError as exc:
        name = getattr(exc, "filename", None)
        if name is not None and os.fspath(name) == os.fspath(args.input):
            raise InputError(f"cannot read {args.input}: {exc.strerror or exc}") from None
        raise CLIError(f"cannot write {args.output}: {exc.strerror or exc}") from None
