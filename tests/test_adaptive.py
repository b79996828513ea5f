"""The adaptive skin method: synthetic faces for each mechanism, and real
photos with human masks (when SKINSEG_EVAL_DIR is set) as a quality floor."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from conftest import FixedFaces, noisy
from skinseg import colour_model
from skinseg.adaptive import AdaptiveParams, adaptive_mask, candidate_faces, plausible
from skinseg.config import CleanupParams, FaceParams, PipelineConfig, SkinParams
from skinseg.engines import Engines
from skinseg.face import Face, NoFaceDetector
from skinseg.facemap import face_geometry
from skinseg.pipeline import segment

SKIN = (105, 140, 205)          # BGR, a light skin tone
WALL = (150, 205, 235)          # beige: inside the original colour box, but not this person's skin
BLUE = (200, 60, 20)


def synthetic_portrait(size=400):
    """A face-like ellipse with dark eyes and red lips, a beige wall on the
    right and blue elsewhere; returns (image, face with keypoints)."""
    img = np.full((size, size, 3), BLUE, np.uint8)
    img[:, int(size * 0.78):] = WALL
    cx, cy = size // 2 - 30, size // 2
    cv2.ellipse(img, (cx, cy), (90, 120), 0, 0, 360, SKIN, -1)
    img = noisy(img)                                           # a little texture: real skin is not flat
    right_eye, left_eye = (cx - 35, cy - 30), (cx + 35, cy - 30)
    for eye in (right_eye, left_eye):
        cv2.ellipse(img, eye, (14, 7), 0, 0, 360, (30, 25, 20), -1)
    mouth = (cx, cy + 45)
    cv2.ellipse(img, mouth, (22, 8), 0, 0, 360, (60, 50, 170), -1)
    face = Face((cx - 85, cy - 95, cx + 85, cy + 85), 0.95,
                {"right_eye": right_eye, "left_eye": left_eye, "nose_tip": (cx, cy + 5), "mouth_center": mouth,
                 "right_ear_tragion": (cx - 85, cy - 20), "left_ear_tragion": (cx + 85, cy - 20)}, "test")
    return img, face


def test_face_seeded_model_rejects_a_wall_the_colour_box_accepts():
    from skinseg.skin import rules_mask

    img, face = synthetic_portrait()
    wall = (slice(50, 350), slice(330, 400))
    assert rules_mask(img, SkinParams())[wall].mean() > 200          # the old rule calls the wall skin
    mask, used, *_ = adaptive_mask(img, [face], None, SkinParams())
    assert used == [face]
    assert mask[wall].mean() < 10                                     # the adaptive model does not
    cx, cy = 170, 200
    assert mask[cy + 20, cx - 50] == 255 and mask[cy - 80, cx] == 255   # cheek and forehead
    assert mask[cy - 30, cx - 35] == 0 and mask[cy + 45, cx] == 0       # eye and lips cut out


def test_no_face_falls_back_to_a_self_seeded_model():
    img, _ = synthetic_portrait()
    mask, used, *_ = adaptive_mask(img, [], None, SkinParams())
    assert used == []
    assert mask[200, 110] == 255 and mask[10, 10] == 0


def test_implausible_faces_are_not_used():
    img, face = synthetic_portrait()
    kp = dict(face.keypoints)
    kp["mouth_center"] = (170, 120)                                  # mouth above the eyes
    upside = Face(face.box, face.score, kp, "test")
    assert not plausible(upside, face_geometry(upside), AdaptiveParams())
    assert candidate_faces([upside]) == []
    # The score threshold is the detector's (FaceParams.min_score): a face it gives is taken.
    low = Face(face.box, 0.2, face.keypoints, "test")
    assert candidate_faces([low]) != []
    # A box without keypoints (Haar) gets the average face layout.
    haar = Face(face.box, None, {}, "opencv")
    assert candidate_faces([haar]) != []


def test_a_face_without_dark_eyes_is_a_false_detection():
    """Detections on bellies and arms: uniform skin where the eyes should be."""
    img = np.full((400, 400, 3), SKIN, np.uint8)
    img = noisy(img, 1)
    fake = Face((100, 100, 300, 300), 0.9, {"right_eye": (160, 165), "left_eye": (240, 165),
                                           "mouth_center": (200, 255), "nose_tip": (200, 210)}, "test")
    mask, used, *_ = adaptive_mask(img, [fake], None, SkinParams())
    assert used == []                               # not used to seed, crop or cut eyes
    assert mask.mean() > 250                        # the self-seeded path keeps all the skin


def test_a_face_under_flat_light_is_still_a_face():
    """Lifted blacks (flat light, a washed-out scan) make real eyes look pale;
    the eye check measures them against the photo's own black level."""
    img, face = synthetic_portrait()
    flat = np.clip(60 + 0.6 * img.astype(np.float32), 0, 255).astype(np.uint8)
    _, used, *_ = adaptive_mask(flat, [face], None, SkinParams())
    assert used == [face]


