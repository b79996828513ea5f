"""Part of a face on a close-up (partface.py): a synthetic face mesh for each
check, then through adaptive_mask, then the example's close-ups and the
evaluation's skin close-ups with the real models (when SKINSEG_MODEL_DIR /
SKINSEG_EVAL_DIR are set)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import noisy
from skinseg import mesh as M
from skinseg.adaptive import adaptive_mask
from skinseg.config import FaceParams, PipelineConfig, SkinParams
from skinseg.partface import inside_share, looks_like_part_of_a_face, part_of_a_face
from skinseg.pipeline import segment, working_copy

REPO = Path(__file__).resolve().parent.parent
SKIN, SCLERA, IRIS = (120, 150, 210), (225, 228, 230), (35, 45, 60)
BROW, LIPS, LIP_LINE = (45, 60, 85), (125, 115, 205), (60, 55, 95)


def ellipse_points(centre, axes, count, start=-90.0):
    """count points round an ellipse, clockwise on the image from `start` degrees (-90: the top)."""
    angles = np.radians(start + 360.0 * np.arange(count) / count)
    return np.stack([centre[0] + axes[0] * np.cos(angles), centre[1] + axes[1] * np.sin(angles)], 1)


def synthetic_face(cx=300.0, cy=300.0, d=100.0):
    """A face drawn with the mesh's outlines: (478, 2) mesh and a 600 x 600
    BGR photo (skin, eyes with their whites, brows, lips with the dark line
    between them, hair above the oval).  The eyes are at (cx -/+ d/2, cy)."""
    mesh = np.tile(np.array([cx, cy + 0.5 * d], np.float32), (M.POINT_COUNT, 1))
    oval_centre, oval_axes = (cx, cy + 0.45 * d), (1.05 * d, 1.45 * d)
    mesh[list(M.FACE_OVAL)] = ellipse_points(oval_centre, oval_axes, len(M.FACE_OVAL))
    eyes = ((cx - d / 2, cy), (cx + d / 2, cy))
    for outline, centre, brow in ((M.RIGHT_EYE, eyes[0], M.RIGHT_BROW), (M.LEFT_EYE, eyes[1], M.LEFT_BROW)):
        mesh[list(outline)] = ellipse_points(centre, (0.22 * d, 0.09 * d), len(outline), 180.0)
        mesh[list(brow)] = ellipse_points((centre[0], centre[1] - 0.35 * d), (0.3 * d, 0.05 * d), len(brow), 180.0)
    mesh[[M.RIGHT_EYE_CENTER, M.LEFT_EYE_CENTER]] = eyes
    mouth = (cx, cy + 1.1 * d)
    mesh[list(M.LIPS)] = ellipse_points(mouth, (0.35 * d, 0.12 * d), len(M.LIPS), 180.0)
    mesh[list(M.MOUTH_CENTER)] = mouth
    for outline, x in ((M.RIGHT_NOSTRIL, cx - 0.15 * d), (M.LEFT_NOSTRIL, cx + 0.15 * d)):
        mesh[list(outline)] = ellipse_points((x, cy + 0.75 * d), (0.06 * d, 0.03 * d), len(outline))
    mesh[M.BETWEEN_EYES], mesh[M.NOSE_TIP] = (cx, cy), (cx, cy + 0.6 * d)

    photo = np.full((600, 600, 3), (40, 55, 80), np.uint8)              # hair
    cv2.ellipse(photo, (int(oval_centre[0]), int(oval_centre[1])), (int(oval_axes[0]), int(oval_axes[1])),
                0, 0, 360, SKIN, -1)
    photo[int(oval_centre[1]):] = np.where(photo[int(oval_centre[1]):] == 0, 0, SKIN)     # neck and shoulders
    for centre in eyes:
        cv2.ellipse(photo, (int(centre[0]), int(centre[1])), (int(0.22 * d), int(0.09 * d)), 0, 0, 360, SCLERA, -1)
        cv2.circle(photo, (int(centre[0]), int(centre[1])), int(0.08 * d), IRIS, -1)
        cv2.ellipse(photo, (int(centre[0]), int(centre[1] - 0.35 * d)), (int(0.3 * d), int(0.05 * d)), 0, 0, 360,
                    BROW, -1)
    cv2.ellipse(photo, (int(mouth[0]), int(mouth[1])), (int(0.35 * d), int(0.12 * d)), 0, 0, 360, LIPS, -1)
    cv2.line(photo, (int(mouth[0] - 0.33 * d), int(mouth[1])), (int(mouth[0] + 0.33 * d), int(mouth[1])), LIP_LINE, 3)
    return mesh, noisy(photo)


def band(photo, mesh, y0, y1, x0=150, x1=450):
    """A close-up cut from the synthetic face: (BGR, YCrCb, mesh in its pixels)."""
    crop = np.ascontiguousarray(photo[y0:y1, x0:x1])
    return crop, cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb), mesh - np.array([x0, y0], np.float32)


def test_inside_share_is_the_part_of_a_polygon_in_the_frame():
    square = np.array([[-50, 0], [50, 0], [50, 100], [-50, 100]], np.float32)
    assert inside_share((200, 200), square) == pytest.approx(0.5, abs=0.03)
    assert inside_share((200, 200), square + 60) == pytest.approx(1.0, abs=0.03)
    assert inside_share((200, 200), square - 300) == 0.0


def test_the_eyes_of_a_face_cut_by_the_frame_are_part_of_a_face():
    mesh, photo = synthetic_face()
    _, ycc, shifted = band(photo, mesh, 230, 345)             # brows, eyes: the oval reaches far beyond
    assert looks_like_part_of_a_face(ycc, shifted)
    # The mouth alone, with the dark line between the lips.
    _, ycc, shifted = band(photo, mesh, 370, 460)
    assert looks_like_part_of_a_face(ycc, shifted)
    with pytest.raises(ValueError):
        looks_like_part_of_a_face(ycc, shifted[:10])


def test_a_whole_face_in_the_frame_is_not_part_of_a_face():
    """The detector's to find: every false mesh on a belly or a foot was a whole face in the frame."""
    mesh, photo = synthetic_face()
    assert not looks_like_part_of_a_face(cv2.cvtColor(photo, cv2.COLOR_BGR2YCrCb), mesh)


