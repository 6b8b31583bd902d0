r"""The two-class softmax (sigmoid), its logarithm and inverse, and the base rule.

The article's identity ``softmax([z0, z1])[1] = sigmoid(z1 - z0)`` makes the
sigmoid the two-class softmax; the base rule ``a**z / sum(a**z) =
softmax(z * ln a)`` makes a base the same as a temperature ``1 / ln a``.

Accuracy: every function computes in float64 and rounds once to the input's
dtype. The float64 formulas carry the exponential and the quotients in
double-double (an exact range reduction ``x = k ln 2 + r``, ``expm1(r)``,
Dekker's exact product for the division remainder), so that the float64
results stay within the package's 2-ulp promise rather than adding up three
libm errors. Measured against mpmath (see the README, "The rest of the article's mathematics"):
sigmoid 0.77 ulp, log_sigmoid 1.32 ulp, logit 1.08 ulp at most in float64;
float32 and float16 are correctly rounded up to double rounding (<= 0.5 ulp
plus 2**-29).
"""

from __future__ import annotations

import math
from typing import Any, Callable, overload

import numpy as np

from .._arguments import log_double_double, real_number
from .._backends.merge import two_prod, two_sum
from .._plan import operand
from .._typing import (
    Array,
    ArrayAPIArray,
    ArrayLike,
    DaskArray,
    FloatArray,
    FloatScalar,
    Namespace,
    NDArray,
    NumpyScalar,
)

__all__ = [
    "base_from_temperature",
    "log_sigmoid",
    "logit",
    "sigmoid",
    "temperature_from_base",
]

# Cody-Waite split of ln 2 (fdlibm's): LN2_HI has trailing zero bits, so
# k * LN2_HI is exact for every k this module uses (|k| <= 1155).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# Below this p, logit(p) = log(p) - log1p(-p) has no cancellation and the
# quotient (1 - 2p) / p of the main formula could overflow.
_LOGIT_TINY = 2.0**-30

# The formulas below are written once against the array API (``xp`` is
# NumPy itself for NumPy input), in float64; two_sum and two_prod are the
# package's one copy of the error-free transformations (backends/merge).


def _pow2(xp: Namespace, k: Array) -> tuple[Array, Array]:
    """2**k for integer-valued float64 k in [-1155, 0], exactly (two normal factors)."""
    k1 = xp.floor(k / 2.0)
    two = xp.full_like(k, 2.0)
    return xp.pow(two, k1), xp.pow(two, k - k1)


def _exp_dd(xp: Namespace, y: Array) -> tuple[Array, Array]:
    """exp(y) for y <= 0 (or NaN) as hi + lo, relative error about 2**-54.

    y = k ln 2 + r exactly (r as a TwoSum pair), exp(r) = 1 + expm1(r) with
    the 1 kept apart, then scaled by 2**k. A library exp alone is off by up
    to 0.66 ulp, and that error would reach the sigmoid whole.
    """
    y = xp.where(y < -800.0, -800.0, y)  # exp(-800) is 0 in float64; keeps k small
    k = xp.round(y * _INV_LN2)
    k = xp.where(xp.isnan(k), 0.0, k)
    t = y - k * _LN2_HI  # exact (Sterbenz)
    r, r_lo = two_sum(t, -(k * _LN2_LO))
    m = xp.expm1(r)
    c_hi = 1.0 + m
    c_lo = ((1.0 - c_hi) + m) + c_hi * r_lo
    s1, s2 = _pow2(xp, k)
    # (c * s1) is exact; the product with s2 rounds once, as ldexp would.
    return (c_hi * s1) * s2, (c_lo * s1) * s2


def _minus_abs(xp: Namespace, x: Array) -> Array:
    """-|x|, written as the branch that autograd differentiates correctly at 0."""
    return xp.where(x < 0, x, -x)


def _sigmoid64(xp: Namespace, x: Array) -> Array:
    e_hi, e_lo = _exp_dd(xp, _minus_abs(xp, x))
    neg = x < 0
    # sigmoid(x) = n / (1 + e) with e = exp(-|x|): n = 1 for x >= 0, n = e
    # otherwise, so the exponential never overflows (the article's max shift).
    n_hi = xp.where(neg, e_hi, 1.0)
    n_lo = xp.where(neg, e_lo, 0.0)
    s_hi = 1.0 + e_hi
    s_lo = (e_hi - (s_hi - 1.0)) + e_lo  # Fast2Sum: 1 >= e_hi
    q = n_hi / s_hi
    p_hi, p_lo = two_prod(q, s_hi)
    remainder = (n_hi - p_hi) - p_lo  # n_hi - q * s_hi, exactly
    return q + (remainder + n_lo - q * s_lo) / s_hi


def _log_sigmoid64(xp: Namespace, x: Array) -> Array:
    # log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): no overflow, and for
    # large x the tiny negative value survives (no log of a rounded 1).
    e_hi, e_lo = _exp_dd(xp, _minus_abs(xp, x))
    l = xp.log1p(e_hi) + e_lo / (1.0 + e_hi)
    return xp.where(x < 0, x, 0.0) - l  # min(x, 0); a NaN x makes l NaN


