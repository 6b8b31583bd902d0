"""Softmax over groups: the segment_* functions and sparse rows.

Scores that come in groups of different sizes -- the edges into each node
of a graph, the candidates of each query, the stored entries of each row
of a sparse matrix -- are normalized within their group. The groups are
given along one axis either as ``segment_ids`` (a group number per entry,
in any order) or as ``offsets`` (CSR boundaries of consecutive groups). The
calls take the same path as `softmax`: the arguments are checked once
(``_plan.plan_groups``), and one backend runs the plan: the C core for
NumPy (a group is a row), the array-API form for PyTorch and JAX, and an
exact merge of the groups that cross chunk boundaries for Dask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backends import run
from ._backends.groups import group_sum
from ._plan import operand, operand_mask, plan_groups
from ._typing import Accuracy

__all__ = [
    "segment_log_softmax",
    "segment_log_softmax_vjp",
    "segment_logsumexp",
    "segment_softmax",
    "segment_softmax_vjp",
    "sparse_log_softmax",
    "sparse_softmax",
]


def segment_softmax(x: Any, segment_ids: Any = None, *, offsets: Any = None,
                    num_segments: int | None = None, axis: int = -1, temperature: float = 1.0,
                    base: float | None = None, where: Any = None, out: Any = None,
                    accuracy: Accuracy = None) -> Any:
    r"""Softmax within each group of entries along one axis.

    .. math:: p_i = \frac{e^{x_i / T}}{\sum_{j:\ g_j = g_i} e^{x_j / T}}

    Each group's probabilities are >= 0 and sum to 1, with the accuracy and
    the edge rules of `softmax` applied group by group.

    Parameters
    ----------
    x : array_like
        Scores: a NumPy array, a PyTorch or JAX array (or any array-API
        array), or a Dask array. Integers promote to float64.
    segment_ids : array_like of int, optional
        The group of each entry along `axis` (length ``x.shape[axis]``),
        numbers from 0 to ``num_segments - 1``, sorted or not. Give this or
        `offsets`.
    offsets : array_like of int, optional
        CSR boundaries instead: group ``g`` is the entries
        ``offsets[g]:offsets[g+1]`` (``offsets[0] == 0``,
        ``offsets[-1] == x.shape[axis]``, non-decreasing), like a sparse
        matrix's ``indptr``.
    num_segments : int, optional
        How many groups there are (with `segment_ids`; default: the largest
        id + 1). Groups with no entry are allowed.
    axis : int, optional
        The axis along which the groups lie. Default: the last.
    temperature, base, where, out, accuracy
        As for `softmax`: ``temperature = 0`` is each group's hard max;
        excluded entries (``where=False``, or masked in a ``numpy.ma``
        array) get 0 and a group with nothing included is all 0.

    Returns
    -------
    array
        The probabilities, shaped like `x`, in x's library.

    Notes
    -----
    Within a group, as in `softmax`: NaN makes the group NaN (and no other
    group), ``+inf`` entries share the group's mass, a group of ``-inf``
    only is all 0. An empty group has nothing to write.

    Examples
    --------
    Two queries with 3 and 2 candidates:

    >>> import softmax as sm
    >>> sm.segment_softmax([2.0, 1.0, 0.1, 5.0, 5.0], [0, 0, 0, 1, 1]).round(4)
    array([0.659 , 0.2424, 0.0986, 0.5   , 0.5   ])

    The same groups as CSR offsets:

    >>> sm.segment_softmax([2.0, 1.0, 0.1, 5.0, 5.0], offsets=[0, 3, 5]).round(4)
    array([0.659 , 0.2424, 0.0986, 0.5   , 0.5   ])
    """
    return run(*plan_groups(x, segment_ids, offsets, num_segments, axis, temperature, base,
                            where, out, op="softmax", accuracy=accuracy))


def segment_log_softmax(x: Any, segment_ids: Any = None, *, offsets: Any = None,
                        num_segments: int | None = None, axis: int = -1,
                        temperature: float = 1.0, base: float | None = None, where: Any = None,
                        out: Any = None, accuracy: Accuracy = None) -> Any:
    """Log of `segment_softmax`, computed without taking a log of a rounded p.

    Parameters
    ----------
    x, segment_ids, offsets, num_segments, axis, temperature, base, where, out, accuracy
        As for `segment_softmax`. Excluded entries and empty groups give
        ``-inf``.

    Returns
    -------
    array
        Log-probabilities, shaped like `x`.

    Examples
    --------
    >>> import softmax as sm
    >>> sm.segment_log_softmax([0.0, 0.0, 40.0, 0.0], [0, 0, 1, 1])
    array([-6.93147181e-01, -6.93147181e-01, -4.24835426e-18, -4.00000000e+01])
    """
    return run(*plan_groups(x, segment_ids, offsets, num_segments, axis, temperature, base,
                            where, out, op="log_softmax", accuracy=accuracy))


def segment_logsumexp(x: Any, segment_ids: Any = None, *, offsets: Any = None,
                      num_segments: int | None = None, axis: int = -1, where: Any = None,
                      accuracy: Accuracy = None) -> Any:
    """``log(sum(exp(x)))`` of each group, without overflow.

    Parameters
    ----------
    x, segment_ids, offsets, num_segments, axis, where, accuracy
        As for `segment_softmax`.

    Returns
    -------
    array
        Shaped like `x` with ``x.shape[axis]`` replaced by the number of
        groups; an empty or fully excluded group gives ``-inf``.

    Examples
    --------
    >>> import numpy as np, softmax as sm
    >>> sm.segment_logsumexp([1000.0, 1000.0, 3.0], [0, 0, 2], num_segments=4)
    array([1000.69314718,          -inf,    3.        ,          -inf])
    """
    return run(*plan_groups(x, segment_ids, offsets, num_segments, axis, 1.0, None, where, None,
                            op="logsumexp", accuracy=accuracy))


def _vjp(p: Any, g: Any, segment_ids: Any, offsets: Any, num_segments: Any, axis: Any,
         where: Any, *, log: bool) -> Any:
    """x's gradient of segment softmax (or log_softmax), given the output p and dL/dp = g."""
    op = operand(p, "p")
    xp = op.xp
    # A plan of the same groups, for the checks and the layout only.
    _, plan = plan_groups(op.data, segment_ids, offsets, num_segments, axis, 1.0, None, None, None,
                          op="softmax")
    ax = plan.axes[0]
    keep = operand_mask(op, where, tuple(op.data.shape), "p")
    with op.computing():
        pw = op.work_array()
        gw = op.asarray(g)
        if tuple(gw.shape) != tuple(pw.shape):
            raise ValueError(f"g must have p's shape {tuple(pw.shape)}, got {tuple(gw.shape)}")
        gw = op.work_array(gw)
        if keep is not None:
            # an excluded entry carries no gradient, whatever g holds there
            gw = xp.where(keep, gw, 0.0)
        perm = tuple(i for i in range(pw.ndim) if i != ax) + (ax,)
        back = tuple(perm.index(i) for i in range(pw.ndim))
        pl, gl = xp.permute_dims(pw, perm), xp.permute_dims(gw, perm)
        ids = op.asarray(plan.groups.ids)
        if log:
            prob = xp.exp(pl)  # exp(-inf) = 0: no NaN where a log-probability is -inf
            total = group_sum(xp, gl, plan.groups, op.device)
            dx = gl - prob * xp.take(total, ids, axis=-1)
        else:
            total = group_sum(xp, pl * gl, plan.groups, op.device)
            dx = pl * (gl - xp.take(total, ids, axis=-1))
        dx = xp.permute_dims(dx, back)
        if keep is not None:
            dx = xp.where(keep, dx, 0.0)
        return op.deliver(dx)


