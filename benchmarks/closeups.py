"""Faceless close-ups with ground truth: bands cut from labelled face photos.

    python benchmarks/closeups.py --eval-dir ../shared/eval [--write]

Skin-condition datasets are full of close-ups where no face can be detected
(acne on a cheek, eczema round an eye, a lip lesion), and the evaluation
sets have none whose masks label what is not skin there.  The face sets
whose masks leave hair (brows, beard), eyes and the mouth out of the skin
(fasseg_tune, pratheepan_face, pratheepan_family) do, once cut into bands:

- eyes:  the brows with the hair fringe above them, the eyes, the nose's bridge;
- nose:  below the eyes to the upper lip: nose, nostrils, cheeks;
- mouth: below the nose to below the chin: lips, teeth, chin;
- cheek: a square of one cheek, the side turned to the camera (all skin,
  where a lesion would be).

Each band is placed from the 478-point face mesh of the photo's most
confident face (found once, by `--write`, with the face models; faces with
an eye distance under MIN_EYE_DIST px are left out: their bands are a few
dozen pixels) and kept at the photo's own resolution (no enlargement).
The boxes are stored in CLOSEUPS_CSV, so that every version of the code is
scored on the same crops; `lay_out` (used by quality.py's `closeups` set)
cuts photo and mask with them.  `--half` keeps the bands of the photos at
odd or even positions of their set's pairs.csv, as for the other sets.
Without `--write`: how many bands there are, and on how many of them the
default pipeline finds a face (it should find none on most).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLOSEUPS_CSV = Path(__file__).resolve().parent / "closeups.csv"
SOURCE_SETS = ("fasseg_tune", "pratheepan_face", "pratheepan_family")
BANDS = ("eyes", "nose", "mouth", "cheek")
MIN_EYE_DIST = 40.0          # px in the photo: smaller faces give bands of a few dozen pixels
MIN_SIDE = 48                # a band whose short side is under this (cut by the frame) is left out
FIELDS = ("set", "position", "image", "mask", "band", "x0", "y0", "x1", "y1")

# Landmark indices (MediaPipe's canonical face mesh; "right"/"left": the subject's sides).
RIGHT_EYE, LEFT_EYE = 468, 473          # iris centres
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
NOSE_TIP, CHIN = 1, 152
MOUTH_RIGHT, MOUTH_LEFT, UPPER_LIP, LOWER_LIP = 61, 291, 0, 17
RIGHT_CHEEK_SIDE, LEFT_CHEEK_SIDE = 234, 454     # the face oval at the cheekbones


def band_boxes(points: np.ndarray) -> dict[str, tuple[float, float, float, float]]:
    """The bands' boxes (x0, y0, x1, y1), unclipped, from a (478, 2) face mesh."""
    right, left = points[RIGHT_EYE], points[LEFT_EYE]
    d = max(float(np.hypot(*(left - right))), float(np.hypot(*(points[168] - points[CHIN]))) / 1.86)
    eye_y = (right[1] + left[1]) / 2
    eyes_x0, eyes_x1 = min(right[0], left[0]), max(right[0], left[0])
    brow_top = float(points[list(BROWS), 1].min())
    mouth_x0 = min(points[MOUTH_RIGHT][0], points[MOUTH_LEFT][0])
    mouth_x1 = max(points[MOUTH_RIGHT][0], points[MOUTH_LEFT][0])
    nose = points[NOSE_TIP]
    # The cheek turned to the camera: the side of the face farther from the nose tip.
    right_side, left_side = points[RIGHT_CHEEK_SIDE], points[LEFT_CHEEK_SIDE]
    turned_right = abs(nose[0] - right_side[0]) >= abs(nose[0] - left_side[0])
    eye, side = (right, right_side) if turned_right else (left, left_side)
    cheek = np.array([eye[0] + 0.3 * (side[0] - eye[0]), eye[1] + 0.75 * d])
    half = 0.45 * d
    return {
        "eyes": (eyes_x0 - 0.9 * d, brow_top - 0.45 * d, eyes_x1 + 0.9 * d, eye_y + 0.4 * d),
        "nose": (eyes_x0 - 0.45 * d, eye_y + 0.35 * d, eyes_x1 + 0.45 * d, points[UPPER_LIP][1] + 0.15 * d),
        "mouth": (mouth_x0 - 0.7 * d, nose[1] + 0.1 * d, mouth_x1 + 0.7 * d, points[CHIN][1] + 0.3 * d),
        "cheek": (cheek[0] - half, cheek[1] - half, cheek[0] + half, cheek[1] + half),
    }


