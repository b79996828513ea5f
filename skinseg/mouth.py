"""A mouth on a close-up without a face: its teeth and lips are not skin.

On a close-up of the lower face no face can be detected, so no mesh outlines
the lips; a colour model seeded from the colour box admits much of the lips
and some of the teeth, and the lesion stage (lesions.py) would put back the
rest (on close-ups a region the skin encloses is put back whatever its
colour).  A smiling mouth has what a lesion has not: teeth, a band of pixels
brighter than the skin and nearly without colour, much wider than high.
Around such a band, as far as the lips reach, nothing is skin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np


@dataclass(frozen=True)
class MouthParams:
    work_side: int = 320              # looked for on every n-th row and column that leaves this short side (or more)
    neutral: float = 0.45             # teeth: chroma below this share of the skin's median chroma...
    brighter: float = 1.0             # ...and luminance above this times the skin's median
    min_area: float = 0.004           # the teeth's band covers at least this share of the photo
    min_aspect: float = 2.5           # ...is this much wider than high
    min_fill: float = 0.3             # ...and fills this much of its bounding box (a band, not scattered specks)
    lips: float = 0.6                 # the mouth: the band grown by this times its height (the lips)
    min_lips: float = 0.25            # the band is framed by lips: this share of the pixels above and below it
    lip_red: float = 6.0              # lips: Cr above the skin's median by this (and Cb above its median)


def teeth(ycc: np.ndarray, skin: np.ndarray, p: MouthParams = MouthParams()) -> np.ndarray:
    """Pixels that look like teeth next to this skin: brighter than the skin's
    median and with less than `neutral` of its median chroma.

    Parameters
    ----------
    ycc : (H, W, 3) uint8 YCrCb image.
    skin : (H, W) uint8 mask, nonzero = skin (the reference colour).

    Returns
    -------
    (H, W) uint8, 255 = teeth-like; all 0 when there is no skin.

    Raises
    ------
    ValueError if ycc and skin differ in size.
    """
    if ycc.shape[:2] != skin.shape:
        raise ValueError(f"image {ycc.shape} and mask {skin.shape} differ in size")
    on_skin = cv2.compare(skin, 0, cv2.CMP_GT)
    if not cv2.countNonZero(on_skin):
        return np.zeros(skin.shape, np.uint8)
    y, chroma = cv2.extractChannel(ycc, 0), _chroma(ycc)
    bright = cv2.compare(y, p.brighter * _median(y, on_skin), cv2.CMP_GT)
    # The chroma's median from its histogram (to the nearest unit), the test on the exact values.
    neutral = cv2.compare(chroma, p.neutral * _median(cv2.convertScaleAbs(chroma), on_skin), cv2.CMP_LT)
    return cv2.bitwise_and(bright, neutral)


def _chroma(ycc: np.ndarray) -> np.ndarray:
    """(H, W) float32: each pixel's distance from neutral grey in the (Cr, Cb) plane."""
    cr = cv2.absdiff(cv2.extractChannel(ycc, 1), 128).astype(np.float32)
    cb = cv2.absdiff(cv2.extractChannel(ycc, 2), 128).astype(np.float32)
    return cv2.magnitude(cr, cb)


def _median(channel: np.ndarray, where: np.ndarray) -> float:
    """The median of a uint8 channel over the pixels where `where` (uint8) is nonzero."""
    counts = cv2.calcHist([channel], [0], where, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(counts), counts.sum() / 2))


def find_mouth(ycc: np.ndarray, skin: np.ndarray, p: MouthParams = MouthParams()) -> Optional[np.ndarray]:
    """The mouth of a close-up, found by its teeth, or None.

    Parameters
    ----------
    ycc : (H, W, 3) uint8 YCrCb image.
    skin : (H, W) uint8 mask, nonzero = skin.

    Returns
    -------
    (H, W) uint8 0/255, looked for on every n-th row and column that leaves
    a short side of at least work_side: every band of teeth (teeth pixels joined by a closing,
    at least min_area of the photo, min_aspect times wider than high, filling
    min_fill of its box, framed above and below by at least min_lips of
    lip-coloured pixels), as its convex hull grown by `lips` times its
    height, with the pixels that are not skin or are pinker than the skin
    (lip_red) connected to it within a box of twice the band's width and five
    times its height (the lips); None when there is none.

    Raises
    ------
    ValueError if ycc and skin differ in size.
    """
    if ycc.shape[:2] != skin.shape:
        raise ValueError(f"image {ycc.shape} and mask {skin.shape} differ in size")
    full_shape = skin.shape
    step = max(1, min(full_shape) // p.work_side)     # teeth are a band, not a detail
    if step > 1:        # contiguous copies: OpenCV is slow on strided views
        size = (-(-full_shape[1] // step), -(-full_shape[0] // step))
        ycc = cv2.resize(ycc, size, interpolation=cv2.INTER_NEAREST)
        skin = cv2.resize(skin, size, interpolation=cv2.INTER_NEAREST)
    tooth = teeth(ycc, skin, p)
    height, width = skin.shape
    if cv2.countNonZero(tooth) < p.min_area * tooth.size:
        return None
    # Teeth are separated by dark gaps: join them into one band.
    gap = max(1, round(0.01 * min(height, width)))
    band = cv2.morphologyEx(tooth, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * gap + 1, gap + 1)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(band, connectivity=8)
    x, y, w, h, area = stats.T
    bands = np.flatnonzero((area >= p.min_area * tooth.size) & (w >= p.min_aspect * h) & (area >= p.min_fill * w * h))
    if not len(bands) or bands[0] == 0 and len(bands) == 1:
        return None
    # Lips: pinker than the skin (more red and more blue).
    on_skin = cv2.compare(skin, 0, cv2.CMP_GT)
    cr, cb = cv2.extractChannel(ycc, 1), cv2.extractChannel(ycc, 2)
    lip_like = (cr > _median(cr, on_skin) + p.lip_red) & (cb > _median(cb, on_skin))
    mouth = np.zeros(skin.shape, np.uint8)
    for label in bands:
        if label == 0:
            continue
        x, y, w, h, area = stats[label]
        ring = cv2.dilate(np.where(labels == label, 255, 0).astype(np.uint8),
                          cv2.getStructuringElement(cv2.MORPH_RECT, (3, 2 * max(1, round(p.lips * h)) + 1)))
        ring[labels == label] = 0
        if np.count_nonzero(lip_like[ring > 0]) < p.min_lips * np.count_nonzero(ring):
            continue
        points = cv2.findNonZero(np.where(labels == label, 255, 0).astype(np.uint8))
        hull = np.zeros(skin.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 255)
        grow = max(1, round(p.lips * h))
        near = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        # The lips: what is not skin next to the teeth, within a box around them.
        box = np.zeros(skin.shape, np.uint8)
        box[max(0, y - 2 * h):y + 3 * h, max(0, x - w // 2):x + w + w // 2] = 255
        not_skin = np.where(((skin == 0) | lip_like) & (box > 0) | (near > 0), 255, 0).astype(np.uint8)
        _, parts = cv2.connectedComponents(not_skin, connectivity=8)
        touching = np.unique(parts[near > 0])
        mouth |= np.where(np.isin(parts, touching[touching > 0]), 255, 0).astype(np.uint8)
    if not mouth.any():
        return None
    return np.repeat(np.repeat(mouth, step, axis=0), step, axis=1)[:full_shape[0], :full_shape[1]]
