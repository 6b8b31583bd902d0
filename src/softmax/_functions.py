"""The public softmax, log_softmax and logsumexp: check once, plan once, run once.

Every call goes the same way: ``_plan`` checks the arguments (through
``_arguments``, which owns every message) and returns the input laid out
and an immutable `Plan`; ``_backends.run`` hands both to exactly one
backend (the NumPy C core, the array API, or Dask). The plain call (a NumPy
float array, an int axis, no options) skips all of it: ``_core.fast``
recognizes it, checks it and runs it in one C call, since on a 3-element
vector the same steps in Python cost more than the computation; it returns
None for anything else, including every error case, and the general path
takes over with the same bits.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from . import _config, _core  # _config: sets the thread default
from ._backends import run
from ._arguments import accuracy_code
from ._plan import plan_logsumexp, plan_softmax
from ._typing import (
    Accuracy,
    AnyArray,
    ArrayAPIArray,
    ArrayLike,
    Axis,
    DaskArray,
    FloatArray,
    FloatResult,
    FloatScalar,
    Mask,
    NDArray,
    NumpyScalar,
)

__all__ = ["log_softmax", "logsumexp", "softmax"]

_fast = _core.fast


@overload
def softmax(x: DaskArray, axis: Axis = -1, *, temperature: float = 1.0,
            base: float | None = None, where: Mask = None, out: None = None, accuracy: Accuracy = None) -> DaskArray: ...
@overload
def softmax(x: ArrayAPIArray, axis: Axis = -1, *, temperature: float = 1.0,
            base: float | None = None, where: Mask = None,
            out: ArrayAPIArray | None = None, accuracy: Accuracy = None) -> ArrayAPIArray: ...
@overload
def softmax(x: NDArray[Any], axis: Axis = -1, *, temperature: float = 1.0,
            base: float | None = None, where: Mask = None,
            out: FloatArray | None = None, accuracy: Accuracy = None) -> FloatArray: ...
@overload
def softmax(x: NumpyScalar, axis: Axis = -1, *, temperature: float = 1.0,
            base: float | None = None, where: Mask = None,
            out: FloatArray | None = None, accuracy: Accuracy = None) -> FloatScalar: ...
@overload
def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0,
            base: float | None = None, where: Mask = None,
            out: FloatArray | None = None, accuracy: Accuracy = None) -> FloatArray: ...


def softmax(x: Any, axis: Any = -1, *, temperature: float = 1.0, base: float | None = None,
            where: Any = None, out: Any = None, accuracy: Accuracy = None) -> Any:
    r"""Softmax: scores into probabilities that are >= 0 and sum to 1.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{x_i / T}}{\sum_j e^{x_j / T}}

    Computed as the article recommends: subtract the maximum first (the
    result does not change, and ``exp`` cannot overflow), exponentiate,
    divide by the sum. Each float64 result is within 2 ulp, each float32
    result within 1 ulp, of the exact value.

    Parameters
    ----------
    x : array_like
        Scores (logits). Integers and booleans promote to float64; float16,
        float32 and float64 keep their dtype.
    axis : int, tuple of ints or None, optional
        Axis or axes along which the probabilities sum to 1. ``None`` means
        all axes, as in ``scipy.special.softmax``. Default: the last axis.
    temperature : float, optional
        Divides the scores: ``softmax(x / T)``. ``T = 0`` is the hard max
        (tied maxima share the mass), ``T = inf`` the uniform distribution.
    base : float, optional
        Use ``base ** x`` instead of ``e ** x``; the same as
        ``temperature = 1 / ln(base)``. Must be > 0 and != 1.
    where : array_like of bool, optional
        Entries to include. Excluded entries get probability 0; a slice with
        nothing included is an empty distribution (all 0).
    out : ndarray, optional
        Array of x's shape and result dtype to write into (may be ``x``).
    accuracy : {"high", "fast"}, optional
        ``"high"``: the promise above. ``"fast"``: float16 and float32 in
        float32 lanes with a float32 exp, within 4 ulp on every measured
        family (see the accuracy-modes page of the docs), the same edge
        semantics; float64 runs as in ``"high"``. Default ``None``: the
        process default (`set_accuracy`, ``SOFTMAX_ACCURACY``; ``"high"``
        unless set).

    Returns
    -------
    ndarray
        The probabilities, shaped like `x`.

    Notes
    -----
    NaN in a slice makes the slice NaN. ``+inf`` entries share all the mass
    equally. A slice that is all ``-inf`` is an empty distribution (all 0).
    No RuntimeWarning is raised for any of these.

    Examples
    --------
    The article's example: cat, dog and rabbit scores.

    >>> import softmax as sm
    >>> sm.softmax([2.0, 1.0, 0.1]).round(4)
    array([0.659 , 0.2424, 0.0986])

    Higher temperature flattens, lower sharpens:

    >>> sm.softmax([2.0, 1.0, 0.1], temperature=10).round(3)
    array([0.366, 0.331, 0.303])
    >>> sm.softmax([2.0, 1.0, 0.1], temperature=0)
    array([1., 0., 0.])
    """
    if accuracy is None:
        if (result := _fast(0, x, axis, temperature, base, where, out)) is not None:
            return result
    elif (result := _fast(0, x, axis, temperature, base, where, out,
                          accuracy_code(accuracy))) is not None:
        return result
    return run(*plan_softmax(x, axis, temperature, base, where, out, log=False,
                             accuracy=accuracy))


@overload
def log_softmax(x: DaskArray, axis: Axis = -1, *, temperature: float = 1.0,
                base: float | None = None, where: Mask = None, out: None = None, accuracy: Accuracy = None) -> DaskArray: ...
@overload
def log_softmax(x: ArrayAPIArray, axis: Axis = -1, *, temperature: float = 1.0,
                base: float | None = None, where: Mask = None,
                out: ArrayAPIArray | None = None, accuracy: Accuracy = None) -> ArrayAPIArray: ...
@overload
def log_softmax(x: NDArray[Any], axis: Axis = -1, *, temperature: float = 1.0,
                base: float | None = None, where: Mask = None,
                out: FloatArray | None = None, accuracy: Accuracy = None) -> FloatArray: ...
@overload
def log_softmax(x: NumpyScalar, axis: Axis = -1, *, temperature: float = 1.0,
                base: float | None = None, where: Mask = None,
                out: FloatArray | None = None, accuracy: Accuracy = None) -> FloatScalar: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0,
                base: float | None = None, where: Mask = None,
                out: FloatArray | None = None, accuracy: Accuracy = None) -> FloatArray: ...


def log_softmax(x: Any, axis: Any = -1, *, temperature: float = 1.0, base: float | None = None,
                where: Any = None, out: Any = None, accuracy: Accuracy = None) -> Any:
    r"""Logarithm of softmax, computed without ever taking a log of a rounded p.

    .. math:: \log \mathrm{softmax}(x)_i = x_i - \max x - \log\Big(1 + \sum_{j \ne k} e^{x_j - \max x}\Big)

    The sum excludes the largest entry ``k`` and goes through ``log1p``, so
    when one class dominates (p within 1e-12 of 1) its log-probability keeps
    its tiny negative value instead of rounding to 0.

    Parameters
    ----------
    x, axis, temperature, base, where, out, accuracy
        As for `softmax`. Excluded entries and empty slices give ``-inf``.

    Returns
    -------
    ndarray
        Log-probabilities, shaped like `x`.

    Examples
    --------
    >>> import softmax as sm
    >>> sm.log_softmax([2.0, 1.0, 0.1]).round(4)
    array([-0.417, -1.417, -2.317])
    >>> float(sm.log_softmax([40.0, 0.0])[0])  # p = 1 - 4.2e-18, still visible
    -4.248354255291589e-18
    """
    if accuracy is None:
        if (result := _fast(1, x, axis, temperature, base, where, out)) is not None:
            return result
    elif (result := _fast(1, x, axis, temperature, base, where, out,
                          accuracy_code(accuracy))) is not None:
        return result
    return run(*plan_softmax(x, axis, temperature, base, where, out, log=True,
                             accuracy=accuracy))


@overload
def logsumexp(x: DaskArray, axis: Axis = None, b: ArrayLike | AnyArray | None = None,
              keepdims: bool = False, return_sign: Literal[False] = False, *,
              where: Mask = None, accuracy: Accuracy = None) -> DaskArray: ...
@overload
def logsumexp(x: DaskArray, axis: Axis = None, b: ArrayLike | AnyArray | None = None,
              keepdims: bool = False, return_sign: Literal[True] = ..., *,
              where: Mask = None, accuracy: Accuracy = None) -> tuple[DaskArray, DaskArray]: ...
@overload
def logsumexp(x: ArrayAPIArray, axis: Axis = None, b: ArrayLike | AnyArray | None = None,
              keepdims: bool = False, return_sign: Literal[False] = False, *,
              where: Mask = None, accuracy: Accuracy = None) -> ArrayAPIArray: ...
@overload
def logsumexp(x: ArrayAPIArray, axis: Axis = None, b: ArrayLike | AnyArray | None = None,
              keepdims: bool = False, return_sign: Literal[True] = ..., *,
              where: Mask = None, accuracy: Accuracy = None) -> tuple[ArrayAPIArray, ArrayAPIArray]: ...
@overload
def logsumexp(x: ArrayLike, axis: None = None, b: ArrayLike | AnyArray | None = None,
              keepdims: Literal[False] = False, return_sign: Literal[False] = False, *,
              where: Mask = None, accuracy: Accuracy = None) -> FloatScalar: ...
@overload
def logsumexp(x: ArrayLike, axis: None = None, b: ArrayLike | AnyArray | None = None,
              keepdims: Literal[False] = False, return_sign: Literal[True] = ...,
              *, where: Mask = None, accuracy: Accuracy = None) -> tuple[FloatScalar, FloatScalar]: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = None, b: ArrayLike | AnyArray | None = None,
              keepdims: bool = False, return_sign: Literal[False] = False, *,
              where: Mask = None, accuracy: Accuracy = None) -> FloatResult: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = None, b: ArrayLike | AnyArray | None = None,
              keepdims: bool = False, return_sign: Literal[True] = ..., *,
              where: Mask = None, accuracy: Accuracy = None) -> tuple[FloatResult, FloatResult]: ...


def logsumexp(x: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, *, where: Any = None, accuracy: Accuracy = None) -> Any:
    r"""Log of the sum of exponentials, without overflow: ``log(sum(b * exp(x)))``.

    Computed as ``max + log1p(sum of the other terms)`` with a compensated
    sum; without `b`, float64 results are within 2 ulp and float32 within
    1 ulp of the exact value (see the README for the one exception: a result
    that cancels to nearly 0, where the bound is 2 ulp of the maximum).

    Parameters
    ----------
    x : array_like
        Input values.
    axis : int, tuple of ints or None, optional
        Axes to reduce. Default ``None``: all of them (SciPy's default).
    b : array_like, optional
        Weights broadcast against `x`, as in ``scipy.special.logsumexp``;
        they may be negative (see `return_sign`). Computed in float64 with
        the usual max shift: SciPy's accuracy, not the ulp promise.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    return_sign : bool, optional
        Return ``(log|s|, sign(s))``. Without it, a negative sum is NaN.
    where : array_like of bool, optional
        Entries to include; a slice with nothing included gives ``-inf``.
    accuracy : {"high", "fast"}, optional
        As for `softmax` (without `b`; weighted sums take SciPy's path in
        either mode). In ``"fast"`` mode a result that cancels against
        max(x) is within 4 ulp of max(x).

    Returns
    -------
    res : ndarray or scalar
        The log-sum-exp, in x's floating dtype.
    sgn : ndarray or scalar
        Only with ``return_sign=True``: the sign of the sum (0 for an empty
        sum).

    References
    ----------
    P. Blanchard, D. J. Higham, N. J. Higham, "Accurately computing the
    log-sum-exp and softmax functions", IMA J. Numer. Anal. 41 (2021).

    Examples
    --------
    The naive formula overflows; this one does not:

    >>> import numpy as np, softmax as sm
    >>> x = np.array([1000.0, 1000.0])
    >>> float(sm.logsumexp(x))  # 1000 + ln 2
    1000.6931471805599
    >>> sm.logsumexp([[0.0, 0.0], [1.0, -np.inf]], axis=1)
    array([0.69314718, 1.        ])
    """
    if accuracy is None:
        if (result := _fast(2, x, axis, b, keepdims, where, return_sign)) is not None:
            return result
    elif (result := _fast(2, x, axis, b, keepdims, where, return_sign,
                          accuracy_code(accuracy))) is not None:
        return result
    return run(*plan_logsumexp(x, axis, b, keepdims, return_sign, where, accuracy=accuracy))
