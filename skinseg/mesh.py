"""The 478-point face mesh (MediaPipe Face Landmarker) of every detected face.

The face detector gives a box and six keypoints; the mesh gives the real
outlines of the face oval, eyes, brows, lips and nose, which the adaptive
skin method uses to sample skin, to cut out what is not skin and to know
where hair can be.

The landmarker has its own detector, a short-range one that misses the small
faces of group photos.  So it is never run on the whole photo: each face the
full-range detector found is cut out as a square twice the size of its box,
scaled to `CROP_SIDE`, where the face is large for the landmarker's own
detector.  A detection on which the landmarker finds no face gets no mesh
(the adaptive method then falls back to the keypoints, or treats the face as
a false detection, see adaptive.py).

Optional: without its model the adaptive method places eyes and lips from
the detector's keypoints, as before.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ._quiet import native_stderr_silenced
from .face import Face, confidence_order
from .models import FACE_LANDMARKER, ModelPlan, plan_optional_model

# Landmark indices of the outlines, each in order around the region
# (MediaPipe's canonical face mesh; "right" / "left" are the subject's sides).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
# The nostril openings: between the alar crease, the columella and the tip.
RIGHT_NOSTRIL = (218, 79, 239, 238, 20, 60, 75, 166, 219)
LEFT_NOSTRIL = (438, 309, 459, 458, 250, 290, 305, 392, 439)
RIGHT_EYE_CENTER, LEFT_EYE_CENTER = 468, 473    # iris centres
MOUTH_CENTER = (13, 14)                         # inner lips, upper and lower middle
NOSE_TIP = 1
CHIN, BETWEEN_EYES = 152, 168

POINT_COUNT = 478
CROP_SIDE = 256          # the landmarker's own detector looks at 128 px, its mesh model at 256 px
MIN_PRESENCE = 0.5
# The landmarker's own detector sees the face large, in its crop: at 0.6 it
# confirms every face of the family photos (227 of 227) and none of the
# "faces" the full-range detector found on toes and knees (0 of 5).
MIN_DETECTION = 0.6
# On a close-up (partface.py) the landmarker sees the whole photo, padded: part
# of a face, its detector less sure (at 0.6 it finds 55 of the benchmark's 154
# mouth close-ups, at 0.3 115); partface.py checks what it finds.
CLOSE_UP_DETECTION = 0.3
CLOSE_UP_PAD = 0.5       # grey border, times the photo's long side, on every side
CLOSE_UP_SIDE = 320      # the close-up's long side before padding (the mesh model sees 256 px)
CLOSE_UP_GATE_SIDE = 128     # ...and for the detector that decides whether the mesh is asked
# The detector's box of part of a face reaches beyond the frame: at most this
# share inside (every close-up the benchmark accepts: 0.8 or less; 8 % of the
# abdominal close-ups' false faces, none of FUSeg's).
CLOSE_UP_MAX_INSIDE = 0.8
BUNDLED_DETECTOR = "face_detector.tflite"      # inside the landmarker's .task bundle (a zip)


def plan_mesher(enabled: bool, explicit_model: Optional[Path], show_progress: bool = False) -> ModelPlan:
    return plan_optional_model(FACE_LANDMARKER, enabled, explicit_model,
                               "eyes and lips placed from the detector's keypoints, hair less well separated",
                               "the face detector's keypoints (no face mesh)", show_progress)


def face_crop(face: Face) -> tuple[float, float, float]:
    """(x0, y0, side) of the square around a face box that the landmarker sees:
    twice the box, so the whole head and some context are in it."""
    x0, y0, x1, y1 = face.box
    side = 2.0 * max(x1 - x0, y1 - y0, 1)
    return (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2, side


def _square_crop(bgr: np.ndarray, x0: int, y0: int, side: int) -> tuple[np.ndarray, float]:
    """bgr[y0:y0+side, x0:x0+side], black where it leaves the image, scaled
    to CROP_SIDE; and the scale."""
    height, width = bgr.shape[:2]
    crop = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = bgr[sy0:sy1, sx0:sx1]
    scale = CROP_SIDE / side
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(crop, (CROP_SIDE, CROP_SIDE), interpolation=interpolation), scale


class FaceMesher:
    """The Face Landmarker, run on a square crop around each detected face."""

    def __init__(self, model_path: str):
        from mediapipe.tasks.python import BaseOptions, vision

        # Two faces per crop: in a group photo the crop may hold a neighbour,
        # and the mesh that belongs to the detection is picked below.
        options = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=model_path), num_faces=2,
                                               min_face_detection_confidence=MIN_DETECTION,
                                               min_face_presence_confidence=MIN_PRESENCE)
        with native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._model_path = model_path
        self._close_up = None           # (detector, landmarker), opened when a close-up first needs them

    def _close_up_tasks(self):
        from mediapipe.tasks.python import BaseOptions, vision

        if self._close_up is None:
            # The landmarker bundle's own face detector (the same bytes the landmarker runs).
            with zipfile.ZipFile(self._model_path) as bundle:
                detector_model = bundle.read(BUNDLED_DETECTOR)
            with native_stderr_silenced():
                detector = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
                    base_options=BaseOptions(model_asset_buffer=detector_model),
                    min_detection_confidence=CLOSE_UP_DETECTION))
                landmarker = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                    base_options=BaseOptions(model_asset_path=self._model_path), num_faces=1,
                    min_face_detection_confidence=CLOSE_UP_DETECTION, min_face_presence_confidence=MIN_PRESENCE))
            self._close_up = detector, landmarker
        return self._close_up

    def close_up_mesh(self, bgr: np.ndarray) -> Optional[np.ndarray]:
        """(478, 2) float32 landmarks, in bgr's pixels, of part of a face on
        a close-up, or None.  The landmarker's own detector needs a whole face
        in view: on the photo padded with a grey border it finds faces whose
        eyes or mouth alone are in the frame, and the mesh places the parts
        it sees well (median error 0.02 eye distances on close-ups cut from
        face photos, benchmarks/closeups.py).  The mesh (about 5 ms) is asked
        for only where the detector (about 1 ms) found a face whose box
        reaches beyond the frame (at most CLOSE_UP_MAX_INSIDE of it inside: a
        whole face in the frame is the full-range detector's, and on skin
        close-ups, bellies and feet, the detector's false faces lie inside
        the frame).  What the mesh finds is not checked here (partface.py
        does)."""
        detector, landmarker = self._close_up_tasks()
        # The detector sees 128 px: a small copy does (a fifth of the cost of the mesh's copy).
        image, pad, _, inner = _padded(bgr, CLOSE_UP_GATE_SIDE)
        with native_stderr_silenced():
            detections = detector.detect(image).detections
        frame = (pad, pad, pad + inner[1], pad + inner[0])
        if not any(_inside_share(d.bounding_box, frame) <= CLOSE_UP_MAX_INSIDE for d in detections):
            return None
        image, pad, scale, _ = _padded(bgr, CLOSE_UP_SIDE)
        with native_stderr_silenced():
            result = landmarker.detect(image)
        if not result.face_landmarks or len(result.face_landmarks[0]) < POINT_COUNT:
            return None
        side = np.array((image.width, image.height), np.float32)
        points = np.array([(p.x, p.y) for p in result.face_landmarks[0][:POINT_COUNT]], np.float32) * side
        return (points - np.float32(pad)) / np.float32(scale)

    def mesh(self, bgr: np.ndarray, face: Face) -> Optional[np.ndarray]:
        """(478, 2) float32 landmark positions in bgr's pixels, or None when the
        landmarker sees no face where the detector found one."""
        import mediapipe as mp

        x0, y0, side = (int(round(v)) for v in face_crop(face))
        crop, scale = _square_crop(bgr, x0, y0, side)
        rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        with native_stderr_silenced():
            result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        best, best_distance = None, None
        fx0, fy0, fx1, fy1 = face.box
        centre = np.array([(fx0 + fx1) / 2, (fy0 + fy1) / 2])
        for landmarks in result.face_landmarks:
            if len(landmarks) < POINT_COUNT:
                continue
            points = np.array([(p.x * CROP_SIDE, p.y * CROP_SIDE) for p in landmarks[:POINT_COUNT]], np.float32)
            points = points / scale + np.array([x0, y0], np.float32)
            nose = points[NOSE_TIP]
            # The mesh of this detection has its nose inside the detection's box.
            if not (fx0 <= nose[0] <= fx1 and fy0 <= nose[1] <= fy1):
                continue
            distance = float(np.hypot(*(nose - centre)))
            if best_distance is None or distance < best_distance:
                best, best_distance = points, distance
        return best

    def close(self) -> None:
        with native_stderr_silenced():
            self._landmarker.close()
            for task in self._close_up or ():
                task.close()


def _padded(bgr: np.ndarray, side: int):
    """The photo at long side `side` (never enlarged) with a grey border of
    CLOSE_UP_PAD times that on every side, as an mp.Image; and the border's
    width, the scale and the (H, W) of the photo inside it."""
    import mediapipe as mp

    height, width = bgr.shape[:2]
    scale = min(1.0, side / max(height, width))
    small = bgr if scale == 1.0 else cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                                                 interpolation=cv2.INTER_AREA)
    pad = int(round(CLOSE_UP_PAD * max(small.shape[:2])))
    padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(
        cv2.cvtColor(padded, cv2.COLOR_BGR2RGB)))
    return image, pad, scale, small.shape[:2]


def _inside_share(box, frame: tuple[int, int, int, int]) -> float:
    """The share of a detection's bounding box that lies inside frame (x0, y0, x1, y1)."""
    x0, y0 = box.origin_x, box.origin_y
    x1, y1 = x0 + box.width, y0 + box.height
    inside = max(0, min(x1, frame[2]) - max(x0, frame[0])) * max(0, min(y1, frame[3]) - max(y0, frame[1]))
    return inside / max(1, box.width * box.height)


def open_mesher(plan: ModelPlan) -> Optional[FaceMesher]:
    return FaceMesher(plan.model_path) if plan.model_path else None


def with_meshes(mesher: Optional[FaceMesher], bgr: np.ndarray, faces: list[Face], limit: int) -> list[Face]:
    """The faces, the `limit` most confident with their mesh attached."""
    if mesher is None or not faces:
        return faces
    ranked = sorted(range(len(faces)), key=lambda i: confidence_order(faces[i]))
    out = list(faces)
    for i in ranked[:limit]:
        out[i] = out[i].with_mesh(mesher.mesh(bgr, faces[i]))
    return out
