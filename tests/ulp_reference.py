"""Exact references and ulp distances for the accuracy tests.

Nothing here calls the package under test. The references are computed in
mpmath at ``PREC`` bits (about 60 decimal digits) from the exact binary
values of the inputs, then rounded *once*, correctly (to nearest, ties to
even, with gradual underflow and overflow to inf), to the output dtype. The
error of a computed output is its distance in ulps from that correctly
rounded value: the number of representable values of the dtype between the
two (0 = correctly rounded, 1 = a neighbour). The count runs straight
through subnormals, treats +0 and -0 as one value, counts the step from the
largest finite value to inf as one ulp, and calls two NaNs equal.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
from pathlib import Path

import mpmath
import numpy as np
from mpmath import libmp

__all__ = [
    "PREC",
    "FORMATS",
    "mp_value",
    "round_to",
    "round_all",
    "ulp_distance",
    "ulp_of",
    "ref_softmax",
    "ref_logsumexp",
    "ref_sigmoid",
]

PREC = 200  # bits; ~60 decimal digits
_RND = libmp.round_nearest

# significand bits (with the implicit one), minimum normal exponent, maximum exponent
FORMATS = {
    np.dtype(np.float16): (11, -14, 15),
    np.dtype(np.float32): (24, -126, 127),
    np.dtype(np.float64): (53, -1022, 1023),
}

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def mp_value(v) -> mpmath.mpf:
    """The exact value of a binary float (any NumPy float dtype) as an mpf."""
    return mpmath.mpf(float(v))  # float16/32/64 -> Python float is exact


def round_to(v, dtype) -> float:
    """Round the mpf `v` to the nearest value of `dtype` (ties to even).

    Returned as a Python float holding that value exactly. Works on the raw
    (sign, mantissa, exponent) of the mpf, so subnormal results are rounded
    once at their real quantum, not twice.
    """
    dtype = np.dtype(dtype)
    return _round_raw(mpmath.mpf(v)._mpf_, dtype)


def _round_raw(raw, dtype) -> float:
    p, emin, emax = FORMATS[dtype]
    sign, man, exp, bc = raw
    if not man:
        if raw == libmp.fzero:
            return 0.0
        if raw == libmp.finf:
            return math.inf
        if raw == libmp.fninf:
            return -math.inf
        return math.nan
    lead = exp + bc - 1  # |v| lies in [2**lead, 2**(lead + 1))
    if lead < emin - p:  # below half the smallest subnormal
        return -0.0 if sign else 0.0
    if lead > emax:
        return -math.inf if sign else math.inf
    q = max(lead, emin) - (p - 1)  # exponent of one ulp at |v|
    shift = q - exp
    if shift <= 0:
        n = man << -shift
    else:
        n = man >> shift
        rem = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and n & 1):
            n += 1
    # n * 2**q is now the rounded magnitude; n <= 2**p (carry into next binade)
    if n == 0:
        mag = 0.0
    elif n.bit_length() + q - 1 > emax:
        mag = math.inf  # rounded magnitude reaches 2**(emax + 1)
    else:
        mag = math.ldexp(n, q)  # exact: n has at most p + 1 <= 54 bits
    return -mag if sign else mag


def round_all(values, dtype) -> np.ndarray:
    """`round_to` over a sequence, as an array of `dtype`."""
    dtype = np.dtype(dtype)
    return np.array([round_to(v, dtype) for v in values], dtype=np.float64).astype(dtype)


def _ordered(a: np.ndarray) -> np.ndarray:
    """Map floats to unsigned ints whose order is the order of the floats.

    Consecutive representable values map to consecutive integers; +0 and -0
    map to the same integer.
    """
    a = np.asarray(a)
    width = a.dtype.itemsize
    utype = _UINT[width]
    bits = a.view(utype).astype(np.uint64)
    sign_bit = np.uint64(1) << np.uint64(8 * width - 1)
    mag = bits & (sign_bit - np.uint64(1))
    offset = np.uint64(1) << np.uint64(63)
    # negative: offset - mag; positive: offset + mag (both zeros -> offset)
    return np.where(bits & sign_bit, offset - mag, offset + mag)


def ulp_distance(computed, expected) -> np.ndarray:
    """Elementwise distance in ulps of the common dtype (float64 array).

    NaN against NaN is 0, NaN against a number is inf.
    """
    computed = np.asarray(computed)
    expected = np.asarray(expected)
    if computed.dtype != expected.dtype:
        raise TypeError(f"dtypes differ: {computed.dtype} vs {expected.dtype}")
    oc = _ordered(computed)
    oe = _ordered(expected)
    dist = np.where(oc >= oe, oc - oe, oe - oc).astype(np.float64)
    nan_c = np.isnan(computed)
    nan_e = np.isnan(expected)
    dist = np.where(nan_c | nan_e, np.inf, dist)
    return np.where(nan_c & nan_e, 0.0, dist)


def ulp_of(v, dtype) -> float:
    """The spacing of `dtype` at the magnitude of `v` (subnormal spacing near 0)."""
    dtype = np.dtype(dtype)
    p, emin, _ = FORMATS[dtype]
    v = abs(float(v))
    if v == 0 or math.isinf(v):
        return math.ldexp(1.0, emin - (p - 1))
    lead = math.frexp(v)[1] - 1
    return math.ldexp(1.0, max(lead, emin) - (p - 1))


def _raw_rest(ys_raw, keep, prec):
    """(index of the first max, exact sum of exp(y - max) over the others)."""
    m = None
    top = -1
    for j, (y, k) in enumerate(zip(ys_raw, keep)):
        if k and (m is None or libmp.mpf_gt(y, m)):
            m, top = y, j
    if m is None:
        return None, -1, None, None
    # one exp per distinct value (long float16 rows repeat their values)
    cache = {}

    def exp_of(y):
        e = cache.get(y)
        if e is None:
            e = cache[y] = libmp.mpf_exp(libmp.mpf_sub(y, m, prec, _RND), prec, _RND)
        return e

    es = [exp_of(y) if k else libmp.fzero for y, k in zip(ys_raw, keep)]
    rest = libmp.mpf_sum([e for j, e in enumerate(es) if j != top])  # exact
    return m, top, es, rest


# Long rows (10^6 entries, half a minute of mpmath each) are asked for by
# several tests and processes of one run: the default and the fast mode,
# softmax and logsumexp, xdist workers, the CI steps that force other SIMD
# targets. Their references are kept in memory and in files (.npz, no
# pickles) in a directory of the user's own under the temporary directory,
# keyed by the row's bytes, c, the mask, the precision and this file's own
# source (a changed reference code never reads an old answer); short rows
# are not worth it. SOFTMAX_TEST_REFERENCE_CACHE=0 turns the files off.
_MEMO: dict = {}
_MEMO_MIN = 65536
_SOURCE = hashlib.blake2b(Path(__file__).read_bytes(), digest_size=8).hexdigest()
_UID = getattr(os, "getuid", lambda: None)()
_CACHE_DIR = Path(tempfile.gettempdir()) / f"softmax-test-references-{_UID}"


def _memo_key(row, c, mask, prec):
    row = np.asarray(row)
    if row.size < _MEMO_MIN:
        return None

    def digest(a):
        return hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).hexdigest()

    return (row.dtype.str, digest(row), None if c is None else repr(c),
            None if mask is None else digest(np.asarray(mask, bool)), prec, _SOURCE)


@functools.cache
def _cache_dir() -> Path | None:
    """The cache directory, made private to this user; None if off or not ours
    (looked at once per process)."""
    if os.environ.get("SOFTMAX_TEST_REFERENCE_CACHE", "1") == "0":
        return None
    try:
        _CACHE_DIR.mkdir(mode=0o700, exist_ok=True)
        if _UID is not None and _CACHE_DIR.stat().st_uid != _UID:
            return None
    except OSError:
        return None
    return _CACHE_DIR


def _cache_path(key, what) -> Path | None:
    folder = _cache_dir()
    if folder is None:
        return None
    return folder / (hashlib.blake2b(repr((key, what)).encode(), digest_size=16).hexdigest()
                     + ".npz")


def _raw_text(x) -> str:
    """An mpmath raw float (sign, mantissa, exponent, bits) as text; '' for None."""
    return "" if x is None else " ".join(str(int(v)) for v in x)


def _raw_of(text: str):
    if not text:
        return None
    sign, man, exp, bc = (int(v) for v in text.split())
    return (sign, libmp.MPZ(man), exp, bc)


def _recall(key, what):
    """The kept reference `what` of the row `key`, or None."""
    if key is None:
        return None
    if (key, what) in _MEMO:
        return _MEMO[key, what]
    path = _cache_path(key, what)
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if "raw" in f:
                value = tuple(_raw_of(str(t)) for t in f["raw"])
            else:
                value = (f["p"], f["logp"])
    except (OSError, KeyError, ValueError):
        return None
    _MEMO[key, what] = value
    return value


def _keep(key, what, value) -> None:
    if key is None:
        return
    _MEMO[key, what] = value
    path = _cache_path(key, what)
    if path is None:
        return
    arrays = ({"raw": np.array([_raw_text(v) for v in value])} if what == "max, rest"
              else {"p": value[0], "logp": value[1]})
    try:  # written whole, then renamed: a concurrent reader sees all or nothing
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, suffix=".npz", delete=False) as f:
            np.savez(f, **arrays)
        os.replace(f.name, path)
    except OSError:
        pass


def ref_softmax(row, dtype=None, *, c=None, mask=None, prec=PREC):
    """Exact softmax and log_softmax of ``c * row`` (a finite 1-D row).

    `c` is an mpf multiplier (1/T or ln a) taken exactly, never rounded to
    the input dtype. `mask` (bool) keeps entries; dropped ones get 0 / -inf.
    Returns ``(p, logp)``: arrays of `dtype` (default: row's dtype), each
    value the correctly rounded exact one.

    The sum is split as 1 + rest and its log taken as log1p(rest): when one
    entry dominates, rest can be far below 2**-prec, and log(1 + rest)
    computed at prec bits would lose it.
    """
    dtype = np.dtype(dtype or np.asarray(row).dtype)
    key = _memo_key(row, c, mask, prec)
    kept = _recall(key, dtype.str)
    if kept is not None:
        return kept[0].copy(), kept[1].copy()
    n = len(row)
    keep = [True] * n if mask is None else [bool(k) for k in mask]
    xs = [libmp.from_float(float(v)) for v in row]
    if c is not None:
        c_raw = c._mpf_ if isinstance(c, mpmath.mpf) else libmp.from_float(float(c))
        ys = [libmp.mpf_mul(x, c_raw, prec, _RND) for x in xs]
    else:
        ys = xs
    m, top, es, rest = _raw_rest(ys, keep, prec)
    if m is None:
        return np.zeros(n, dtype), np.full(n, -np.inf, dtype)
    _keep(key, "max, rest", (m, rest))
    with mpmath.workprec(prec):
        log_s = mpmath.log1p(mpmath.mpf(rest))._mpf_
    s = libmp.mpf_add(libmp.fone, rest, prec, _RND)
    # once per distinct value (long float16 rows repeat theirs)
    p_of: dict = {}
    logp_of: dict = {}

    def p_value(e):
        v = p_of.get(e)
        if v is None:
            v = p_of[e] = _round_raw(libmp.mpf_div(e, s, prec, _RND), dtype)
        return v

    def logp_value(y):
        v = logp_of.get(y)
        if v is None:
            v = logp_of[y] = _round_raw(
                libmp.mpf_sub(libmp.mpf_sub(y, m, prec, _RND), log_s, prec, _RND), dtype)
        return v

    p = [p_value(e) for e in es]
    logp = [logp_value(y) if k else -math.inf for y, k in zip(ys, keep)]
    p, logp = np.array(p).astype(dtype), np.array(logp).astype(dtype)
    _keep(key, dtype.str, (p.copy(), logp.copy()))
    return p, logp


def ref_logsumexp(row, *, mask=None, prec=PREC) -> mpmath.mpf:
    """Exact log(sum(exp(row))) as an mpf (-inf for an empty row)."""
    key = _memo_key(row, None, mask, prec)
    kept = _recall(key, "max, rest")
    if kept is not None:
        m, rest = kept
    else:
        keep = [True] * len(row) if mask is None else [bool(k) for k in mask]
        xs = [libmp.from_float(float(v)) for v in row]
        m, _, _, rest = _raw_rest(xs, keep, prec)
        _keep(key, "max, rest", (m, rest))
    if m is None:
        return mpmath.mpf("-inf")
    with mpmath.workprec(prec):
        return mpmath.mpf(m) + mpmath.log1p(mpmath.mpf(rest))


def ref_sigmoid(z, prec=PREC):
    """Exact 1 / (1 + exp(-z)) as an mpf."""
    with mpmath.workprec(prec):
        return 1 / (1 + mpmath.exp(-mp_value(z)))
