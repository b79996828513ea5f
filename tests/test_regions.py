"""Regions unlike skin (regions.py) and mouths on close-ups (mouth.py): each
stage on synthetic arrays, then through adaptive_mask, then on real photos
(when SKINSEG_EVAL_DIR / SKINSEG_MODEL_DIR are set)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import noisy
from skinseg.adaptive import adaptive_mask
from skinseg.config import FaceParams, PipelineConfig, SkinParams
from skinseg.mouth import find_mouth, teeth
from skinseg.pipeline import segment
from skinseg.regions import (
    RegionParams,
    body_skin_share,
    drop_outside_person,
    drop_unlike_regions,
    edge_regions,
    region_means,
)

REPO = Path(__file__).resolve().parent.parent
C = RegionParams().coarse        # distance and texture are given on every C-th row and column


def two_halves(size=120):
    """A luminance image with a step between its left and right halves (an
    edge), and a mask over all of it."""
    luma = np.full((size, size), 90, np.uint8)
    luma[:, size // 2:] = 170
    return luma, np.full((size, size), 255, np.uint8)


def test_edge_regions_cut_the_mask_along_the_photo_s_edges():
    luma, mask = two_halves()
    count, labels = edge_regions(mask, luma)
    left, right = labels[60, 20], labels[60, 100]
    assert left > 0 and right > 0 and left != right
    assert count == 3                       # not skin or on the edge, left, right
    means = region_means(labels, count, np.where(np.arange(120) < 60, 1.0, 3.0)[None, :].repeat(120, 0))
    assert means[left] == pytest.approx(1.0) and means[right] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="differ in size"):
        edge_regions(mask[:10], luma)


def test_a_region_unlike_skin_on_average_is_dropped_and_the_face_is_kept():
    luma, mask = two_halves()
    distance = np.zeros(mask.shape, np.float32)
    distance[:, :60] = 1.0                  # like the face's skin
    distance[:, 60:] = 2.4                  # admitted at the margin: a coat
    texture = np.full(mask.shape, 6, np.uint8)
    faces = np.zeros(mask.shape, np.uint8)
    cv2.circle(faces, (100, 20), 6, 255, -1)    # a (small) face inside the coat's region
    out = drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], faces, 1)
    assert out[:, :58].all() and not out[60:, 62:].any()
    assert out[faces > 0].all()             # the face's own pixels are never dropped
    # Rough (knit, fur): a texture term pushes a region whose colour alone passes over the line.
    distance[:, 60:] = 1.5
    assert drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], faces, 1)[60, 100] == 255
    texture[:, 60:] = 12
    assert drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], faces, 1)[60, 100] == 0
    with pytest.raises(ValueError):
        drop_unlike_regions(mask, luma, distance, texture[::C, ::C], faces, 1)
    with pytest.raises(ValueError):
        drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], faces, 0)


def test_a_region_smaller_than_a_face_may_be_less_like_it():
    """A hand is lit and coloured unlike the face the model was fitted to."""
    luma, mask = two_halves()
    distance = np.full(mask.shape, 2.4, np.float32)
    distance[:, :60] = 1.0
    texture = np.full(mask.shape, 6, np.uint8)
    big_face, small_face = np.zeros(mask.shape, np.uint8), np.zeros(mask.shape, np.uint8)
    big_face[:, :70] = 255                  # one face larger than the right half
    small_face[:10, :10] = 255              # a face of 100 pixels: the right half is far larger
    assert drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], big_face, 1)[60, 100] == 255
    assert drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], small_face, 1)[60, 100] == 0
    no_allowance = RegionParams(small_allowance=0.0)
    strict = drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], big_face, 1, no_allowance)
    assert strict[60, 100] == 0


def test_the_unlike_part_of_a_region_that_runs_across_a_gap_in_the_edges_is_dropped():
    """Bare legs joined to a skirt without an edge between them: the region
    as a whole passes, the skirt's part, judged by its neighbourhood, does not."""
    mask = np.full((120, 240), 255, np.uint8)
    luma = np.full(mask.shape, 120, np.uint8)          # no edge anywhere
    distance = np.full(mask.shape, 1.0, np.float32)
    distance[:, 150:] = 3.2                              # 38 % of the region: mean 1.8, below max_unlike
    texture = np.full(mask.shape, 6, np.uint8)
    faces = np.zeros(mask.shape, np.uint8)
    faces[:5, :5] = 255
    out = drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], faces, 1)
    assert out[:, :120].all() and not out[:, 190:].any()
    far = RegionParams(max_unlike_nearby=5.0)
    assert drop_unlike_regions(mask, luma, distance[::C, ::C], texture[::C, ::C], faces, 1, far).all()


