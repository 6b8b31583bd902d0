"""Reading and writing for the commands: text tables, .npy/.npz, stdin, outputs.

Text tables are read with the standard library's `csv` module, from a file
or from stdin through the same code (bytes, decoded as UTF-8, split at any
line ending: ``\\n``, ``\\r\\n`` or a classic-Mac ``\\r``), so a pipe and a
file with the same bytes give the same rows. Quoted fields (``"a, b",1.0``)
work; the delimiter is the suffix's (.csv comma, .tsv tab) or sniffed
(comma, tab or blanks). Blank lines and lines starting with ``#`` are
skipped; a first line with no number is a header, copied to text output.

Every output file is written beside its target under a temporary name and
renamed into place only when complete (`replaced_on_success`): a failure, an
exception, Ctrl-C or SIGTERM leaves neither a half-written output nor the
temporary file.

Every failure to read becomes an `InputError` that names the file (or
``<stdin>``), the line and the value, cut to a readable length.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import secrets
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .args import is_number
from .status import CLIError, InputError, UsageError, clip

__all__ = [
    "FieldTable",
    "Table",
    "column_index",
    "format_of",
    "output_delimiter",
    "read_binary",
    "read_fields",
    "read_table",
    "read_temperature_file",
    "read_text",
    "replaced_on_success",
    "text_delimiter",
    "write_binary",
    "write_fields",
    "write_output",
    "write_text",
]

#: Text formats by suffix and their delimiter ("auto": sniffed).
_TEXT = {".csv": ",", ".tsv": "\t", ".txt": "auto"}
_FORMATS = "a .npy, .npz, .csv, .tsv or .txt file, or '-'"
#: The delimiters a sniffed table may have (blank: one or more spaces).
_SNIFFED = ",\t "


def format_of(path: str, what: str) -> str:
    """``"npy"``, ``"npz"`` or ``"text"`` from the file name (``-`` is text)."""
    if path == "-":
        return "text"
    suffix = Path(path).suffix.lower()
    if suffix in (".npy", ".npz"):
        return suffix[1:]
    if suffix in _TEXT:
        return "text"
    raise UsageError(f"{what} must be {_FORMATS}, got {clip(path)}")


def text_delimiter(path: str) -> str:
    """The delimiter a text file's suffix implies (``"auto"`` for ``-`` and .txt)."""
    return _TEXT.get(Path(path).suffix.lower(), "auto") if path != "-" else "auto"


def output_delimiter(output: str, source: str | None) -> str:
    """The delimiter of a text OUTPUT: its suffix's, else the input table's (`source`).

    When the input was not text (`source` None): blanks in a .txt file, commas on stdout.
    """
    if output != "-":
        delimiter = text_delimiter(output)
        if delimiter != "auto":
            return delimiter
        return source or " "
    return source or ","


# ------------------------------------------------------------------ reading


def read_text(source, name: str) -> str:
    """The whole text of a path or a stream, decoded as UTF-8 (a BOM is dropped).

    A binary stream (``sys.stdin.buffer``) is read as bytes so that line
    endings reach `csv` untranslated, as they do from a file.
    """
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                data = f.read()
        else:
            buffer = getattr(source, "buffer", None)
            data = buffer.read() if buffer is not None else source.read()
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


class Table(NamedTuple):
    """A text table: one float64 row per data line (rows may differ in length)."""

    rows: list  # float64 arrays
    lines: list  # the line number of each row, for messages
    header: list | None  # the header's fields
    delimiter: str  # ",", "\t" or " " (blanks)
    labels: list | None  # the --label-column values, one per row
    label_index: int | None  # where the label column was


def _data_lines(text: str, limit: int):
    """The first non-blank, non-comment lines of `text`, up to `limit` characters."""
    out, size = [], 0
    for line in io.StringIO(text[: 1 << 16], newline=""):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append(line)
            size += len(line)
            if size > limit:
                break
    return out


