"""``softmax apply``: softmax over arrays in files and pipes.

Small inputs are read whole, go through ``softmax.softmax`` (or
``log_softmax``) once and are written out. A .npy input larger than the
block threshold (to a .npy output) goes to ``softmax.stream.softmax_file``,
which maps the file a block at a time, so memory stays near one block
whatever the file size.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ._functions import log_softmax, softmax
from ._cli_args import (
    HelpFormatter,
    axis_arg,
    bytes_arg,
    check_scale,
    float_arg,
)
from ._cli_exit import CLIError, InputError, UsageError
from ._cli_io import (
    format_of,
    open_text_input,
    open_text_output,
    read_binary,
    read_temperature_file,
    read_text,
    text_delimiter,
    write_binary,
    write_text,
)

__all__ = ["DEFAULT_BLOCK_BYTES", "DEFAULT_THRESHOLD", "register", "run"]

#: .npy inputs above this size (bytes) are processed block by block.
DEFAULT_THRESHOLD = 256 * 2**20
#: Working memory of one block in the block path (softmax_file's block_bytes).
DEFAULT_BLOCK_BYTES = 16 * 2**20
THRESHOLD_ENV = "SOFTMAX_CLI_BLOCK_THRESHOLD"

_EPILOG = f"""\
examples:
  softmax apply logits.npy -o probs.npy
  softmax apply logits.npz --key val -o probs.npz --temperature 1.5
  softmax apply scores.csv -o probs.csv --axis 0     columns are distributions
  softmax apply scores.tsv -o - --log                log-probabilities to stdout
  printf '2 1 0.1\\n0 0 0\\n' | softmax apply -        a pipe, one row per line
  softmax apply logits.npy -o probs.npy --temperature-file temperature.json

formats (by suffix): .npy; .npz (--key picks the array; the output keeps
its name, or takes --key, or arr_0); .csv, .tsv, .txt (one distribution per
line; lines may differ in length; a first line without numbers is a header
and is copied); '-' is stdin or stdout, as text (commas, tabs or blanks).

--temperature-file reads the JSON that TemperatureScaling.save writes
(softmax calibrate): an object with the key "temperature".

A .npy input larger than 256 MiB (set {THRESHOLD_ENV}, in bytes or
with K/M/G) is processed in row blocks through a memory map, with a progress
bar on stderr when it is a terminal (tqdm if installed; --quiet hides it).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="softmax over arrays in files or pipes (.npy, .npz, .csv, .tsv, -)",
        description="Apply softmax (or log_softmax) to an array from a file or stdin\n"
        "and write the result to a file or stdout.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="input file, or - for stdin")
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    # For tests and tuning; the environment variable is the documented knob.
    parser.add_argument("--block-threshold", type=bytes_arg, help=argparse.SUPPRESS)
    parser.add_argument("--block-bytes", type=bytes_arg, default=DEFAULT_BLOCK_BYTES,
                        help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


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


def run(args, stdout, stderr) -> int:
    in_kind = format_of(args.input, "INPUT")
    out_kind = format_of(args.output, "OUTPUT")
    if args.key is not None and "npz" not in (in_kind, out_kind):
        raise UsageError(f"--key is for .npz files, got INPUT {args.input!r}")
    if args.temperature_file is not None:
        temperature = read_temperature_file(args.temperature_file)
    else:
        temperature = 1.0 if args.temperature is None else args.temperature
    check_scale(temperature, args.base)
    func = log_softmax if args.log else softmax
    options = {"temperature": temperature, "base": args.base}

    if in_kind == "npy" and out_kind == "npy":
        try:
            size = os.path.getsize(args.input)
        except OSError as exc:
            raise InputError(f"cannot read {args.input}: {exc.strerror or exc}") from None
        if size > _threshold(args):
            args.temperature = temperature
            _apply_blocks(args)
            return 0

    header = delimiter = None
    ragged = None
    key = args.key
    if in_kind == "text":
        stream, name = open_text_input(args.input, args.stdin)
        try:
            data = read_text(stream, name, text_delimiter(args.input))
        finally:
            if stream is not args.stdin:
                stream.close()
        header, delimiter = data.header, data.delimiter
        lengths = {len(row) for row in data.rows}
        if len(lengths) == 1:
            x = np.vstack(data.rows)
        else:
            ragged = data
    else:
        name = args.input
        x, in_key = read_binary(args.input, in_kind, args.key)
        key = args.key or in_key

    if ragged is not None:
        if args.axis not in (-1, 1):
            a, b = _first_mismatch(ragged)
            raise UsageError(
                f"--axis {args.axis} needs lines of equal length; {name} has "
                f"{len(ragged.rows[a])} values on line {ragged.lines[a]} and "
                f"{len(ragged.rows[b])} on line {ragged.lines[b]}"
            )
        result = [func(row, **options) for row in ragged.rows]
        dtype = np.float64
    else:
        try:
            result = func(x, axis=args.axis, **options)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{exc} (INPUT {name} has shape {x.shape})") from None
        result = np.asarray(result)
        dtype = result.dtype

    if out_kind == "text":
        if ragged is None:
            if result.ndim > 2:
                raise UsageError(
                    f"text OUTPUT holds 1-D or 2-D arrays, got shape {result.shape}; "
                    "write .npy or .npz instead"
                )
            rows = result.reshape(1, -1) if result.ndim < 2 else result
        else:
            rows = result
        if args.output != "-":
            delimiter = text_delimiter(args.output)
        elif in_kind != "text":
            delimiter = ","
        stream, close = open_text_output(args.output, stdout)
        try:
            write_text(stream, rows, delimiter, header, dtype)
        except BrokenPipeError:
            raise  # the reader left (| head): main stops quietly
        except OSError as exc:
            raise CLIError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        finally:
            if close:
                stream.close()
    else:
        if ragged is not None:
            a, b = _first_mismatch(ragged)
            raise InputError(
                f".{out_kind} OUTPUT needs lines of equal length; {name} has "
                f"{len(ragged.rows[a])} values on line {ragged.lines[a]} and "
                f"{len(ragged.rows[b])} on line {ragged.lines[b]}"
            )
        write_binary(args.output, out_kind, result, key)
    return 0


def _first_mismatch(data):
    n0 = len(data.rows[0])
    for i, row in enumerate(data.rows):
        if len(row) != n0:
            return 0, i
    return 0, 0


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _apply_blocks(args) -> None:
    """The large-file path: ``softmax.stream.softmax_file`` (any axis, bounded memory)."""
    from .stream import softmax_file

    if _same_file(args.input, args.output):
        raise UsageError(
            f"OUTPUT must be another file than INPUT, got {args.output!r} for both"
        )
    try:
        softmax_file(args.input, args.output, axis=args.axis, log=args.log,
                     temperature=args.temperature, base=args.base,
                     block_bytes=args.block_bytes,
                     # None: a tqdm bar on stderr only when it is a terminal.
                     progress=False if args.quiet else None)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if "pickle" in message or "magic" in message or "header" in message:
            raise InputError(f"cannot read {args.input}: not a valid .npy file ({exc})") from None
        raise UsageError(f"{exc} (INPUT {args.input})") from None
    except OSError as exc:
        name = getattr(exc, "filename", None)
        if name is not None and os.fspath(name) == os.fspath(args.input):
            raise InputError(f"cannot read {args.input}: {exc.strerror or exc}") from None
        raise CLIError(f"cannot write {args.output}: {exc.strerror or exc}") from None
