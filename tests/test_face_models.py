"""Model provisioning and the three face detectors."""

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO
from skinseg import models
from skinseg.face import (
    KEYPOINT_NAMES,
    Face,
    MediaPipeFaceDetector,
    NoFaceDetector,
    OpenCVFaceDetector,
    open_detector,
    plan_detector,
)

HOPPER = REPO / "examples/dataset_original/train/Normal Skin/2.jpg"
ASTRONAUT = REPO / "examples/dataset_original/train/Normal Skin/1.jpg"


FAKE_TFLITE = b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64


def fake_tflite(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(FAKE_TFLITE)
    return path


def pinned_to(spec: models.ModelSpec, content: bytes) -> models.ModelSpec:
    """spec, pinned to a stand-in file's content."""
    return dataclasses.replace(spec, sha256=hashlib.sha256(content).hexdigest())


def test_find_model_prefers_model_dir_then_cache(tmp_path, monkeypatch):
    spec = pinned_to(models.FACE_SHORT_RANGE, FAKE_TFLITE)
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(tmp_path / "models"))
    assert models.find_model(spec) is None
    cached = fake_tflite(models.cache_dir() / spec.filename)
    assert models.find_model(spec) == cached
    in_dir = fake_tflite(tmp_path / "models" / spec.filename)
    assert models.find_model(spec) == in_dir


def test_non_tflite_file_is_not_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(tmp_path))
    (tmp_path / models.FACE_SHORT_RANGE.filename).write_text("<html>not a model</html>")
    with pytest.raises(models.ModelRefused, match="not even a TFLite model"):     # refused, not skipped
        models.find_model(models.FACE_SHORT_RANGE)
    with pytest.raises(models.ModelUnavailable, match="not a TFLite model"):
        models.ensure_model(models.FACE_SHORT_RANGE, tmp_path / models.FACE_SHORT_RANGE.filename)


def test_offline_without_model_says_how_to_get_it(no_models):
    with pytest.raises(models.ModelUnavailable) as info:
        models.ensure_model(models.FACE_SHORT_RANGE)
    message = str(info.value)
    assert "SKINSEG_OFFLINE" in message and models.ENV_MODEL_DIR in message and "https://" in message


def test_download_is_atomic_and_verified(tmp_path, monkeypatch, no_models):
    """A file:// URL stands in for the model server: nothing leaves the machine."""
    source = fake_tflite(tmp_path / "served.tflite")
    spec = models.ModelSpec("x", "x.tflite", source.as_uri(), "test model")
    monkeypatch.setenv(models.ENV_OFFLINE, "0")
    path = models.ensure_model(spec)
    assert path == models.cache_dir() / "x.tflite" and path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == [models.DIGESTS, "x.tflite"]

    bad = tmp_path / "bad.tflite"
    bad.write_text("<html>captive portal</html>")
    bad_spec = models.ModelSpec("y", "y.tflite", bad.as_uri(), "test model")
    with pytest.raises(models.ModelUnavailable, match="not a TFLite model"):
        models.ensure_model(bad_spec)
    missing = models.ModelSpec("z", "z.tflite", (tmp_path / "absent").as_uri(), "test model")
    with pytest.raises(models.ModelUnavailable, match="could not be downloaded"):
        models.ensure_model(missing)
    assert sorted(p.name for p in path.parent.iterdir()) == [models.DIGESTS, "x.tflite"]    # no partial files


def test_auto_falls_back_to_opencv_with_one_note(no_models):
    plan = plan_detector(True, "auto", None, 0.5)
    assert plan.name == "opencv" and "Haar" in plan.note
    with pytest.raises(models.ModelUnavailable):
        plan_detector(True, "mediapipe", None, 0.5)
    assert plan_detector(False, "auto", None, 0.5).name == "none"
    assert isinstance(open_detector(plan_detector(False, "auto", None, 0.5)), NoFaceDetector)


def test_opencv_detector_finds_the_face_offline():
    detector = OpenCVFaceDetector()
    image = cv2.imread(str(HOPPER))
    faces = detector.detect(image)
    assert faces, "Haar cascade found no face in the Grace Hopper photo"
    x0, y0, x1, y1 = max(faces, key=lambda f: f.area).box
    # Her face is around the middle of the upper half of the photo.
    assert x0 < 256 < x1 and y0 < 250 < y1
    assert faces[0].score is None and faces[0].keypoints == {}


def test_full_range_model_preferred_short_range_fallback(tmp_path, monkeypatch, model_dir):
    plan = plan_detector(True, "auto", None, 0.5)
    assert plan.model_path.endswith("blaze_face_full_range.tflite")
    only_short = tmp_path / "models"
    only_short.mkdir()
    (only_short / "blaze_face_short_range.tflite").symlink_to(model_dir / "blaze_face_short_range.tflite")
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(only_short))
    assert plan_detector(True, "auto", None, 0.5).model_path.endswith("blaze_face_short_range.tflite")