def test_a_region_outside_the_person_is_dropped_only_where_the_segmenter_saw_the_skin():
    luma, mask = two_halves()
    person = np.zeros(mask.shape, np.float32)
    person[:, :60] = 0.9                    # the arm's half is a person, the wall's half is not
    out = drop_outside_person(mask, luma, person)
    assert out[:, :58].all() and not out[:, 62:].any()
    # A close-up the segmenter does not see as a person: nothing to trust, nothing dropped.
    assert (drop_outside_person(mask, luma, np.zeros(mask.shape, np.float32)) == mask).all()
    assert drop_outside_person(mask, luma, None) is mask
    # Asked for only when there is more than one region.
    assert (drop_outside_person(mask, luma, lambda: person) == out).all()
    lone = np.zeros(mask.shape, np.uint8)
    lone[:, :58] = 255
    assert drop_outside_person(lone, luma, lambda: pytest.fail("the segmenter was asked")) is lone
    with pytest.raises(ValueError, match="differ in size"):
        drop_outside_person(mask, luma, person[:5])


def test_a_wall_beside_a_hand_is_not_skin_without_a_face():
    """A hand in front of a shirt and a skin-coloured wall, no face: the
    person segmenter's map now judges the regions (before, it was ignored
    without a face and the wall was skin)."""
    img = np.full((240, 320, 3), (60, 60, 60), np.uint8)               # grey shirt
    img[:, 250:] = (110, 150, 205)                                       # a wall the colour of skin
    cv2.ellipse(img, (130, 120), (70, 45), 0, 0, 360, (105, 140, 205), -1)   # the hand
    img = noisy(img)
    person = np.zeros(img.shape[:2], np.float32)
    person[:, :240] = 0.95
    estimate = adaptive_mask(img, [], person, SkinParams())
    assert estimate.mask[120, 130] == 255
    assert not estimate.mask[:, 256:].any()
    assert adaptive_mask(img, [], None, SkinParams()).mask[:, 256:].mean() > 200   # without the map: the wall


def test_body_skin_share_measures_the_person_below_the_head():
    person = np.zeros((200, 100), np.float32)
    person[10:200, 20:80] = 1.0                     # a standing person
    face = (40, 10, 60, 35)                         # a small face at the top
    mask = np.zeros(person.shape, np.uint8)
    mask[10:40, 35:65] = 255                        # the face (and neck) only
    assert body_skin_share(mask, person, [face]) < 0.05
    mask[40:200, 20:80] = 255                       # ... and the whole clothed body
    assert body_skin_share(mask, person, [face]) > 0.9
    assert body_skin_share(mask, None, [face]) is None
    assert body_skin_share(mask, person, []) is None
    portrait = np.zeros(person.shape, np.float32)
    portrait[10:60, 20:80] = 1.0                    # head and shoulders: the body is a neck
    assert body_skin_share(mask, portrait, [face]) is None
    with pytest.raises(ValueError):
        body_skin_share(mask, person[:10], [face])


def test_without_a_face_the_segmenter_is_asked_only_where_there_is_something_to_judge():
    """It costs about 4 ms: a close-up the skin fills has no background for it
    to judge, and a lone hand has nothing beside it to drop."""
    asked = []

    def person_of(shape):
        def compute():
            asked.append(shape)
            return np.full(shape, 0.95, np.float32)
        return compute

    hand = noisy(np.full((240, 320, 3), (60, 60, 60), np.uint8))
    cv2.ellipse(hand, (130, 120), (70, 45), 0, 0, 360, (105, 140, 205), -1)
    wall = hand.copy()
    wall[:, 250:] = (110, 150, 205)                                      # a wall the colour of skin
    adaptive_mask(noisy(wall), [], person_of(hand.shape[:2]), SkinParams())
    assert len(asked) == 1
    estimate = adaptive_mask(hand, [], person_of(hand.shape[:2]), SkinParams())
    assert len(asked) == 1 and estimate.mask[120, 130] == 255          # one region: nothing to judge
    close_up = noisy(np.full((240, 320, 3), (105, 140, 205), np.uint8))
    estimate = adaptive_mask(close_up, [], person_of(close_up.shape[:2]), SkinParams())
    assert len(asked) == 1 and estimate.mask.mean() > 200


