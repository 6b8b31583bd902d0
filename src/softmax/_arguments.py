"""Argument checking for the whole package: every check and message lives here.

A public function calls this module once per call; what comes back (arrays
laid out, a `Scale`, a `Plan`) is trusted by everything below it, and no
backend checks again. Messages follow one pattern, ``<argument> must be
<expectation>, got <value>``, so that a user can see at once which argument
is wrong and why.
"""

from __future__ import annotations

import decimal
import functools
import math
import numbers
from fractions import Fraction
from typing import Any, Literal, NamedTuple, cast

import numpy as np

from ._backends.scale import C_EXP_MIN, UNIT_SCALE, Scale
from ._typing import Array, Namespace, NDArray

__all__ = [
    "UNIT_SCALE",
    "AxisError",
    "Scale",
    "as_float_array",
    "check_bool",
    "check_out",
    "library_of",
    "normalize_axis",
    "one_axis",
    "parse_scale",
    "positive_temperature",
    "real_number",
    "reduction_axes",
    "unmask",
    "where_mask",
]

AxisError = np.exceptions.AxisError
Library = Literal["numpy", "array_api", "dask"]
_FLOAT_MAX = float(np.finfo(np.float64).max)



def as_float_array(x: Any, name: str = "x") -> NDArray[np.floating[Any]]:
    """Return `x` as a NumPy array of a real floating dtype.

    Integers and booleans promote to float64 (as in SciPy); float16,
    float32, float64 and longdouble keep their dtype. The array is made
    native-byte-order and aligned (copying only when it is not), because the
    C core reads raw memory.
    """
    try:
        arr = np.asarray(x)
    except ValueError as exc:
        raise ValueError(
            f"{name} must be a rectangular array of numbers, got a ragged sequence ({exc})"
        ) from None
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(np.float64)
    elif kind == "c":
        raise TypeError(
            f"{name} must be real-valued, got complex dtype {arr.dtype}; "
            "take .real or abs() first if that is what you mean"
        )
    elif kind != "f":
        raise TypeError(
            f"{name} must be an array of real numbers, got dtype {arr.dtype}"
        )
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not arr.flags.aligned:
        arr = arr.copy()
    return arr


def normalize_axis(axis: Any, ndim: int, *, name: str = "axis") -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; ``None`` means all axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the usual case, checked at once
        return (axis % ndim,)
    if isinstance(axis, (tuple, list)):
        items = tuple(axis)
    else:
        items = (axis,)
    result = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name} must be an int, a tuple of ints or None, got {axis!r}")
        try:
            result.append(np.lib.array_utils.normalize_axis_index(int(item), ndim))
        except OverflowError:  # beyond C long: out of bounds all the same
            raise AxisError(int(item), ndim) from None
    if len(set(result)) != len(result):
        raise ValueError(f"{name} must not repeat an axis, got {axis!r}")
    return tuple(sorted(result))