def test_a_detection_the_landmarker_rejected_is_not_a_face():
    img, face = synthetic_portrait()
    no_mesh = face.with_mesh(None)                      # the landmarker looked and found nothing
    assert candidate_faces([no_mesh]) == []
    mask, used, *_ = adaptive_mask(img, [no_mesh], None, SkinParams())
    assert used == []


def test_colour_model_tolerates_shading_but_not_grey():
    """A shadowed cheek keeps its chromaticity, a grey backdrop or black hair
    of the same luminance does not have it."""
    rng = np.random.default_rng(0)
    skin = np.array([170, 150, 115], np.float64)                     # Y, Cr, Cb of a lit cheek
    seed = np.clip(skin + rng.normal(0, [12, 3, 3], (500, 3)), 0, 255).astype(np.uint8)
    model = colour_model.fit(seed, 2.5, 1.5, 1.25)
    shaded = 128 + (skin - 128) * 0.8
    shaded[0] = skin[0] * 0.8                                        # 80 % of the light
    grey = np.array([shaded[0], 128, 128])
    dark_warm = np.array([55, 134, 122])                             # dark brown hair
    pixels = np.array([skin, shaded, grey, dark_warm]).round().astype(np.uint8).reshape(1, 4, 3)
    bins = colour_model.bin_index(pixels)[0]
    d2, _ = colour_model.tables(model, colour_model.occupied_bins(bins))
    distance = np.sqrt(d2[bins])
    admit = AdaptiveParams().maha_thresh
    assert distance[0] < 1.5 and distance[1] < admit
    assert distance[2] > 1.5 * admit and distance[3] > 1.5 * admit, distance


def test_a_mask_over_the_whole_photo_is_held_to_the_colour_box():
    """The self-check: a model that admitted the whole frame keeps only what
    lies near the colour box's own pixels."""
    from skinseg.adaptive import _held_to_evidence

    box = np.zeros((200, 200), np.uint8)
    box[50:150, 50:150] = 255
    everything = np.full((200, 200), 255, np.uint8)
    held = _held_to_evidence(everything, box, AdaptiveParams())
    assert held[100, 100] == 255 and held[5, 5] == 0 and held[48, 100] == 255
    close_up = box.copy()
    close_up[150:155] = 255                                           # a little beyond the box: kept as it is
    assert (_held_to_evidence(close_up, box, AdaptiveParams()) == close_up).all()


def test_person_gate_drops_skin_coloured_background():
    img, face = synthetic_portrait()
    img[300:, :60] = SKIN                            # skin colour outside the person
    person = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(person, (170, 200), (100, 130), 0, 0, 360, 1.0, -1)
    with_gate, *_ = adaptive_mask(img, [face], person, SkinParams())
    without, *_ = adaptive_mask(img, [face], None, SkinParams())
    assert without[350, 30] == 255 and with_gate[350, 30] == 0
    # A segmenter that does not see a person at the face does not gate (nor seed).
    empty = np.zeros(img.shape[:2], np.float32)
    _, used, *_ = adaptive_mask(img, [face], empty, SkinParams())
    assert used == []


def test_segment_crops_only_to_a_face_that_seeded_the_model():
    img, face = synthetic_portrait()
    config = PipelineConfig()
    result = segment(img, config, Engines(FixedFaces([face])))
    assert result.face == face and result.region != (0, 0, 400, 400)
    assert result.mask.shape == (result.region[3] - result.region[1], result.region[2] - result.region[0])
    uniform = np.full((400, 400, 3), SKIN, np.uint8)
    fake = Face((100, 100, 300, 300), 0.9, {"right_eye": (160, 165), "left_eye": (240, 165),
                                           "mouth_center": (200, 255)}, "test")
    result = segment(uniform, config, Engines(FixedFaces([fake])))
    assert result.face is None and result.region == (0, 0, 400, 400)