def synthetic_mouth(size=200, with_lips=True):
    """Skin with a smile: a band of teeth (white, with dark gaps) framed by
    pink lips; returns the YCrCb image and a skin mask around the mouth."""
    bgr = np.full((size, size, 3), (120, 150, 210), np.uint8)
    if with_lips:
        cv2.ellipse(bgr, (100, 110), (60, 22), 0, 0, 360, (125, 120, 215), -1)
    cv2.ellipse(bgr, (100, 110), (48, 11), 0, 0, 360, (235, 240, 242), -1)
    for x in range(60, 141, 12):
        cv2.line(bgr, (x, 100), (x, 120), (90, 90, 95), 1)
    ycc = cv2.cvtColor(noisy(bgr), cv2.COLOR_BGR2YCrCb)
    skin = np.full((size, size), 255, np.uint8)
    cv2.ellipse(skin, (100, 110), (62, 24), 0, 0, 360, 0, -1)
    return ycc, skin


def test_teeth_framed_by_lips_are_a_mouth():
    ycc, skin = synthetic_mouth()
    assert teeth(ycc, skin)[110, 100] and not teeth(ycc, skin)[30, 30]
    mouth = find_mouth(ycc, skin)
    assert mouth is not None
    assert mouth[110, 100] == 255 and mouth[110, 50] == 255          # teeth and the lips' corner
    assert not mouth[30, 30] and not mouth[180, 100]                  # the skin around it


def test_a_white_patch_without_lips_is_not_a_mouth():
    """Scale or a bandage on skin: bright and colourless, but no lips frame it."""
    ycc, skin = synthetic_mouth(with_lips=False)
    assert find_mouth(ycc, skin) is None
    round_patch = np.full((200, 200, 3), (120, 150, 210), np.uint8)
    cv2.circle(round_patch, (100, 100), 30, (235, 240, 242), -1)       # not a band
    assert find_mouth(cv2.cvtColor(round_patch, cv2.COLOR_BGR2YCrCb), np.full((200, 200), 255, np.uint8)) is None
    with pytest.raises(ValueError):
        teeth(ycc, skin[:10])


# The example's lower-face close-ups, where no face can be detected: the mouth
# (lips and teeth) as an ellipse, centre and half-axes in the file's pixels.
# (The example was reframed so that no photo is in two splits: one close-up
# shows a whole open mouth now; two others show lips cut by the frame's edge.)
MOUTHS = {"valid/Close Up/1.jpg": ((101, 53), (52, 21))}


@pytest.mark.parametrize("source", sorted(MOUTHS))
def test_the_example_mouth_close_ups_do_not_call_lips_and_teeth_skin(real_engines, source):
    """All of the mouth was skin at first (the lesion stage put the teeth
    back); found by its teeth (mouth.py), 43 % of it was; found as part of a
    face by the face mesh (partface.py), 17 % (the ellipse's rim)."""
    photo = cv2.imread(str(REPO / "examples/dataset_original" / source))
    result = segment(photo, PipelineConfig(face=FaceParams(crop=False)), real_engines)
    assert all(face.partial for face in result.faces)         # no face is detected: part of one is
    mouth = np.zeros(photo.shape[:2], np.uint8)
    centre, axes = MOUTHS[source]
    cv2.ellipse(mouth, centre, axes, 0, 0, 360, 255, -1)
    skin = np.zeros(photo.shape[:2], np.uint8)
    x0, y0, x1, y1 = result.region
    skin[y0:y1, x0:x1] = result.mask
    skin_share = np.count_nonzero(skin[mouth > 0]) / np.count_nonzero(mouth)
    assert skin_share < 0.25, f"{skin_share:.0%} of the mouth is skin"
