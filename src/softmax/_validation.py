"""Argument checking for the whole package: every error message lives here.

Messages follow one pattern, ``<argument> must be <expectation>, got <value>``,
so that a user can see at once which argument is wrong and why.
"""

from __future__ import annotations

import decimal
import functools
import math
import numbers
from fractions import Fraction
from typing import NamedTuple

import numpy as np

__all__ = [
    "AxisError",
    "Scale",
    "as_float_array",
    "check_out",
    "compute_dtype",
    "normalize_axis",
    "parse_scale",
    "where_mask",
]

AxisError = np.exceptions.AxisError

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, name: str = "x") -> np.ndarray:
    """Return `x` as a NumPy array of a real floating dtype.

    Integers and booleans promote to float64 (as in SciPy); float16,
    float32, float64 and longdouble keep their dtype. The array is made
    native-byte-order and aligned (copying only when it is not), because the
    C core reads raw memory.
    """
    arr = np.asarray(x)
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


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the C core computes in for a result of `dtype`.

    float16 (and longdouble) go through float64: float16 has too few bits to
    hold intermediate sums, and float64 rounded once to float16 is within
    half an ulp of the exact answer in all but double-rounding ties.
    """
    return dtype if dtype in _FAST_DTYPES else np.dtype(np.float64)


def normalize_axis(axis, ndim: int, *, name: str = "axis") -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; ``None`` means all axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        items = tuple(axis)
    else:
        items = (axis,)
    result = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name} must be an int, a tuple of ints or None, got {axis!r}")
        result.append(np.lib.array_utils.normalize_axis_index(int(item), ndim))
    if len(set(result)) != len(result):
        raise ValueError(f"{name} must not repeat an axis, got {axis!r}")
    return tuple(sorted(result))


class Scale(NamedTuple):
    """How scores are scaled before the exponential: y = x * c.

    kind is ``"finite"`` (use c = c_hi + c_lo), ``"hard"`` (temperature 0:
    the limit is the hard max of sign * x) or ``"uniform"`` (temperature
    inf: every finite score counts the same).
    """

    kind: str
    c_hi: float = 1.0
    c_lo: float = 0.0
    sign: float = 1.0


UNIT_SCALE = Scale("finite")


def _real_number(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
            return float(value)
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


@functools.lru_cache(maxsize=64)
def _log_double_double(a: float) -> tuple[float, float]:
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


def parse_scale(temperature, base) -> Scale:
    """Check `temperature` and `base` and fold them into one multiplier.

    softmax with base ``a`` and temperature ``T`` is softmax of
    ``x * ln(a) / T``: a base is a temperature ``1 / ln(a)`` (the article's
    base/temperature equivalence).
    """
    t = _real_number(temperature, "temperature")
    if math.isnan(t) or t < 0:
        raise ValueError(f"temperature must be >= 0 (0 is the hard max), got {temperature!r}")
    if base is None:
        ln_hi, ln_lo = 1.0, 0.0
    else:
        a = _real_number(base, "base")
        if not (a > 0) or a == 1 or math.isinf(a):
            raise ValueError(f"base must be finite, > 0 and != 1, got {base!r}")
        ln_hi, ln_lo = _log_double_double(a)
    sign = 1.0 if ln_hi > 0 else -1.0
    if t == 0:
        return Scale("hard", sign=sign)
    if math.isinf(t):
        return Scale("uniform", sign=sign)
    if t == 1 and base is None:
        return UNIT_SCALE
    # Exact rational arithmetic, rounded once: c = (ln_hi + ln_lo) / t.
    exact = (Fraction(ln_hi) + Fraction(ln_lo)) / Fraction(t)
    try:
        c_hi = float(exact)
    except OverflowError:
        return Scale("hard", sign=sign)
    if math.isinf(c_hi):
        return Scale("hard", sign=sign)
    if c_hi == 0:
        return Scale("uniform", sign=sign)
    c_lo = float(exact - Fraction(c_hi))
    return Scale("finite", c_hi, c_lo, sign)


def where_mask(where, shape: tuple[int, ...]) -> np.ndarray | None:
    """`where` as a read-only bool array broadcast to `shape`, or None."""
    if where is None:
        return None
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"where must broadcast to x.shape {shape}, got shape {mask.shape}"
        ) from None


def check_out(out, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """Check a user-supplied `out` array: exact shape, exact dtype, writeable."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got shape {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype}, got dtype {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    return out
