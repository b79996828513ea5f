"""Part of a face on a close-up: its eyes, brows and lips are not skin.

Skin-condition datasets are full of close-ups of part of a face (acne on a
cheek, eczema round an eye, a lip lesion).  No face is detected there, so
nothing knew the eyes, brows, hair or lips: a close-up of the eyes was all
skin.  The face mesh finds such a face on the photo padded with a border
(mesh.FaceMesher.close_up_mesh), and places the parts it sees well; it also
finds "faces" on bellies, feet and dermoscopy photos.  Those are whole faces
inside the frame, with "eyes" and "lips" that look like the skin around
them.  A part of a face is accepted when

- the face's oval reaches well beyond the frame (at most `max_oval_inside`
  of it inside: a whole face in the frame is the detector's to find, and
  every false mesh on the evaluation close-ups was one);
- every eye mostly inside the frame looks like an eye next to this skin:
  darker than the skin (its darkest tenth, as adaptive._eye_contrast
  measures it) and with far less colour in places (the white of the eye
  and the pupil: its least coloured tenth at most `max_eye_chroma` of the
  skin's chroma; a mole, a navel or a wound are coloured throughout);
- and, without an eye in the frame, the lips are mostly in it, with the
  dark line between them or the open mouth's dark corners.

The skin these features are measured against is the mesh's seed region
(the face below the brows without its features) inside the frame.
Measured in docs/quality.md (the close-up benchmark and the lesion sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import mesh as M
from .face import Face
from .facemap import draw_features, draw_seed_region, face_geometry


@dataclass(frozen=True)
class PartFaceParams:
    """Chosen on the close-up benchmark's bands and the no-face photos of the evaluation sets."""

    max_oval_inside: float = 0.85   # at most this share of the face oval's area inside the frame
    min_visible: float = 0.5        # a feature with this share of its outline's area inside the frame is seen
    min_eye_dark: float = 0.5       # an eye's darkest tenth below the skin, share of skin minus black level
    max_eye_chroma: float = 0.55    # an eye's least coloured tenth at most this share of the skin's chroma
    min_lips_dark: float = 0.3      # the lips' darkest tenth below the skin, likewise
    min_skin_pixels: int = 100      # seed pixels inside the frame needed to judge the features


def _filled(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """(H, W) bool: the polygon (float points) filled, clipped to the frame."""
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon).astype(np.int32)], 255)
    return canvas > 0


def inside_share(shape: tuple[int, int], polygon: np.ndarray) -> float:
    """The share of a polygon's area that lies inside a frame of this (H, W) shape."""
    area = abs(cv2.contourArea(polygon.astype(np.float32)))
    return float(np.count_nonzero(_filled(shape, polygon))) / max(area, 1.0)


def looks_like_part_of_a_face(ycc: np.ndarray, mesh: np.ndarray, p: PartFaceParams = PartFaceParams()) -> bool:
    """Whether a face mesh found on a close-up is part of a real face.

    Parameters
    ----------
    ycc : (H, W, 3) uint8 YCrCb image.
    mesh : (478, 2) float landmark positions in its pixels (they may lie
        outside the frame).

    Returns
    -------
    True when the oval reaches well beyond the frame, there is skin to
    compare with, every eye in the frame is dark and in places colourless
    next to the skin, and an eye, or else the lips, is in the frame (the
    lips with a dark line between them).

    Raises
    ------
    ValueError if mesh is not (478, 2).
    """
    if mesh.shape != (M.POINT_COUNT, 2):
        raise ValueError(f"a face mesh has {M.POINT_COUNT} points (x, y), not shape {mesh.shape}")
    shape = ycc.shape[:2]
    if inside_share(shape, mesh[list(M.FACE_OVAL)]) > p.max_oval_inside:
        return False
    geometry = face_geometry(Face((0, 0, 1, 1), None, {}, "", mesh.astype(np.float32), True))
    if geometry is None:
        return False
    seed = np.zeros(shape, np.uint8)
    draw_seed_region(seed, geometry, 255)
    draw_features(seed, geometry, 0, grow=0.1)
    y = cv2.extractChannel(ycc, 0)
    skin = seed > 0
    if np.count_nonzero(skin) < p.min_skin_pixels:
        return False
    skin_y = float(np.median(y[skin]))
    chroma = np.hypot(ycc[..., 1].astype(np.float32) - 128, ycc[..., 2].astype(np.float32) - 128)
    skin_chroma = max(float(np.median(chroma[skin])), 4.0)
    black = min(float(np.percentile(y[::4, ::4], 1)), 0.5 * skin_y)

    def darkness(where: np.ndarray) -> float:
        return (skin_y - float(np.percentile(y[where], 10))) / max(skin_y - black, 1.0)

    eyes_seen = 0
    for outline in (M.RIGHT_EYE, M.LEFT_EYE):
        polygon = mesh[list(outline)]
        if inside_share(shape, polygon) < p.min_visible:
            continue
        eye = _filled(shape, polygon)
        if not eye.any() or darkness(eye) < p.min_eye_dark or \
                float(np.percentile(chroma[eye], 10)) > p.max_eye_chroma * skin_chroma:
            return False
        eyes_seen += 1
    if eyes_seen:
        return True
    lips = mesh[list(M.LIPS)]
    if inside_share(shape, lips) < p.min_visible:
        return False
    inside = _filled(shape, lips)
    return bool(inside.any()) and darkness(inside) >= p.min_lips_dark


def part_of_a_face(bgr: np.ndarray, mesher, p: PartFaceParams = PartFaceParams()) -> Optional[Face]:
    """The part of a face a close-up shows, as a Face (`partial`, its mesh,
    its box the mesh's extent clipped to the frame), or None.

    Parameters
    ----------
    bgr : (H, W, 3) uint8 photo (the pipeline's working copy).
    mesher : mesh.FaceMesher (its `close_up_mesh` is asked).
    """
    points = mesher.close_up_mesh(bgr)
    if points is None:
        return None
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    if not looks_like_part_of_a_face(ycc, points, p):
        return None
    height, width = bgr.shape[:2]
    x0, y0 = (int(v) for v in np.floor(points.min(0)))
    x1, y1 = (int(v) + 1 for v in np.ceil(points.max(0)))
    box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return Face(box, None, {}, "face mesh (close-up)", points, True, True)
