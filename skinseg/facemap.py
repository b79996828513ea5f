"""Where things are on a face, for the adaptive skin method.

From the 478-point mesh when the face has one (mesh.py): the real outlines of
the face oval, eyes, brows, lips and nostrils.  Otherwise from the detector's
six keypoints (or, for OpenCV's Haar boxes, the average keypoint layout): eye
and lip ellipses sized from the average face.

Everything is in the coordinates of the image the face was found in (the
pipeline's working copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import mesh as M
from .face import Face

# Keypoint positions relative to a BlazeFace box, for detectors without
# keypoints (OpenCV's Haar cascade): medians over the evaluation photos.
_BOX_EYE_X = (0.313, 0.711)
_BOX_EYE_Y = 0.325

FEATURE_OUTLINES = (M.RIGHT_EYE, M.LEFT_EYE, M.RIGHT_BROW, M.LEFT_BROW, M.LIPS, M.RIGHT_NOSTRIL, M.LEFT_NOSTRIL)


@dataclass(frozen=True)
class FaceGeometry:
    right_eye: np.ndarray
    left_eye: np.ndarray
    mouth: np.ndarray
    mid: np.ndarray          # between the eyes
    d: float                 # eye distance
    u: np.ndarray            # unit vector along the eye line
    v: np.ndarray            # unit vector perpendicular to it, towards the chin
    width: float             # box width
    mesh: Optional[np.ndarray] = None     # (478, 2) when the face has a mesh

    def polygon(self, indices: tuple[int, ...]) -> np.ndarray:
        assert self.mesh is not None
        return np.round(self.mesh[list(indices)]).astype(np.int32)


def face_geometry(face: Face) -> Optional[FaceGeometry]:
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    kp = face.keypoints
    mesh = face.mesh
    if mesh is not None:
        right, left = mesh[M.RIGHT_EYE_CENTER].astype(float), mesh[M.LEFT_EYE_CENTER].astype(float)
    elif "right_eye" in kp and "left_eye" in kp:
        right, left = np.asarray(kp["right_eye"], float), np.asarray(kp["left_eye"], float)
    else:
        right = np.array([x0 + _BOX_EYE_X[0] * w, y0 + _BOX_EYE_Y * h])
        left = np.array([x0 + _BOX_EYE_X[1] * w, y0 + _BOX_EYE_Y * h])
    d = float(np.hypot(*(left - right)))
    if mesh is not None:
        # Turned away, the eyes come closer together; the brow-to-chin height
        # does not (1.86 eye distances on frontal faces), so the face's scale
        # stays right on profiles too.
        d = max(d, float(np.hypot(*(mesh[M.BETWEEN_EYES] - mesh[M.CHIN]))) / 1.86)
    if d < 1e-6:
        return None
    u = (left - right) / d
    v = np.array([-u[1], u[0]])            # u turned 90 degrees (image y points down)
    mid = (right + left) / 2
    if mesh is not None:
        mouth = mesh[list(M.MOUTH_CENTER)].astype(float).mean(0)
    elif "mouth_center" in kp:
        mouth = np.asarray(kp["mouth_center"], float)
    else:
        mouth = mid + 1.06 * d * v
    return FaceGeometry(right, left, mouth, mid, d, u, v, float(max(w, 1)), mesh)


def ellipse(image: np.ndarray, center, axes, u, value: int) -> None:
    angle = float(np.degrees(np.arctan2(u[1], u[0])))
    cv2.ellipse(image, (int(round(center[0])), int(round(center[1]))),
                (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))), angle, 0, 360, value, -1)


def draw_features(image: np.ndarray, g: FaceGeometry, value: int, grow: float = 0.0) -> None:
    """Eyes, brows, lips (the mouth inside them) and nostrils, filled with
    value.  With a mesh: their outlines, grown by grow x the eye distance.
    Without: eye and lip ellipses sized from the mean ground-truth non-skin
    template in eye-distance units (eyes ~0.27 d wide, lips ~0.36 d)."""
    if g.mesh is not None:
        polygons = [g.polygon(outline) for outline in FEATURE_OUTLINES]
        cv2.fillPoly(image, polygons, value)
        width = int(round(2 * grow * g.d))
        if width >= 1:
            cv2.polylines(image, polygons, True, value, thickness=width)
        return
    d = g.d * 0.6
    for eye in (g.right_eye, g.left_eye):
        ellipse(image, eye, (0.22 * d, 0.11 * d), g.u, value)
    ellipse(image, g.mouth, (0.30 * d, 0.12 * d), g.u, value)


def draw_seed_region(image: np.ndarray, g: FaceGeometry, value: int) -> None:
    """Where skin colour is sampled: the face below the brows (a fringe never
    reaches there), inside the oval, without eyes, lips and nostrils (drawn
    by the caller).  Without a mesh: an ellipse around nose and cheeks."""
    if g.mesh is not None:
        region = np.zeros_like(image)
        draw_face_oval(region, g, 255)
        # Cut along the line through the brows' lower edges.
        brow = g.mesh[[55, 285]].astype(float).mean(0)
        top = brow - 0.1 * g.d * g.v
        corners = [top - 5 * g.d * g.u, top + 5 * g.d * g.u, top + 5 * g.d * g.u - 5 * g.d * g.v,
                   top - 5 * g.d * g.u - 5 * g.d * g.v]
        cv2.fillPoly(region, [np.round(corners).astype(np.int32)], 0)
        image[region > 0] = value
        return
    ellipse(image, g.mid + 0.45 * g.d * g.v, (0.85 * g.d, 1.05 * g.d), g.u, value)
    for eye in (g.right_eye, g.left_eye):                 # eyebrows
        ellipse(image, eye - 0.3 * g.d * g.v, (0.3 * g.d, 0.12 * g.d), g.u, 0)


def draw_eyes(image: np.ndarray, g: FaceGeometry, value: int) -> None:
    """The eyes alone (for the "eyes are darker than skin" check)."""
    if g.mesh is not None:
        cv2.fillPoly(image, [g.polygon(M.RIGHT_EYE), g.polygon(M.LEFT_EYE)], value)
        return
    for eye in (g.right_eye, g.left_eye):
        ellipse(image, eye, (0.2 * g.d, 0.1 * g.d), g.u, value)


def _oval(g: FaceGeometry) -> np.ndarray:
    """The face oval as a polygon: the mesh's, or an ellipse around the keypoints."""
    if g.mesh is not None:
        return g.mesh[list(M.FACE_OVAL)].astype(np.float64)
    angles = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    center = g.mid + 0.45 * g.d * g.v
    return center + np.outer(np.cos(angles), 1.0 * g.d * g.u) + np.outer(np.sin(angles), 1.3 * g.d * g.v)


