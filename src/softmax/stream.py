"""Softmax over data that arrives in pieces or does not fit in memory.

Two passes are enough for any softmax: the first collects, per slice, the
maximum ``m`` and ``s = sum exp(x - m)``; the second writes
``exp(x - m) / s``. The pair ``(m, s)`` of two pieces merges exactly
(``softmax._merge``), so the first pass can run chunk by chunk, in any order,
on any number of machines.

* `OnlineLogSumExp`: the state, fed with `update` and combined with `merge`.
* `softmax_file`: softmax of a ``.npy`` file into another, in bounded memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, overload

import numpy as np

from ._backends import merge as _merge
from ._backends import numpy as _numpy_backend
from ._plan import Plan
from ._typing import (
    ArrayLike,
    Axis,
    FloatArray,
    FloatResult,
    FloatScalar,
    NDArray,
    NumpyScalar,
)
from ._arguments import (
    UNIT_SCALE,
    Scale,
    as_float_array,
    normalize_axis,
    parse_scale,
    reduction_axes,
    unmask,
    where_mask,
)

__all__ = ["OnlineLogSumExp", "softmax_file"]

_EPS64 = float(np.finfo(np.float64).eps)
_UNIT = _merge.PositiveScale()


class OnlineLogSumExp:
    """Running log-sum-exp of a stream of chunks: the state ``(max, sum)``.

    Chunks are pieces of one big array cut along the reduced axes; the
    other axes form a batch of slices whose shape is fixed by the first
    chunk. After any sequence of `update` and `merge` calls, `logsumexp`
    equals ``softmax.logsumexp`` of the concatenated chunks (float64: to the
    last ulp in nearly every case, 1 ulp at most in our tests).

    Parameters
    ----------
    axis : int, tuple of ints or None, optional
        Axes of each chunk that are reduced (the stream runs along them).
        ``None`` (default, as in `softmax.logsumexp`) reduces everything: the
        state is one number.

    Notes
    -----
    The state keeps, per slice, ``m = max x`` and ``s - 1`` in double-double
    precision (``s = sum exp(x - m)``); two states merge by
    ``(m, s) + (m', s') = (M, s e^{m-M} + s' e^{m'-M})`` with
    ``M = max(m, m')`` (Milakov & Gimelshein, "Online normalizer calculation
    for softmax", 2018). `merge` is commutative bit for bit and associative
    up to the rounding of one ``exp`` per merge. NaN makes a slice NaN,
    ``+inf`` wins, an empty or all ``-inf`` slice has log-sum-exp ``-inf``.
    Objects pickle, so states can be computed in other processes.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax.stream import OnlineLogSumExp
    >>> acc = OnlineLogSumExp()
    >>> for chunk in ([1000.0, 1000.0], [1000.0, 1000.0]):
    ...     _ = acc.update(chunk)
    >>> float(acc.logsumexp)  # 1000 + ln 4
    1001.3862943611199

    One state per row, chunks of columns; then the second pass:

    >>> x = np.array([[2.0, 1.0, 0.1, 3.0], [0.0, 0.0, 0.0, 0.0]])
    >>> acc = OnlineLogSumExp(axis=1)
    >>> _ = acc.update(x[:, :2]).update(x[:, 2:])
    >>> acc.softmax(x[:, :2]).round(4)
    array([[0.2361, 0.0869],
           [0.25  , 0.25  ]])

    States merge in any order:

    >>> a, b = OnlineLogSumExp(), OnlineLogSumExp()
    >>> _ = a.update([2.0, 1.0]); _ = b.update([0.1])
    >>> float(a.merge(b).logsumexp), float(b.merge(a).logsumexp)
    (2.4170300162778333, 2.4170300162778333)
    """

    def __init__(self, axis: Axis | list[int] = None) -> None:
        if axis is not None and not isinstance(axis, (tuple, list)):
            normalize_axis(axis, 64)  # type check now; range check per chunk
        self._axis = tuple(axis) if isinstance(axis, list) else axis
        self._batch_shape: tuple[int, ...] | None = None
        self._dtype: np.dtype[Any] | None = None
        self._state = _merge.identity(np)

    # Pickles (Dask and multiprocessing move states between processes) carry
    # a format version, so a state saved by another version is refused with
    # a clear message instead of being misread.
    _PICKLE_FORMAT = 1

    def __getstate__(self) -> dict[str, Any]:
        return {"format": self._PICKLE_FORMAT, "axis": self._axis,
                "batch_shape": self._batch_shape, "dtype": self._dtype,
                "state": tuple(np.asarray(a) for a in self._state)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        fmt = state.get("format") if isinstance(state, dict) else None
        if fmt != self._PICKLE_FORMAT:
            raise ValueError(
                f"OnlineLogSumExp pickle must have format {self._PICKLE_FORMAT}, got {fmt!r} "
                "(saved by another version of softmax)")
        self._axis = state["axis"]
        self._batch_shape = state["batch_shape"]
        self._dtype = state["dtype"]
        self._state = _merge.State(*state["state"])

    def __repr__(self) -> str:
        shape = "?" if self._batch_shape is None else self._batch_shape
        return f"OnlineLogSumExp(axis={self._axis!r}) with batch shape {shape}"

    @property
    def axis(self) -> Axis:
        """The reduced axes, as given."""
        return self._axis

    def _layout(self, chunk: ArrayLike, where: ArrayLike | None, name: str
                ) -> tuple[FloatArray, tuple[int, ...], tuple[int, ...], NDArray[np.bool] | None]:
        chunk, where = unmask(chunk, where, name)
        arr = as_float_array(chunk, name)
        if arr.ndim == 0:
            # A scalar is one slice of one element (axis 0, -1 or None), as in softmax.
            reduction_axes(self._axis, 0)
            arr = arr[np.newaxis]
            where = None if where is None else np.reshape(np.asarray(where), (1,))
        axes = normalize_axis(self._axis, arr.ndim)
        batch = tuple(n for i, n in enumerate(arr.shape) if i not in axes)
        if self._batch_shape is not None and batch != self._batch_shape:
            raise ValueError(
                f"{name} must have the batch shape {self._batch_shape} outside "
                f"axis {self._axis!r}, got shape {arr.shape}"
            )
        mask = where_mask(where, arr.shape)
        return arr, axes, batch, mask

    def update(self, chunk: ArrayLike, *, where: ArrayLike | None = None) -> OnlineLogSumExp:
        """Fold a chunk into the state; returns the accumulator itself.

        Parameters
        ----------
        chunk : array_like
            The next piece. Its shape outside the reduced axes must be the
            same for every chunk.
        where : array_like of bool, optional
            Entries to include.

        Returns
        -------
        OnlineLogSumExp
            ``self``, for chaining.
        """
        arr, axes, batch, mask = self._layout(chunk, where, "chunk")
        self._batch_shape = batch
        self._dtype = arr.dtype if self._dtype is None else np.result_type(self._dtype, arr.dtype)
        if _n_reduced(arr.shape, axes) == 0:
            return self
        with _merge.quiet():
            v = _merge.orient(np, arr.astype(np.float64), UNIT_SCALE, mask)
            state = _merge.chunk_state(np, v, axes, _UNIT, exact=_exact(arr.dtype), eps=_EPS64)
            state = _merge.State(*(np.squeeze(s, axis=axes) for s in state))
            self._state = _merge.merge(np, self._state, state, _UNIT, _EPS64)
        return self

    def merge(self, other: OnlineLogSumExp) -> OnlineLogSumExp:
        """A new accumulator holding both states; neither operand changes.

        Parameters
        ----------
        other : OnlineLogSumExp
            A state over other chunks of the same stream (same `axis` and
            batch shape).

        Returns
        -------
        OnlineLogSumExp
            The state of all chunks seen by either.
        """
        if not isinstance(other, OnlineLogSumExp):
            raise TypeError(f"other must be an OnlineLogSumExp, got {type(other).__name__}")
        if other._axis != self._axis:
            raise ValueError(f"other must reduce axis {self._axis!r}, got axis {other._axis!r}")
        shapes = {s for s in (self._batch_shape, other._batch_shape) if s is not None}
        if len(shapes) > 1:
            raise ValueError(
                f"other must have batch shape {self._batch_shape}, got {other._batch_shape}"
            )
        result = OnlineLogSumExp(self._axis)
        result._batch_shape = shapes.pop() if shapes else None
        dtypes = [d for d in (self._dtype, other._dtype) if d is not None]
        result._dtype = np.result_type(*dtypes) if dtypes else None
        with _merge.quiet():
            result._state = _merge.merge(np, self._state, other._state, _UNIT, _EPS64)
        return result

    def _out(self, a: NDArray[Any]) -> FloatResult:
        a = np.broadcast_to(a, self._batch_shape or ())
        dtype = self._dtype if self._dtype is not None else np.dtype(np.float64)
        a = a.astype(dtype)
        return a[()] if a.ndim == 0 else a

    @property
    def logsumexp(self) -> FloatResult:
        """log(sum(exp(x))) over everything seen, per slice, in the chunks' dtype.

        ``-inf`` before the first chunk.
        """
        with _merge.quiet():
            hi, lo = _merge.log_total(np, self._state)
            return self._out(hi + lo)

    @property
    def max(self) -> FloatResult:
        """The largest value seen per slice (NaN if a NaN was seen), float64."""
        m = np.broadcast_to(self._state.m, self._batch_shape or ())
        return m[()] if m.ndim == 0 else m.copy()

    @property
    def sumexp(self) -> FloatResult:
        """``sum(exp(x - max))`` per slice, float64 (the count of +inf for max=+inf)."""
        with _merge.quiet():
            s = np.broadcast_to(self._state.r_hi + 1.0 + self._state.r_lo, self._batch_shape or ())
        return s[()] if s.ndim == 0 else s.copy()

    def _normalize(self, chunk: ArrayLike, where: ArrayLike | None, log: bool) -> FloatResult:
        arr, axes, _, mask = self._layout(chunk, where, "chunk")
        if self._batch_shape is None:
            raise ValueError("chunk cannot be normalized before the first update")
        exact = _exact(arr.dtype)
        with _merge.quiet():
            state = _merge.State(*(np.expand_dims(np.broadcast_to(s, self._batch_shape), axes)
                                   for s in self._state))
            v = _merge.orient(np, arr.astype(np.float64), UNIT_SCALE, mask)
            out: FloatArray = _merge.finish(np, v, state, _UNIT, log=log, exact=exact, eps=_EPS64)
            if mask is not None:
                out = np.where(mask, out, -np.inf if log else 0.0)
            # over: a float64 log-probability beyond float16's range rounds to -inf
            out = out.astype(arr.dtype)
        if np.ndim(chunk) == 0:
            return out.reshape(())[()]  # a scalar chunk: one slice of one element
        return out

    @overload
    def softmax(self, chunk: NDArray[Any], *, where: ArrayLike | None = None) -> FloatArray: ...
    @overload
    def softmax(self, chunk: NumpyScalar, *, where: ArrayLike | None = None) -> FloatScalar: ...
    @overload
    def softmax(self, chunk: ArrayLike, *, where: ArrayLike | None = None) -> FloatArray: ...

    def softmax(self, chunk: ArrayLike, *, where: ArrayLike | None = None) -> FloatResult:
        """Second pass: the softmax of a chunk with respect to the whole stream.

        ``exp(x - logsumexp)`` computed as ``exp(x - m) / s``, as accurate as
        `softmax.softmax` on the whole array.

        Parameters
        ----------
        chunk : array_like
            A chunk of the stream (seen before or not: nothing is added).
        where : array_like of bool, optional
            Entries to include; the others get 0.

        Returns
        -------
        ndarray
            Probabilities shaped like `chunk`.
        """
        return self._normalize(chunk, where, log=False)

    @overload
    def log_softmax(self, chunk: NDArray[Any], *, where: ArrayLike | None = None) -> FloatArray: ...
    @overload
    def log_softmax(self, chunk: NumpyScalar, *, where: ArrayLike | None = None) -> FloatScalar: ...
    @overload
    def log_softmax(self, chunk: ArrayLike, *, where: ArrayLike | None = None) -> FloatArray: ...

    def log_softmax(self, chunk: ArrayLike, *, where: ArrayLike | None = None) -> FloatResult:
        """Second pass: log_softmax of a chunk with respect to the whole stream.

        Parameters
        ----------
        chunk : array_like
            A chunk of the stream.
        where : array_like of bool, optional
            Entries to include; the others get ``-inf``.

        Returns
        -------
        ndarray
            Log-probabilities shaped like `chunk`.
        """
        return self._normalize(chunk, where, log=True)


def _exact(dtype: np.dtype[Any]) -> bool:
    """Carry x - max in double-double only when float64 is not already wider."""
    return dtype.itemsize >= 8


def _n_reduced(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    return math.prod(shape[i] for i in axes)


# Working memory per element of a block: the one-pass path holds the block,
# its float64 copy and the result; the two-pass path about a dozen float64
# temporaries (orientation, double-double shift, exp, exact sum).
_BYTES_ONE_PASS = 32
_BYTES_TWO_PASS = 128


def _progress_bar(progress: bool | None, total: int) -> Any:
    if progress is False:
        return None
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        try:
            if not (isatty and isatty()):
                return None
        except (OSError, ValueError):
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
    elif progress is True:
        try:
            from tqdm import tqdm
        except ImportError:
            raise ImportError(
                "softmax_file(progress=True) needs tqdm: pip install tqdm"
            ) from None
    else:
        raise TypeError(f"progress must be None, True or False, got {progress!r}")
    return tqdm(total=total, unit="B", unit_scale=True, desc="softmax", file=sys.stderr, leave=False)


class _Blocks:
    """Contiguous element ranges of a .npy file, each mapped only while used.

    Mapping the whole file would make every page read count toward the
    process's resident size; a map per block is released as soon as the
    block is done, so memory stays at a block or two.
    """

    def __init__(self, path: Path, dtype: np.dtype[Any], offset: int, bar: Any) -> None:
        self.path, self.dtype, self.offset, self.bar = path, np.dtype(dtype), offset, bar

    def read(self, start: int, count: int, dtype: Any = None) -> NDArray[Any]:
        """A copy of elements [start, start + count), native byte order."""
        mm = np.memmap(self.path, dtype=self.dtype, mode="r",
                       offset=self.offset + start * self.dtype.itemsize, shape=(count,))
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        block = mm.astype(dtype.newbyteorder("="), copy=True)
        del mm
        if self.bar is not None:
            self.bar.update(count * self.dtype.itemsize)
        return block

    def write(self, start: int, values: NDArray[Any]) -> None:
        mm = np.memmap(self.path, dtype=self.dtype, mode="r+",
                       offset=self.offset + start * self.dtype.itemsize, shape=(values.size,))
        mm[:] = values.reshape(-1)
        del mm


def softmax_file(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
                 axis: Axis = -1, log: bool = False, temperature: float = 1.0,
                 base: float | None = None, block_bytes: int = 64 * 2**20,
                 progress: bool | None = None) -> Path:
    """Softmax of an array in a ``.npy`` file, written to another ``.npy`` file.

    The array may be far larger than memory: it is read in blocks of about
    `block_bytes` of working memory. When whole slices fit in a block the
    file is read once and each block goes through `softmax.softmax` (same
    bits as in memory). When a slice does not fit (softmax along axis 0 of a
    tall array, or of a very long row) the file is read twice: the first
    pass accumulates the ``(max, sum)`` state of every slice, block by
    block, the second writes ``exp(x - max) / sum``.

    The result is written to a hidden temporary file beside `output_path`
    and renamed into place only when it is complete: after an error, an
    exception or Ctrl-C no output file is left (an existing one is kept as
    it was), and no temporary file either. SIGTERM does the same when it
    still has its default action (the process then ends by SIGTERM as
    usual). A truncated input is refused before anything is written, with
    an error that names the file.

    Parameters
    ----------
    input_path : str or os.PathLike
        A ``.npy`` file of real numbers (C or Fortran order).
    output_path : str or os.PathLike
        Where to write the result (same shape and order; dtype as
        `softmax.softmax` gives: float16/32/64 kept, integers to float64).
        Must not be the input file.
    axis : int, tuple of ints or None, optional
        Axis or axes along which to normalize. A tuple must name adjacent
        axes; ``None`` means the whole array. Default: the last axis.
    log : bool, optional
        Write log_softmax instead.
    temperature, base : float, optional
        As for `softmax.softmax` (temperature 0 is the hard max).
    block_bytes : int, optional
        Memory budget of one block in bytes (default 64 MiB). The largest
        block of the file read at once is a fraction of it; the state of the
        two-pass path takes 24 bytes per slice more.
    progress : bool or None, optional
        ``None``: a tqdm progress bar on stderr when stderr is a terminal and
        tqdm is installed; ``True``: always (tqdm required); ``False``: none.

    Returns
    -------
    pathlib.Path
        `output_path`.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from softmax.stream import softmax_file
    >>> d = tempfile.mkdtemp()
    >>> src, dst = os.path.join(d, "logits.npy"), os.path.join(d, "p.npy")
    >>> np.save(src, np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]]))
    >>> _ = softmax_file(src, dst, progress=False)
    >>> np.load(dst).round(4)
    array([[0.659 , 0.2424, 0.0986],
           [0.3333, 0.3333, 0.3333]])

    Along axis 0, with blocks far smaller than a column (two passes):

    >>> _ = softmax_file(src, dst, axis=0, block_bytes=256, progress=False)
    >>> np.load(dst).round(4)
    array([[0.8808, 0.7311, 0.525 ],
           [0.1192, 0.2689, 0.475 ]])
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if isinstance(block_bytes, bool) or not isinstance(block_bytes, (int, np.integer)) or block_bytes <= 0:
        raise ValueError(f"block_bytes must be a positive int, got {block_bytes!r}")
    if not isinstance(log, (bool, np.bool_)):
        raise TypeError(f"log must be True or False, got {log!r}")
    if progress not in (None, True, False):
        raise TypeError(f"progress must be None, True or False, got {progress!r}")
    scale = parse_scale(temperature, base)
    try:
        src = np.load(input_path, mmap_mode="r")
    except (ValueError, EOFError) as exc:
        # NumPy's own words ("mmap length is greater than file size", "EOF:
        # reading array header") name neither the file nor what is wrong.
        raise ValueError(_npy_problem(input_path, exc)) from None
    if not isinstance(src, np.memmap):
        raise ValueError(f"input_path must be a .npy file, got {str(input_path)!r}")
    shape, in_dtype, offset = src.shape, src.dtype, src.offset
    fortran = src.ndim > 1 and src.flags.f_contiguous and not src.flags.c_contiguous
    del src
    result_dtype = as_float_array(np.empty(0, in_dtype), "input_path's array").dtype
    if output_path.exists() and os.path.samefile(input_path, output_path):
        raise ValueError(f"output_path must differ from input_path, got {str(output_path)!r}")
    axes = reduction_axes(axis, len(shape))  # a 0-d array: one slice of one element
    if any(b - a != 1 for a, b in zip(axes, axes[1:])):
        raise ValueError(f"axis must be an int, None or adjacent axes for a file, got {axis!r}")

    # The result goes to a temporary file beside the target and is renamed
    # into place only when complete: an interrupted or failed run leaves
    # no output file (a full-size .npy of zeros would load without
    # complaint) and an existing output untouched.
    with _sigterm_raises(), _replaced_on_success(output_path) as tmp_path:
        out = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=result_dtype,
                                        shape=shape, fortran_order=fortran)
        out_offset = out.offset
        del out
        _write_result(input_path, tmp_path, shape, axes, fortran, in_dtype, offset,
                      result_dtype, out_offset, block_bytes, scale, log=log,
                      temperature=temperature, base=base, progress=progress)
    return output_path


