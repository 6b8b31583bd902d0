"""The multiplier a backend applies to the scores: y = x * c.

Temperature and base reach the backends only in this form, built by
``_arguments.parse_scale`` (c = ln(base) / temperature, carried as hi + lo).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["C_EXP_MIN", "UNIT_SCALE", "Scale"]

C_EXP_MIN = 2.0**-960
"""The smallest |c| carried as plain hi + lo (c_exp = 0).

Below it c_lo would be subnormal and lose the bits that make hi + lo
exact. Above float64's range c_hi would be inf. Outside [C_EXP_MIN, max
float] c is carried as (hi + lo) * 2**c_exp with 1 <= |hi| < 2 instead, and
the NumPy backend runs the formulas of ``merge`` rather than the C core.
"""


class Scale(NamedTuple):
    """How scores are scaled before the exponential: y = x * c.

    kind is ``"finite"`` (use c = (c_hi + c_lo) * 2**c_exp), ``"hard"``
    (temperature 0: the limit is the hard max of sign * x) or ``"uniform"``
    (temperature inf: every finite score counts the same). c_exp is 0 unless
    c lies outside [C_EXP_MIN, max float] (a temperature below ~5.6e-309 or
    above ~1e289, without a base).
    """

    kind: str
    c_hi: float = 1.0
    c_lo: float = 0.0
    sign: float = 1.0
    c_exp: int = 0


UNIT_SCALE = Scale("finite")
