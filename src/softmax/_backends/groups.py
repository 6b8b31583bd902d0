"""Groups of entries along one axis, and their (max, sum) states in any namespace.

A `Groups` is the checked layout of a ``segment_*`` call, kept on the host
in NumPy whatever the input's library: which entry belongs to which group,
the groups' CSR offsets once the entries are sorted by group, and the
permutation that sorts them (None when they already are).

The C core runs sorted groups directly (one row per group). Everything else
-- the array API, Dask's blocks, temperature 0 -- uses the two functions
here, written against the array API like ``merge``:

* `group_state`: the (max, sum) state of every group. The groups are padded
  into a few dense buckets (widths 1, 2, 4, 8, ...: a group of length L sits
  in the bucket of width 2^ceil(log2 L)), so each bucket is an ordinary
  reduction over its last axis (``merge.chunk_state``, exact sums) and the
  padding never costs more than the entries themselves. No scatter or
  segment primitive is needed, which the array API does not have; and a
  library with autograd differentiates the gathers.
* `group_finish`: the states gathered back to the entries (one ``take``) and
  the elementwise last pass ``merge.finish``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import numpy as np

from .. import _core
from . import merge
from .._typing import Array, Namespace, NDArray

__all__ = ["Bucket", "Groups", "IdScan", "group_finish", "group_state", "group_sum", "scan_ids"]


class Bucket(NamedTuple):
    """Groups of about the same length, padded to one width.

    ``groups[i]`` is a group's number; ``positions[i, j]`` the axis position
    of its j-th entry (0 where ``valid[i, j]`` is False: padding).
    """

    groups: NDArray[np.int64]
    positions: NDArray[np.int64]
    valid: NDArray[np.bool]


class IdScan(NamedTuple):
    """What one pass over group ids finds (`scan_ids`)."""

    # None: an id outside [0, num_groups), or ids not in order scanned
    # without offsets (their range and order only)
    offsets: NDArray[np.int64] | None
    lo: int  # the smallest id (0 when there are none)
    hi: int  # the largest id (-1 when there are none)
    ordered: bool  # the ids never decrease
    # per-part counts of unsorted ids (for the counting sort, which then
    # skips its own counting pass); None when ordered or counted in one part
    counts: NDArray[np.int64] | None = None


def scan_ids(ids: NDArray[np.int64], num_groups: int | None, *, offsets: bool = True) -> IdScan:
    """Range, order and CSR offsets of 1-d contiguous int64 ids, in one pass of the core.

    `num_groups` None means the largest id + 1. ``offsets=False`` skips the
    counting of ids not in order (what the scatter path of the C core needs
    is their range only).
    """
    # a count beyond what C takes is as impossible to allocate as the largest
    # it takes: the core refuses both with the same message
    count = -1 if num_groups is None else min(num_groups, int(np.iinfo(np.intp).max))
    found, lo, hi, ordered, counts = _core.group_scan(ids, count, offsets)
    return IdScan(found, lo, hi, ordered, counts)


@dataclasses.dataclass(frozen=True, eq=False)
class Groups:
    """Which group each entry of the grouped axis belongs to (host-side, checked).

    Attributes
    ----------
    num_groups : int
    ordered : bool
        The entries are already in group order (offsets, or ids that never
        decrease).
    offsets : ndarray of int64, shape (num_groups + 1,)
        CSR offsets of the groups once the entries are sorted by group
        (counted from the ids when first asked for, if the scan did not).
    order, rank : ndarray of int32 (int64 from 2**31 entries) or None
        The stable sort of `ids` (entry ``order[k]`` is the k-th in group
        order) and its inverse (entry i is the ``rank[i]``-th), each made
        by a counting sort in the core when first asked for; None when
        `ordered`.
    """

    num_groups: int
    ordered: bool
    given_ids: NDArray[np.int64] | None = None  # None: from offsets, built when asked for
    known_offsets: NDArray[np.int64] | None = None  # None: not counted yet (ids not in order)
    known_counts: NDArray[np.int64] | None = None  # the scan's per-part counts (IdScan.counts)

    @classmethod
    def from_ids(cls, ids: NDArray[np.int64], num_groups: int) -> Groups:
        """From checked ids in [0, num_groups)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        return cls.from_scan(ids, scan_ids(ids, num_groups), num_groups)

    @classmethod
    def from_scan(cls, ids: NDArray[np.int64], scan: IdScan, num_groups: int) -> Groups:
        """From ids and their `scan_ids`, every id in [0, num_groups)."""
        if scan.lo < 0 or scan.hi >= num_groups:
            raise ValueError("group ids out of range (internal)")
        return cls(num_groups, scan.ordered, ids, scan.offsets, scan.counts)

    @classmethod
    def from_offsets(cls, offsets: NDArray[np.int64]) -> Groups:
        """From checked CSR offsets (0 first, n last, non-decreasing)."""
        return cls(offsets.size - 1, True, known_offsets=offsets)

    @functools.cached_property
    def _layout(self) -> tuple[NDArray[np.int64], NDArray[np.int64] | None]:
        if self.known_offsets is not None:
            return self.known_offsets, self.known_counts
        scan = scan_ids(self.ids, self.num_groups)
        assert scan.offsets is not None  # the ids were checked
        return scan.offsets, scan.counts

    @property
    def offsets(self) -> NDArray[np.int64]:
        """CSR offsets of the groups in group order."""
        return self._layout[0]

    @property
    def counts(self) -> NDArray[np.int64] | None:
        """The scan's per-part counts of unsorted ids (for the counting sort)."""
        return self._layout[1]

    # counting sorts in the core: O(n), where argsort takes ~20x longer
    @functools.cached_property
    def order(self) -> NDArray[np.int32] | NDArray[np.int64] | None:
        """The stable sort of the ids (None when they are in order)."""
        return None if self.ordered else _core.group_order(self.ids, self.offsets, False,
                                                           self.counts)

    @functools.cached_property
    def rank(self) -> NDArray[np.int32] | NDArray[np.int64] | None:
        """Each entry's place in group order (None when the ids are in order)."""
        return None if self.ordered else _core.group_order(self.ids, self.offsets, True,
                                                           self.counts)

    @functools.cached_property
    def ids(self) -> NDArray[np.int64]:
        """The group of each entry (the C core's path never needs it for offsets)."""
        if self.given_ids is not None:
            return self.given_ids
        return np.repeat(np.arange(self.num_groups, dtype=np.int64), np.diff(self.offsets))

    @property
    def n(self) -> int:
        """The number of entries."""
        return self.given_ids.size if self.given_ids is not None else int(self.offsets[-1])

    @property
    def lengths(self) -> NDArray[np.int64]:
        return np.diff(self.offsets)

    def part(self, start: int, stop: int) -> Groups:
        """The groups of the entries start..stop-1 (a Dask block), numbered as here."""
        return Groups.from_ids(self.ids[start:stop], self.num_groups)

    def owning_ids(self) -> Groups:
        """These groups with a private copy of the given ids (for work that runs later)."""
        if self.given_ids is None:
            return self
        return dataclasses.replace(self, given_ids=self.given_ids.copy())

    @functools.cached_property
    def buckets(self) -> tuple[Bucket, ...]:
        """The groups padded into buckets of widths 1, 2, 4, ... (empty groups: width 1)."""
        lengths = self.lengths
        width = np.ones(self.num_groups, np.int64)
        big = lengths > 1
        width[big] = 1 << np.ceil(np.log2(lengths[big])).astype(np.int64)
        sorted_pos = np.arange(self.n, dtype=np.int64) if self.order is None else self.order
        out = []
        for w in np.unique(width):
            groups = np.flatnonzero(width == w).astype(np.int64)
            j = np.arange(w, dtype=np.int64)
            valid = j[None, :] < lengths[groups][:, None]
            k = np.where(valid, self.offsets[groups][:, None] + j[None, :], 0)
            positions = sorted_pos[k] if self.n else np.zeros(k.shape, np.int64)
            out.append(Bucket(groups, np.where(valid, positions, 0), valid))
        return tuple(out)