def _write_result(input_path: Path, tmp_path: Path, shape: tuple[int, ...],
                  axes: tuple[int, ...], fortran: bool, in_dtype: np.dtype[Any], offset: int,
                  result_dtype: np.dtype[Any], out_offset: int, block_bytes: int, scale: Scale,
                  *, log: bool, temperature: float, base: float | None,
                  progress: bool | None) -> None:
    """Fill the output file (already created with its header) block by block."""
    # A Fortran-order file is the C-order file of the transposed array.
    c_shape = shape[::-1] if fortran else shape
    c_axes = tuple(sorted(len(shape) - 1 - a for a in axes)) if fortran else axes
    if not c_axes:
        n_outer, n_red, n_inner = math.prod(c_shape), 1, 1
    else:
        n_outer = math.prod(c_shape[: c_axes[0]])
        n_red = math.prod(c_shape[c_axes[0]: c_axes[-1] + 1])
        n_inner = math.prod(c_shape[c_axes[-1] + 1:])
    total = n_outer * n_red * n_inner
    if total == 0:
        return

    one_pass_budget = max(1, block_bytes // _BYTES_ONE_PASS)
    two_pass = n_red * n_inner > one_pass_budget
    passes = 2 if two_pass else 1
    bar = _progress_bar(progress, passes * total * in_dtype.itemsize)
    reader = _Blocks(input_path, in_dtype, offset, bar)
    writer = _Blocks(tmp_path, result_dtype, out_offset, None)
    try:
        if not two_pass:
            # Checked once above; each block runs the NumPy backend with this plan.
            plan = Plan("numpy", "log_softmax" if log else "softmax", (1,), scale, result_dtype)
            _one_pass(reader, writer, (n_outer, n_red, n_inner), one_pass_budget, plan)
        else:
            budget = max(1, block_bytes // _BYTES_TWO_PASS)
            _two_pass(reader, writer, (n_outer, n_red, n_inner), budget, scale,
                      log=log, exact=result_dtype == np.float64)
    finally:
        if bar is not None:
            bar.close()


def _npy_problem(path: Path, exc: BaseException) -> str:
    """Why a .npy file cannot be mapped, naming the file: truncated, or not .npy."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = read_header(f)
            data_start = f.tell()
        size = os.path.getsize(path)
    except OSError as err:
        return f"input_path {name!r} cannot be read: {err.strerror or err}"
    except (ValueError, EOFError):
        if os.path.exists(path) and os.path.getsize(path) < 128:
            return f"input_path {name!r} is not a complete .npy file (its header is cut short)"
        return f"input_path {name!r} is not a .npy file that can be mapped ({exc})"
    expected = data_start + math.prod(shape) * dtype.itemsize
    if size < expected:
        return (f"input_path {name!r} is truncated: its header promises shape {shape} of "
                f"{dtype}, {expected} bytes, but the file has {size} bytes")
    return f"input_path {name!r} is not a .npy file that can be mapped ({exc})"


def _temporary_beside(path: Path) -> Path:
    """Create an empty, hidden file next to `path` and return its name.

    Opened with O_EXCL and mode 0o666 (the umask applies), so the renamed
    result has the permissions any new file would get; tempfile's 0o600
    would make the output private.
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file beside {str(path)!r}")


@contextlib.contextmanager
def _replaced_on_success(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only on success.

    On any exception (KeyboardInterrupt and SystemExit included) the
    temporary file is removed and the exception propagates.
    """
    tmp = _temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Terminated(BaseException):
    """SIGTERM, raised so that cleanup runs; re-delivered afterwards."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While writing, let SIGTERM unwind the stack before the process dies.

    Only when SIGTERM still has its default action (which kills the process
    without running ``finally`` blocks) and only in the main thread (the
    only one that may set handlers). After cleanup the signal is re-sent
    with the default action restored, so the process ends exactly as it
    would have, minus the half-written file. A program that installed its
    own SIGTERM handler (the ``softmax`` command does) is left alone.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise  # not reached on POSIX: the default action ends the process
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _one_pass(reader: _Blocks, writer: _Blocks, dims: tuple[int, int, int], budget: int,
              plan: Plan) -> None:
    n_outer, n_red, n_inner = dims
    slab = n_red * n_inner
    per_block = max(1, budget // slab)
    for a0 in range(0, n_outer, per_block):
        a1 = min(n_outer, a0 + per_block)
        x = reader.read(a0 * slab, (a1 - a0) * slab).reshape(a1 - a0, n_red, n_inner)
        writer.write(a0 * slab, _numpy_backend.run(x, plan))


def _two_pass(reader: _Blocks, writer: _Blocks, dims: tuple[int, int, int], budget: int,
              scale: Scale, *, log: bool, exact: bool) -> None:
    """Slices longer than a block: pass 1 merges states, pass 2 writes."""
    n_outer, n_red, n_inner = dims
    ps = _merge.positive_scale(scale)
    width = min(n_inner, budget)
    rows = max(1, budget // width)
    f8 = np.float64

    def blocks(a: int, c0: int, c1: int) -> Iterator[tuple[int, int, int]]:
        # (first element, rows, columns) of each contiguous piece of x[a, :, c0:c1]
        for k0 in range(0, n_red, rows):
            k1 = min(n_red, k0 + rows)
            yield (a * n_red + k0) * n_inner + c0, k1 - k0, c1 - c0

    for a in range(n_outer):
        for c0 in range(0, n_inner, width):
            c1 = min(n_inner, c0 + width)
            with _merge.quiet():
                state = _merge.identity(np, (1, c1 - c0))
                for start, nk, nc in blocks(a, c0, c1):
                    v = _merge.orient(np, reader.read(start, nk * nc, f8).reshape(nk, nc), scale)
                    part = _merge.chunk_state(np, v, (0,), ps, exact=exact, eps=_EPS64)
                    state = _merge.merge(np, state, part, ps, _EPS64)
                for start, nk, nc in blocks(a, c0, c1):
                    v = _merge.orient(np, reader.read(start, nk * nc, f8).reshape(nk, nc), scale)
                    out = _merge.finish(np, v, state, ps, log=log, exact=exact, eps=_EPS64)
                    writer.write(start, out.astype(writer.dtype))
