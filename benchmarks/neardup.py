"""Time and memory of the near-duplicate search at 100 000 photos.

    python benchmarks/neardup.py [--count 100000] [--radius 4] [--repeat 3] [--verify]

Makes --count synthetic 64-bit hashes shaped like the perceptual hashes of
photos (32 bits set, the first always: the DCT's constant term is the
largest), with planted copies: exact ones, ones 2 and `radius` bits away
(found), ones radius + 2 bits away (not found), and groups of 20 chained
copies.  Times `neardup.near_pairs` and `neardup.groups` (median of
--repeat), measures their peak memory (tracemalloc: NumPy reports its
arrays), checks that every planted pair is found and no pair is further than
--radius apart, and prints what comparing every pair would cost (timed on a
5 000-hash slice and scaled by the number of pairs).  --verify also compares
with every pair at full size (slow: minutes).  Then times the build's whole
final check, `datachecks.assess`, on --count written records carrying these
hashes (as a build's last step sees them: dicts read from the journal).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skinseg import neardup  # noqa: E402
from skinseg.datachecks import assess  # noqa: E402


def photo_like(rng: np.random.Generator, count: int) -> np.ndarray:
    """count hashes with bit 63 set and 31 of the other 63 bits set at random."""
    bits = np.zeros((count, 64), bool)
    bits[:, 0] = True
    chosen = np.argsort(rng.random((count, 63)), axis=1)[:, :31] + 1
    np.put_along_axis(bits, chosen, True, axis=1)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def moved(rng: np.random.Generator, value: np.uint64, distance: int) -> np.uint64:
    """value with distance // 2 set bits cleared and as many clear bits set
    (the bit count stays 32, as a photo's hash keeps it)."""
    bits = np.unpackbits(np.array([value], dtype=">u8").view(np.uint8))
    ones, zeros = np.flatnonzero(bits[1:]) + 1, np.flatnonzero(bits == 0)
    bits[rng.choice(ones, distance // 2, replace=False)] = 0
    bits[rng.choice(zeros, distance // 2, replace=False)] = 1
    return np.packbits(bits).view(">u8").astype(np.uint64)[0]


def planted_set(count: int, radius: int, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The hashes and the planted pairs (i, j, distance)."""
    rng = np.random.default_rng(seed)
    hashes = photo_like(rng, count)
    planted = []
    slots = iter(rng.permutation(count).tolist())
    for distance, pairs in ((0, 500), (2, 500), (radius, 1000), (radius + 2, 1000)):
        for _ in range(pairs):
            i, j = next(slots), next(slots)
            hashes[j] = moved(rng, hashes[i], distance)
            planted.append((min(i, j), max(i, j), distance))
    for _ in range(50):                      # chains: each copy `radius` bits from the one before
        previous = next(slots)
        for _ in range(19):
            j = next(slots)
            hashes[j] = moved(rng, hashes[previous], radius)
            planted.append((min(previous, j), max(previous, j), radius))
            previous = j
    return hashes, planted


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(median seconds, peak MB, result)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def brute_pairs(hashes: np.ndarray, radius: int, block: int = 2000) -> set[tuple[int, int]]:
    found = set()
    for start in range(0, len(hashes), block):
        part = hashes[start:start + block]
        close = np.bitwise_count(part[:, None] ^ hashes[None, :]) <= radius
        for i, j in zip(*np.nonzero(close)):
            if start + i < j:
                found.add((int(start + i), int(j)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--radius", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--verify", action="store_true", help="also compare every pair (slow)")
    args = parser.parse_args()
    hashes, planted = planted_set(args.count, args.radius)
    print(f"{args.count} hashes, radius {args.radius}, {len(planted)} planted pairs; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    seconds, peak, pairs = timed(lambda: neardup.near_pairs(hashes, args.radius), args.repeat)
    print(f"near_pairs: {seconds:.3f} s (median of {args.repeat}), peak {peak:.1f} MB, {len(pairs)} pairs")
    seconds, peak, found_groups = timed(lambda: neardup.groups(hashes, args.radius), args.repeat)
    print(f"groups:     {seconds:.3f} s (median of {args.repeat}), peak {peak:.1f} MB, {len(found_groups)} groups, "
          f"{sum(map(len, found_groups))} hashes in them")
    found = {(int(i), int(j)) for i, j in pairs}
    distances = np.bitwise_count(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]]) if len(pairs) else np.array([0])
    missed = [p for p in planted if p[2] <= args.radius and (p[0], p[1]) not in found]
    wrongly = [p for p in planted if p[2] > args.radius and (p[0], p[1]) in found]
    print(f"planted within the radius found: {sum(p[2] <= args.radius for p in planted) - len(missed)} of "
          f"{sum(p[2] <= args.radius for p in planted)}; planted beyond it found: {len(wrongly)}; "
          f"largest distance of a pair found: {int(distances.max())}")
    part = hashes[:5000]
    started = time.perf_counter()
    brute = brute_pairs(part, args.radius)
    brute_seconds = time.perf_counter() - started
    mine = {(int(i), int(j)) for i, j in neardup.near_pairs(part, args.radius)}
    scale = (args.count * (args.count - 1)) / (len(part) * (len(part) - 1))
    print(f"every pair of 5 000 hashes: {brute_seconds:.2f} s, same pairs as near_pairs: {brute == mine}; "
          f"at {args.count}: about {brute_seconds * scale:.0f} s")
    records = [SimpleNamespace(source=f"{('train', 'valid', 'test')[i % 3]}/C{i % 7}/{i:06d}.jpg",
                               split=("train", "valid", "test")[i % 3], class_name=f"C{i % 7}", status="written",
                               checks={"phash": f"{int(h):016x}", "pixels": f"{i:016x}", "sharpness": 30.0 + i % 50,
                                       "detail": 400.0, "luma": 120.5, "luma_p99": 240, "clipped": 0.01})
               for i, h in enumerate(hashes)]
    seconds, peak, found_checks = timed(lambda: assess(records), args.repeat)
    print(f"datachecks.assess on {len(records)} records: {seconds:.2f} s (median of {args.repeat}), peak "
          f"{peak:.1f} MB, {len(found_checks.duplicates)} groups")
    if args.verify:
        started = time.perf_counter()
        print(f"every pair at full size: same pairs: {brute_pairs(hashes, args.radius) == found} "
              f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