def segment_softmax_vjp(p: Any, g: Any, segment_ids: Any = None, *, offsets: Any = None,
                        num_segments: int | None = None, axis: int = -1,
                        where: Any = None) -> Any:
    r"""Vector-Jacobian product of `segment_softmax` (the backward pass).

    Given the output ``p = segment_softmax(x, ...)`` and the gradient ``g``
    of a loss with respect to p, returns the gradient with respect to x:

    .. math:: \frac{\partial L}{\partial x_i} = p_i \Big(g_i - \sum_{j:\ g_j = g_i} p_j g_j\Big)

    (for a temperature T, divide by T). Excluded entries get 0; there is
    no NaN at empty or fully masked groups.

    Parameters
    ----------
    p : array
        The output of `segment_softmax`.
    g : array_like
        dL/dp, shaped like p.
    segment_ids, offsets, num_segments, axis, where
        The groups of the forward call.

    Returns
    -------
    array
        dL/dx, shaped like p.

    Examples
    --------
    >>> import softmax as sm
    >>> p = sm.segment_softmax([1.0, 1.0, 3.0], [0, 0, 1])
    >>> sm.segment_softmax_vjp(p, [1.0, 0.0, 1.0], [0, 0, 1])
    array([ 0.25, -0.25,  0.  ])
    """
    return _vjp(p, g, segment_ids, offsets, num_segments, axis, where, log=False)