def _index(xp: Namespace, a: NDArray[Any], device: Any) -> Array:
    return a if xp is np else xp.asarray(a, device=device)


def _gather_buckets(xp: Namespace, v: Array, groups: Groups, fill: float, device: Any
                    ) -> list[tuple[Bucket, Array]]:
    """Each bucket's entries of v as (..., groups in bucket, width), padding = fill."""
    lead = tuple(v.shape[:-1])
    out = []
    for b in groups.buckets:
        flat = xp.take(v, _index(xp, b.positions.reshape(-1), device), axis=-1)
        g = xp.reshape(flat, lead + b.positions.shape)
        out.append((b, xp.where(_index(xp, b.valid, device), g, fill)))
    return out


def _scatter_groups(xp: Namespace, parts: list[Array], groups: Groups, device: Any) -> Array:
    """Per-bucket results (..., groups in bucket) put back in group order (..., num_groups)."""
    joined = parts[0] if len(parts) == 1 else xp.concat(parts, axis=-1)
    numbering = np.concatenate([b.groups for b in groups.buckets])
    inverse = np.argsort(numbering, kind="stable").astype(np.int64)
    if np.array_equal(inverse, np.arange(inverse.size)):
        return joined
    return xp.take(joined, _index(xp, inverse, device), axis=-1)


def group_state(xp: Namespace, v: Array, groups: Groups, ps: merge.PositiveScale, *,
                exact: bool, eps: float, device: Any = None) -> merge.State:
    """The (max, sum) state of every group of v's last axis: arrays (..., num_groups).

    v holds oriented scores in the working dtype, excluded entries -inf.
    """
    lead = tuple(v.shape[:-1])
    if groups.n == 0 or groups.num_groups == 0:
        return merge.identity(xp, lead + (groups.num_groups,), v.dtype, device)
    fields: list[list[Array]] = [[], [], []]
    for _, g in _gather_buckets(xp, v, groups, -math.inf, device):
        state = merge.chunk_state(xp, g, (g.ndim - 1,), ps, exact=exact, eps=eps)
        for f, a in zip(fields, state):
            f.append(a[..., 0])
    return merge.State(*(_scatter_groups(xp, f, groups, device) for f in fields))


def group_finish(xp: Namespace, v: Array, state: merge.State, groups: Groups,
                 ps: merge.PositiveScale, *, log: bool, exact: bool, eps: float,
                 device: Any = None) -> Array:
    """softmax (or log_softmax) of each entry of v given its group's state."""
    ids = _index(xp, groups.ids, device)
    per_entry = merge.State(*(xp.take(a, ids, axis=-1) for a in state))
    return merge.finish(xp, v, per_entry, ps, log=log, exact=exact, eps=eps)


def group_sum(xp: Namespace, a: Array, groups: Groups, device: Any = None) -> Array:
    """The plain sum of a's last axis over each group: (..., num_groups)."""
    lead = tuple(a.shape[:-1])
    if groups.n == 0 or groups.num_groups == 0:
        return xp.zeros(lead + (groups.num_groups,), dtype=a.dtype, device=device)
    parts = [xp.sum(g, axis=-1) for _, g in _gather_buckets(xp, a, groups, 0.0, device)]
    return _scatter_groups(xp, parts, groups, device)
