"""The crop policy: which part of a photo the outputs cover.

Cropping to a face removes background from portraits, where the face is the
subject.  It must not throw skin away elsewhere: in a group photo the best
face alone is a few percent of the photo, and a tiny face gives a sliver of
a crop.  So, when a face is found and cropping is on (`FaceParams`):

- the crop surrounds every face (`crop_faces="all"`, the union of each face's
  box grown by `margin`), or only the best one (`"best"`, the original tool);
- it also surrounds every skin region found (`crop_to_skin`; arms, hands,
  the other people), when the mask is known before the crop (the adaptive
  method; the rules method finds skin inside the crop);
- it is grown around its centre to at least `min_crop_side` pixels a side
  (within the photo).

Measured on photos with human skin masks (benchmarks/crops.py; the README
has the table): on 46 group photos the best face's crop kept a median 15 %
of the skin, this policy 100 %.
"""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from .config import FaceParams
from .face import Face, best_face

Box = tuple[int, int, int, int]      # x0, y0, x1, y1, exclusive ends


def crop_box(face_box: tuple[int, int, int, int], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Grow a face box by margin x its size on every side, clipped to the image."""
    x0, y0, x1, y1 = face_box
    grow_x = int(round((x1 - x0) * margin))
    grow_y = int(round((y1 - y0) * margin))
    return (max(0, x0 - grow_x), max(0, y0 - grow_y), min(width, x1 + grow_x), min(height, y1 + grow_y))


def _grow(lo: int, hi: int, side: int, limit: int) -> tuple[int, int]:
    """[lo, hi) widened around its centre to `side` (at most `limit`), kept inside [0, limit)."""
    side = min(side, limit)
    if hi - lo >= side:
        return lo, hi
    start = min(max(0, (lo + hi - side) // 2), limit - side)
    return start, start + side


def crop_region(faces: Sequence[Face], params: FaceParams, width: int, height: int,
                skin: Optional[np.ndarray] = None) -> Box:
    """The region of a width x height photo that the outputs cover; skin is
    the photo's skin mask (non-zero = skin) when it is known."""
    params = params.resolved()       # a PipelineConfig's are; alone, fields left None are the default method's
    chosen = list(faces) if params.crop_faces == "all" else [f for f in [best_face(list(faces))] if f]
    if not params.crop or not chosen:
        return (0, 0, width, height)
    boxes = [crop_box(f.box, params.margin, width, height) for f in chosen]
    if params.crop_to_skin and skin is not None and skin.any():
        x, y, w, h = cv2.boundingRect(skin)
        boxes.append((x, y, x + w, y + h))
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    x0, x1 = _grow(x0, x1, params.min_crop_side, width)
    y0, y1 = _grow(y0, y1, params.min_crop_side, height)
    return (x0, y0, x1, y1)
