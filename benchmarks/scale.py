"""Scale benchmark: a synthetic dataset of many small photos; prints a markdown table.

    python benchmarks/scale.py --eval-dir ../shared/eval [--images 100000] [--classes 50] [--size 192]
        [--workers N] [--workdir DIR] [--skinseg-args "..."]

1. Makes a classification set of --images JPEG photos (long side --size px,
   cut from the evaluation photos: faces, families, close-ups) in --classes
   classes over train/valid/test, in a temp folder.  Photos repeat (the same
   bytes under many names): every file is still read, decoded and written.
2. Runs, as a user runs them (a fresh process each, --quiet, default options
   plus --skinseg-args):
   - the first build;
   - the same command again (nothing changed);
   - a render-only change (--background original: only the skin-only images
     change);
   - the same no-op on a 100-photo set of the same kind, for the memory any
     no-op needs.
3. For every run: wall time; the main process's peak RSS (VmHWM, read by
   the process at exit); the largest worker's and the fork server's peak
   RSS (VmHWM, read from /proc every 0.1 s).  Not getrusage or wait4: Linux
   starts a process's figure there from its parent's peak at exec, so they
   report the larger of the two.  Also whether any process of the run loaded
   MediaPipe (the main process's modules; the others' memory maps); where
   the main process's time went (discovery, planning, the images, the final
   files: timed by wrapping the build's functions); report.html's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402
from measure import run_skinseg  # noqa: E402


def make_dataset(root: Path, count: int, classes: int, size: int, photos: list[Path]) -> None:
    """throughput.make_dataset with `classes` classes and 6-digit names."""
    throughput.make_dataset(root, count, size, photos, [f"class_{c:03d}" for c in range(classes)], digits=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--size", type=int, default=192, help="long side of the photos, pixels")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skinseg-args", default="", help="extra options for every run")
    args = parser.parse_args()

    extra = args.skinseg_args.split()
    photos = throughput.eval_photos(args.eval_dir)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        small_src, small_dst = work / "src-small", work / "dst-small"
        make_dataset(small_src, 100, min(args.classes, 10), args.size, photos)
        run_skinseg(small_src, small_dst, args.workers, extra)
        started = time.perf_counter()
        src, dst = work / "src", work / "dst"
        make_dataset(src, args.images, args.classes, args.size, photos)
        made = time.perf_counter() - started
        rows.append(("first build", run_skinseg(src, dst, args.workers, extra)))
        rows.append(("the same command again (nothing changed)", run_skinseg(src, dst, args.workers, extra)))
        rows.append(("`--background original` (only the skin-only images change)",
                     run_skinseg(src, dst, args.workers, extra + ["--background", "original"])))
        rows.append(("nothing changed, 100 photos (the memory any no-op needs)",
                     run_skinseg(small_src, small_dst, args.workers, extra)))
        written = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file()) / 2**20

    print(f"{args.images} photos of {args.size} px long side, {args.classes} classes, 3 splits, "
          f"--workers {args.workers}, options: {' '.join(extra) or 'defaults'} (source made in {made:.0f} s; "
          f"the dataset: {written:.0f} MB)\n")
    print("| what the user does | seconds | processed (segmented) / reused | main process peak RSS (MB) "
          "| largest worker (MB) | fork server (MB) | MediaPipe loaded | report.html (KB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, r in rows:
        run_info = r["run"]
        print(f"| {name} | {r['wall']:.1f} | {run_info['processed']} ({run_info['segmented']}) / "
              f"{run_info['reused']} | {r['main_mb']:.0f} | {r['worker_mb'] or '-'} | {r['server_mb'] or '-'} "
              f"| {'yes' if r['mediapipe'] else 'no'} | {r['report_kb']:.0f} |")
    noop, base = rows[1][1], rows[3][1]
    growth = (noop["main_mb"] - base["main_mb"]) * 1024 / (args.images - 100)
    print(f"\n- no-op: the main process's memory grows by {growth:.2f} KB per photo "
          f"({base['main_mb']:.0f} MB at 100 photos, {noop['main_mb']:.0f} MB at {args.images})")
    print(f"- render-only change: {rows[0][1]['wall'] / rows[2][1]['wall']:.1f}x faster than the first build")
    print("\nWhere the main process's time went (seconds; the rest of the wall time is the interpreter, "
          "imports and exit):\n")
    print("| run | discovery | planning (classes, models, fingerprints, what is done) | images | final files |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in rows[:3]:
        p = r["phases"]
        print(f"| {name} | {p['discovery']:.2f} | {p['planning']:.2f} | {p['images']:.2f} | {p['final files']:.2f} |")


if __name__ == "__main__":
    main()
