"""The original tool's cost per photo, step by step, against the I/O floor's, by photo type.

    /path/to/python-with-mediapipe-0.10 benchmarks/original_steps.py --original-dir DIR
        [--eval-dir ../shared/eval] [--photos 30] [--size 1280]

Run with the original tool's Python (mediapipe 0.10.x, the legacy `solutions` API):
it imports the tool's skin_detection.py from --original-dir (micpana/Skin-Segmentation-
Dataset-Builder; not part of this repository) and needs nothing of skinseg.  For the
first --photos photos of each set (faces, families, close-ups), resized to a --size px
long side and JPEG-encoded as throughput.py makes them, it times in CPU milliseconds
(time.process_time, best of 3 per photo: this VM is noisy) the original's steps - decode,
face detection (a new MediaPipe graph per photo, as the tool does), the colour box with
its morphology, its two JPEG files - and the I/O floor's three files; then a fresh
graph's creation, first run and a second run on one photo.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

SETS = ("pratheepan_face", "pratheepan_family", "abdomen_train")


def best(run, repeat: int = 3) -> tuple[float, object]:
    """(least CPU ms of `repeat` calls, the last result)."""
    least, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = run()
        least = min(least, time.process_time() - started)
    return least * 1000, result


def photo_jpeg(path: Path, size: int) -> np.ndarray:
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    scale = size / max(h, w)
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    image = cv2.resize(image, (max(16, round(w * scale)), max(16, round(h * scale))), interpolation=interp)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]


def floor_files(image: np.ndarray) -> None:
    """throughput.io_floor's three files, encoded."""
    mask = np.zeros(image.shape[:2], np.uint8)
    h, w = mask.shape
    cv2.ellipse(mask, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, 2, -1)
    cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imencode(".png", mask)
    cv2.imencode(".png", cv2.merge([mask * 120, mask * 60, mask * 30]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original-dir", type=Path, required=True)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--size", type=int, default=1280)
    args = parser.parse_args()
    sys.path.insert(0, str(args.original_dir))
    import skin_detection as original  # the tool's module

    cv2.setNumThreads(1)
    print(f"CPU ms per photo, best of 3; load average {os.getloadavg()[0]:.2f}\n")
    print("| photos | decode | face detection (graph + run) | colour box + morphology | its two files "
          "| the floor's three files | original / floor |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    sample = None
    for subset in SETS:
        paths = sorted(p for p in (args.eval_dir / subset / "images").iterdir())[:args.photos]
        spent = dict.fromkeys(("decode", "detect", "colour", "files", "floor"), 0.0)
        for path in paths:
            data = photo_jpeg(path, args.size)
            ms, image = best(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR))
            spent["decode"] += ms
            sample = image if sample is None else sample
            ms, face = best(lambda: original.detect_face(image))
            spent["detect"] += ms
            region = face if face is not None else image
            ms, mask = best(lambda: original.skin_color_mask(region))
            spent["colour"] += ms
            if np.sum(mask > 0) / mask.size >= 0.05:     # the tool skips the rest below 5 % skin
                skin = cv2.bitwise_and(region, region, mask=mask)
                spent["files"] += best(lambda: (cv2.imencode(".jpg", skin), cv2.imencode(".jpg", mask)))[0]
            spent["floor"] += best(lambda: floor_files(image))[0]
        n = len(paths)
        tool = spent["decode"] + spent["detect"] + spent["colour"] + spent["files"]
        floor = spent["decode"] + spent["floor"]
        print(f"| {subset} ({n}) | {spent['decode'] / n:.1f} | {spent['detect'] / n:.1f} | {spent['colour'] / n:.1f} "
              f"| {spent['files'] / n:.1f} | {spent['floor'] / n:.1f} | {tool / floor:.2f}x |")

    import mediapipe as mp
    rgb = cv2.cvtColor(sample, cv2.COLOR_BGR2RGB)
    steps: dict[str, list[tuple[float, float]]] = {"create": [], "first run": [], "second run": []}
    for _ in range(15):
        clock = (time.process_time(), time.perf_counter())
        with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as detector:
            for step, run in (("create", None), ("first run", detector.process), ("second run", detector.process)):
                if run is not None:
                    run(rgb)
                now = (time.process_time(), time.perf_counter())
                steps[step].append((now[0] - clock[0], now[1] - clock[1]))
                clock = now
    print("\nOne MediaPipe face-detection graph (medians of 15): " + "; ".join(
        f"{step} {sorted(c for c, _ in v)[7] * 1000:.1f} ms CPU, {sorted(w for _, w in v)[7] * 1000:.1f} ms wall"
        for step, v in steps.items()))


if __name__ == "__main__":
    main()
