"""Throughput and memory benchmark: prints a markdown table.

    python benchmarks/throughput.py --eval-dir ../shared/eval [--images 300] [--size 1280] [--scale 10]
        [--repeat 3] [--workdir DIR] [--skinseg-args="..."] [--original-dir DIR --original-python PYTHON]

1. Builds a deterministic classification set of --images JPEG photos whose long
   side is --size pixels, from the photos in --eval-dir (resized), spread over
   train/valid/test and three classes.
2. Times, each as a fresh process on a fresh --dst:
   - the I/O floor: decode every photo and write the same three outputs
     (skin-only JPEG, mask PNG, preview PNG) with OpenCV, on one core, no detection;
   - skinseg's default pipeline with --workers 1 and with all cores;
   - a render-only change on the all-cores build's destination
     (--background original, all cores): only the skin-only images change;
   - optionally the original tool (a checkout of micpana/Skin-Segmentation-
     Dataset-Builder run with a Python that has mediapipe 0.10.x), same photos;
   - start-up: interpreter + imports + opening the models.
3. Repeats the skinseg runs on --scale times more images to show how time
   and peak memory grow.
Peak memory is the largest resident set size of any one process of the run
(VmHWM from /proc: benchmarks/measure.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import timed  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("Acne", "Normal Skin", "Rosacea")
RERENDER = "skinseg, then --background original (re-render), all cores"


MIX = ("pratheepan_face", "pratheepan_family", "abdomen_train")     # faces, families, close-ups
# --mix: "sets" takes every photo of the sets (the project's benchmark: 500 of its 578 photos are
# abdominal close-ups); "even" takes as many of each set as of the smallest (a third each: faces,
# families, close-ups, like the mix of issue 22).
MIXES = ("sets", "even")


def eval_photos(eval_dir: Path, subsets: tuple[str, ...] = MIX, mix: str = "sets") -> list[Path]:
    """The photos of the evaluation sets, sorted; with mix "even", the first
    photos of each set, as many as the smallest set has, interleaved."""
    per_set = [sorted(p for p in (eval_dir / subset / "images").iterdir() if p.suffix in (".jpeg", ".jpg", ".png"))
               for subset in subsets]
    if mix == "even":
        smallest = min(len(photos) for photos in per_set)
        photos = [one[i] for i in range(smallest) for one in per_set]
    else:
        photos = [p for one in per_set for p in one]
    if not photos:
        sys.exit(f"no photos under {eval_dir}/*/images")
    return photos


def make_dataset(root: Path, count: int, size: int, photos: list[Path], classes: Sequence[str] = CLASSES,
                 digits: int = 5) -> None:
    """count JPEGs, long side = size (at least 16 px a side), cycling through
    photos, spread over train/valid/test 70/15/15 and the classes; deterministic."""
    cache: dict[Path, bytes] = {}
    made: set[Path] = set()
    # Interleave the sets so every run mixes faces, families and close-ups.
    order = [photos[(i * 7919) % len(photos)] for i in range(count)]
    for i, photo in enumerate(order):
        fraction = (i % 20) / 20
        split = "train" if fraction < 0.7 else "valid" if fraction < 0.85 else "test"
        folder = root / split / classes[i % len(classes)]
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        if photo not in cache:
            image = cv2.imread(str(photo))
            h, w = image.shape[:2]
            scale = size / max(h, w)
            interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
            resized = cv2.resize(image, (max(16, round(w * scale)), max(16, round(h * scale))), interpolation=interp)
            cache[photo] = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        (folder / f"{i:0{digits}d}.jpg").write_bytes(cache[photo])


def io_floor(src: Path, dst: Path) -> None:
    """Decode each photo, write the three outputs skinseg writes, nothing else."""
    cv2.setNumThreads(1)
    for path in sorted(src.rglob("*.jpg")):
        image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        # A mask like a real one (an ellipse over ~40 % of the image), not all zeros,
        # which would make the PNGs unrealistically cheap to encode.
        mask = np.zeros(image.shape[:2], np.uint8)
        h, w = mask.shape
        cv2.ellipse(mask, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, 2, -1)
        out = dst / path.relative_to(src).parent
        out.mkdir(parents=True, exist_ok=True)
        stem = path.stem
        (out / f"{stem}.jpg").write_bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
        (out / f"{stem}_mask.png").write_bytes(cv2.imencode(".png", mask)[1])
        (out / f"{stem}_preview.png").write_bytes(
            cv2.imencode(".png", cv2.merge([mask * 120, mask * 60, mask * 30]))[1])


def interleaved(runs: int, configs: dict) -> dict[str, list[tuple[float, float]]]:
    """Run every configuration `runs` times, round-robin (this VM's speed drifts
    over minutes: back-to-back blocks would bias whichever ran in a slow patch);
    per configuration, the (wall seconds, peak RSS MB) of each round."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for k in range(runs):
        for name, run in configs.items():
            results[name].append(run(k))
    return results


def skinseg_run(src: Path, dst: Path, workers: int, extra: list[str]) -> tuple[float, float]:
    return timed([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst", str(dst),
                  "--workers", str(workers), "--quiet", *extra])