def sniff_delimiter(text: str) -> str:
    """Comma, tab or blank: `csv.Sniffer` on the data lines, else the first line's.

    The Sniffer needs rows of equal length; for ragged tables and single
    columns the first data line decides: a comma, else a tab, else blanks.
    """
    lines = _data_lines(text, 1 << 14)
    if not lines:
        return " "
    try:
        return csv.Sniffer().sniff("".join(lines), delimiters=_SNIFFED).delimiter
    except csv.Error:
        first = lines[0]
        return "," if "," in first else ("\t" if "\t" in first else " ")


def label_column_arg(text: str):
    """``--label-column``: an index (0 is the first column), a header NAME, or none.

    ``none`` (returned as False) says there is no label column, even where
    the header looks like pandas' (which `read_table` otherwise refuses).
    """
    if text.strip().lower() == "none":
        return False
    return text


def column_index(spec, header, name, option: str = "--label-column") -> int | None:
    """The 0-based index of the column that `option` names (a header name or an index).

    A whole number is an index (pandas names its columns 0, 1, ... too,
    shifted by the index column: an index is what the user counted).
    """
    if spec is None:
        return None
    try:
        index = int(spec)
    except ValueError:
        if header is None:
            raise UsageError(
                f"{option} {clip(spec)} names a column, but {name} has no header line; "
                "give its index (0 is the first column)"
            ) from None
        if spec in header:
            return header.index(spec)
        raise UsageError(
            f"{option} must be a column index or one of the header's names "
            f"({clip(', '.join(header), 200, quote=False)}), got {clip(spec)}"
        ) from None
    if index < 0:
        raise UsageError(f"{option} index must be >= 0, got {index}")
    return index


def _records(text: str, name: str, delimiter: str):
    """(line number, stripped fields) of each line; blank and ``#`` lines are skipped."""
    blanks = delimiter == " "
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        skipinitialspace=True, strict=False)
    try:
        for fields in reader:
            if blanks:
                fields = [f for f in fields if f.strip()]
            if not fields or fields[0].lstrip().startswith("#"):
                continue
            yield reader.line_num, [f.strip() for f in fields]
    except csv.Error as exc:
        raise InputError(f"{name}, line {reader.line_num}: not a readable table ({exc})") from None


def read_table(text: str, name: str, delimiter: str = "auto", label_column=None) -> Table:
    """Parse a text table (see the module docstring for the rules).

    Parameters
    ----------
    text : str
        The whole table.
    name : str
        The file name (or ``<stdin>``) for messages.
    delimiter : {",", "\\t", "auto"}
        The suffix's delimiter, or ``"auto"`` to sniff one.
    label_column : str, None or False
        ``--label-column``: a header name or a 0-based index of a column of
        labels, kept apart from the numbers; False: none, say so.
    """
    no_labels_said = label_column is False
    if no_labels_said:
        label_column = None
    if delimiter == "auto":
        delimiter = sniff_delimiter(text)
    rows, lines, labels = [], [], []
    header = None
    index = None
    resolved = label_column is None
    for lineno, fields in _records(text, name, delimiter):
        if not rows and header is None:
            spec_index = None
            if label_column is not None:
                with contextlib.suppress(ValueError):
                    spec_index = int(label_column)
            numeric = [k for k, f in enumerate(fields) if k != spec_index and is_number(f)]
            names_label = label_column is not None and spec_index is not None and \
                spec_index < len(fields) and fields[spec_index] in ("", label_column)
            if not numeric or names_label or (label_column is not None
                                              and label_column in fields):
                header = fields
                continue
        if not resolved:
            index = column_index(label_column, header, name)
            resolved = True
        if index is not None:
            if index >= len(fields):
                raise InputError(
                    f"{name}, line {lineno}: --label-column {index} needs at least "
                    f"{index + 1} fields, got {len(fields)}"
                )
            labels.append(fields[index])
            fields = fields[:index] + fields[index + 1:]
        try:
            values = np.array([float(f) for f in fields], dtype=np.float64)
        except ValueError:
            bad = next(k for k, f in enumerate(fields) if not is_number(f))
            column = bad + (1 if index is not None and bad >= index else 0)
            where = f"field {column + 1}" if len(fields) > 1 or index is not None \
                else "the value"
            message = f"{name}, line {lineno}: {where} must be a number, got {clip(fields[bad])}"
            if column == 0 and label_column is None and len(fields) > 1:
                message += (" (an id column, like the index pandas.to_csv writes? "
                            "keep it as labels with --label-column 0)")
            raise InputError(message) from None
        if values.size == 0:
            continue
        rows.append(values)
        lines.append(lineno)
    if not rows:
        raise InputError(f"{name} holds no numbers")
    if (not no_labels_said and label_column is None and header is not None and header[0] == ""
            and len(header) == len(rows[0]) and len(header) > 1):
        # pandas.to_csv writes its index as a first column with an empty name:
        # read as scores it would silently join every distribution.
        raise InputError(
            f"{name}: the header's first field is empty, as pandas.to_csv writes for an "
            "index column; keep it as labels with --label-column 0, or read it as scores "
            "with --label-column none"
        )
    return Table(rows, lines, header, delimiter, labels if index is not None else None, index)