def segment_log_softmax_vjp(logp: Any, g: Any, segment_ids: Any = None, *, offsets: Any = None,
                            num_segments: int | None = None, axis: int = -1,
                            where: Any = None) -> Any:
    r"""Vector-Jacobian product of `segment_log_softmax`.

    .. math:: \frac{\partial L}{\partial x_i} = g_i - p_i \sum_{j:\ g_j = g_i} g_j

    with ``p = exp(logp)``. Excluded entries get 0.

    Parameters
    ----------
    logp : array
        The output of `segment_log_softmax`.
    g : array_like
        dL/dlogp, shaped like logp.
    segment_ids, offsets, num_segments, axis, where
        The groups of the forward call.

    Returns
    -------
    array
        dL/dx, shaped like logp.

    Examples
    --------
    >>> import softmax as sm
    >>> logp = sm.segment_log_softmax([0.0, 0.0, 3.0], [0, 0, 1])
    >>> sm.segment_log_softmax_vjp(logp, [1.0, 0.0, 1.0], [0, 0, 1])
    array([ 0.5, -0.5,  0. ])
    """
    return _vjp(logp, g, segment_ids, offsets, num_segments, axis, where, log=True)


def _sparse(a: Any, axis: Any, temperature: float, base: float | None, accuracy: Accuracy,
            log: bool) -> Any:
    import sys

    sparse = sys.modules.get("scipy.sparse")
    if sparse is None or not sparse.issparse(a):
        raise TypeError(f"a must be a scipy.sparse array or matrix, got {type(a).__name__}")
    if isinstance(axis, (bool, np.bool_)) or axis not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0 or 1 (-2 or -1) for a 2-d sparse matrix, got {axis!r}")
    by_rows = axis in (1, -1)
    m = a.tocsr() if by_rows else a.tocsc()
    if m is a:
        m = m.copy()
    m.sum_duplicates()  # one stored entry per position, as SciPy's arithmetic sees the matrix
    fn = segment_log_softmax if log else segment_softmax
    data = fn(m.data, offsets=m.indptr, temperature=temperature, base=base, accuracy=accuracy)
    return type(m)((data, m.indices, m.indptr), shape=m.shape)


def sparse_softmax(a: Any, axis: int = -1, *, temperature: float = 1.0, base: float | None = None,
                   accuracy: Accuracy = None) -> Any:
    """Softmax over the stored entries of each row (or column) of a sparse matrix.

    Absent entries are absent, not zeros: they take no part in the sum and
    stay absent in the result, which has the input's sparsity pattern (as
    ``torch.sparse.softmax`` and ``tf.sparse.softmax`` define it). A stored
    zero is a score of 0 like any other.

    Parameters
    ----------
    a : scipy.sparse array or matrix
        Scores, 2-d. Duplicate entries are summed first (SciPy's meaning).
    axis : {-1, 1, 0, -2}, optional
        1 or -1: each row's stored entries sum to 1 (result in CSR form);
        0 or -2: each column's (CSC form).
    temperature, base, accuracy
        As for `softmax`.

    Returns
    -------
    scipy.sparse array or matrix
        Same kind (array or matrix) as `a`, CSR or CSC, same pattern.

    Examples
    --------
    >>> import scipy.sparse, softmax as sm
    >>> a = scipy.sparse.csr_array([[1.0, 0, 1.0], [0, 0, 0], [0, 5.0, 0]])
    >>> p = sm.sparse_softmax(a)
    >>> p.toarray()
    array([[0.5, 0. , 0.5],
           [0. , 0. , 0. ],
           [0. , 1. , 0. ]])
    >>> p.nnz == a.nnz
    True
    """
    return _sparse(a, axis, temperature, base, accuracy, log=False)


def sparse_log_softmax(a: Any, axis: int = -1, *, temperature: float = 1.0,
                       base: float | None = None, accuracy: Accuracy = None) -> Any:
    """Log of `sparse_softmax`: log-probabilities of the stored entries, same pattern.

    Parameters
    ----------
    a, axis, temperature, base, accuracy
        As for `sparse_softmax`.

    Returns
    -------
    scipy.sparse array or matrix
        The log-probabilities at the stored positions (absent entries are
        absent, not log 0).

    Examples
    --------
    >>> import scipy.sparse, softmax as sm
    >>> a = scipy.sparse.csr_array([[1.0, 0, 1.0]])
    >>> sm.sparse_log_softmax(a).data
    array([-0.69314718, -0.69314718])
    """
    return _sparse(a, axis, temperature, base, accuracy, log=True)

