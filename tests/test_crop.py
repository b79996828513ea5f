"""The crop policy (crop.py) and how the report shows it."""

from urllib.parse import unquote

import cv2
import numpy as np

from conftest import make_dataset, read_manifest, run_cli, skin_image
from skinseg.config import FaceParams
from skinseg.crop import crop_region
from skinseg.face import Face
from skinseg.outputs import CROP_BOX_COLOR, is_whole, thumbnail_images

W, H = 1000, 800


def face(x: int, y: int, side: int, score: float = 0.9) -> Face:
    return Face((x, y, x + side, y + side), score)


def test_a_portrait_is_cropped_to_its_face_with_the_margin():
    params = FaceParams(margin=0.5, min_crop_side=0)
    assert crop_region([face(400, 300, 300)], params, W, H) == (250, 150, 850, 750)


def test_a_group_photo_keeps_every_face_not_only_the_best():
    faces = [face(100, 100, 120), face(700, 500, 130, score=0.95), face(400, 120, 110)]
    union = crop_region(faces, FaceParams(margin=0.35, min_crop_side=0), W, H)
    best = crop_region(faces, FaceParams(margin=0.35, crop_faces="best", min_crop_side=0), W, H)
    for f in faces:
        x0, y0, x1, y1 = f.box
        assert union[0] <= x0 and union[1] <= y0 and union[2] >= x1 and union[3] >= y1
    assert best == (654, 454, 876, 676)          # the best face alone, as the original tool did


def test_the_crop_keeps_the_skin_found_outside_the_faces():
    skin = np.zeros((H, W), np.uint8)
    skin[600:700, 50:150] = 255                      # an arm, far from the face
    skin[350:500, 420:580] = 255                     # the face's own skin
    faces = [face(400, 300, 200)]
    assert crop_region(faces, FaceParams(margin=0, min_crop_side=0), W, H, skin) == (50, 300, 600, 700)
    assert crop_region(faces, FaceParams(margin=0, min_crop_side=0, crop_to_skin=False), W, H, skin) == \
        (400, 300, 600, 500)
    # Skin alone never makes a crop: no face, the whole photo.
    assert is_whole(crop_region([], FaceParams(), W, H, skin), W, H)


def test_no_sliver_a_crop_is_grown_to_the_minimum_side_inside_the_photo():
    x0, y0, x1, y1 = crop_region([face(0, 0, 30)], FaceParams(min_crop_side=200), W, H)
    assert (x0, y0, x1, y1) == (0, 0, 200, 200)
    x0, y0, x1, y1 = crop_region([face(500, 400, 30)], FaceParams(margin=0, min_crop_side=200), W, H)
    assert (x0, y0, x1, y1) == (415, 315, 615, 515)     # around its centre
    # A photo smaller than the minimum: the whole photo.
    assert crop_region([face(10, 10, 30)], FaceParams(min_crop_side=200), 120, 90) == (0, 0, 120, 90)


def test_no_face_or_no_crop_is_the_whole_photo():
    assert crop_region([], FaceParams(), W, H) == (0, 0, W, H)
    assert crop_region([face(400, 300, 300)], FaceParams(crop=False), W, H) == (0, 0, W, H)


def test_photo_thumbnail_outlines_the_crop():
    photo = np.full((400, 600, 3), 90, np.uint8)
    skin = np.full((200, 300), 255, np.uint8)
    thumbs = thumbnail_images(photo, (100, 100, 400, 300), (600, 400), skin, 1)
    whole = thumbs["photo"]
    assert whole.shape == (120, 180, 3) and thumbs["crop"].shape == (120, 180, 3)
    assert tuple(whole[30, 60]) == CROP_BOX_COLOR          # on the box's top edge (100 px * 0.3)
    assert tuple(whole[60, 60]) == (90, 90, 90)           # inside it, the photo
    # The same thumbnails from a photo decoded at half size.
    half = thumbnail_images(photo[::2, ::2], (100, 100, 400, 300), (600, 400), skin, 1)
    assert half["crop"].shape == thumbs["crop"].shape and half["photo"].shape == whole.shape


def test_report_shows_the_photo_with_its_crop(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image(200, 160)})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    text = (dst / "report.html").read_text()
    assert 'alt="photo of train/A/1.jpg"' in text and "whole photo" in text
    path = text.split('alt="photo of train/A/1.jpg"')[0].rsplit('src="', 1)[1].split('"')[0]
    photo = cv2.imread(str(dst / unquote(path)))
    assert photo.shape == (144, 180, 3)
    assert read_manifest(dst)[0]["crop"] == [0, 0, 200, 160]
