"""How much of the skin each crop policy keeps, on photos with human skin masks.

    SKINSEG_MODEL_DIR=../shared/models python benchmarks/crops.py --eval-dir ../shared/eval [--sets a,b]

For every photo of each set (images/, masks/, pairs.csv; mask value > 127 =
skin) the default pipeline finds the faces and the skin mask once; then each
policy's crop (crop.crop_region) is scored: the share of the human-marked
skin inside the crop (median and worst photo), the crop's share of the
photo, its short side, and how many photos have less skin inside it than
the default --min-skin-fraction (a build skips such a photo unless a face
seeded its skin model).  Output: markdown.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skinseg.config import FaceParams, PipelineConfig  # noqa: E402
from skinseg.crop import crop_region  # noqa: E402
from skinseg.engines import open_engines, plan_models  # noqa: E402
from skinseg.imageio import read_image  # noqa: E402
from skinseg.pipeline import segment  # noqa: E402

POLICIES = {
    "best face (the original tool, `--crop-faces best --no-crop-to-skin --min-crop-side 0`)":
        FaceParams(crop_faces="best", crop_to_skin=False, min_crop_side=0),
    "every face (`--no-crop-to-skin`)": FaceParams(crop_to_skin=False),
    "every face and all skin found (default)": FaceParams(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--sets", default="pratheepan_family,pratheepan_face")
    args = parser.parse_args()
    config = PipelineConfig()
    uncropped = dataclasses.replace(config, face=FaceParams(crop=False))
    engines = open_engines(plan_models(config))
    try:
        for name in args.sets.split(","):
            root = args.eval_dir / name
            rows = list(csv.reader(open(root / "pairs.csv", encoding="utf-8")))[1:]
            stats = {p: {"kept": [], "area": [], "short": [], "cropped": 0, "below": 0} for p in POLICIES}
            for row in rows:
                bgr = read_image(root / row[0], config.max_pixels)
                truth = cv2.imread(str(root / row[1]), cv2.IMREAD_GRAYSCALE)
                height, width = bgr.shape[:2]
                truth = cv2.resize(truth, (width, height), interpolation=cv2.INTER_NEAREST) > 127
                found = segment(bgr, uncropped, engines)            # whole photo: faces and skin
                for policy, params in POLICIES.items():
                    x0, y0, x1, y1 = crop_region(found.faces, params, width, height, found.mask)
                    s = stats[policy]
                    s["kept"].append(truth[y0:y1, x0:x1].sum() / max(1, truth.sum()))
                    s["area"].append((x1 - x0) * (y1 - y0) / (width * height))
                    s["short"].append(min(x1 - x0, y1 - y0))
                    s["cropped"] += (x0, y0, x1, y1) != (0, 0, width, height)
                    s["below"] += np.count_nonzero(found.mask[y0:y1, x0:x1]) < (
                        config.cleanup.min_skin_fraction * (x1 - x0) * (y1 - y0))
            print(f"\n**{name}** ({len(rows)} photos)\n")
            print("| crop policy | photos cropped | skin kept: median / worst | crop area: median "
                  "| short side: smallest / median | below --min-skin-fraction |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            for policy, s in stats.items():
                kept, short = s["kept"], s["short"]
                print(f"| {policy} | {s['cropped']} | {statistics.median(kept):.0%} / {min(kept):.0%} "
                      f"| {statistics.median(s['area']):.0%} | {min(short)} / {statistics.median(short):.0f} px "
                      f"| {s['below']} |")
    finally:
        engines.close()


if __name__ == "__main__":
    main()