def _logit64(xp: Namespace, p: Array) -> Array:
    # logit(p) = log1p(n / d), with n / d = (2p - 1) / (1 - p) for p >= 1/2
    # (both exact by Sterbenz) and -log1p((1 - 2p) / p) below 1/2 (1 - 2p
    # kept as a TwoSum pair): no log of a ratio near 1, no cancellation.
    upper = p >= 0.5
    two_p = 2.0 * p
    n_hi = xp.where(upper, two_p - 1.0, 1.0 - two_p)
    n_lo = xp.where(upper, 0.0, -two_p - (n_hi - 1.0))
    d = xp.where(upper, 1.0 - p, p)
    q = n_hi / d
    r_hi, r_lo = two_prod(q, d)
    q_lo = (((n_hi - r_hi) - r_lo) + n_lo) / d
    r = xp.log1p(q) + q_lo / (1.0 + q)
    r = xp.where(upper, r, -r)
    r = xp.where(p == 1.0, math.inf, r)
    return xp.where(p < _LOGIT_TINY, xp.log(p) - xp.log1p(-p), r)


def _elementwise(x: Any, kernel: Callable[[Namespace, Array], Array], name: str = "x") -> Any:
    op = operand(x, name)
    with op.computing():
        return op.deliver(kernel(op.xp, op.work_array()))


@overload
def sigmoid(x: DaskArray) -> DaskArray: ...
@overload
def sigmoid(x: ArrayAPIArray) -> ArrayAPIArray: ...
@overload
def sigmoid(x: NDArray[Any]) -> FloatArray: ...
@overload
def sigmoid(x: NumpyScalar) -> FloatScalar: ...
@overload
def sigmoid(x: ArrayLike) -> FloatArray: ...


def sigmoid(x: Any) -> Any:
    r"""The logistic sigmoid: the two-class softmax.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}} = \mathrm{softmax}([0, x])_1

    Parameters
    ----------
    x : array_like
        Input values. Integers and booleans promote to float64; float16,
        float32 and float64 keep their dtype.

    Returns
    -------
    ndarray or scalar
        Values in [0, 1], shaped like `x`.

    Notes
    -----
    Computed as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` below,
    with ``e = exp(-|x|)``: the exponential never overflows and no warning
    is raised for any input. The exponential and the division are carried
    in double-double, so float64 results are within 1 ulp of the exact
    value (0.77 ulp measured) and float32 results are correctly rounded
    except for double-rounding ties. ``sigmoid(+inf) = 1``,
    ``sigmoid(-inf) = 0``, NaN stays NaN.

    The article's identity holds to the last bit in float32 and to within
    one ulp in float64: ``softmax([z0, z1])[..., 1] == sigmoid(z1 - z0)``
    whenever ``z1 - z0`` is exact.

    See Also
    --------
    log_sigmoid, logit, softmax

    Examples
    --------
    >>> import numpy as np
    >>> from softmax import sigmoid
    >>> sigmoid(np.array([-1000.0, -1.0, 0.0, 1.0, 40.0]))
    array([0.        , 0.26894142, 0.5       , 0.73105858, 1.        ])
    >>> float(sigmoid(-740.0))  # a subnormal, not 0 and no warning
    4.2e-322

    The two-class softmax:

    >>> import softmax as sm
    >>> float(sm.softmax([1.0, 3.0])[1]), float(sigmoid(3.0 - 1.0))
    (0.8807970779778824, 0.8807970779778824)
    """
    return _elementwise(x, _sigmoid64)


@overload
def log_sigmoid(x: DaskArray) -> DaskArray: ...
@overload
def log_sigmoid(x: ArrayAPIArray) -> ArrayAPIArray: ...
@overload
def log_sigmoid(x: NDArray[Any]) -> FloatArray: ...
@overload
def log_sigmoid(x: NumpyScalar) -> FloatScalar: ...
@overload
def log_sigmoid(x: ArrayLike) -> FloatArray: ...


def log_sigmoid(x: Any) -> Any:
    r"""Logarithm of the sigmoid, accurate where ``log(sigmoid(x))`` is not.

    .. math:: \log \sigma(x) = \min(x, 0) - \log\left(1 + e^{-|x|}\right)

    Parameters
    ----------
    x : array_like
        Input values. Integers and booleans promote to float64; float16,
        float32 and float64 keep their dtype.

    Returns
    -------
    ndarray or scalar
        Values <= 0, shaped like `x`.

    Notes
    -----
    For large positive x the result is the tiny negative ``-exp(-x)`` (not
    ``log(1.0) = 0``); for large negative x it is x itself (not
    ``log(0) = -inf``). float64 results are within 2 ulp of the exact value
    (1.32 ulp measured), float32 within 1 ulp.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax import log_sigmoid
    >>> log_sigmoid(np.array([-1000.0, 0.0, 40.0]))
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    >>> float(np.log(1 / (1 + np.exp(-40.0))))  # the naive formula loses it
    0.0
    """
    return _elementwise(x, _log_sigmoid64)


