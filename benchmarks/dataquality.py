"""How the data-quality checks' thresholds were chosen, and what they cost.

    python benchmarks/dataquality.py --eval-dir ../shared/eval [--sample 400] [--size 1280] [--timing 60]

Prints, for the photos of every evaluation set (photos that are all
different, but for the duplicates the sets really hold):

1. near-duplicates: how many pairs of photos are within each Hamming
   distance of each other, and how many of those pairs are one photo (a
   64x64 grey thumbnail correlating at >= 0.97, which a re-encoded or resized
   copy does and another shot does not); the pairs within NEAR_DISTANCE are
   named, to look at;
2. hit rates: the share of synthetic copies of --sample photos (re-encoded,
   resized, cropped, brighter, darker) that stay within each distance of the
   photo;
3. the quality flags: which photos they flag (every flagged photo named),
   what two simpler rules would flag instead, and the share of blurred,
   darkened and over-exposed copies they flag;
4. cost: milliseconds per photo of `dataquality.measure` and of each of its
   parts on --timing photos of --size px (median; one thread), with the
   load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skinseg import dataquality as dq  # noqa: E402
from skinseg.buildinfo import QUALITY_FLAGS  # noqa: E402
from skinseg.pipeline import working_copy  # noqa: E402

SETS = ("abdomen_train", "ccp_tune", "fasseg_tune", "fuseg_tune", "hgr1_tune", "lfw_parts_tune", "ph2_tune",
        "pratheepan_face", "pratheepan_family")
DISTANCES = (0, 2, 4, 6, 8, 10, 12)


def photos(eval_dir: Path) -> list[Path]:
    found = []
    for name in SETS:
        folder = eval_dir / name / "images"
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not found:
        sys.exit(f"no photos under {eval_dir}/*/images")
    return found


def checks(bgr: np.ndarray) -> dq.ImageChecks:
    return dq.measure(bgr, working_copy(bgr)[0])


def jpeg(bgr: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def resized(bgr: np.ndarray, factor: float) -> np.ndarray:
    h, w = bgr.shape[:2]
    return cv2.resize(bgr, (max(16, round(w * factor)), max(16, round(h * factor))),
                      interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def cropped(bgr: np.ndarray, share: float, sides: str = "all") -> np.ndarray:
    h, w = bgr.shape[:2]
    dy, dx = round(h * share), round(w * share)
    return bgr[dy:h - dy, dx:w - dx] if sides == "all" else bgr[dy:, dx:]


def exposed(bgr: np.ndarray, stops: float) -> np.ndarray:
    """The photo as if exposed `stops` EV more (in linear light, gamma 2.2), clipped."""
    linear = (bgr / 255.0) ** 2.2 * 2.0 ** stops
    return (np.clip(linear, 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8)


def scaled(bgr: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(bgr.astype(np.float32) * factor, 0, 255).astype(np.uint8)


COPIES = {
    "JPEG quality 90": lambda b: jpeg(b, 90),
    "JPEG quality 50": lambda b: jpeg(b, 50),
    "JPEG quality 30": lambda b: jpeg(b, 30),
    "half size": lambda b: resized(b, 0.5),
    "quarter size, JPEG 85": lambda b: jpeg(resized(b, 0.25), 85),
    "double size": lambda b: resized(b, 2.0),
    "pixels x 1.2 (brighter)": lambda b: scaled(b, 1.2),
    "pixels x 0.8 (darker)": lambda b: scaled(b, 0.8),
    "gamma 0.7": lambda b: (255 * (b / 255.0) ** 0.7).astype(np.uint8),
    "crop 1 % a side": lambda b: cropped(b, 0.01),
    "crop 2 % a side": lambda b: cropped(b, 0.02),
    "crop 5 % a side": lambda b: cropped(b, 0.05),
    "crop 5 % top and left": lambda b: cropped(b, 0.05, "top-left"),
    "crop 3 %, 60 % size, JPEG 75": lambda b: jpeg(resized(cropped(b, 0.03), 0.6), 75),
}


def _on_working(fn):
    """A degradation applied at the working copy's scale (what a model sees)."""
    return lambda b: fn(working_copy(b)[0])


