"""The multiplier a backend applies to the scores: y = x * c.

Temperature and base reach the backends only in this form, built by
``_arguments.parse_scale`` (c = ln(base) / temperature, carried as hi + lo).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["UNIT_SCALE", "Scale"]


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