class FieldTable(NamedTuple):
    """A text table as it was written: the fields of each data line, as strings."""

    rows: list  # lists of str
    lines: list  # the line number of each row, for messages
    header: list | None
    delimiter: str


def read_fields(text: str, name: str, delimiter: str = "auto", names=()) -> FieldTable:
    """Parse a text table without converting anything (the rules of `read_table`).

    The first line is a header when it holds no number, or holds one of
    `names` (the column names the command line gave).
    """
    if delimiter == "auto":
        delimiter = sniff_delimiter(text)
    rows, lines = [], []
    header = None
    for lineno, fields in _records(text, name, delimiter):
        if not rows and header is None and (
                not any(map(is_number, fields)) or any(n in fields for n in names)):
            header = fields
            continue
        rows.append(fields)
        lines.append(lineno)
    return FieldTable(rows, lines, header, delimiter)


def _npy_problem(path: str, exc: Exception) -> str:
    """Why a .npy file cannot be loaded, naming it: truncated, or not .npy."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is not None:
                shape, _, dtype = read_header(f)
                expected = f.tell() + math.prod(shape) * dtype.itemsize
                size = os.path.getsize(path)
                if size < expected:
                    return (f"{path} is truncated: its header promises shape {shape} of "
                            f"{dtype}, {expected} bytes, but the file has {size} bytes")
    except (OSError, ValueError, EOFError):
        pass
    return f"cannot read {path}: not a valid .npy file ({clip(str(exc), 200, quote=False)})"


def _check_numeric(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def read_binary(path: str, kind: str, key: str | None):
    """The array of a .npy file, or of a .npz file (`key` picks it).

    Returns ``(array, key)``; the key is None for .npy.
    """
    try:
        if kind == "npy":
            if key is not None:
                raise UsageError(f"--key is for .npz files, got {clip(path)}")
            try:
                return _check_numeric(np.load(path), path), None
            except (ValueError, EOFError) as exc:
                raise InputError(_npy_problem(path, exc)) from None
        with np.load(path) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(f"{path} is not an .npz archive")
            keys = list(archive.files)
            if not keys:
                raise InputError(f"{path} holds no array")
            if key is None:
                if len(keys) != 1:
                    raise UsageError(
                        f"{path} holds {len(keys)} arrays ({clip(', '.join(keys), 200, quote=False)}): "
                        "choose one with --key"
                    )
                key = keys[0]
            elif key not in keys:
                raise UsageError(
                    f"--key must name one of the arrays in {path} "
                    f"({clip(', '.join(keys), 200, quote=False)}), got {clip(key)}"
                )
            return _check_numeric(archive[key], f"{path}[{key}]"), key
    except CLIError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"cannot read {path}: not a valid .{kind} file ({clip(str(exc), 200, quote=False)})") \
            from None


def read_temperature_file(path: str, option: str = "--temperature-file") -> float:
    """The temperature saved by ``softmax.calibration.TemperatureScaling.save``.

    The file is a JSON object with at least the key ``"temperature"``; it is
    read with ``TemperatureScaling.load``. Any failure (including JSON
    nested too deep for the parser) is an `InputError` naming the file.
    """
    from softmax.calibration import TemperatureScaling

    if not os.path.isfile(path):
        raise InputError(f"cannot read {option} {path}: no such file")
    try:
        temperature = float(TemperatureScaling.load(path).temperature)
    except RecursionError:
        raise InputError(f"cannot read a temperature from {path}: JSON nested too deep") \
            from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise InputError(f"cannot read a temperature from {path}: {clip(str(exc), 200, quote=False)}") \
            from None
    if math.isnan(temperature) or temperature < 0:
        raise InputError(f"{path}: temperature must be >= 0, got {temperature!r}")
    return temperature


# ------------------------------------------------------------------ writing


def _temporary_beside(path: Path) -> Path:
    # O_EXCL with mode 0o666 (the umask applies), so the renamed result gets
    # the permissions of any new file; tempfile's 0o600 would make it private.
    # The target's suffix is kept: np.save and savefig go by it.
    for _ in range(100):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file beside {path}")


@contextlib.contextmanager
def replaced_on_success(path, what: str = ""):
    """Yield a temporary path beside `path`; rename it to `path` on success only.

    On any exception (KeyboardInterrupt and the command's SIGTERM exception
    included) the temporary file is removed and the exception propagates:
    no half-written output, and an existing file stays as it was. An
    OSError becomes a `CLIError` "cannot write PATH".
    """
    path = Path(path)
    try:
        tmp = _temporary_beside(path)
    except OSError as exc:
        raise CLIError(f"cannot write {what}{path}: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise CLIError(f"cannot write {what}{path}: {exc.strerror or exc}") from None
        raise


def write_binary(path: str, kind: str, arr: np.ndarray, key: str | None) -> None:
    """Save `arr` as .npy, or as .npz under `key` (default ``arr_0``)."""
    with replaced_on_success(path) as tmp:
        if kind == "npy":
            np.save(tmp, arr)
        else:
            np.savez(tmp, **{key or "arr_0": arr})


def _formatter(dtype: np.dtype):
    # Shortest text that reads back to the same value, in the array's dtype.
    if dtype == np.float64:
        return lambda row: map(repr, row.tolist())
    return lambda row: map(str, row)


def write_fields(stream, rows, delimiter: str, header=None) -> None:
    """Rows of str fields, one line each, with `csv` (fields quoted as needed)."""
    writer = csv.writer(stream, delimiter=delimiter, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)


def write_text(stream, rows, delimiter: str, header=None, dtype=np.float64,
               labels=None, label_index=None) -> None:
    """One line per row of numbers, in the shortest text that reads back the same.

    `rows` is a 2-D array or a list of 1-D arrays; `labels` go back into
    column `label_index`.
    """
    fmt = _formatter(np.dtype(dtype))

    def cells():
        for i, row in enumerate(rows):
            line = list(fmt(np.asarray(row)))
            if labels is not None:
                line.insert(min(label_index, len(line)), labels[i])
            yield line

    write_fields(stream, cells(), delimiter, header)


def write_output(path: str, stdout, write) -> None:
    """``write(stream)`` to `stdout` for ``-``, else to `path` through `replaced_on_success`."""
    if path == "-":
        write(stdout)
        return
    with replaced_on_success(path) as tmp, \
            open(tmp, "w", encoding="utf-8", newline="") as stream:
        write(stream)