_MOTION = np.full((1, 9), 1 / 9, np.float32)
DEGRADED = {
    "blurry": {
        "Gaussian blur 1.5 px": _on_working(lambda w: cv2.GaussianBlur(w, (0, 0), 1.5)),
        "Gaussian blur 2 px": _on_working(lambda w: cv2.GaussianBlur(w, (0, 0), 2)),
        "Gaussian blur 3 px": _on_working(lambda w: cv2.GaussianBlur(w, (0, 0), 3)),
        "enlarged 4x from a quarter": _on_working(lambda w: cv2.resize(
            resized(w, 0.25), (w.shape[1], w.shape[0]), interpolation=cv2.INTER_CUBIC)),
        "motion blur 9 px": _on_working(lambda w: cv2.filter2D(w, -1, _MOTION)),
    },
    "dark": {"-2 EV": lambda b: exposed(b, -2), "-3 EV": lambda b: exposed(b, -3)},
    "overexposed": {"+1.5 EV": lambda b: exposed(b, 1.5), "+2 EV": lambda b: exposed(b, 2),
                    "+3 EV": lambda b: exposed(b, 3)},
}


def _thumb(bgr: np.ndarray) -> np.ndarray:
    t = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    t -= t.mean()
    return t / (np.linalg.norm(t) + 1e-6)


def near_duplicates(names: list[str], images: list[np.ndarray], found: list[dq.ImageChecks]) -> None:
    hashes = np.array([c.phash for c in found], dtype=np.uint64)
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    first, second = np.triu_indices(len(hashes), 1)
    pairs = distance[first, second]
    print(f"## 1. Pairs of the {len(names)} evaluation photos ({len(pairs)} pairs) by Hamming distance\n")
    print("| distance | pairs | of which one photo (thumbnail correlation >= 0.97) | same pixels |")
    print("| ---: | ---: | ---: | ---: |")
    listed = []
    for d in DISTANCES:
        at = np.flatnonzero(pairs == d)
        same = [float((_thumb(images[first[i]]) * _thumb(images[second[i]])).sum()) >= 0.97 for i in at]
        identical = sum(found[first[i]].pixels == found[second[i]].pixels for i in at)
        print(f"| {d} | {len(at)} | {sum(same)} | {identical} |")
        if d <= dq.NEAR_DISTANCE:
            listed += [(d, names[first[i]], names[second[i]], s) for i, s in zip(at, same)]
    print(f"\nWithin NEAR_DISTANCE = {dq.NEAR_DISTANCE} ({len(listed)} pairs; "
          "'other' = another shot, to check by eye):")
    for d, a, b, same in listed:
        print(f"  {d}  {a}  {b}  {'one photo' if same else 'OTHER'}")


def hit_rates(images: list[np.ndarray], found: list[dq.ImageChecks], sample: list[int]) -> None:
    print(f"\n## 2. Synthetic copies of {len(sample)} photos: share within each distance of the photo\n")
    print("| copy | median | max | " + " | ".join(f"<= {d}" for d in DISTANCES[1:5]) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in DISTANCES[1:5]) + " |")
    for name, make in COPIES.items():
        d = np.array([dq.hamming(found[i].phash, checks(make(images[i])).phash) for i in sample])
        print(f"| {name} | {np.median(d):.0f} | {d.max()} | "
              + " | ".join(f"{(d <= k).mean():.1%}" for k in DISTANCES[1:5]) + " |")


