"""Scale benchmark: a synthetic dataset of many small photos; prints a markdown table.

    python benchmarks/scale.py --eval-dir ../shared/eval [--images 100000] [--classes 50] [--size 192]
        [--workers N] [--workdir DIR] [--keep]

1. Makes a classification set of --images JPEG photos (long side --size px,
   cut from the evaluation photos: faces, families, close-ups) in --classes
   classes over train/valid/test, in a temp folder.  Photos repeat (the same
   bytes under many names): every file is still read, decoded and written.
2. Times, as a user runs them (a fresh process each, --quiet):
   - the first build;
   - the same command again (nothing changed);
   - a render-only change (--background original: only the skin-only images
     change);
   - the same no-op on a 100-photo set of the same kind, for the memory a
     no-op needs whatever the size.
3. For every run: wall time, the main process's peak RSS (its own, from
   getrusage in the process), the largest other process (fork server or a
   worker: from wait4 of the orphans of the run, this script being their
   subreaper), whether MediaPipe was imported in the main process or any
   worker ran, build.json's phase times, and report.html's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import become_subreaper, eval_photos  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# Runs build_dataset.py in this process and, at exit, reports what the
# benchmark cannot see from outside: the main process's own peak memory and
# whether it imported MediaPipe.
WRAPPER = """
import atexit, json, resource, runpy, sys
def report():
    with open(sys.argv[1], "w") as out:
        json.dump({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "mediapipe": "mediapipe" in sys.modules}, out)
atexit.register(report)
script = sys.argv[2]
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def make_dataset(root: Path, count: int, classes: int, size: int, photos: list[Path]) -> None:
    """count JPEGs of long side `size`, cycling through photos; deterministic."""
    encoded = []
    for photo in photos:
        image = cv2.imread(str(photo))
        h, w = image.shape[:2]
        scale = size / max(h, w)
        small = cv2.resize(image, (max(16, round(w * scale)), max(16, round(h * scale))), interpolation=cv2.INTER_AREA)
        encoded.append(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    made: set[Path] = set()
    for i in range(count):
        fraction = (i % 20) / 20
        split = "train" if fraction < 0.7 else "valid" if fraction < 0.85 else "test"
        folder = root / split / f"class_{i % classes:03d}"
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        (folder / f"{i:06d}.jpg").write_bytes(encoded[(i * 7919) % len(encoded)])


def run(src: Path, dst: Path, workers: int, extra: list[str]) -> dict:
    """One CLI run: wall seconds, main RSS, largest other RSS, MediaPipe imported, phases."""
    with tempfile.NamedTemporaryFile(suffix=".json") as probe, tempfile.TemporaryFile() as errors:
        command = [sys.executable, "-c", WRAPPER, probe.name, str(REPO / "build_dataset.py"), "--src", str(src),
                   "--dst", str(dst), "--workers", str(workers), "--quiet", *extra]
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        others = 0.0
        orphans = 0
        while True:       # the fork server and what it reaped (its workers), reparented to us
            try:
                _, _, usage = os.wait4(-1, 0)
            except ChildProcessError:
                break
            orphans += 1
            others = max(others, usage.ru_maxrss / 1024)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            errors.seek(0)
            raise RuntimeError(f"{command} failed ({code}): {errors.read().decode()[-3000:]}")
        inside = json.loads(Path(probe.name).read_text())
    info = json.loads((dst / "build.json").read_text())
    return {"wall": wall, "main_mb": inside["rss_mb"], "other_mb": others, "mediapipe": inside["mediapipe"],
            "run": info["run"], "report_kb": (dst / "report.html").stat().st_size / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--size", type=int, default=192, help="long side of the photos, pixels")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    become_subreaper()
    photos = eval_photos(args.eval_dir)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        small_src, small_dst = work / "src-small", work / "dst-small"
        make_dataset(small_src, 100, min(args.classes, 10), args.size, photos)
        run(small_src, small_dst, args.workers, [])
        started = time.perf_counter()
        src, dst = work / "src", work / "dst"
        make_dataset(src, args.images, args.classes, args.size, photos)
        made = time.perf_counter() - started
        rows.append(("first build", run(src, dst, args.workers, [])))
        rows.append(("the same command again (nothing changed)", run(src, dst, args.workers, [])))
        rows.append(("`--background original` (render-only)",
                     run(src, dst, args.workers, ["--background", "original"])))
        rows.append(("no-op on 100 photos (baseline for memory)", run(small_src, small_dst, args.workers, [])))
        du = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file()) / 2**20

    print(f"{args.images} photos of {args.size} px long side, {args.classes} classes, 3 splits, "
          f"--workers {args.workers} (made in {made:.0f} s; the dataset written: {du:.0f} MB)\n")
    print("| what the user does | seconds | processed / reused | main process peak RSS (MB) "
          "| largest other process (MB) | MediaPipe imported in main | report.html (KB) |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, r in rows:
        print(f"| {name} | {r['wall']:.1f} | {r['run']['processed']} / {r['run']['reused']} | {r['main_mb']:.0f} "
              f"| {r['other_mb']:.0f} | {'yes' if r['mediapipe'] else 'no'} | {r['report_kb']:.0f} |")
    noop, base = rows[1][1], rows[3][1]
    growth = (noop["main_mb"] - base["main_mb"]) * 1024 / (args.images - 100)
    print(f"\n- no-op: main process memory grows by {growth:.2f} KB per photo "
          f"({base['main_mb']:.0f} MB at 100 photos, {noop['main_mb']:.0f} MB at {args.images})")
    print(f"- render-only change: {rows[0][1]['wall'] / rows[2][1]['wall']:.1f}x faster than the first build")
    for name, r in rows[:3]:
        phases = r["run"].get("phases")
        if phases:
            print(f"- {name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))


if __name__ == "__main__":
    main()
