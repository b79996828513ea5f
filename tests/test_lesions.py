"""Lesions are skin: holes and bays of the skin mask put back (skinseg/lesions.py),
on synthetic close-ups and faces, and on real dermoscopy and wound photos
(when SKINSEG_EVAL_DIR is set)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from conftest import make_dataset, mask_of, noisy, read_manifest, run_cli
from skinseg.config import FaceParams, PipelineConfig
from skinseg.lesions import fill_lesions
from skinseg.pipeline import segment

SKIN = (105, 140, 205)          # BGR
SHEET = (230, 230, 225)         # white bedding
MOLE = (40, 55, 90)             # dark brown
WOUND = (60, 50, 170)           # red wound bed


def foot_close_up() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, skin-only mask as a colour model would give it, wound truth):
    a foot on a sheet, a wound at the foot's edge, a mole in the middle."""
    photo = np.full((300, 400, 3), SHEET, np.uint8)
    cv2.ellipse(photo, (200, 150), (150, 100), 0, 0, 360, SKIN, -1)
    cv2.circle(photo, (200, 150), 15, MOLE, -1)
    cv2.ellipse(photo, (200, 238), (25, 12), 0, 0, 360, WOUND, -1)      # reaches the foot's edge
    truth = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(truth, (200, 238), (25, 12), 0, 0, 360, 255, -1)
    truth[photo[..., 0] == SHEET[0]] = 0
    return noisy(photo), mask_of(photo, SKIN), truth


def test_a_mole_enclosed_by_skin_is_skin():
    photo, skin, _ = foot_close_up()
    assert skin[150, 200] == 0
    for close_up in (True, False):
        assert fill_lesions(skin, photo, None, close_up)[150, 200] == 255


def test_a_wound_at_the_edge_of_the_skin_is_skin_on_a_close_up_and_the_sheet_is_not():
    photo, skin, truth = foot_close_up()
    filled = fill_lesions(skin, photo, None, close_up=True)
    wound = truth > 0
    assert np.count_nonzero(filled[wound]) > 0.9 * np.count_nonzero(wound)
    assert not filled[:40].any() and not filled[:, :40].any()           # the sheet
    # A photo of people: only what skin encloses (a bay may be the gap between two arms).
    assert np.count_nonzero(fill_lesions(skin, photo, None, close_up=False)[wound]) < 0.5 * np.count_nonzero(wound)


def test_a_hair_across_the_rim_does_not_open_a_lesion():
    """Dermoscopy: a dark hair from the mole to the edge of the photo would
    connect the mole's hole to the outside."""
    photo, skin, _ = foot_close_up()
    cv2.line(photo, (200, 150), (399, 20), (20, 20, 20), 2)
    skin = mask_of(photo, SKIN)
    assert fill_lesions(skin, photo, None, close_up=True)[150, 200] == 255


def test_what_must_stay_out_stays_out():
    photo, skin, _ = foot_close_up()
    keep_out = np.zeros(skin.shape, np.uint8)
    cv2.circle(keep_out, (200, 150), 16, 255, -1)                      # say, an eye
    assert fill_lesions(skin, photo, keep_out, close_up=False)[150, 200] == 0


def test_a_gap_showing_the_background_is_not_a_lesion():
    """Two arms whose gap shows the wall that surrounds them, enclosed by
    skin above and below: the gap has the background's colour."""
    photo = np.full((300, 400, 3), SHEET, np.uint8)
    photo[60:240, 60:340] = SKIN
    photo[100:200, 150:250] = SHEET                                     # the gap
    photo = noisy(photo)
    skin = mask_of(photo, SKIN)
    assert fill_lesions(skin, photo, None, close_up=False)[150, 200] == 0
    photo[100:200, 150:250] = MOLE                                      # a mole as large: skin
    assert fill_lesions(mask_of(photo, SKIN), noisy(photo, 1), None, close_up=False)[150, 200] == 255


def test_lesions_can_be_left_out(tmp_path):
    photo, _, _ = foot_close_up()
    src = make_dataset(tmp_path / "src", {"train/Ulcer/foot.png": photo})
    run_cli("--src", src, "--dst", tmp_path / "with", "--workers", "1", "--quiet")
    run_cli("--src", src, "--dst", tmp_path / "without", "--workers", "1", "--quiet", "--no-fill-lesions")
    masks = {}
    for name in ("with", "without"):
        record = read_manifest(tmp_path / name)[0]
        masks[name] = cv2.imread(str(tmp_path / name / record["mask"]), cv2.IMREAD_UNCHANGED)
    assert masks["with"][150, 200] > 0 and masks["without"][150, 200] == 0


# ------------------------------------------------------------- real photos

@pytest.mark.parametrize("subset, count, floor, below", [
    # Before lesions were put back: ph2 0.80 / 31 % of photos below 0.5, fuseg 0.50 / 59 %.
    ("ph2_tune", 30, 0.88, 0.10),
    ("fuseg_tune", 40, 0.88, 0.10),
])
def test_lesion_recall_on_real_photos(eval_dir, real_engines, subset, count, floor, below):
    config = PipelineConfig(face=FaceParams(crop=False))
    with open(eval_dir / subset / "pairs.csv") as handle:
        rows = list(csv.DictReader(handle))[:count]
    kept = total = faces = lost = 0
    for row in rows:
        photo = cv2.imread(str(eval_dir / subset / row["image"]))
        lesion = cv2.imread(str(eval_dir / subset / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        result = segment(photo, config, real_engines)
        found = np.count_nonzero(lesion & (result.mask > 0))
        kept, total = kept + found, total + np.count_nonzero(lesion)
        lost += found < 0.5 * np.count_nonzero(lesion)
        faces += result.face is not None
    assert kept / total >= floor, f"{subset}: lesion recall {kept / total:.3f} < {floor}"
    assert lost <= below * len(rows), f"{subset}: {lost} of {len(rows)} photos lose more than half their lesion"
    assert faces == 0, "a face was found on a close-up"