def flags(names: list[str], images: list[np.ndarray], found: list[dq.ImageChecks], sample: list[int]) -> None:
    print("\n## 3. Quality flags\n")
    print(f"Thresholds: blurry = sharpness < {dq.SHARPNESS_BELOW:g} or detail < {dq.DETAIL_BELOW:g}; "
          f"dark = 99th-percentile luma < {dq.DARK_BELOW}; overexposed = blown-out share > {dq.OVEREXPOSED_ABOVE:g}\n")
    for flag in QUALITY_FLAGS:
        flagged = [(names[i], found[i]) for i in range(len(names)) if flag in found[i].flags()]
        by_set = Counter(name.split("/")[0] for name, _ in flagged)
        print(f"{flag}: {len(flagged)} of {len(names)} evaluation photos flagged {dict(sorted(by_set.items()))}")
        for name, c in flagged:
            print(f"  {name}  sharpness {c.sharpness:.1f} detail {c.detail:.1f} luma {c.luma:.0f} "
                  f"p99 {c.luma_p99} clipped {c.clipped:.2f}")
    print("\nRejected rules, on the same photos:")
    by_set = Counter(n.split("/")[0] for n, c in zip(names, found) if c.luma < 40)
    print(f"  dark = mean luma < 40: {sum(by_set.values())} flagged {dict(sorted(by_set.items()))}")
    by_set = Counter(n.split("/")[0] for n, c in zip(names, found) if c.detail < 10)
    blurred = [checks(DEGRADED["blurry"]["Gaussian blur 2 px"](images[i])) for i in sample]
    print(f"  blurry = detail (the Laplacian's variance) < 10 alone: {sum(by_set.values())} flagged "
          f"{dict(sorted(by_set.items()))}; Gaussian blur 2 px: {np.mean([c.detail < 10 for c in blurred]):.1%}")
    print(f"\nShare of degraded copies of {len(sample)} photos flagged:\n")
    print("| copy | flag | flagged |")
    print("| --- | --- | ---: |")
    for flag, makers in DEGRADED.items():
        for name, make in makers.items():
            hit = np.mean([flag in checks(make(images[i])).flags() for i in sample])
            print(f"| {name} | {flag} | {hit:.1%} |")


def _median_ms(fn, items) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def cost(images: list[np.ndarray], size: int, count: int) -> None:
    cv2.setNumThreads(1)
    big = []
    for bgr in images[:: max(1, len(images) // count)][:count]:
        h, w = bgr.shape[:2]
        scale = size / max(h, w)
        big.append(cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC))
    pairs = [(b, working_copy(b)[0]) for b in big]
    lumas = [dq.grey(w) for _, w in pairs]
    figures = {
        "measure (all below)": _median_ms(lambda p: dq.measure(*p), pairs),
        "pixel digest (SHA-256 of the full image)": _median_ms(lambda p: dq.pixel_digest(p[0]), pairs),
        "grey working copy": _median_ms(lambda p: dq.grey(p[1]), pairs),
        "perceptual hash": _median_ms(dq.perceptual_hash, lumas),
        "focus (sharpness, detail)": _median_ms(dq.focus, lumas),
        "exposure": _median_ms(dq.exposure, lumas),
    }
    print(f"\n## 4. Cost per photo, {len(big)} photos of {size} px long side, one thread "
          f"(load average before: {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()})\n")
    print("| part | median ms |")
    print("| --- | ---: |")
    for name, ms in figures.items():
        print(f"| {name} | {ms:.2f} |")
    print(f"\n(load average after: {os.getloadavg()[0]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--sample", type=int, default=400, help="photos the synthetic copies are made of")
    parser.add_argument("--size", type=int, default=1280, help="long side of the photos timed")
    parser.add_argument("--timing", type=int, default=60, help="photos timed")
    args = parser.parse_args()
    paths = photos(args.eval_dir)
    names = [f"{p.parent.parent.name}/{p.name}" for p in paths]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    found = [checks(b) for b in images]
    sample = sorted(np.random.default_rng(0).choice(len(paths), min(args.sample, len(paths)), replace=False).tolist())
    near_duplicates(names, images, found)
    hit_rates(images, found, sample)
    flags(names, images, found, sample)
    cost(images, args.size, args.timing)


if __name__ == "__main__":
    main()
