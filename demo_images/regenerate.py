"""Regenerate the README's demo images with the tool itself.

    python demo_images/regenerate.py

Builds the bundled example dataset into a temporary folder with the default
options and copies the outputs of one image here.  Then draws
what_counts.png for the README's "What counts as skin": the public-domain
portrait with two lesions painted onto it (a mole on the cheek and a patch of
red papules on the other cheek, since the example photos have none), segmented by
skinseg's Python API, shown next to the mask it gives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCE = "train/Normal Skin/1.jpg"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "dataset"
        subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--src",
                        str(REPO / "examples" / "dataset_original"), "--dst", str(dst), "--quiet"], check=True)
        record = next(r for r in map(json.loads, (dst / "manifest.jsonl").read_text().splitlines())
                      if r["source"] == SOURCE)
        shutil.copy(REPO / "examples" / "dataset_original" / SOURCE, HERE / "original.jpg")
        shutil.copy(dst / record["image"], HERE / "skin_only.jpg")
        shutil.copy(dst / record["mask"], HERE / "training_mask.png")
        shutil.copy(dst / record["preview"], HERE / "preview.png")
        print(json.dumps(record, indent=1))
    what_counts()


def paint_lesions(photo: np.ndarray) -> np.ndarray:
    """A brown mole on one cheek and red papules on the other, soft-edged."""
    out = photo.astype(np.float32)

    def blot(centre, axes, bgr, strength):
        weight = np.zeros(photo.shape[:2], np.float32)
        cv2.ellipse(weight, centre, axes, 0, 0, 360, 1.0, -1)
        weight = cv2.GaussianBlur(weight, (0, 0), max(1.0, min(axes) / 3))[..., None] * strength
        out[:] = out * (1 - weight) + np.array(bgr, np.float32) * weight

    blot((196, 128), (8, 7), (35, 50, 85), 0.95)                    # the mole
    rng = np.random.default_rng(7)
    for _ in range(9):                                               # the papules
        x, y = 252 + int(rng.integers(-10, 11)), 138 + int(rng.integers(-7, 8))
        blot((x, y), (3, 3), (70, 70, 200), 0.8)
    return np.clip(out, 0, 255).astype(np.uint8)


def what_counts() -> None:
    sys.path.insert(0, str(REPO))
    from skinseg import FaceParams, PipelineConfig, Segmenter

    photo = paint_lesions(cv2.imread(str(REPO / "examples" / "dataset_original" / SOURCE)))
    with Segmenter(PipelineConfig(face=FaceParams(crop=False))) as segmenter:
        skin = segmenter.segment(photo).full_mask() > 0
    x0, y0, x1, y1 = 130, 30, 340, 250                               # the head and shoulders
    shown = photo[y0:y1, x0:x1]
    overlay = shown.copy()
    tint = skin[y0:y1, x0:x1]
    overlay[tint] = (0.45 * overlay[tint] + 0.55 * np.array([0, 200, 60])).astype(np.uint8)
    overlay[~tint] = (0.35 * overlay[~tint]).astype(np.uint8)
    gap = np.full((shown.shape[0], 8, 3), 255, np.uint8)
    figure = np.hstack([shown, gap, overlay])
    cv2.imwrite(str(HERE / "what_counts.png"), cv2.resize(figure, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_AREA))


if __name__ == "__main__":
    main()
