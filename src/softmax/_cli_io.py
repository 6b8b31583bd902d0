"""Reading and writing arrays for ``softmax apply``: .npy, .npz, CSV/TSV/text, pipes.

Text holds one distribution per line: numbers separated by commas, tabs or
blanks. Blank lines and lines starting with ``#`` are skipped; a first line
with no number at all is a header and is copied to text output. Lines may
have different lengths (each is its own distribution). Every failure to
read becomes an `InputError` that names the file, the line and the value.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._cli_exit import CLIError, InputError, UsageError

__all__ = [
    "TextData",
    "format_of",
    "read_binary",
    "read_temperature_file",
    "read_text",
    "write_binary",
    "write_text",
]

#: Text formats by suffix: their delimiter ("auto": commas, tabs or blanks,
#: whichever the first line has; written as blanks).
_TEXT = {".csv": ",", ".tsv": "\t", ".txt": "auto"}
_FORMATS = "a .npy, .npz, .csv, .tsv or .txt file, or '-'"


def format_of(path: str, what: str) -> str:
    """``"npy"``, ``"npz"`` or ``"text"`` from the file name (``-`` is text)."""
    if path == "-":
        return "text"
    suffix = Path(path).suffix.lower()
    if suffix in (".npy", ".npz"):
        return suffix[1:]
    if suffix in _TEXT:
        return "text"
    raise UsageError(f"{what} must be {_FORMATS}, got {path!r}")


def text_delimiter(path: str) -> str | None:
    """The delimiter a text file's suffix implies (``"auto"`` for ``-`` and .txt)."""
    return _TEXT.get(Path(path).suffix.lower(), "auto") if path != "-" else "auto"


class TextData(NamedTuple):
    rows: list  # one float64 array per data line
    lines: list  # the line number of each row, for messages
    header: str | None
    delimiter: str | None  # None: blanks


def _split(line: str, delimiter):
    if delimiter is None:
        return line.split()
    return [field.strip() for field in line.split(delimiter)]


def _floats(fields):
    """The numbers of a line, or the index of the first field that is not one."""
    values = []
    for i, field in enumerate(fields):
        try:
            values.append(float(field))
        except ValueError:
            return None, i
    return values, None


def read_text(stream, name: str, delimiter="auto") -> TextData:
    rows, lines = [], []
    header = None
    seen_data = False
    try:
        for lineno, raw in enumerate(stream, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if delimiter == "auto":
                delimiter = "," if "," in line else ("\t" if "\t" in line else None)
            fields = _split(line, delimiter)
            values, bad = _floats(fields)
            if values is None:
                if not seen_data and header is None and all(
                    _floats([f])[0] is None for f in fields
                ):
                    header = raw.rstrip("\r\n")
                    continue
                where = f"field {bad + 1}" if len(fields) > 1 else "the value"
                raise InputError(
                    f"{name}, line {lineno}: {where} must be a number, got {fields[bad]!r}"
                )
            seen_data = True
            rows.append(np.array(values, dtype=np.float64))
            lines.append(lineno)
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} is not a text file ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not rows:
        raise InputError(f"{name} holds no numbers")
    return TextData(rows, lines, header, None if delimiter == "auto" else delimiter)


def open_text_input(path: str, stdin):
    if path == "-":
        return stdin, "<stdin>"
    try:
        return open(path, encoding="utf-8", newline=""), path
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_numeric(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def read_binary(path: str, kind: str, key: str | None, *, mmap: bool = False):
    """The array of a .npy file, or of a .npz file (`key` picks it).

    Returns ``(array, key)``; the key is None for .npy.
    """
    try:
        if kind == "npy":
            if key is not None:
                raise UsageError(f"--key is for .npz files, got {path!r}")
            return _check_numeric(np.load(path, mmap_mode="r" if mmap else None), path), None
        with np.load(path) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(f"{path} is not an .npz archive")
            keys = list(archive.files)
            if not keys:
                raise InputError(f"{path} holds no array")
            if key is None:
                if len(keys) != 1:
                    raise UsageError(
                        f"{path} holds {len(keys)} arrays ({', '.join(keys)}): "
                        "choose one with --key"
                    )
                key = keys[0]
            elif key not in keys:
                raise UsageError(
                    f"--key must name one of the arrays in {path} ({', '.join(keys)}), got {key!r}"
                )
            return _check_numeric(archive[key], f"{path}[{key}]"), key
    except CLIError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"cannot read {path}: not a valid .{kind} file ({exc})") from None


def _fail_write(path: str, exc: OSError):
    raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_binary(path: str, kind: str, arr: np.ndarray, key: str | None) -> None:
    try:
        if kind == "npy":
            np.save(path, arr)
        else:
            np.savez(path, **{key or "arr_0": arr})
    except OSError as exc:
        _fail_write(path, exc)


def _formatter(dtype: np.dtype):
    # Shortest text that reads back to the same value, in the array's dtype.
    if dtype == np.float64:
        return lambda row: map(repr, row.tolist())
    return lambda row: map(str, row)


def write_text(stream, rows, delimiter: str | None, header: str | None, dtype) -> None:
    """One line per row; `rows` is a 2-D array or a list of 1-D arrays."""
    sep = " " if delimiter in (None, "auto") else delimiter
    fmt = _formatter(np.dtype(dtype))
    if header is not None:
        stream.write(header + "\n")
    for row in rows:
        stream.write(sep.join(fmt(np.asarray(row))) + "\n")


def open_text_output(path: str, stdout):
    if path == "-":
        return stdout, False
    try:
        return open(path, "w", encoding="utf-8", newline=""), True
    except OSError as exc:
        _fail_write(path, exc)


def read_temperature_file(path: str) -> float:
    """The temperature saved by ``softmax.calibration.TemperatureScaling.save``.

    The file is a JSON object with at least the key ``"temperature"``.
    ``TemperatureScaling.load`` reads it when softmax.calibration is there;
    otherwise the JSON is read here, by the same format.
    """
    if not os.path.isfile(path):
        raise InputError(f"cannot read --temperature-file {path}: no such file")
    try:
        from .calibration import TemperatureScaling
    except ImportError:
        TemperatureScaling = None
    loader = getattr(TemperatureScaling, "load", None)
    try:
        if loader is not None:
            temperature = loader(path).temperature
        else:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
            if not isinstance(obj, dict) or "temperature" not in obj:
                raise ValueError('expected a JSON object with the key "temperature"')
            temperature = obj["temperature"]
        temperature = float(temperature)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"cannot read a temperature from {path}: {exc}") from None
    if math.isnan(temperature) or temperature < 0:
        raise InputError(f"{path}: temperature must be >= 0, got {temperature!r}")
    return temperature