def real_number(value: Any, name: str) -> float:
    """A real scalar argument as a float (an int beyond float range is +-inf)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
            return float(value)
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float range: +-inf is its rounding
        # typeshed's numbers.Real declares no comparison with an int; value is an int here
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


@functools.lru_cache(maxsize=64)
def log_double_double(a: float) -> tuple[float, float]:
    """ln(a) as hi + lo, good to about 2**-106 relative.

    decimal's ln is correctly rounded at the context precision (40 digits,
    133 bits) and Decimal(a) is exact. A platform log, even in long double,
    is not enough: the error of c = ln(a) is multiplied by the score, so a
    relative error e in c moves p = exp(c x) by |c x| * e, i.e. up to 700 e
    for scores near -700 (hundreds of ulps where long double is plain
    double, as on Windows and Arm macOS; still ~0.2 ulp with x87's 64 bits).
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        ln = Fraction(decimal.Decimal(a).ln())
    hi = float(ln)
    lo = float(ln - Fraction(hi))
    return hi, lo


def parse_scale(temperature: Any, base: Any) -> Scale:
    """Check `temperature` and `base` and fold them into one multiplier.

    softmax with base ``a`` and temperature ``T`` is softmax of
    ``x * ln(a) / T``: a base is a temperature ``1 / ln(a)`` (the article's
    base/temperature equivalence). Only T = 0 (the hard max) and T = inf
    (uniform) are limits; every T in between is exact, however far c lies
    outside float64 (`_scale_exponent`).
    """
    t = real_number(temperature, "temperature")
    if math.isnan(t) or t < 0:
        raise ValueError(f"temperature must be >= 0 (0 is the hard max), got {temperature!r}")
    a = None
    if base is not None:
        a = real_number(base, "base")
        if not (a > 0) or a == 1 or math.isinf(a):
            raise ValueError(f"base must be finite, > 0 and != 1, got {base!r}")
    return _scale(t, a)


# A loop over calls at one temperature folds it once (the exact arithmetic
# below costs some 20 us, ten times a small call).
@functools.lru_cache(maxsize=256)
def _scale(t: float, a: float | None) -> Scale:
    """The multiplier ln(a) / t of a checked temperature and base (None: e)."""
    ln_hi, ln_lo = (1.0, 0.0) if a is None else log_double_double(a)
    sign = 1.0 if ln_hi > 0 else -1.0
    if t == 0:
        return Scale("hard", sign=sign)
    if math.isinf(t):
        return Scale("uniform", sign=sign)
    if t == 1 and a is None:
        return UNIT_SCALE
    # Exact rational arithmetic, rounded once: c = (ln_hi + ln_lo) / t.
    exact = (Fraction(ln_hi) + Fraction(ln_lo)) / Fraction(t)
    try:
        c_hi = float(exact)
    except OverflowError:
        c_hi = math.inf
    c_exp = 0
    if not C_EXP_MIN <= abs(c_hi) <= _FLOAT_MAX:
        c_exp = _exponent(abs(exact))
        exact *= Fraction(2) ** -c_exp
        c_hi = float(exact)
    c_lo = float(exact - Fraction(c_hi))
    return Scale("finite", c_hi, c_lo, sign, c_exp)


def _exponent(c: Fraction) -> int:
    """k with 1 <= c / 2**k < 2, for c > 0.

    For a multiplier c = ln(a) / T outside [C_EXP_MIN, max float]: a
    temperature so small that c exceeds float64 (T below ~5.6e-309) is not
    the hard max (``softmax([3e-320, 0], temperature=1e-320)`` is softmax
    of [3, 0]), nor is one so large that c would be subnormal the uniform
    limit to the last ulp. Both keep c to 106 bits with an exponent of its own.
    """
    k = c.numerator.bit_length() - c.denominator.bit_length()
    return k if c >= Fraction(2) ** k else k - 1


def where_mask(where: Any, shape: tuple[int, ...], name: str = "x") -> NDArray[np.bool] | None:
    """`where` as a read-only bool array broadcast to `shape`, or None."""
    if where is None:
        return None
    if isinstance(where, np.ma.MaskedArray):
        where = where.filled(False)  # a masked entry of `where` is not selected
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {mask.dtype}")
    if mask.shape == shape:  # the usual case: a read-only view, without broadcast_to's cost
        view: NDArray[np.bool] = mask.view()
        view.flags.writeable = False
        return view
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"where must broadcast to {name}.shape {shape}, got shape {mask.shape}"
        ) from None


