"""Face detection behind one small interface.

A detector is anything with ``name``, ``detect(bgr) -> list[Face]`` and
``close()``.  Three exist: MediaPipe BlazeFace (boxes, scores and six
keypoints), OpenCV's Haar cascade (ships inside OpenCV, works offline, boxes
only) and ``none``.  `plan_detector` decides in the parent process which one a
build uses; `open_detector` builds it inside each worker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import cv2
import numpy as np

from . import config
from ._quiet import native_stderr_silenced
from .imageio import downscaled
from .models import FACE_FULL_RANGE, FACE_SHORT_RANGE, NOT_USED, ModelFile, ModelRefused, ModelUnavailable, provide
from .modeluse import BUILTIN, FALLBACK, OFF, ModelUse

# BlazeFace keypoint order; "right"/"left" are the subject's own sides.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")



@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]              # x0, y0, x1, y1 in image pixels, x1/y1 exclusive
    score: Optional[float]                      # None when the detector has no score (Haar)
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)   # pixel coordinates
    detector: str = ""
    # The 478-point face mesh (mesh.py), (478, 2) pixel coordinates, when one was found.
    mesh: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    mesh_tried: bool = False                    # the landmarker looked at this face (found a mesh or not)
    # Part of a face on a close-up (partface.py): found by the landmarker where
    # the detector found no face; the rest of the face is beyond the frame.
    partial: bool = False

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return max(0, x1 - x0) * max(0, y1 - y0)

    def scaled(self, factor: float) -> "Face":
        """The same face in an image resized by factor."""
        if factor == 1.0:
            return self
        points = {k: (x * factor, y * factor) for k, (x, y) in self.keypoints.items()}
        return Face(tuple(int(round(c * factor)) for c in self.box), self.score, points, self.detector,
                    None if self.mesh is None else self.mesh * np.float32(factor), self.mesh_tried, self.partial)

    def with_mesh(self, mesh: Optional[np.ndarray]) -> "Face":
        """The face as the landmarker saw it: its mesh, or None where it found no face."""
        return Face(self.box, self.score, self.keypoints, self.detector, mesh, True, self.partial)

    def to_record(self) -> dict:
        return {"box": list(self.box), "score": None if self.score is None else round(self.score, 4),
                "detector": self.detector}


class FaceDetector(Protocol):
    name: str

    def detect(self, bgr: np.ndarray) -> list[Face]: ...

    def close(self) -> None: ...


def confidence_order(face: Face) -> tuple:
    """Sort key: the most confident face first (no score counts as sure), ties by box."""
    return -(1.0 if face.score is None else face.score), face.box


def best_face(faces: list[Face]) -> Optional[Face]:
    """The face the image is about: the largest, weighted by confidence, so a
    big confident face beats a small background face listed first."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f.area * (1.0 if f.score is None else f.score), f.box))


def _clip_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> tuple[int, int, int, int]:
    return (int(max(0, min(width, round(x0)))), int(max(0, min(height, round(y0)))),
            int(max(0, min(width, round(x1)))), int(max(0, min(height, round(y1)))))


class NoFaceDetector:
    name = "none"

    def detect(self, bgr: np.ndarray) -> list[Face]:
        return []

    def close(self) -> None:
        pass


class MediaPipeFaceDetector:
    """BlazeFace through the MediaPipe Tasks API."""

    name = "mediapipe"

    def __init__(self, model_path: Path, min_score: float):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                             min_detection_confidence=min_score)
        with native_stderr_silenced():
            self._detector = vision.FaceDetector.create_from_options(options)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        import mediapipe as mp

        height, width = bgr.shape[:2]
        small, scale = downscaled(bgr, config.WORK_SIZE)      # BlazeFace looks at 128-192 px anyway
        rgb = np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        small_h, small_w = rgb.shape[:2]
        with native_stderr_silenced():
            result = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        faces = []
        for detection in result.detections:
            b = detection.bounding_box
            box = _clip_box(b.origin_x / scale, b.origin_y / scale, (b.origin_x + b.width) / scale,
                            (b.origin_y + b.height) / scale, width, height)
            points = {name: (kp.x * small_w / scale, kp.y * small_h / scale)
                      for name, kp in zip(KEYPOINT_NAMES, detection.keypoints)}
            score = float(detection.categories[0].score) if detection.categories else None
            if box[2] > box[0] and box[3] > box[1]:
                faces.append(Face(box, score, points, self.name))
        return faces

    def close(self) -> None:
        if self._detector is not None:
            with native_stderr_silenced():
                self._detector.close()
            self._detector = None