def clipped(box: tuple[float, float, float, float], width: int, height: int) -> Optional[tuple[int, int, int, int]]:
    """The box in whole pixels inside the photo, or None if too little of it is."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if min(x1 - x0, y1 - y0) < MIN_SIDE:
        return None
    return x0, y0, x1, y1


def face_mesh_of(engines, bgr: np.ndarray) -> Optional[tuple[np.ndarray, float]]:
    """(478, 2) mesh of the photo's most confident plausible face in its pixels, and its eye distance."""
    from skinseg.adaptive import candidate_faces
    from skinseg.mesh import with_meshes
    from skinseg.pipeline import MESHED_FACES, working_copy

    small, scale = working_copy(bgr)
    faces = with_meshes(engines.mesher, small, engines.detector.detect(small), MESHED_FACES)
    for face, geometry in candidate_faces(faces):
        if face.mesh is not None:
            return face.mesh / np.float32(scale), geometry.d / scale
    return None


def write_boxes(eval_dir: Path, out: Path = CLOSEUPS_CSV) -> int:
    """Find the bands of every photo of SOURCE_SETS and store them in out; returns how many."""
    sys.path.insert(0, str(REPO))
    from skinseg.config import PipelineConfig
    from skinseg.engines import open_engines, plan_models

    engines = open_engines(plan_models(PipelineConfig()))
    rows = []
    for name in SOURCE_SETS:
        with open(eval_dir / name / "pairs.csv", newline="") as handle:
            for position, row in enumerate(csv.DictReader(handle), start=1):
                bgr = cv2.imread(str(eval_dir / name / row["image"]))
                found = face_mesh_of(engines, bgr)
                if found is None or found[1] < MIN_EYE_DIST:
                    continue
                for band, box in band_boxes(found[0]).items():
                    kept = clipped(box, bgr.shape[1], bgr.shape[0])
                    if kept is not None:
                        rows.append([name, position, row["image"], row["mask"], band, *kept])
    engines.close()
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(rows)
    return len(rows)


def read_boxes(path: Path = CLOSEUPS_CSV) -> list[dict]:
    with open(path, newline="") as handle:
        return [dict(row, position=int(row["position"]), **{k: int(row[k]) for k in ("x0", "y0", "x1", "y1")})
                for row in csv.DictReader(handle)]


def lay_out(eval_dir: Path, src: Path, truth_dir: Path, half: Optional[str],
            restyle: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> dict[str, Path]:
    """The bands as a classification set (lossless PNG crops in src/train/closeups/,
    their masks in truth_dir); returns source -> truth mask, as quality.lay_out."""
    truth = {}
    folder = src / "train" / "closeups"
    folder.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    for row in read_boxes():
        if half and (row["position"] % 2 == 1) != (half == "odd"):
            continue
        x0, y0, x1, y1 = row["x0"], row["y0"], row["x1"], row["y1"]
        photo = cv2.imread(str(eval_dir / row["set"] / row["image"]))[y0:y1, x0:x1]
        mask = cv2.imread(str(eval_dir / row["set"] / row["mask"]), cv2.IMREAD_GRAYSCALE)[y0:y1, x0:x1]
        name = f"{row['set']}__{Path(row['image']).stem}__{row['band']}.png"
        cv2.imwrite(str(folder / name), restyle(photo) if restyle else photo)
        cv2.imwrite(str(truth_dir / name), mask)
        truth[f"train/closeups/{name}"] = truth_dir / name
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--write", action="store_true", help=f"find the bands again and write {CLOSEUPS_CSV.name}")
    args = parser.parse_args()
    if args.write:
        print(f"{write_boxes(args.eval_dir)} bands written to {CLOSEUPS_CSV}")
    sys.path.insert(0, str(REPO))
    from skinseg.adaptive import candidate_faces
    from skinseg.config import PipelineConfig
    from skinseg.engines import open_engines, plan_models
    from skinseg.mesh import with_meshes
    from skinseg.pipeline import MESHED_FACES, working_copy

    engines = open_engines(plan_models(PipelineConfig()))
    counts: dict[str, list[int]] = {}
    for row in read_boxes():
        bgr = cv2.imread(str(args.eval_dir / row["set"] / row["image"]))[row["y0"]:row["y1"], row["x0"]:row["x1"]]
        small, _ = working_copy(bgr)
        faces = with_meshes(engines.mesher, small, engines.detector.detect(small), MESHED_FACES)
        seen = counts.setdefault(row["band"], [0, 0])
        seen[0] += 1
        seen[1] += bool(candidate_faces(faces))
    engines.close()
    print("| band | crops | a face found (the default pipeline's detector and mesh) |\n| --- | ---: | ---: |")
    for band, (total, with_face) in counts.items():
        print(f"| {band} | {total} | {with_face} ({with_face / total:.0%}) |")


if __name__ == "__main__":
    main()