def test_eyes_and_lips_that_look_like_skin_or_a_mole_are_not_a_face():
    mesh, photo = synthetic_face()
    moles = photo.copy()
    for x in (250, 350):                                      # "eyes" brown throughout: a mole, not an eye
        cv2.ellipse(moles, (x, 300), (22, 9), 0, 0, 360, (50, 80, 140), -1)
    _, ycc, shifted = band(moles, mesh, 230, 345)
    assert not looks_like_part_of_a_face(ycc, shifted)
    plain = photo.copy()
    plain[380:] = SKIN                                        # no eyes in the frame, and no mouth either
    _, ycc, shifted = band(noisy(plain), mesh, 370, 460)
    assert not looks_like_part_of_a_face(ycc, shifted)


class FoundMesh:
    """Stands in for mesh.FaceMesher: close_up_mesh gives a fixed mesh (or None)."""

    def __init__(self, mesh):
        self.points = mesh
        self.asked = 0

    def close_up_mesh(self, bgr):
        self.asked += 1
        return self.points


def test_part_of_a_face_is_a_partial_face_with_its_mesh_and_a_box_in_the_frame():
    mesh, photo = synthetic_face()
    crop, _, shifted = band(photo, mesh, 230, 345)
    face = part_of_a_face(crop, FoundMesh(shifted))
    assert face is not None and face.partial and face.mesh is shifted
    x0, y0, x1, y1 = face.box
    assert all(isinstance(v, int) for v in face.box)          # a manifest record's box: plain ints
    assert y0 == 0 and y1 == crop.shape[0]                    # the oval reaches beyond the frame: clipped
    assert 0 <= x0 < 50 and crop.shape[1] - 50 < x1 <= crop.shape[1]
    assert part_of_a_face(crop, FoundMesh(None)) is None
    assert part_of_a_face(photo, FoundMesh(mesh)) is None     # the whole face: rejected


def test_part_of_a_face_cuts_eyes_and_brows_from_a_close_up_without_asking_for_a_person():
    mesh, photo = synthetic_face()
    crop, _, shifted = band(photo, mesh, 230, 345)
    part = part_of_a_face(crop, FoundMesh(shifted))
    asked = []
    estimate = adaptive_mask(crop, [part], lambda: asked.append(1), SkinParams())
    assert not asked                                          # a close-up: no person segmenter
    assert estimate.close_up and estimate.faces == [part]
    assert estimate.mask[70, 100] == 0 and estimate.mask[70, 200] == 0      # the eyes
    assert estimate.mask[35, 100] == 0                                      # a brow
    assert estimate.mask[105, 150] == 255 and estimate.mask[60, 150] == 255   # cheek, between the eyes
    without = adaptive_mask(crop, [], None, SkinParams())                   # before: the brows were skin
    assert without.mask[35, 100] == 255


def region_share(mask, regions):
    """The share of the pixels in `regions` (0/255, same size) that mask calls skin."""
    inside = regions > 0
    return np.count_nonzero(mask[inside]) / np.count_nonzero(inside)


def whole_mask(photo, result):
    mask = np.zeros(photo.shape[:2], np.uint8)
    x0, y0, x1, y1 = result.region
    mask[y0:y1, x0:x1] = result.mask
    return mask


