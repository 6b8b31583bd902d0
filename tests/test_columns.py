"""Reductions along a non-last axis: the column kernels give a row's bits, and
the accuracy promise against mpmath.

A C-ordered array reduced along axis 0 is run by the column kernels (panels
of neighbouring columns read in place, row after row). Each column must give
exactly the bits its values give as one contiguous row, under every SIMD
target this CPU supports, through every code path of a panel: NaN, +inf and
all -inf columns, repeated maxima, temperatures and bases (the scaled and the
negated scores), in place (out=x), columns shorter than the accumulator count, longer than a
strip, panels split across threads, and widths that leave a remainder.
"""

import subprocess
import sys
import os

import pytest

from softmax import _core

FORCE = {"avx512": "", "avx2": "AVX512F", "baseline": "AVX512F,AVX2", "neon": ""}
SUPPORTED = _core._config()["supported"]

CHECK = r"""
import numpy as np, softmax as sm
rng = np.random.default_rng(7)
shapes = [(300, 40), (37, 19), (5, 8), (1, 24), (64, 16), (9000, 20), (20, 7),
          (2, 3, 50), (257, 1030)]
failures = []
for threads in (1, 2):
    sm.set_num_threads(threads)
    for dt in (np.float16, np.float32, np.float64):
        for shape in shapes:
            x = (rng.standard_normal(shape) * 5).astype(dt)
            if x.ndim == 2 and shape[1] > 6:
                x[min(3, shape[0] - 1), 5] = np.inf
                x[min(1, shape[0] - 1), 2] = np.nan
                x[:, 4] = -np.inf
                x[:, 1] = x[0, 1]          # every entry a maximum
                x[0, 6] = 300 if dt != np.float16 else 60
            for name in ("softmax", "log_softmax", "logsumexp"):
                f = getattr(sm, name)
                options = [{}] if name == "logsumexp" else [
                    {}, {"temperature": 0.7}, {"base": 0.5}, {"temperature": 1e-3}]
                for kw in options:
                    got = f(x, axis=0, **kw)
                    rows = np.ascontiguousarray(np.swapaxes(x, 0, -1))
                    want = f(rows, axis=-1, **kw)
                    want = want.T if name == "logsumexp" else np.swapaxes(want, 0, -1)
                    same = got.shape == want.shape and np.array_equal(
                        np.ascontiguousarray(got).view(np.uint8),
                        np.ascontiguousarray(want).view(np.uint8))
                    if not same:
                        failures.append((threads, dt.__name__, shape, name, kw))
                    if name != "logsumexp":
                        # in place: out is x itself
                        inplace = x.copy()
                        f(inplace, axis=0, out=inplace, **kw)
                        if not np.array_equal(inplace.view(np.uint8),
                                              np.ascontiguousarray(got).view(np.uint8)):
                            failures.append(("in place", threads, dt.__name__, shape, name, kw))
print(len(failures), failures[:5])
"""


@pytest.mark.parametrize("target", SUPPORTED)
def test_columns_match_rows_bit_for_bit(target):
    env = dict(os.environ, SOFTMAX_DISABLE_CPU_FEATURES=FORCE[target])
    proc = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("0 "), proc.stdout


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("n", [3, 40, 300])
def test_columns_against_mpmath(dtype, n):
    """Axis 0 through the column kernels, checked against the exact reference.

    Columns of spread scores (and, with temperature 0.37, scaled scores),
    reduced along axis 0 of a C-ordered array wide enough for whole panels:
    every output within the accuracy promise (1 ulp for float16/32, 2 ulp for
    float64) of mpmath's correctly rounded softmax and log_softmax.
    """
    import mpmath
    import numpy as np
    import softmax as sm
    import ulp_reference as ur

    bound = {"float16": 1, "float32": 1, "float64": 2}[dtype]
    rng = np.random.default_rng(n)
    spread = 10.0 if dtype == "float16" else 80.0
    x = rng.uniform(-spread / 2, spread / 2, (n, 24)).astype(dtype)
    for temperature in (1.0, 0.37):
        with mpmath.workprec(ur.PREC):  # c = 1/T exact to the reference's precision
            c = None if temperature == 1.0 else +(mpmath.mpf(1) / ur.mp_value(temperature))
        p = sm.softmax(x, axis=0, temperature=temperature)
        logp = sm.log_softmax(x, axis=0, temperature=temperature)
        for col in range(x.shape[1]):
            want_p, want_logp = ur.ref_softmax(x[:, col], np.dtype(dtype), c=c)
            assert np.max(ur.ulp_distance(p[:, col], want_p)) <= bound
            assert np.max(ur.ulp_distance(logp[:, col], want_logp)) <= bound
