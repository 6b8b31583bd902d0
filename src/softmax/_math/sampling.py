r"""Draw classes from softmax distributions without normalizing them.

The Gumbel-max trick: if ``G_i`` are independent standard Gumbel variables,

.. math:: \arg\max_i \left(\frac{x_i}{T} + G_i\right) \sim \mathrm{softmax}(x / T),

so a draw needs no exponential and no sum, only the logits. The logits are
shifted by their maximum first (as the article recommends for softmax
itself) so that ``x / T`` cannot overflow for a small temperature.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Union, overload

import numpy as np

from .._arguments import one_axis as _one_axis
from .._arguments import parse_scale, unmask
from .._backends import merge
from .._plan import Operand, operand, operand_mask
from .._typing import (
    Array,
    ArrayAPIArray,
    ArrayLike,
    DaskArray,
    IntResult,
    Mask,
    Namespace,
    NDArray,
)

Size = Union[int, tuple[int, ...], None]
Seed = Union[int, np.random.Generator, np.random.SeedSequence, np.random.BitGenerator, None]

__all__ = ["sample"]


def _size_tuple(size: Any) -> tuple[int, ...]:
    if size is None:
        return ()
    items = size if isinstance(size, (tuple, list)) else (size,)
    for item in items:
        if (
            isinstance(item, (bool, np.bool_))
            or not isinstance(item, numbers.Integral)
            or item < 0
        ):
            raise ValueError(
                f"size must be None, a non-negative int or a tuple of them, got {size!r}"
            )
    return tuple(int(item) for item in items)


def _generator(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (
        isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_))
    ) or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        try:
            # an Integral seed (NumPy's ints too), which default_rng takes
            return np.random.default_rng(rng)  # type: ignore[arg-type]
        except ValueError:
            pass
    raise TypeError(
        f"rng must be None, a non-negative int seed or a numpy.random.Generator, got {rng!r}"
    )


def _first_bad_slice(bad: NDArray[Any]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


@overload
def sample(logits: DaskArray, *, temperature: float = 1.0, axis: int = -1, size: Size = None,
           rng: Seed = None, where: Mask = None) -> DaskArray: ...
@overload
def sample(logits: ArrayAPIArray, *, temperature: float = 1.0, axis: int = -1,
           size: Size = None, rng: Seed = None, where: Mask = None) -> ArrayAPIArray: ...
@overload
def sample(logits: NDArray[Any], *, temperature: float = 1.0, axis: int = -1, size: Size = None,
           rng: Seed = None, where: Mask = None) -> IntResult: ...
@overload
def sample(logits: ArrayLike, *, temperature: float = 1.0, axis: int = -1, size: Size = None,
           rng: Seed = None, where: Mask = None) -> IntResult: ...


def sample(logits: Any, *, temperature: float = 1.0, axis: int = -1, size: Size = None,
           rng: Seed = None, where: Any = None) -> Any:
    r"""Draw class indices from ``softmax(logits / temperature)``.

    Parameters
    ----------
    logits : array_like
        Scores; each slice along `axis` is one categorical distribution.
    temperature : float, optional
        ``T >= 0``. ``T = 0`` draws the argmax (the first one if tied),
        ``T = inf`` draws uniformly among the finite logits.
    axis : int, optional
        The axis of the classes. Default: the last axis.
    size : int or tuple of ints, optional
        Number of independent draws per distribution, as a shape. ``None``
        (default): one draw. The sample shape is *prepended*, as in
        ``torch.distributions.Categorical.sample``: the result has shape
        ``size + batch`` where ``batch`` is ``logits.shape`` without `axis`.
    rng : None, int or numpy.random.Generator, optional
        The source of randomness: a seed for reproducible draws, a
        Generator (its state advances), or None for fresh entropy.
    where : array_like of bool, optional
        Classes to include; excluded classes are never drawn.

    Returns
    -------
    ndarray of intp, or an int scalar
        Class indices along `axis`, shaped ``size + batch``.

    Raises
    ------
    ValueError
        If a slice contains NaN, or has nothing to draw (all ``-inf`` or
        excluded); the message gives the slice's index in ``batch``.

    Notes
    -----
    Classes with logit ``-inf`` have probability 0 and are never drawn. If
    a slice has ``+inf`` logits, they share all the mass (the softmax rule)
    and one of them is drawn uniformly.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax as sm
    >>> from softmax import sample
    >>> logits = np.array([2.0, 1.0, 0.1])
    >>> draws = sample(logits, size=200_000, rng=0)
    >>> freq = np.bincount(draws, minlength=3) / draws.size
    >>> bool(np.abs(freq - sm.softmax(logits)).max() < 0.01)
    True
    >>> int(sample(logits, temperature=0))  # the argmax
    0
    >>> sample(np.zeros((2, 3)), size=(4,), rng=1).shape  # size + batch
    (4, 2)
    >>> int(sample([0.0, -np.inf, 0.0], temperature=0, rng=0))
    0
    """
    logits, where = unmask(logits, where, "logits")
    op = operand(logits, "logits")
    full_shape = tuple(op.data.shape)
    if not full_shape:
        raise ValueError("logits must have at least one axis (the classes), got a scalar")
    ax = _one_axis(axis, len(full_shape))
    scale = parse_scale(temperature, None)
    shape = _size_tuple(size)
    gen = _generator(rng)
    mask = operand_mask(op, where, full_shape, "logits")
    xp = op.xp

    with op.computing():
        v = xp.moveaxis(op.work_array(), ax, -1)
        if mask is not None:
            v = xp.where(xp.moveaxis(mask, ax, -1), v, -math.inf)
        m = xp.max(v, axis=-1, keepdims=True)
        if not op.lazy:  # checks that a lazy array cannot make without computing
            _check_slices(xp, v, m, full_shape, ax)
        batch = tuple(v.shape[:-1])

        if scale.kind == "hard":
            winner = xp.argmax(v, axis=-1)
            return op.deliver(xp.broadcast_to(winner, shape + batch), winner.dtype)

        posinf_rows = m == math.inf
        if scale.kind == "uniform":
            y = xp.where(xp.isfinite(v), 0.0, v)
        else:
            # Shift by the max: (v - m) / T <= 0 never overflows (a 1 / T beyond
            # float64 is applied exactly, and a difference beyond it still gets
            # its finite (v - m) / T: see merge._shifted).
            y = merge.shift(xp, v, xp.where(posinf_rows, 0.0, m), merge.positive_scale(scale),
                            float(xp.finfo(op.work).eps))
        # +inf entries share the mass: draw uniformly among them.
        y = xp.where(posinf_rows, xp.where(v == math.inf, 0.0, -math.inf), y)
        noise = _gumbel(op, gen, shape + tuple(v.shape), v)
        # y = -inf must stay out even if the noise is +inf (probability 2**-53).
        scores = xp.where(y > -math.inf, y + noise, -math.inf)
        result = xp.argmax(scores, axis=-1)
        return op.deliver(result, result.dtype)


def _check_slices(xp: Namespace, v: Array, m: Array, full_shape: tuple[int, ...],
                  ax: int) -> None:
    nan_rows = np.asarray(_host(xp.any(xp.isnan(v), axis=-1)))
    if np.any(nan_rows):
        raise ValueError(
            f"logits must not contain NaN, got NaN in the slice at index "
            f"{_first_bad_slice(nan_rows)} (logits.shape {full_shape} without axis {ax})"
        )
    empty = np.asarray(_host(m[..., 0] == -math.inf))
    if np.any(empty):
        raise ValueError(
            f"logits must give every slice a class to draw, got a slice that is all "
            f"-inf or excluded at index {_first_bad_slice(empty)} "
            f"(logits.shape {full_shape} without axis {ax})"
        )


def _host(a: Array) -> NDArray[Any]:
    """A small result array on the host, as NumPy (for error messages)."""
    if hasattr(a, "detach"):
        a = a.detach().cpu()
    return np.asarray(a)


def _gumbel(op: Operand, gen: np.random.Generator, shape: tuple[int, ...], like: Array) -> Array:
    """Standard Gumbel noise of `shape`, from `gen`, as an array of the operand's library."""
    if op.library == "dask":
        import dask.array as da

        seed = int(gen.integers(2**63))
        return da.random.default_rng(seed).gumbel(size=shape)
    noise = gen.gumbel(size=shape)
    return noise if op.library == "numpy" else op.asarray(noise, op.work)