def check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any] | None:
    """Check a user-supplied `out` array: exact shape, exact dtype, writeable."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got shape {out.shape}")
    if out.dtype != dtype and out.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"out must have dtype {dtype}, got dtype {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    return out


def unmask(x: Any, where: Any, name: str = "x") -> tuple[Any, Any]:
    """Split a masked array: its mask joins `where`.

    A masked entry (``numpy.ma``, or a Dask array of masked chunks) is
    excluded exactly as ``where=False`` excludes it: probability 0,
    log-probability -inf, left out of every sum, never drawn. The result is
    a plain array, defined at every position. Returns ``(data, where)``;
    anything else passes through unchanged. Every public function that
    takes `where` calls this first, so a mask means the same everywhere.
    """
    if isinstance(x, np.ma.MaskedArray):
        data = np.ma.getdata(x)
        keep = ~np.ma.getmaskarray(x)
        if keep.all():
            return data, where
        if where is None:
            return data, keep
        return data, cast("NDArray[np.bool]", where_mask(where, data.shape, name=name)) & keep
    if library_of(x) == "dask" and isinstance(getattr(x, "_meta", None), np.ma.MaskedArray):
        import dask.array as da

        keep = ~da.ma.getmaskarray(x)
        data = da.ma.getdata(x)
        if where is None:
            return data, keep
        return data, keep & where
    return x, where


def refuse_mask(x: Any, name: str) -> Any:
    """For arguments where a mask has no meaning (labels, weights, targets)."""
    if isinstance(x, np.ma.MaskedArray) and np.ma.getmaskarray(x).any():
        raise TypeError(
            f"{name} must not be a masked array with masked entries (a mask has no "
            f"meaning for {name}); fill it or drop those entries first"
        )
    return x


# ---- which library an array belongs to -------------------------------------


def library_of(x: Any) -> Library:
    """``"numpy"``, ``"dask"`` or ``"array_api"``: the backend that runs `x`.

    The one place that tells array libraries apart. NumPy arrays, NumPy
    scalars and anything that is not an array (lists, Python numbers) are
    NumPy's. Dask arrays and PyTorch tensors have no ``__array_namespace__``;
    they are recognized by type, looked up in ``sys.modules`` so that nothing
    is imported here.
    """
    if isinstance(x, (np.ndarray, np.generic)):
        return "numpy"
    import sys

    da = sys.modules.get("dask.array")
    if da is not None and isinstance(x, da.Array):
        return "dask"
    if hasattr(x, "__array_namespace__"):
        return "array_api"
    for module, name in (("torch", "Tensor"), ("cupy", "ndarray")):
        lib = sys.modules.get(module)
        if lib is not None and isinstance(x, getattr(lib, name, ())):
            return "array_api"
    return "numpy"


# ---- axes, flags, temperatures ---------------------------------------------


def reduction_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """normalize_axis, except that a 0-d array is one slice of one element.

    As in SciPy and PyTorch, ``axis`` 0 or -1 (the default of softmax) is
    accepted for a scalar; an axis that no 1-d array has is still an error.
    """
    if ndim == 0:
        normalize_axis(axis, 1)
        return ()
    return normalize_axis(axis, ndim)


def one_axis(axis: Any, ndim: int, *, what: str = "the axis of the classes") -> int:
    """A single int axis (for functions whose output adds or drops one axis).

    A 0-d input counts as one slice of one element: axis 0 or -1 gives 0.
    """
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int ({what}), got {axis!r}")
    try:
        return np.lib.array_utils.normalize_axis_index(int(axis), max(ndim, 1))
    except OverflowError:
        raise AxisError(int(axis), max(ndim, 1)) from None


def check_bool(value: Any, name: str) -> bool:
    """A flag: True or False (NumPy's bools, and the ints 0 and 1, too); "no" is not a flag."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def positive_temperature(temperature: Any, name: str = "temperature") -> float:
    """A temperature where the limits 0 and inf have no meaning (losses, calibration).

    The loss of a hard max is infinite and a uniform model has no
    temperature to fit, so these take 0 < T < inf; softmax itself accepts
    both limits (`parse_scale`).
    """
    t = real_number(temperature, name)
    if not (0 < t < math.inf):
        raise ValueError(
            f"{name} must be > 0 and finite here (0 and inf are the limits, which a "
            f"loss or a fit cannot use), got {temperature!r}"
        )
    return t


# ---- logsumexp weights -------------------------------------------------------


def masked_weights_as_zero(b: Any, keep: Any) -> Any:
    """A masked weight is a weight that is not there: 0."""
    return np.where(keep, b, 0.0)


def broadcast_weights(arr: NDArray[Any], b: Any
                      ) -> tuple[NDArray[Any], NDArray[Any], np.dtype[Any]]:
    """x and b broadcast together (SciPy: before `axis` applies), and the result dtype.

    As in SciPy, the weights take part in the result dtype, whatever the shapes.
    """
    b_arr = as_float_array(b, "b")
    try:
        shape = np.broadcast_shapes(arr.shape, b_arr.shape)
    except ValueError:
        raise ValueError(
            f"b must broadcast with x.shape {arr.shape}, got shape {b_arr.shape}"
        ) from None
    dtype = np.result_type(arr.dtype, b_arr.dtype)
    return np.broadcast_to(arr, shape), np.broadcast_to(b_arr, shape), dtype


# ---- Dask input ----------------------------------------------------------------


def float_dtype_of(dtype: Any, name: str = "x") -> np.dtype[Any]:
    """The result dtype for input of `dtype`: NumPy's rules (ints and bool to float64)."""
    return as_float_array(np.empty(0, dtype=dtype), name).dtype


def dask_float_array(x: Any, name: str = "x") -> tuple[Array, np.dtype[Any]]:
    """A Dask array of a real floating dtype (lazily cast), and that dtype."""
    dtype = float_dtype_of(x.dtype, name)
    return (x if x.dtype == dtype else x.astype(dtype)), dtype


def dask_mask(where: Any, x: Array) -> Array | None:
    """`where` as a Dask bool array shaped and chunked like x (None if absent)."""
    if where is None:
        return None
    import dask.array as da

    keep = where if isinstance(where, da.Array) else da.from_array(np.asarray(where))
    if keep.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {keep.dtype}")
    try:
        keep = da.broadcast_to(keep, x.shape)
    except ValueError:
        raise ValueError(
            f"where must broadcast to x.shape {x.shape}, got shape {keep.shape}"
        ) from None
    # The mask follows x's chunks (x itself is never rechunked).
    return keep.rechunk(x.chunks)


def dask_broadcast_weights(x: Array, b: Any, dtype: np.dtype[Any]
                           ) -> tuple[Array, Array, np.dtype[Any]]:
    import dask.array as da

    b = b if isinstance(b, da.Array) else da.from_array(np.asarray(b))
    b_dtype = float_dtype_of(b.dtype, "b")
    try:
        shape = np.broadcast_shapes(x.shape, b.shape)
    except ValueError:
        raise ValueError(f"b must broadcast with x.shape {x.shape}, got shape {b.shape}") from None
    x = da.broadcast_to(x, shape)
    b = da.broadcast_to(b.astype(np.float64), shape).rechunk(x.chunks)
    return x, b, np.result_type(dtype, b_dtype)


# ---- array-API input (PyTorch, JAX, CuPy, array-api-strict) ------------------


class ArrayDtypes(NamedTuple):
    """Dtypes of one array-API call: the result's, the one computed in, its eps."""

    result: Any
    work: Any
    exact: bool  # the result dtype is the working dtype: carry double-double steps
    eps: float
    device: Any
    int_result: Any = None


def array_api_dtypes(xp: Namespace, x: Array, name: str = "x", int_result: Any = None) -> ArrayDtypes:
    """The dtypes of an array-API call. `int_result`: the float integers
    promote to, when the library has its own default (JAX without x64);
    asked before JAX's float64 is switched on for the call."""
    from ._backends import array_api

    device = array_api.device_of(x)
    dt = x.dtype
    if xp.isdtype(dt, "complex floating"):
        raise TypeError(
            f"{name} must be real-valued, got complex dtype {dt}; "
            "take .real or abs() first if that is what you mean"
        )
    has64 = array_api.has_float64(xp, device)
    if xp.isdtype(dt, "real floating"):
        result = dt
    elif xp.isdtype(dt, ("integral", "bool")):
        result = int_result or (xp.float64 if has64 else xp.float32)
    else:
        raise TypeError(f"{name} must be an array of real numbers, got dtype {dt}")
    work = xp.float64 if has64 else xp.float32
    return ArrayDtypes(result, work, result == work, float(xp.finfo(work).eps), device, int_result)


def array_api_mask(xp: Namespace, where: Any, shape: tuple[int, ...], device: Any,
                   name: str = "x") -> Array | None:
    if where is None:
        return None
    from ._backends import array_api

    keep = array_api.as_library(where, xp, device)
    if not xp.isdtype(keep.dtype, "bool"):
        raise TypeError(f"where must be a boolean array, got dtype {keep.dtype}")
    try:
        return xp.broadcast_to(keep, shape)
    except (ValueError, RuntimeError, TypeError):
        raise ValueError(
            f"where must broadcast to {name}.shape {tuple(shape)}, got shape {tuple(keep.shape)}"
        ) from None


def array_api_out(out: Any, shape: tuple[int, ...], dtype: Any) -> Array | None:
    if out is None:
        return None
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got shape {tuple(out.shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype}, got dtype {out.dtype}")
    return out


def array_api_broadcast_weights(xp: Namespace, x: Array, b: Any, dtypes: ArrayDtypes
                                ) -> tuple[Array, Array, ArrayDtypes]:
    from ._backends import array_api

    b = array_api.as_library(b, xp, dtypes.device)
    b_result = array_api_dtypes(xp, b, "b", int_result=dtypes.int_result).result
    try:
        x, b = xp.broadcast_arrays(x, b)
    except (ValueError, RuntimeError):
        raise ValueError(
            f"b must broadcast with x.shape {tuple(x.shape)}, got shape {tuple(b.shape)}"
        ) from None
    return x, b, dtypes._replace(result=xp.result_type(dtypes.result, b_result))


# ---- probabilities ----------------------------------------------------------


def check_distribution(xp: Namespace, p: Array, axes: tuple[int, ...], keep: Array | None,
                       eps: float, name: str = "p",
                       *, lazy: bool = False) -> None:
    """Refuse scores passed where probabilities are expected.

    Each kept entry must lie in [0, 1] and each slice over `axes` must sum
    to 1 or to 0 (an empty distribution), within 0.002: probabilities
    rounded to float16 (each within half an ulp, so a sum within 2^-11 of 1)
    and then widened pass, logits and arbitrary scores do not. A slice
    holding NaN is left to propagate. A lazy (Dask) array is not checked:
    that would compute it.
    """
    if lazy:
        return
    if hasattr(p, "detach"):  # a check, not part of a PyTorch graph
        p = p.detach()
    v = p if keep is None else xp.where(keep, p, 0.0)
    nan = xp.isnan(v)
    v0 = xp.where(nan, 0.0, v)
    tol = max(2e-3, 4.0 * eps)
    lo, hi = float(xp.min(v0)) if v0.size else 0.0, float(xp.max(v0)) if v0.size else 0.0
    if lo < -tol or hi > 1.0 + tol:
        raise ValueError(
            f"{name} must be probabilities (softmax output, in [0, 1]), got values in "
            f"[{lo:.6g}, {hi:.6g}]: if these are logits, pass softmax(logits) instead"
        )
    if not axes or v0.size == 0:
        return
    sums = xp.sum(v0, axis=axes)
    nan_slices = xp.any(nan, axis=axes)
    bad = ~nan_slices & ~(sums == 0.0) & (xp.abs(sums - 1.0) > tol)
    if bool(xp.any(bad)):
        worst = float(xp.max(xp.where(bad, xp.abs(sums - 1.0), 0.0)))
        raise ValueError(
            f"{name} must be probabilities that sum to 1 along the class axis, got a slice "
            f"whose sum is off by {worst:.3g}: if these are logits, pass softmax(logits) instead"
        )



def input_kind(input: str) -> str:
    """The `input=` option: what an argument holds, logits or probabilities."""
    if input not in ("logits", "probs"):
        raise ValueError(f"input must be 'logits' or 'probs', got {input!r}")
    return input


def refuse_probabilities(xp: Namespace, x: Array, axes: tuple[int, ...], keep: Array | None,
                         eps: float, name: str = "logits",
                         *, lazy: bool = False) -> None:
    """Refuse probabilities passed where logits are expected.

    Reading probabilities as logits gives a confident wrong answer (the
    softmax of [0.9, 0.1] is [0.69, 0.31]). When every kept entry lies in
    [0, 1] and every slice sums to 1 within the dtype's rounding, raise an
    error that names ``input="probs"``. Lazy (Dask) input is not checked.
    """
    if lazy or not axes:
        return
    if hasattr(x, "detach"):
        x = x.detach()
    if x.size == 0:
        return
    v = x if keep is None else xp.where(keep, x, 0.0)
    if not bool(xp.all((v >= 0.0) & (v <= 1.0))):
        return
    n = 1
    for ax in axes:
        n *= x.shape[ax]
    sums = xp.sum(v, axis=axes)
    if bool(xp.all(xp.abs(sums - 1.0) <= 4.0 * max(n, 4) * eps)):
        raise ValueError(
            f"{name} must be logits (scores), got probabilities (every slice in [0, 1], "
            f"summing to 1): pass input=\"probs\" for probabilities"
        )


# ---- labels --------------------------------------------------------------------


def labels_array(labels: Any, library: str) -> Array:
    """Labels as an array of the logits' library (lists and NumPy arrays as NumPy)."""
    if library != "numpy" and library_of(labels) == library:
        return labels
    return np.asarray(labels)


def label_kind(lab: Array) -> str:
    """``"index"`` for integer class indices, ``"target"`` for float probabilities."""
    dtype = lab.dtype
    kind = getattr(dtype, "kind", None)
    if kind is None and str(dtype).endswith("bool"):
        kind = "b"
    if kind is None:  # a library dtype: ask NumPy about its name
        try:
            kind = np.dtype(str(dtype).split(".")[-1]).kind
        except TypeError:
            kind = "?"
    if kind in "iu":
        return "index"
    if kind == "f":
        return "target"
    raise TypeError(
        f"labels must be integer class indices or float probabilities, got dtype {dtype}"
    )


def check_class_indices(lab: Array, batch_shape: tuple[int, ...], shape: tuple[int, ...],
                        axis: int, n_classes: int, *,
                        lazy: bool = False) -> None:
    if tuple(lab.shape) != tuple(batch_shape):
        raise ValueError(
            f"labels must have shape {tuple(batch_shape)} (logits.shape {tuple(shape)} "
            f"without axis {axis}) for class indices, got shape {tuple(lab.shape)}"
        )
    if lazy:
        return
    host = np.asarray(lab.detach().cpu() if hasattr(lab, "detach") else lab)
    bad = (host < 0) | (host >= n_classes)
    if np.any(bad):
        where_bad = tuple(int(i) for i in np.argwhere(bad)[0])
        index = ", ".join(map(str, where_bad))
        raise ValueError(
            f"labels must be class indices in [0, {n_classes}), "
            f"got labels[{index}] = {host[where_bad]}"
        )


# ---- accuracy mode ---------------------------------------------------------------

# accuracy mode -> the core's code (module.c: 0 high, 1 fast)
ACCURACY_MODES = {"high": 0, "fast": 1}


def accuracy_code(accuracy: Any, name: str = "accuracy") -> int:
    """The core's code for an accuracy argument: -1 for None (the process
    default), else 0 or 1; ValueError naming the argument otherwise."""
    if accuracy is None:
        return -1
    code = ACCURACY_MODES.get(accuracy) if isinstance(accuracy, str) else None
    if code is None:
        raise ValueError(f"{name} must be 'high' or 'fast' (or None), got {accuracy!r}")
    return code


# ---- groups (segment_* functions) -------------------------------------------


def _host_integers(a: Any, name: str, *, copy: bool = True) -> NDArray[np.int64]:
    """An index argument (NumPy, list, tensor, JAX or Dask array) as 1-d int64 on the host.

    A copy unless ``copy=False`` (then a contiguous int64 array comes back as
    itself: the caller reads it at once and keeps nothing that reads it later).
    """
    if hasattr(a, "detach"):  # a PyTorch tensor, possibly on a GPU
        a = a.detach().cpu()
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of integers, got {type(a).__name__} ({exc})") \
            from None
    empty_list = arr.size == 0 and arr.dtype == np.float64  # [] is a float array to NumPy
    if not empty_list and (arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be an array of integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must fit in int64, got {int(arr.max())}")
    return arr.astype(np.int64) if copy else np.ascontiguousarray(arr, dtype=np.int64)


def _group_count(num_segments: Any) -> int:
    if isinstance(num_segments, (bool, np.bool_)) or not isinstance(num_segments, numbers.Integral):
        raise TypeError(f"num_segments must be an int >= 0, got {num_segments!r}")
    if num_segments < 0:
        raise ValueError(f"num_segments must be an int >= 0, got {num_segments!r}")
    return int(num_segments)


def groups(segment_ids: Any, offsets: Any, num_segments: Any, n: int, axis: int) -> Any:
    """Check how the entries of the grouped axis (length n) form groups.

    Exactly one of `segment_ids` (one group number per entry, any order) and
    `offsets` (CSR: 0 first, n last, non-decreasing) is given. Returns the
    backends' `Groups` layout.
    """
    from ._backends.groups import Groups, scan_ids

    if n < 0:  # a 0-d x: there is no axis to group
        raise ValueError("x must have at least one dimension (the grouped axis), got a 0-d array")
    if (segment_ids is None) == (offsets is None):
        raise TypeError(
            "give exactly one of segment_ids (a group number per entry) and offsets "
            f"(CSR boundaries), got {'both' if offsets is not None else 'neither'}"
        )
    count = None if num_segments is None else _group_count(num_segments)
    if segment_ids is not None:
        # not copied: the layout (offsets, order) is taken from it here, and
        # what reads ids later (Dask's parts) holds copies of its own
        ids = _host_integers(segment_ids, "segment_ids", copy=False)
        if ids.size != n:
            raise ValueError(
                f"segment_ids must have one id per entry along axis {axis} (length {n}), "
                f"got length {ids.size}"
            )
        try:
            # unsorted ids are counted by group only when a backend asks
            # (the C core's scatter path does not); but more groups than
            # entries are counted here, where an error names the count
            scan = scan_ids(ids, count, offsets=False)
            more = (scan.hi + 1 if count is None else count) > ids.size
            if scan.offsets is None and scan.lo >= 0 and more and (count is None
                                                                   or scan.hi < count):
                scan = scan_ids(ids, count)
        except (MemoryError, ValueError) as exc:  # the offsets: one int64 per group
            what = (f"num_segments = {count}" if count is not None
                    else f"segment_ids up to {int(ids.max())} (num_segments = max + 1)")
            kind = MemoryError if isinstance(exc, MemoryError) else ValueError
            raise kind(f"{what} groups do not fit in memory ({exc})") from None
        if scan.lo < 0:
            i = int(np.argmax(ids < 0))
            raise ValueError(f"segment_ids must be >= 0, got {ids[i]} at index {i}")
        if count is not None and scan.hi >= count:
            i = int(np.argmax(ids >= count))
            raise ValueError(
                f"segment_ids must be < num_segments = {count}, got {ids[i]} at index {i}"
            )
        return Groups.from_scan(ids, scan, scan.hi + 1 if count is None else count)
    off = _host_integers(offsets, "offsets")
    if off.size == 0 or off[0] != 0 or off[-1] != n:
        got = "an empty array" if off.size == 0 else f"[{off[0]}, ..., {off[-1]}]"
        raise ValueError(
            f"offsets must start at 0 and end at {n} (the length of axis {axis}), got {got}"
        )
    steps = np.diff(off)
    if steps.size and steps.min() < 0:
        i = int(np.argmax(steps < 0))
        raise ValueError(
            f"offsets must be non-decreasing, got {off[i]} then {off[i + 1]} at index {i}"
        )
    if count is not None and count != off.size - 1:
        raise ValueError(
            f"num_segments must be len(offsets) - 1 = {off.size - 1} when offsets are given, "
            f"got {count}"
        )
    return Groups.from_offsets(off)
