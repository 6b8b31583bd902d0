"""Slow, obviously correct NumPy versions of what the C core computes.

They work on the last axis of an array that the caller has already laid out
(reduction axes moved last), with an optional boolean `mask` of the same
shape. The public functions use them for the cases the core does not take
(temperature 0, weights `b` in logsumexp); the tests use them as a second
opinion beside the mpmath reference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hardmax_last", "logsumexp_weighted_last", "softmax_last"]


def _keep(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return np.ones(x.shape, dtype=bool) if mask is None else mask


def hardmax_last(x, mask=None, *, sign: float = 1.0, log: bool = False) -> np.ndarray:
    """The temperature -> 0 limit of softmax(sign * x): tied maxima share equally.

    NaN in the kept entries makes the kept entries NaN; a slice with no kept
    entry above -inf is an empty distribution (0, or -inf for `log`).
    """
    keep = _keep(x, mask)
    v = np.where(keep, sign * x, -np.inf)
    nan_rows = np.any(np.isnan(v), axis=-1, keepdims=True)
    m = np.max(np.where(np.isnan(v), -np.inf, v), axis=-1, keepdims=True, initial=-np.inf)
    winners = keep & (v == m) & (m > -np.inf)
    k = winners.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(winners, 1.0 / np.maximum(k, 1), 0.0)
        result = np.log(p) if log else p
    return np.where(nan_rows & keep, np.nan, result)


def softmax_last(x, mask=None, *, c: float = 1.0, log: bool = False) -> np.ndarray:
    """softmax (or log_softmax) of c * x along the last axis, in float64.

    The textbook recipe: subtract the max, exponentiate, divide by the sum;
    plus the package's rules for NaN, +inf and empty slices.
    """
    x = np.asarray(x, dtype=np.float64)
    keep = _keep(x, mask)
    v = np.where(keep, np.sign(c) * x, -np.inf)
    nan_rows = np.any(np.isnan(v) & keep, axis=-1, keepdims=True)
    posinf = keep & (v == np.inf)
    has_posinf = np.any(posinf, axis=-1, keepdims=True)
    v_clean = np.where(np.isnan(v), -np.inf, v)
    m = np.max(v_clean, axis=-1, keepdims=True, initial=-np.inf)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        y = (v_clean - m_safe) * abs(c)
        e = np.where(keep, np.exp(y), 0.0)
        s = e.sum(axis=-1, keepdims=True)
        if log:
            finite = np.where(keep, y - np.log(s), -np.inf)
        else:
            finite = e / s
        k = posinf.sum(axis=-1, keepdims=True)
        share = np.where(posinf, 1.0 / np.maximum(k, 1), 0.0)
        if log:
            share = np.log(share)
    empty_value = -np.inf if log else 0.0
    result = np.where(has_posinf, share, finite)
    result = np.where(m == -np.inf, empty_value, result)
    result = np.where(keep, result, empty_value)
    return np.where(nan_rows & keep, np.nan, result)


def logsumexp_weighted_last(x, b, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """log|sum b exp(x)| and its sign along the last axis (SciPy's `b`).

    Returns ``(value, sign)``; sign is 0 where the sum is exactly 0 (value
    -inf), NaN where the value is NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), x.shape)
    keep = _keep(x, mask) & (b != 0)
    absb = np.abs(b)
    if np.any(keep & ((absb > 1e100) | (absb < 1e-100) | (x == np.inf))):
        return _logsumexp_weighted_wide(x, b, keep)
    v = np.where(keep, x, -np.inf)
    m = np.max(np.where(np.isnan(v), -np.inf, v), axis=-1, keepdims=True, initial=-np.inf)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        terms = np.where(keep, b * np.exp(v - m_safe), 0.0)
        s = terms.sum(axis=-1)
        value = np.log(np.abs(s)) + m_safe[..., 0]
    sign = np.sign(s)
    return value, sign


def _logsumexp_weighted_wide(x, b, keep) -> tuple[np.ndarray, np.ndarray]:
    """logsumexp_weighted_last for weights far from 1, or x with +inf.

    Shifts by the largest log-term x + log|b| rather than by max x: there
    b * exp(x - max) would overflow (inf, or inf - inf = NaN) or go
    subnormal and keep only a few bits. The log|b| costs a rounding per
    term, which is why ordinary weights keep the plain product.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        v = np.where(keep, x + np.log(np.abs(b)), -np.inf)
        m = np.max(np.where(np.isnan(v), -np.inf, v), axis=-1, keepdims=True, initial=-np.inf)
        m_safe = np.where(np.isfinite(m), m, 0.0)
        terms = np.where(keep & (v < np.inf), np.sign(b) * np.exp(v - m_safe), 0.0)
        s = terms.sum(axis=-1)
        # Infinite terms alone decide a row that has them: +-inf, or NaN
        # (inf - inf) when their weights have both signs.
        s_inf = np.where(keep & (v == np.inf), b * np.inf, 0.0).sum(axis=-1)
        s = np.where(m[..., 0] == np.inf, s_inf, s)
        s = np.where(np.any(keep & np.isnan(v), axis=-1), np.nan, s)
        value = np.log(np.abs(s)) + m_safe[..., 0]
    return value, np.sign(s)
