"""Which 64-bit hashes lie within a Hamming radius of each other, without
comparing every pair: 100 000 photos are 5 billion pairs.

Multi-index hashing: the 64 bits are cut into ``radius + 1`` bands.  Two
hashes at most `radius` bits apart differ in at most `radius` bands, so at
least one band is the same in both (pigeonhole): sorting the hashes by each
band in turn puts every such pair in one run of equal band values, and only
pairs within a run are compared.  With the radius of the checks (4: five
bands of 12-13 bits) a run holds about N / 8192 random hashes, so the work
grows with N * N / 8192 per band instead of N * N, and each candidate pair
costs a vectorised XOR and bit count.  Equal hashes (exact copies) are
merged first, so a thousand copies of one photo cost one hash.

`near_pairs` finds the pairs, `groups` joins them into groups (union-find:
A near B and B near C puts A, B, C in one group, as duplicate finders do);
both give the same result for the same input, in a fixed order.
`benchmarks/neardup.py` measures time and memory at 100 000 hashes.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

BITS = 64


def _bands(radius: int) -> list[tuple[int, int]]:
    """(shift, width) of radius + 1 bands as equal as possible, covering 64 bits."""
    count = radius + 1
    widths = [BITS // count + (1 if i < BITS % count else 0) for i in range(count)]
    shifts = np.cumsum([0] + widths[:-1]).tolist()
    return list(zip(shifts, widths))


CHUNK = 1 << 18       # candidate pairs made at once: memory stays bounded however runs fall


def _run_pairs(order: np.ndarray, keys: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every pair (order[p], order[q]), p < q, of positions whose `keys`
    (`order`'s keys, sorted) are equal, in chunks of about CHUNK pairs."""
    n = len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    lengths = np.diff(np.r_[starts, n])
    # For each position: how many positions after it share its key.
    partners = np.repeat(starts + lengths, lengths) - np.arange(n) - 1
    ends = np.cumsum(partners)
    begin = 0
    while begin < n and ends[-1] > (ends[begin - 1] if begin else 0):
        done = ends[begin - 1] if begin else 0
        stop = max(begin + 1, int(np.searchsorted(ends, done + CHUNK, side="right")))
        counts = partners[begin:stop]
        first = np.repeat(np.arange(begin, stop), counts)
        # The k-th partner of position p is p + 1 + k.
        offsets = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
        yield order[first], order[first + 1 + offsets]
        begin = stop


def _checked(hashes: np.ndarray, radius: int) -> np.ndarray:
    hashes = np.asarray(hashes)
    if hashes.dtype != np.uint64 or hashes.ndim != 1:
        raise ValueError(f"expected a 1-D uint64 array of hashes, got {hashes.dtype} of shape {hashes.shape}")
    if not 0 <= radius <= 15:
        raise ValueError(f"radius must be 0-15, got {radius}")
    return hashes


def near_pairs(hashes: np.ndarray, radius: int) -> np.ndarray:
    """Every pair of hashes at most `radius` bits apart.

    Parameters
    ----------
    hashes : (N,) uint64 ndarray
        The hashes, in any order; equal hashes are pairs (distance 0).
    radius : int
        The largest Hamming distance of a pair, 0-15 (each of the radius + 1
        bands then has at least 4 bits).

    Returns
    -------
    (P, 2) int64 ndarray
        Index pairs ``(i, j)`` into `hashes`, ``i < j``, each pair once, in
        increasing order.

    Raises
    ------
    ValueError
        If `hashes` is not a 1-D uint64 array or `radius` is out of range.
    """
    hashes = _checked(hashes, radius)
    found = [np.empty((0, 2), np.int64)]
    for shift, width in _bands(radius):
        keys = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        for a, b in _run_pairs(order, keys[order]):
            close = np.bitwise_count(hashes[a] ^ hashes[b]) <= radius
            a, b = a[close], b[close]
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    pairs = np.concatenate(found)
    # A pair that agrees in several bands was found in each: once is enough.
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def groups(hashes: np.ndarray, radius: int) -> list[list[int]]:
    """The groups of hashes that chains of near pairs join.

    Equal hashes are merged first (a thousand copies of one photo are one
    hash to search for), then `near_pairs` of the distinct hashes are joined
    by union-find: A within `radius` of B and B of C puts A, B and C in one
    group, even if A and C are further apart.

    Parameters
    ----------
    hashes : (N,) uint64 ndarray
        The hashes, in any order.
    radius : int
        As for `near_pairs`.

    Returns
    -------
    list of list of int
        Each group's indices into `hashes`, increasing; groups of two or more
        only, ordered by their smallest index.

    Raises
    ------
    ValueError
        As `near_pairs`.
    """
    unique, inverse = np.unique(_checked(hashes, radius), return_inverse=True)
    inverse = inverse.ravel()
    pairs = near_pairs(unique, radius)
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.get(i, i) != i:
            parent[i] = parent.get(parent[i], parent[i])     # path halving
            i = parent[i]
        return i

    for a, b in pairs.tolist():
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    # Only the hashes in a pair or with copies are in a group: the others are never looked at one by one.
    grouped = np.bincount(inverse, minlength=len(unique)) > 1
    grouped[pairs.ravel()] = True
    chosen = np.flatnonzero(grouped[inverse])
    members: dict[int, list[int]] = {}
    for index, u in zip(chosen.tolist(), inverse[chosen].tolist()):
        members.setdefault(root(u), []).append(index)
    return sorted(members.values(), key=lambda group: group[0])