class OpenCVFaceDetector:
    """OpenCV's frontal-face Haar cascade: no download, no keypoints, no
    calibrated score (reported as None)."""

    name = "opencv"

    def __init__(self, min_size_fraction: float = 0.08):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelUnavailable(f"OpenCV's Haar cascade could not be loaded from {path}")
        self._min_size_fraction = min_size_fraction

    def detect(self, bgr: np.ndarray) -> list[Face]:
        height, width = bgr.shape[:2]
        small, scale = downscaled(bgr, config.WORK_SIZE)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        min_side = max(20, int(min(gray.shape) * self._min_size_fraction))
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        faces = []
        for x, y, w, h in (boxes if len(boxes) else []):
            box = _clip_box(x / scale, y / scale, (x + w) / scale, (y + h) / scale, width, height)
            faces.append(Face(box, None, {}, self.name))
        return sorted(faces, key=lambda f: f.box)

    def close(self) -> None:
        pass


HAAR = "OpenCV's Haar cascade face detector"
HAAR_SIGNATURE = "opencv-haar-frontalface-default"


@dataclass(frozen=True)
class DetectorPlan:
    """What every worker opens: decided once, in the parent."""

    name: str                                  # 'mediapipe', 'opencv' or 'none'
    model_path: Optional[str] = None
    min_score: float = 0.5
    signature: str = "none"                    # identifies the model bytes, for resume fingerprints
    note: Optional[str] = None                 # a warning to show once (fallback taken)
    use: ModelUse = NOT_USED                   # what build.json records


def _mediapipe_model(explicit: Optional[Path], show_progress: bool
                     ) -> tuple[ModelFile, Optional[ModelUnavailable]]:
    """The model file, and why it is not the preferred one (None when it is).

    The full-range model finds small faces in group photos and is as good
    as the short-range one on close-ups; the short-range model (the only one
    MediaPipe lists for the Tasks API) is the fallback.  A wrong file under
    either name is refused (ModelRefused), not skipped."""
    if explicit is not None:
        return provide(FACE_FULL_RANGE, explicit), None
    try:
        return provide(FACE_FULL_RANGE, show_progress=show_progress), None
    except ModelRefused:
        raise
    except ModelUnavailable as full_range:
        try:
            return provide(FACE_SHORT_RANGE, show_progress=show_progress), full_range
        except ModelRefused:
            raise
        except ModelUnavailable:
            raise full_range from None   # name the preferred model; the short one is the fallback


def plan_detector(enabled: bool, requested: str, explicit_model: Optional[Path], min_score: float,
                  show_progress: bool = False) -> DetectorPlan:
    """Resolve --face-detector: 'auto' uses MediaPipe when its model can be
    had, else OpenCV with one warning; 'mediapipe' without a model is an
    error (ModelUnavailable), because the user asked for it by name."""
    if not enabled:
        return DetectorPlan("none", use=ModelUse(OFF, "not used", reason="--no-face"))
    if requested == "opencv":
        return DetectorPlan("opencv", signature=HAAR_SIGNATURE,
                            use=ModelUse(BUILTIN, HAAR, reason="--face-detector opencv"))
    try:
        found, not_preferred = _mediapipe_model(explicit_model, show_progress)
    except ModelRefused:
        raise
    except ModelUnavailable as exc:
        if requested == "mediapipe" or explicit_model is not None:
            raise
        return DetectorPlan("opencv", signature=HAAR_SIGNATURE,
                            note=f"{exc}; using OpenCV's Haar face detector instead",
                            use=ModelUse(FALLBACK, HAAR, wanted=FACE_FULL_RANGE.filename, reason=exc.cause))
    signature = f"mediapipe:{found.sha256[:16]}:{min_score}"
    if not_preferred is None:
        use = found.use(FACE_FULL_RANGE)
        if explicit_model is not None:       # the user's file: full or short range, it does not say
            use = dataclasses.replace(use, used="MediaPipe BlazeFace face detector")
        return DetectorPlan("mediapipe", str(found.path), min_score, signature, use=use)
    use = dataclasses.replace(found.use(FACE_SHORT_RANGE), status=FALLBACK, wanted=FACE_FULL_RANGE.filename,
                              reason=not_preferred.cause)
    return DetectorPlan("mediapipe", str(found.path), min_score, signature,
                        note=f"{not_preferred}; using {FACE_SHORT_RANGE.filename} instead (it misses more small faces)",
                        use=use)


def open_detector(plan: DetectorPlan) -> FaceDetector:
    if plan.name == "mediapipe":
        return MediaPipeFaceDetector(Path(plan.model_path), plan.min_score)
    if plan.name == "opencv":
        return OpenCVFaceDetector()
    return NoFaceDetector()
