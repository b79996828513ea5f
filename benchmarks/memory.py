"""Peak memory per worker on large photos; prints a markdown table.

    python benchmarks/memory.py --eval-dir ../shared/eval [--shape 6000x4000] [--images 12] [--workdir DIR]

Makes --images JPEG photos of exactly --shape pixels (evaluation photos
resized: faces, families, close-ups) and builds them with one worker and
with all cores, then re-renders them (--background original), each a fresh
process with default options.  The peaks are read as benchmarks/scale.py
reads them (benchmarks/measure.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run_skinseg  # noqa: E402
from throughput import eval_photos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--shape", default="6000x4000", help="WIDTHxHEIGHT of every photo")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.shape.split("x"))
    photos = eval_photos(args.eval_dir)
    cores = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        src = Path(tmp) / "src"
        for i in range(args.images):
            image = cv2.resize(cv2.imread(str(photos[(i * 7919) % len(photos)])), (width, height),
                               interpolation=cv2.INTER_CUBIC)
            path = src / "train" / ("A", "B", "C")[i % 3] / f"{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        for workers in (1, cores):
            dst = Path(tmp) / f"dst{workers}"
            rows.append((f"build, --workers {workers}", run_skinseg(src, dst, workers, [])))
            rows.append((f"then --background original (re-render), --workers {workers}",
                         run_skinseg(src, dst, workers, ["--background", "original"])))
    print(f"{args.images} photos of {width}x{height} px (JPEG), default options\n")
    print("| run | seconds | largest worker (MB) | fork server (MB) | main process (MB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in rows:
        print(f"| {name} | {r['wall']:.1f} | {r['worker_mb']} | {r['server_mb']} | {r['main_mb']:.0f} |")


if __name__ == "__main__":
    main()