def test_large_images_are_processed_on_a_working_copy_and_mask_upsampled():
    img, face = synthetic_portrait()
    big = cv2.resize(img, (1600, 1600), interpolation=cv2.INTER_NEAREST)
    # Faces come back from the detector in working-copy coordinates (640 px).
    small_face = face.scaled(640 / 400)
    result = segment(big, PipelineConfig(face=FaceParams(crop=False)), Engines(FixedFaces([small_face])))
    assert result.mask.shape == (1600, 1600)
    assert result.mask[800, 680] == 255 and result.mask[800, 1500] == 0
    assert result.face.box == face.scaled(4).box or all(abs(a - b) <= 2 for a, b in zip(result.face.box,
                                                                                          face.scaled(4).box))


# ------------------------------------------------------------- real photos

def _pooled_f1(eval_dir, subset, count, engines, config):
    tp = fp = fn = 0
    with open(eval_dir / subset / "pairs.csv") as handle:
        rows = list(csv.DictReader(handle))
    rows = rows[30:30 + count] if subset == "fasseg_tune" else rows[:count]
    for row in rows:
        img = cv2.imread(str(eval_dir / subset / row["image"]))
        truth = cv2.imread(str(eval_dir / subset / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        result = segment(img, config, engines)
        predicted = np.zeros_like(truth)
        x0, y0, x1, y1 = result.region
        predicted[y0:y1, x0:x1] = result.mask > 0
        tp += np.count_nonzero(predicted & truth)
        fp += np.count_nonzero(predicted & ~truth)
        fn += np.count_nonzero(~predicted & truth)
    return 2 * tp / (2 * tp + fp + fn)


@pytest.mark.parametrize("subset, count, floor, gain", [
    # Floors sit below the full-set figures of docs/quality.md; gain: how much
    # better than the original rules it must be on the same photos.
    ("pratheepan_face", 16, 0.88, 0.15),
    ("pratheepan_family", 16, 0.70, 0.25),
    ("abdomen_train", 200, 0.89, 0.01),
    # Multi-pose faces with dark hair (FASSEG's Pointing'04 part, from its 30th
    # photo): the method before the face mesh called the hair skin (F1 0.80, precision 0.68 here).
    ("fasseg_tune", 60, 0.88, 0.0),
    ("lfw_parts_tune", 60, 0.82, 0.03),
    # Street photos, whole clothed bodies and small faces: the coat, trousers or knit the
    # model admitted were skin (F1 0.49 here before regions.py; 0.64 now).
    ("ccp_tune", 40, 0.60, 0.30),
    # Hands in rooms, no face: a yellow wall or orange shirt beside the hand was skin
    # (0.86 here, level with the rules; 0.93 now).
    ("hgr1_tune", 28, 0.90, 0.04),
])
def test_quality_floor_on_real_photos(eval_dir, real_engines, subset, count, floor, gain):
    whole_frame = PipelineConfig(face=FaceParams(crop=False))
    adaptive = _pooled_f1(eval_dir, subset, count, real_engines, whole_frame)
    rules_config = PipelineConfig(face=whole_frame.face, skin=SkinParams(method="rules"),
                                  cleanup=CleanupParams(keep="largest"))
    rules = _pooled_f1(eval_dir, subset, count, Engines(NoFaceDetector()), rules_config)
    assert adaptive >= floor, f"{subset}: F1 {adaptive:.3f} < {floor}"
    assert adaptive >= rules + gain, f"{subset}: adaptive {adaptive:.3f} vs rules {rules:.3f}"


def test_the_readme_photo_has_no_hair_and_no_features_as_skin(real_engines):
    """The astronaut's blonde hair was skin before the face mesh; now the mask
    stays below the hairline, and eyes and mouth are cut with their outlines."""
    from pathlib import Path

    from skinseg import mesh as M

    repo = Path(__file__).resolve().parent.parent
    photo = cv2.imread(str(repo / "examples/dataset_original/train/Normal Skin/1.jpg"))
    result = segment(photo, PipelineConfig(face=FaceParams(crop=False)), real_engines)
    assert result.face is not None and result.face.mesh is not None
    mesh = result.face.mesh
    top, chin = mesh[10], mesh[152]
    hair = result.mask[:int(top[1] - 0.1 * np.hypot(*(chin - top)))]
    assert np.count_nonzero(hair) < 0.01 * np.count_nonzero(result.mask)
    for outline in (M.LIPS, M.RIGHT_EYE, M.LEFT_EYE):
        inside = np.zeros(photo.shape[:2], np.uint8)
        cv2.fillPoly(inside, [np.round(mesh[list(outline)]).astype(np.int32)], 255)
        inside = cv2.erode(inside, np.ones((3, 3), np.uint8))
        assert not result.mask[inside > 0].any(), "a feature of the face was called skin"
    for cheek in (50, 280):
        x, y = np.round(mesh[cheek]).astype(int)
        assert result.mask[y, x] == 255
