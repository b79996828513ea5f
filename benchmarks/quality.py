"""Mask quality against human ground truth, through the real CLI.

    python benchmarks/quality.py --eval-dir ../shared/eval [--sets pratheepan_face,...] [-- CLI OPTIONS]

For every set folder of --eval-dir (images/, masks/, pairs.csv; mask value
> 127 = skin) the photos are laid out as a classification set in a temp dir
and built twice with `build_dataset.py` and the given options:

(a) whole frame: with --no-crop (faces are still found and used; outputs
    cover the whole photo);
(b) face crop: crop on (the default), scored inside each record's crop only.

Each written mask is put back onto its source photo with the manifest's
`crop`; skipped and failed images count as "no skin found".  Printed per set:
pooled precision, recall, F1, IoU (true/false positives and false negatives
summed over all pixels of all images) and the mean per-image F1.  The plain
per-pixel colour rule (the --hsv/--ycrcb box) is also scored on the UCI skin
pixel table.  Output: markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_SETS = ("pratheepan_face", "pratheepan_family", "abdomen_train")


class Scores:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0
        self.per_image: list[float] = []
        self.by_source: dict[str, float] = {}

    def add(self, predicted: np.ndarray, truth: np.ndarray, source: str = "") -> None:
        tp = int(np.count_nonzero(predicted & truth))
        fp = int(np.count_nonzero(predicted & ~truth))
        fn = int(np.count_nonzero(~predicted & truth))
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.per_image.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        self.by_source[source] = self.per_image[-1]

    def row(self) -> list[str]:
        p = self.tp / max(1, self.tp + self.fp)
        r = self.tp / max(1, self.tp + self.fn)
        f1 = 2 * self.tp / max(1, 2 * self.tp + self.fp + self.fn)
        iou = self.tp / max(1, self.tp + self.fp + self.fn)
        return [f"{p:.3f}", f"{r:.3f}", f"{f1:.3f}", f"{iou:.3f}", f"{np.mean(self.per_image):.3f}"]


def lay_out(eval_set: Path, src: Path, half: str | None) -> dict[str, Path]:
    """Copy-free classification layout (symlinks); returns source -> truth mask.
    half: 'odd' or 'even' keeps the images with odd or even numeric ids (the
    adaptive method's constants were chosen on the odd half)."""
    truth = {}
    with open(eval_set / "pairs.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            image = eval_set / row["image"]
            if half and (int(image.stem) % 2 == 1) != (half == "odd"):
                continue
            relative = f"train/{eval_set.name}/{image.name}"
            (src / relative).parent.mkdir(parents=True, exist_ok=True)
            (src / relative).symlink_to(image.resolve())
            truth[relative] = eval_set / row["mask"]
    return truth


def build(src: Path, dst: Path, options: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst", str(dst),
                           "--quiet", *options], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"build failed ({proc.returncode}):\n{proc.stderr}")
    return time.perf_counter() - started


def score(dst: Path, truth: dict[str, Path], inside_crop: bool) -> tuple[Scores, int, int]:
    scores, faces, written = Scores(), 0, 0
    for line in (dst / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        gt = cv2.imread(str(truth[record["source"]]), cv2.IMREAD_GRAYSCALE) > 127
        predicted = np.zeros_like(gt)
        x0, y0, x1, y1 = record["crop"] or (0, 0, gt.shape[1], gt.shape[0])
        if record["status"] == "written":
            written += 1
            mask = cv2.imread(str(dst / record["mask"]), cv2.IMREAD_UNCHANGED)
            predicted[y0:y1, x0:x1] = mask > 0
        faces += record["face"] is not None
        if inside_crop:
            scores.add(predicted[y0:y1, x0:x1], gt[y0:y1, x0:x1], record["source"])
        else:
            scores.add(predicted, gt, record["source"])
    return scores, faces, written


def uci_rule_scores(options: list[str]) -> list[str]:
    """The per-pixel colour box on the UCI table (columns B, G, R, label)."""
    from skinseg.cli import HSV, YCRCB
    from skinseg.config import SkinParams
    from skinseg.skin import rules_mask

    bounds = {}
    for name, kind in (("--hsv-min", HSV), ("--hsv-max", HSV), ("--ycrcb-min", YCRCB), ("--ycrcb-max", YCRCB)):
        if name in options:
            bounds[name[2:].replace("-", "_")] = kind.convert(options[options.index(name) + 1], None, None)
    table = np.loadtxt(args.eval_dir / "uci_skin_nonskin" / "Skin_NonSkin.txt", skiprows=1, dtype=np.int64)
    pixels = table[:, :3].astype(np.uint8).reshape(1, -1, 3)      # already B, G, R
    truth = table[:, 3] == 1
    predicted = rules_mask(pixels, SkinParams(**bounds))[0] > 0
    accuracy = float(np.mean(predicted == truth))
    scores = Scores()
    scores.add(predicted, truth)
    return [f"{accuracy:.3f}"] + scores.row()[:3]


def main() -> None:
    global args
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument("--half", choices=["odd", "even"], help="only images with odd or even ids")
    parser.add_argument("--per-image", type=Path, help="also write every image's F1 to this JSON file")
    parser.add_argument("options", nargs="*", help="options for build_dataset.py (after --)")
    args = parser.parse_args()
    options = args.options
    rows = []
    per_image: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            src = Path(tmp) / name / "src"
            truth = lay_out(args.eval_dir / name, src, args.half)
            for mode, extra, inside in (("whole frame (--no-crop)", ["--no-crop"], False),
                                        ("face crop, inside the crop", [], True)):
                dst = Path(tmp) / name / ("nocrop" if not inside else "crop")
                seconds = build(src, dst, options + extra)
                scores, faces, written = score(dst, truth, inside)
                per_image[f"{name} / {mode}"] = scores.by_source
                rows.append([name, mode, str(len(truth)), f"{faces}", f"{written}", *scores.row(), f"{seconds:.1f}"])
    if args.per_image:
        args.per_image.write_text(json.dumps(per_image, indent=1, sort_keys=True))
    print(f"options: `{' '.join(options) or '(defaults)'}`" + (f", {args.half} ids only" if args.half else "") + "\n")
    print("| set | scored on | images | with face | written | precision | recall | F1 | IoU | mean image F1 "
          "| build s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if (args.eval_dir / "uci_skin_nonskin" / "Skin_NonSkin.txt").is_file():
        accuracy, p, r, f1 = uci_rule_scores(options)
        print("\nUCI skin pixel table (245,057 pixels), the per-pixel colour box alone: "
              f"accuracy {accuracy}, precision {p}, recall {r}, F1 {f1}")


if __name__ == "__main__":
    main()