@overload
def logit(p: DaskArray) -> DaskArray: ...
@overload
def logit(p: ArrayAPIArray) -> ArrayAPIArray: ...
@overload
def logit(p: NDArray[Any]) -> FloatArray: ...
@overload
def logit(p: NumpyScalar) -> FloatScalar: ...
@overload
def logit(p: ArrayLike) -> FloatArray: ...


def logit(p: Any) -> Any:
    r"""The inverse of the sigmoid: log-odds ``log(p / (1 - p))``.

    Parameters
    ----------
    p : array_like
        Probabilities. Integers and booleans promote to float64; float16,
        float32 and float64 keep their dtype.

    Returns
    -------
    ndarray or scalar
        Log-odds shaped like `p`: ``-inf`` at 0, ``+inf`` at 1, NaN outside
        [0, 1] and for NaN (as ``scipy.special.logit``; no warning).

    Notes
    -----
    Near ``p = 1/2`` the ratio ``p / (1 - p)`` is close to 1 and ``log`` of
    it would lose digits, so the function uses
    ``log1p((2p - 1) / (1 - p))`` for ``p >= 1/2`` (numerator and
    denominator are then exact) and ``-log1p((1 - 2p) / p)`` below, with the
    quotient carried in double-double. float64 results are within 2 ulp of
    the exact value (1.08 ulp measured), float32 within 1 ulp.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax import logit, sigmoid
    >>> logit(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    array([       -inf, -1.09861229,  0.        ,  1.09861229,         inf])
    >>> round(float(logit(0.75)), 14), float(sigmoid(np.log(3.0)))  # odds 3 : 1
    (1.09861228866811, 0.75)
    """
    return _elementwise(p, _logit64, "p")


def temperature_from_base(a: float) -> float:
    r"""The temperature that does the same as exponential base `a`.

    .. math:: \frac{a^{z_i}}{\sum_j a^{z_j}}
              = \frac{e^{z_i \ln a}}{\sum_j e^{z_j \ln a}}
              = \mathrm{softmax}(z / T)_i, \qquad T = \frac{1}{\ln a}

    Changing the base is changing the temperature: this is why the article
    says the base does not matter.

    Parameters
    ----------
    a : float
        The base: finite, > 0 and != 1.

    Returns
    -------
    float
        ``1 / ln(a)``, computed from an extended-precision logarithm and
        rounded once. For ``0 < a < 1`` it is negative: such a base reverses
        the order of the scores, ``softmax(x, base=a) ==
        softmax(-x, temperature=-T)``.

    See Also
    --------
    base_from_temperature

    Examples
    --------
    >>> import numpy as np
    >>> import softmax as sm
    >>> from softmax import temperature_from_base
    >>> temperature_from_base(np.e)
    1.0
    >>> temperature_from_base(2.0)  # base 2 = a little hotter than base e
    1.4426950408889634
    >>> x = [2.0, 1.0, 0.1]
    >>> bool(np.allclose(sm.softmax(x, base=2.0),
    ...                  sm.softmax(x, temperature=temperature_from_base(2.0)),
    ...                  rtol=1e-15, atol=0))
    True
    """
    value = real_number(a, "a")
    if not (value > 0) or value == 1 or math.isinf(value):
        raise ValueError(f"a must be a base that is finite, > 0 and != 1, got {a!r}")
    ln_hi, ln_lo = log_double_double(value)
    return float(1 / (np.longdouble(ln_hi) + np.longdouble(ln_lo)))


def base_from_temperature(t: float) -> float:
    r"""The exponential base that does the same as temperature `t`.

    .. math:: \mathrm{softmax}(z / t) = \frac{a^{z_i}}{\sum_j a^{z_j}},
              \qquad a = e^{1/t}

    Parameters
    ----------
    t : float
        The temperature: finite and != 0 (``t = 0`` would be base infinity,
        the hard max). A negative t gives a base below 1.

    Returns
    -------
    float
        ``exp(1 / t)``, computed in extended precision and rounded once;
        ``inf`` when it overflows (``0 < t < 1/709.78``), with no warning.

    See Also
    --------
    temperature_from_base

    Examples
    --------
    >>> from softmax import base_from_temperature, temperature_from_base
    >>> base_from_temperature(1.0)
    2.718281828459045
    >>> base_from_temperature(0.5)  # e**2: a cold softmax is a big base
    7.38905609893065
    >>> base_from_temperature(temperature_from_base(3.0))
    3.0
    """
    value = real_number(t, "t")
    if value == 0 or not math.isfinite(value):
        raise ValueError(f"t must be a finite temperature != 0, got {t!r}")
    with np.errstate(over="ignore"):
        return float(np.exp(1 / np.longdouble(value)))