# The example's close-ups of eyes, where no face can be detected: what is not
# skin and what is, drawn in the file's pixels (checked on the image).
def eyes_close_up():
    """train/Close Up/1.jpg (225 x 163): eyes, brows, a blonde fringe."""
    not_skin, skin = np.zeros((163, 225), np.uint8), np.zeros((163, 225), np.uint8)
    for centre, axes in (((57, 104), (22, 7)), ((163, 108), (22, 7))):          # the eyes
        cv2.ellipse(not_skin, centre, axes, 0, 0, 360, 255, -1)
    for centre, angle in (((53, 76), 6), ((178, 84), 6)):                        # the brows
        cv2.ellipse(not_skin, centre, (24, 3), angle, 0, 360, 255, -1)
    not_skin[0:20, 60:225] = 255                                                 # the fringe
    skin[58:68, 80:140] = 255                                                    # forehead
    skin[128:150, 60:170] = 255                                                  # below the eyes, nose
    return not_skin, skin


def glasses_close_up():
    """train/Close Up/3.jpg (320 x 149): eyes behind glasses; the frame's dark upper rims."""
    not_skin, skin = np.zeros((149, 320), np.uint8), np.zeros((149, 320), np.uint8)
    for centre, axes in (((100, 60), (20, 9)), ((285, 65), (20, 9))):            # the eyes
        cv2.ellipse(not_skin, centre, axes, 0, 0, 360, 255, -1)
    cv2.polylines(not_skin, [np.array([(10, 26), (50, 23), (100, 28), (140, 38)], np.int32)], False, 255, 5)
    cv2.polylines(not_skin, [np.array([(245, 46), (270, 39), (310, 36)], np.int32)], False, 255, 4)
    skin[5:15, 150:250] = 255                                                    # forehead
    skin[100:140, 30:130] = 255                                                  # cheek
    return not_skin, skin


@pytest.mark.parametrize("source, regions", [("train/Close Up/1.jpg", eyes_close_up),
                                             ("train/Close Up/3.jpg", glasses_close_up)])
def test_the_example_close_ups_of_eyes_do_not_call_eyes_brows_hair_or_glasses_skin(real_engines, source, regions):
    """Before, without a detected face, all of the eyes, brows and fringe were
    skin (100 % of train/1); the face mesh now finds part of a face there."""
    photo = cv2.imread(str(REPO / "examples/dataset_original" / source))
    result = segment(photo, PipelineConfig(face=FaceParams(crop=False)), real_engines)
    assert result.faces and result.faces[0].partial
    mask = whole_mask(photo, result)
    not_skin, skin = regions()
    assert region_share(mask, not_skin) < 0.15, f"{region_share(mask, not_skin):.0%} of eyes, brows, hair is skin"
    assert region_share(mask, skin) > 0.9, f"only {region_share(mask, skin):.0%} of the skin is skin"


def test_no_part_of_a_face_on_the_skin_close_ups_of_the_evaluation(real_engines, eval_dir):
    """Bellies, dermoscopy, feet and hands: the landmarker finds "faces" on
    about 1 in 20 of them padded; none is accepted as part of a face."""
    found = []
    for name in ("abdomen_train", "ph2_tune", "fuseg_tune", "hgr1_tune"):
        with open(eval_dir / name / "pairs.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                small, _ = working_copy(cv2.imread(str(eval_dir / name / row["image"])))
                if part_of_a_face(small, real_engines.mesher) is not None:
                    found.append(row["image"])
    assert not found


def test_the_close_up_mesh_is_placed_in_the_close_ups_own_pixels(real_engines):
    """The padded, scaled copies the close-up mesh is found on are undone: the
    irises it places on an eyes band cut from a portrait (enlarged, as a
    close-up would be) are where the portrait's own mesh puts them."""
    from skinseg.mesh import LEFT_EYE_CENTER, RIGHT_EYE_CENTER, with_meshes

    photo, _ = working_copy(cv2.imread(str(REPO / "examples/dataset_original/train/Normal Skin/1.jpg")))
    faces = with_meshes(real_engines.mesher, photo, real_engines.detector.detect(photo), 1)
    irises = faces[0].mesh[[RIGHT_EYE_CENTER, LEFT_EYE_CENTER]]
    d = float(np.hypot(*(irises[1] - irises[0])))
    x0, y0 = (int(v) for v in irises.min(0) - [0.9 * d, 0.6 * d])
    x1, y1 = (int(v) for v in irises.max(0) + [0.9 * d, 0.4 * d])
    factor = 3.0
    band = cv2.resize(photo[y0:y1, x0:x1], None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    assert not real_engines.detector.detect(band)                   # no whole face: a close-up
    points = real_engines.mesher.close_up_mesh(band)
    assert points is not None and points.shape == (M.POINT_COUNT, 2)
    expected = (irises - [x0, y0]) * factor
    assert np.abs(points[[RIGHT_EYE_CENTER, LEFT_EYE_CENTER]] - expected).max() < 0.1 * d * factor
