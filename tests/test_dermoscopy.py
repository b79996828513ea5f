"""A dermoscope's field of view (skinseg/dermoscopy.py): the lens's disc is
skin, a lesion that runs into the vignette included, the vignette is not; on
synthetic photos, and on the real ones (when SKINSEG_EVAL_DIR is set): found
on most dermoscopy photos and on no photo of any other kind."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import mask_of, noisy
from skinseg.dermoscopy import field_of_view, within_field_of_view
from skinseg.imageio import downscaled

SKIN = (150, 170, 215)          # BGR, pale dermoscopy skin
LESION = (35, 40, 60)           # as dark as the vignette
VIGNETTE = (25, 25, 30)
CLOTH = (70, 50, 40)            # dark jeans


def dermoscopy_photo() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, lesion truth, hair truth): a lens's disc of skin in a dark
    vignette, a dark lesion that touches the vignette, a hair across the skin."""
    photo = np.full((480, 640, 3), VIGNETTE, np.uint8)
    cv2.circle(photo, (320, 250), 340, SKIN, -1)                     # the corners stay dark
    lesion = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(lesion, (470, 250), (200, 110), 0, 0, 360, 255, -1)   # reaches the vignette on the right
    photo[lesion > 0] = LESION
    hair = np.zeros(photo.shape[:2], np.uint8)
    cv2.line(hair, (40, 80), (250, 420), 255, 2)
    photo[hair > 0] = VIGNETTE
    return noisy(photo), lesion, hair


def test_the_disc_is_found_and_a_lesion_touching_the_vignette_is_skin_but_not_a_hair():
    photo, lesion, hair = dermoscopy_photo()
    disc = field_of_view(photo)
    assert disc is not None
    assert disc[240, 320] and not disc[5, 5] and not disc[470, 630]
    skin_only = mask_of(photo, SKIN)
    result = within_field_of_view(skin_only, photo)
    inside = lesion.astype(bool) & (disc > 0)
    assert np.count_nonzero(result[inside]) >= 0.97 * np.count_nonzero(inside)
    assert not result[disc == 0].any()                               # the vignette is not skin
    assert np.count_nonzero(result[hair > 0]) <= 0.1 * np.count_nonzero(hair)


def test_keep_out_stays_out():
    photo, lesion, _ = dermoscopy_photo()
    keep_out = np.zeros(photo.shape[:2], np.uint8)
    keep_out[200:300, 500:560] = 255
    skin_only = mask_of(photo, SKIN)
    assert not within_field_of_view(skin_only, photo, keep_out)[keep_out > 0].any()


@pytest.mark.parametrize("kind", ["no vignette", "dark cloth below", "dark background all round"])
def test_photos_that_are_not_dermoscopy_are_left_alone(kind):
    photo = np.full((480, 640, 3), SKIN, np.uint8)
    if kind == "dark cloth below":               # a belly above dark jeans: two dark corners
        photo[330:] = CLOTH
    elif kind == "dark background all round":    # a person on black: dark corners, no lens's circle
        photo[:] = VIGNETTE
        cv2.ellipse(photo, (320, 300), (170, 260), 0, 0, 360, SKIN, -1)
    photo = noisy(photo, 1)
    mask = mask_of(photo, SKIN)
    assert field_of_view(photo) is None
    assert (within_field_of_view(mask, photo) == mask).all()


def test_found_on_dermoscopy_photos_and_on_no_other_kind(eval_dir):
    def found(subset: str, count: int) -> float:
        paths = sorted((eval_dir / subset / "images").iterdir())[:count]
        return np.mean([field_of_view(downscaled(cv2.imread(str(p)), 640)[0]) is not None for p in paths])

    assert found("ph2_tune", 40) >= 0.7
    for subset in ("fuseg_tune", "abdomen_train", "pratheepan_face", "pratheepan_family", "fasseg_tune",
                   "lfw_parts_tune"):
        assert found(subset, 60) == 0, subset
