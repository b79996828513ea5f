"""What report.html adds to a build: median build time with and without it.

    python benchmarks/report_cost.py --eval-dir ../shared/eval [--repeat 3]

Builds three sets (the bundled example; 300 photos at 1280 px; 30 photos at
3200 px, the worst case: few, very large images, each shown in the report)
with the default options and all cores, once as usual and once with the
report switched off (no thumbnails in the workers, no report.html), each a
fresh build, and prints the difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import eval_photos, make_dataset  # noqa: E402

import skinseg.build as build_module  # noqa: E402
import skinseg.finalize as finalize_module  # noqa: E402
from skinseg.config import BuildConfig  # noqa: E402


def timed_build(src: Path, dst: Path, report: bool) -> float:
    """One build's seconds; without the report: no report.html, no thumbnails
    (the workers draw them for the images the build marks for the report)."""
    saved = finalize_module.write_report, build_module.mark_report_sample
    if not report:
        finalize_module.write_report = lambda *args, **kwargs: []
        build_module.mark_report_sample = lambda tasks, class_names: tasks
    try:
        started = time.perf_counter()
        build_module.build(BuildConfig(src, dst, workers=len(os.sched_getaffinity(0)), progress=False))
        return time.perf_counter() - started
    finally:
        finalize_module.write_report, build_module.mark_report_sample = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    photos = eval_photos(args.eval_dir)
    print("| set | build without report (s) | with report (s) | added |\n| --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = {"bundled example (11 images)": REPO / "examples" / "dataset_original"}
        make_dataset(work / "s300", 300, 1280, photos)
        sets["300 photos, 1280 px"] = work / "s300"
        make_dataset(work / "s30", 30, 3200, photos[:78])          # the Pratheepan photos: faces
        sets["30 photos, 3200 px"] = work / "s30"
        # The builds run in this process, which keeps its workers' fork server:
        # start it with a build that is not timed, or the first timed one pays for it.
        timed_build(sets["bundled example (11 images)"], work / "warm-up", True)
        for name, src in sets.items():
            times = {True: [], False: []}
            for k in range(args.repeat):
                for report in (False, True):
                    times[report].append(timed_build(src, work / f"{name}-{report}-{k}", report))
            without, with_report = statistics.median(times[False]), statistics.median(times[True])
            print(f"| {name} | {without:.2f} | {with_report:.2f} | {(with_report - without) / without:+.1%} |")


if __name__ == "__main__":
    main()
