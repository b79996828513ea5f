"""Each pipeline stage alone, on synthetic arrays."""

import cv2
import numpy as np
import pytest

from conftest import SKIN_BGR, skin_image
from skinseg.cleanup import clean_mask, keep_components, morphology, skin_fraction
from skinseg.config import CleanupParams, SkinParams
from skinseg.crop import crop_box
from skinseg.face import Face, best_face
from skinseg.labels import class_color
from skinseg.outputs import label_mask, legend_image, preview_png, skin_only_image
from skinseg.skin import in_range_wrapping_hue, rules_mask


def test_rules_mask_separates_skin_from_blue():
    img = skin_image(100, 100)
    mask = rules_mask(img, SkinParams())
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert mask[50, 50] == 255 and mask[2, 2] == 0


def test_rules_bounds_are_honoured():
    img = np.full((10, 10, 3), SKIN_BGR, np.uint8)
    tight = SkinParams(ycrcb_min=(0, 170, 85))      # Cr of this colour is ~160
    assert rules_mask(img, tight).max() == 0
    assert rules_mask(img, SkinParams()).min() == 255


def test_hue_range_wraps_around_red():
    hsv = np.zeros((1, 4, 3), np.uint8)
    hsv[0, :, 0] = [2, 90, 175, 178]
    hsv[0, :, 1:] = 200
    mask = in_range_wrapping_hue(hsv, (170, 40, 60), (10, 255, 255))
    assert mask[0].tolist() == [255, 0, 255, 255]
    assert in_range_wrapping_hue(hsv, (0, 40, 60), (10, 255, 255))[0].tolist() == [255, 0, 0, 0]


def test_morphology_removes_speckles_and_fills_pinholes():
    mask = np.zeros((60, 60), np.uint8)
    cv2.circle(mask, (30, 30), 20, 255, -1)
    mask[30, 30] = 0          # pinhole
    mask[3, 3] = 255          # speckle
    out = morphology(mask, 5, 1)
    assert out[30, 30] == 255 and out[3, 3] == 0
    assert morphology(mask, 0, 1) is mask


def test_keep_largest_or_all_components():
    mask = np.zeros((100, 100), np.uint8)
    mask[10:50, 10:50] = 255     # 1600 px
    mask[70:90, 70:90] = 255     # 400 px
    mask[0:3, 97:100] = 255      # 9 px
    largest = keep_components(mask, "largest", 0.0)
    assert largest[20, 20] == 255 and largest[80, 80] == 0
    every = keep_components(mask, "all", 0.01)       # at least 100 px
    assert every[20, 20] == 255 and every[80, 80] == 255 and every[1, 98] == 0
    assert keep_components(np.zeros((5, 5), np.uint8), "largest", 0).max() == 0


def test_clean_mask_and_fraction():
    mask = rules_mask(skin_image(100, 100), SkinParams())
    cleaned = clean_mask(mask, CleanupParams())
    assert 0.3 < skin_fraction(cleaned) < 0.45


def test_crop_box_adds_margin_and_clips():
    assert crop_box((40, 40, 60, 60), 0.5, 100, 100) == (30, 30, 70, 70)
    assert crop_box((0, 0, 20, 20), 1.0, 30, 30) == (0, 0, 30, 30)
    assert crop_box((40, 40, 60, 60), 0.0, 100, 100) == (40, 40, 60, 60)


def test_best_face_prefers_large_confident_faces_not_the_first():
    small = Face((0, 0, 10, 10), 0.99)
    big = Face((20, 20, 80, 80), 0.8)
    doubtful_bigger = Face((0, 0, 90, 90), 0.2)
    assert best_face([small, big, doubtful_bigger]) is big
    assert best_face([]) is None
    assert best_face([Face((0, 0, 5, 5), None), Face((0, 0, 9, 9), None)]).box == (0, 0, 9, 9)


def test_outputs_render():
    img = skin_image(40, 30)
    skin = np.zeros((30, 40), np.uint8)
    skin[10:20, 10:30] = 255
    black = skin_only_image(img, skin, "black")
    assert (black[0, 0] == 0).all() and (black[15, 15] == img[15, 15]).all()
    rgba = skin_only_image(img, skin, "transparent")
    assert rgba.shape == (30, 40, 4) and rgba[0, 0, 3] == 0 and rgba[15, 15, 3] == 255
    assert skin_only_image(img, skin, "original") is img
    m8 = label_mask(skin, 3, "uint8")
    assert m8.dtype == np.uint8 and set(np.unique(m8)) == {0, 3}
    m16 = label_mask(skin, 300, "uint16")
    assert m16.dtype == np.uint16 and set(np.unique(m16)) == {0, 300}
    preview = cv2.imdecode(np.frombuffer(preview_png(skin, 2), np.uint8), cv2.IMREAD_COLOR)
    assert preview.shape == (30, 40, 3)
    assert tuple(preview[15, 15]) == class_color(2) and tuple(preview[0, 0]) == (0, 0, 0)
    assert (preview.any(axis=2) == (skin > 0)).all()
    # From the mask PNG's own pixel data (8-bit masks): the same picture.
    from skinseg.encoding import encode_image

    for class_id in (1, 2, 200):
        mask_png = encode_image(label_mask(skin, class_id, "uint8"), ".png")
        reused = cv2.imdecode(np.frombuffer(preview_png(skin, class_id, mask_png), np.uint8), cv2.IMREAD_COLOR)
        assert tuple(reused[15, 15]) == class_color(class_id) and tuple(reused[0, 0]) == (0, 0, 0)
        assert (reused.any(axis=2) == (skin > 0)).all()
    PIL = pytest.importorskip("PIL.Image")
    import io

    opened = PIL.open(io.BytesIO(preview_png(skin, 2, encode_image(label_mask(skin, 2, "uint8"), ".png"))))
    assert opened.mode == "P" and opened.getpixel((15, 15)) == 2    # ids survive in the preview


def test_class_colours_are_fixed_and_distinct():
    colours = [class_color(i) for i in range(1, 301)]
    assert class_color(0) == (0, 0, 0)
    assert class_color(1) == (0, 195, 243)     # Kelly's vivid yellow, as BGR
    # Well separated to the eye: CIELAB distance between any two of the
    # first 20 (a just-noticeable difference is about 2.3).
    lab = cv2.cvtColor(np.array([colours[:20]], np.float32) / 255, cv2.COLOR_BGR2Lab)[0]
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=2) + np.eye(20) * 1e9
    assert distances.min() > 15
    assert len(set(colours)) == len(colours)
    assert (0, 0, 0) not in colours


def test_legend_has_a_row_per_class():
    legend = legend_image(["Acne", "Normal Skin", "Rosacé"])
    assert legend.shape[0] == 28 * 4 + 8 and legend.dtype == np.uint8
    swatch = legend[4 + 28 + 10, 20]
    assert tuple(swatch) == class_color(1)