def draw_face_oval(image: np.ndarray, g: FaceGeometry, value: int) -> None:
    """The face oval, filled (the mesh's outline, or an ellipse around the keypoints)."""
    cv2.fillPoly(image, [np.round(_oval(g)).astype(np.int32)], value)


def draw_hair_zone(image: np.ndarray, g: FaceGeometry, value: int, inner: float, outer: float,
                   above: float) -> None:
    """Where hair can be: a ring around the face oval (from `inner` to `outer`
    times the oval's size beyond it), above the line `above` eye distances
    over the eyes.  Forehead, scalp and temples are there too: the caller
    treats the zone as evidence of hair only for colours unlike the face's."""
    oval = _oval(g)
    centre = oval.mean(0)
    ring = np.zeros_like(image)
    cv2.fillPoly(ring, [np.round(centre + (oval - centre) * (1 + outer)).astype(np.int32)], 255)
    cv2.fillPoly(ring, [np.round(centre + (oval - centre) * (1 + inner)).astype(np.int32)], 0)
    line = g.mid - above * g.d * g.v
    far = 10 * g.d
    below = [line - far * g.u, line + far * g.u, line + far * g.u + far * g.v, line - far * g.u + far * g.v]
    cv2.fillPoly(ring, [np.round(below).astype(np.int32)], 0)
    image[ring > 0] = value