def test_mediapipe_detector_boxes_and_keypoints(model_dir):
    plan = plan_detector(True, "auto", None, 0.5)
    assert plan.name == "mediapipe" and plan.note is None
    detector = open_detector(plan)
    try:
        assert isinstance(detector, MediaPipeFaceDetector)
        image = cv2.imread(str(ASTRONAUT))
        faces = detector.detect(image)
        assert len(faces) >= 1
        face = max(faces, key=lambda f: f.area)
        x0, y0, x1, y1 = face.box
        assert face.score > 0.7
        assert set(face.keypoints) == set(KEYPOINT_NAMES)
        rx, ry = face.keypoints["right_eye"]        # subject's right eye: image left
        lx, ly = face.keypoints["left_eye"]
        mx, my = face.keypoints["mouth_center"]
        assert x0 < rx < lx < x1 and y0 < ry < my < y1
        # The same face found on a 4x larger copy maps back to the same place.
        big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        big_face = max(detector.detect(big), key=lambda f: f.area)
        assert all(abs(a / 4 - b) < 6 for a, b in zip(big_face.box, face.box))
    finally:
        detector.close()


def test_explicit_face_model_path(model_dir, no_models):
    plan = plan_detector(True, "mediapipe", model_dir / "blaze_face_short_range.tflite", 0.5)
    assert plan.name == "mediapipe" and plan.model_path == str(model_dir / "blaze_face_short_range.tflite")
    with pytest.raises(models.ModelUnavailable, match="does not exist"):
        plan_detector(True, "mediapipe", model_dir / "nope.tflite", 0.5)


def test_face_landmarker_bundle_is_provisioned_like_the_other_models(tmp_path, monkeypatch, no_models):
    zipped = b"\x00\x00PK\x03\x04" + b"\x00" * 64                  # a zip, as MediaPipe's bundles are
    spec = pinned_to(models.FACE_LANDMARKER, zipped)
    assert spec.kind == "task" and spec.url.endswith("face_landmarker.task") and spec.option == "--mesh-model"
    bundle = tmp_path / "models" / spec.filename
    bundle.parent.mkdir()
    bundle.write_bytes(zipped)
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(bundle.parent))
    assert models.find_model(spec) == bundle
    bundle.write_text("<html>captive portal</html>")
    with pytest.raises(models.ModelRefused, match="not even a MediaPipe task bundle"):
        models.find_model(spec)
    with pytest.raises(models.ModelUnavailable, match="not a MediaPipe task bundle"):
        models.ensure_model(spec, bundle)


def test_without_the_mesh_model_the_build_says_so_and_goes_on(no_models):
    from skinseg.mesh import plan_mesher

    plan = plan_mesher(True, None)
    assert plan.model_path is None and "--mesh-model" in plan.note and "keypoints" in plan.note
    assert plan_mesher(False, None).note is None
    with pytest.raises(models.ModelUnavailable, match="does not exist"):
        plan_mesher(True, Path("/nonexistent/face_landmarker.task"))


def test_face_mesh_on_real_faces_large_and_small(model_dir, eval_dir):
    """The mesh is found for the detector's faces, in image coordinates, also
    for the small faces of group photos (the landmarker's own detector is
    short-range: skinseg runs it on a crop around each detection)."""
    from skinseg.mesh import LEFT_EYE_CENTER, RIGHT_EYE_CENTER, open_mesher, plan_mesher, with_meshes
    from skinseg.pipeline import working_copy

    detector = open_detector(plan_detector(True, "auto", None, 0.5))
    mesher = open_mesher(plan_mesher(True, None))
    try:
        family = sorted((eval_dir / "pratheepan_family" / "images").glob("*.jpeg"))[:4]
        found = meshed = 0
        for path in [ASTRONAUT, *family]:
            photo, _ = working_copy(cv2.imread(str(path)))
            faces = with_meshes(mesher, photo, detector.detect(photo), limit=8)
            for face in faces:
                found += 1
                if face.mesh is None:
                    continue
                meshed += 1
                assert face.mesh_tried and face.mesh.shape == (478, 2)
                eyes = np.array([face.keypoints["right_eye"], face.keypoints["left_eye"]])
                irises = face.mesh[[RIGHT_EYE_CENTER, LEFT_EYE_CENTER]]
                assert np.abs(irises - eyes).max() < 0.5 * np.hypot(*(eyes[1] - eyes[0])) + 3   # the same face
        small = [f for path in family for f in detector.detect(working_copy(cv2.imread(str(path)))[0])
                 if f.box[2] - f.box[0] < 40]
        assert small, "the group photos have faces under 40 px wide"
        assert found >= 8 and meshed >= 0.85 * found
        # A "face" the detector might report on plain skin gets no mesh.
        skin = np.full((400, 400, 3), (120, 150, 200), np.uint8)
        fake = with_meshes(mesher, skin, [Face((100, 100, 300, 300), 0.9, {}, "test")], limit=8)[0]
        assert fake.mesh_tried and fake.mesh is None
    finally:
        detector.close()
        mesher.close()