def startup_seconds() -> tuple[float, float]:
    """(interpreter + imports + models, imports + models only)."""
    code = ("import time; t = time.perf_counter()\n"
            "from skinseg.config import PipelineConfig\n"
            "from skinseg.engines import open_engines, plan_models\n"
            "engines = open_engines(plan_models(PipelineConfig()))\n"
            "print(time.perf_counter() - t)\n"
            "engines.close()\n")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return time.perf_counter() - started, float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=1280)
    parser.add_argument("--scale", type=int, default=10, help="second run: this many times more images (0: skip)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--original-dir", type=Path, default=None, help="checkout of the original tool")
    parser.add_argument("--original-python", default=None, help="a Python with mediapipe 0.10.x for it")
    parser.add_argument("--skinseg-args", default="", help="extra options for every skinseg run")
    parser.add_argument("--mix", choices=MIXES, default="sets",
                        help="sets: every photo of the three sets (mostly close-ups); even: a third each")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per configuration at --images; the median time is reported (this VM is noisy)")
    parser.add_argument("--io-floor", nargs=2, type=Path, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.io_floor:
        io_floor(*args.io_floor)
        return

    cores = len(os.sched_getaffinity(0))
    extra = args.skinseg_args.split()
    photos = eval_photos(args.eval_dir, mix=args.mix)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        rows = []
        counts = [args.images] + ([args.images * args.scale] if args.scale else [])
        for count in counts:
            src = work / f"src{count}"
            make_dataset(src, count, args.size, photos)
            runs = args.repeat if count == args.images else 1
            floor_name = "I/O floor (decode + write 3 files, 1 core)"
            configs = {floor_name: lambda k: timed([sys.executable, __file__, "--io-floor", str(src),
                                                    str(work / f"floor{count}-{k}")])}
            if args.original_dir and count == args.images:
                def original(k: int) -> tuple[float, float]:
                    cwd = work / f"orig{count}-{k}"           # it writes ./dataset next to ./dataset_original
                    cwd.mkdir()
                    (cwd / "dataset_original").symlink_to(src)
                    return timed([args.original_python or sys.executable, str(args.original_dir / "build_dataset.py")],
                                 cwd=cwd, env=dict(os.environ, PYTHONPATH=str(args.original_dir)))

                configs["original tool (1 process)"] = original
            for workers in (1, cores):
                configs[f"skinseg --workers {workers}"] = (
                    lambda k, workers=workers: skinseg_run(src, work / f"dst{count}-{workers}-{k}", workers, extra))
            if count == args.images:       # on the destination the all-cores build of the round just wrote
                configs[RERENDER] = lambda k: skinseg_run(src, work / f"dst{count}-{cores}-{k}", cores,
                                                          extra + ["--background", "original"])
            measured = interleaved(runs, configs)
            if count == args.images:
                per_round = sorted(one[0] / many[0] for one, many in zip(measured["skinseg --workers 1"],
                                                                         measured[f"skinseg --workers {cores}"]))
            medians = {name: (sorted(r[0] for r in rs)[len(rs) // 2], max(r[1] for r in rs))
                       for name, rs in measured.items()}
            rows += [(count, name, wall, rss, medians[floor_name][0]) for name, (wall, rss) in medians.items()]
        total, imports = startup_seconds()

    load_after = os.getloadavg()
    print(f"{args.images} photos at {args.size} px long side (JPEG, mix: {args.mix}), {cores} cores, "
          f"skinseg options: {' '.join(extra) or 'defaults'}; median of {args.repeat} interleaved runs "
          f"at {args.images} images, one run at {args.images * args.scale}\n")
    print("| images | run | seconds | images/s | x I/O floor time | peak RSS per process (MB) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for count, name, wall, rss, floor_wall in rows:
        print(f"| {count} | {name} | {wall:.1f} | {count / wall:.1f} | {wall / floor_wall:.2f} | {rss:.0f} |")
    by_name = {(c, n): w for c, n, w, _, _ in rows}
    n = args.images
    one, many = by_name[(n, "skinseg --workers 1")], by_name[(n, f"skinseg --workers {cores}")]
    print(f"\n- {cores} workers vs 1: {one / many:.2f}x faster (medians); round by round: median "
          f"{per_round[len(per_round) // 2]:.2f}x, range {per_round[0]:.2f}-{per_round[-1]:.2f}x")
    if (n, "original tool (1 process)") in by_name:
        print(f"- all cores vs the original tool: {by_name[(n, 'original tool (1 process)')] / many:.2f}x faster")
    print(f"- render-only change vs the all-cores build: {many / by_name[(n, RERENDER)]:.2f}x faster")
    if len(counts) > 1:
        rss = {(c, name): r for c, name, _, r, _ in rows}
        big = counts[1]
        for name in ("skinseg --workers 1", f"skinseg --workers {cores}"):
            print(f"- {name}: {big} images take {by_name[(big, name)] / by_name[(n, name)]:.1f}x the time of {n}; "
                  f"peak RSS {rss[(big, name)] / rss[(n, name)]:.2f}x")
    print(f"- start-up: {total:.2f} s for interpreter + imports + models ({imports:.2f} s imports + models)")
    print(f"- load average (1, 5, 15 min) before: {' '.join(f'{v:.2f}' for v in load_before)}, "
          f"after: {' '.join(f'{v:.2f}' for v in load_after)}")


if __name__ == "__main__":
    main()
