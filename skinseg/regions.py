"""Skin regions that are not skin: clothing and walls, judged region by region.

The per-pixel decision (adaptive.py) sees one colour and a little texture at
a time.  A beige coat, grey trousers or a knit sweater have, pixel by pixel,
colours the face's skin model admits at its margin, and inside the person
nothing else competes for them: the whole clothed silhouette becomes skin.
Seen as a region they are plain: their colour is on average far from the
face's (real skin is on average close to it, even where single pixels are
not) and they are textured (folds, knit, plaid) where skin is smooth.  A
yellow wall beside a hand is a region outside the person.

So the candidate mask is cut along the photo's edges (the border between a
sleeve and an arm is one) into regions, and each region is judged by the
mean of its pixels:

- `drop_unlike_regions` (photos with a face): mean colour distance to the
  skin model plus `texture_weight` times how much rougher than
  `typical_texture` it is; above `max_unlike`: not skin.  A region smaller
  than a face gets `small_allowance` more (a hand is often lit, and coloured,
  unlike the face the model was fitted to; a coat is large), and the faces
  themselves are never dropped.  Edges have gaps, so the same score is also
  averaged over each pixel's neighbourhood with an edge-aware filter (a
  domain transform guided by the luminance): a pixel whose neighbourhood is
  far from skin on average is dropped too (a skirt joined to bare legs);
- `drop_outside_person` (photos without a face, where the person segmenter
  saw a person around the skin): a region the person segmenter does not
  support is background (a wall, a shirt on a chair), provided enough of the
  mask lies inside the person for the segmenter to be trusted here (on a
  belly close-up or a foot it often sees no person at all, and is ignored).

Measured in docs/quality.md; the constants were chosen on the even rows of
the evaluation sets and checked on the odd rows and on restyled photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import cv2
import numpy as np


@dataclass(frozen=True)
class RegionParams:
    """Chosen on the even rows of the evaluation sets (docs/quality.md)."""

    coarse: int = 2                 # regions are judged on every 2nd row and column (a coarse shape; 4x cheaper)
    edge_low: float = 20.0          # Canny hysteresis thresholds on the smoothed luminance
    edge_high: float = 50.0
    edge_blur: float = 1.0          # Gaussian sigma before Canny, pixels
    max_unlike: float = 2.0         # a region whose mean distance (+ texture term) is above this is not skin
    small_allowance: float = 0.8    # ...plus this for a region smaller than a face (hands: lit unlike the face)
    max_unlike_nearby: float = 2.6  # a pixel whose edge-aware neighbourhood is, on average, above this is not skin
    nearby_sigma: float = 20.0      # ...the neighbourhood's reach (pixels of the working copy)
    nearby_contrast: float = 40.0   # ...and the luminance step that stops it (domain transform's sigma_color)
    nearby_scale: float = 0.5       # ...computed on the coarse grid shrunk by this (a smooth quantity)
    texture_weight: float = 0.2     # per texture bin (adaptive.TEXTURE_BINS) above typical_texture
    typical_texture: float = 6.0    # the texture bin of smooth skin at the working size
    body_below: float = 0.25        # body_skin_share: the head is the face box grown by this x its height below,
    body_around: float = 0.5        # ...and this x its size above and to the sides (hair, ears)
    min_body_faces: float = 4.0     # ...and a body smaller than this many face boxes has no share (a portrait)
    person_share: float = 0.3       # the segmenter is trusted when this share of the mask is inside the person
    min_person_support: float = 0.2     # a region with less of its pixels inside the person is background


def edge_regions(mask: np.ndarray, luma: np.ndarray, p: RegionParams = RegionParams()) -> tuple[int, np.ndarray]:
    """The mask cut into regions along the photo's edges.

    Parameters
    ----------
    mask : (H, W) uint8, 0 = not skin, anything else = skin.
    luma : (H, W) uint8 luminance of the same photo.

    Returns
    -------
    count : int, the number of labels (label 0 = not skin or on an edge).
    labels : (H, W) int32, 4-connected regions of mask pixels not on an edge.

    Raises
    ------
    ValueError if mask and luma differ in size.
    """
    if mask.shape != luma.shape[:2]:
        raise ValueError(f"mask {mask.shape} and luminance {luma.shape} differ in size")
    edges = cv2.Canny(cv2.GaussianBlur(luma, (0, 0), p.edge_blur), p.edge_low, p.edge_high)
    inner = np.where((mask > 0) & (edges == 0), 1, 0).astype(np.uint8)
    return cv2.connectedComponents(inner, connectivity=4)


def region_means(labels: np.ndarray, count: int, values: np.ndarray) -> np.ndarray:
    """(count,) float64: the mean of values over each label (0 where a label is empty)."""
    sizes = np.bincount(labels.ravel(), minlength=count)
    sums = np.bincount(labels.ravel(), weights=values.ravel().astype(np.float64), minlength=count)
    return sums / np.maximum(sizes, 1)


def _without(mask: np.ndarray, labels: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """mask without the regions marked in drop (label 0 is never dropped);
    pixels on an edge go with the regions beside them: dropped when no
    kept region touches them."""
    drop = drop.copy()
    drop[0] = False
    if not drop.any():
        return mask
    dropped = drop[labels]
    kept_regions = np.where((labels > 0) & ~dropped, 255, 0).astype(np.uint8)
    on_edge = (mask > 0) & (labels == 0)
    near_kept = cv2.dilate(kept_regions, np.ones((3, 3), np.uint8)) > 0
    out = mask.copy()
    out[dropped | (on_edge & ~near_kept)] = 0
    return out


def drop_unlike_regions(mask: np.ndarray, luma: np.ndarray, distance: np.ndarray, texture: np.ndarray,
                        faces: np.ndarray, face_count: int, p: RegionParams = RegionParams()) -> np.ndarray:
    """The mask without the regions that are, on average, unlike skin.

    Parameters
    ----------
    mask : (H, W) uint8 0/255 skin.
    luma : (H, W) uint8 luminance.
    distance : (h, W') float, each pixel's distance to the skin colour model
        (Mahalanobis, colour_model.tables), on every `p.coarse`-th row and
        column (h = ceil(H / coarse), W' = ceil(W / coarse)).
    texture : (h, W') uint8 texture bins (adaptive.TEXTURE_BINS of them;
        higher = rougher), on the same grid.
    faces : (H, W) uint8, nonzero inside the faces' ovals: never dropped (an
        edge-bounded region can run from a face into a coat).
    face_count : int >= 1, how many faces `faces` holds (a face's size is
        their mean area).

    Returns
    -------
    (H, W) uint8 0/255: mask without every edge-bounded region whose mean
    distance + texture_weight * (mean texture - typical_texture) exceeds
    max_unlike (max_unlike + small_allowance for regions smaller than a
    face), and without every pixel where the same score, averaged over an
    edge-aware neighbourhood of the mask, exceeds max_unlike_nearby; but for
    the pixels inside the faces.  Regions are found and judged on the coarse
    grid; what is dropped there is dropped at full size.

    Raises
    ------
    ValueError if the arrays' sizes do not match or face_count < 1.
    """
    grid = _coarse(mask, p.coarse)
    if not (mask.shape == luma.shape[:2] == faces.shape and distance.shape == texture.shape == grid.shape):
        raise ValueError("mask, luma and faces must have one size, distance and texture the coarse grid's")
    if face_count < 1:
        raise ValueError(f"face_count must be at least 1, not {face_count}")
    small_luma = cv2.resize(luma, grid.shape[::-1], interpolation=cv2.INTER_AREA)
    count, labels = edge_regions(grid, small_luma, p)
    unlike = region_means(labels, count, np.minimum(distance, 10.0)) + \
        p.texture_weight * (region_means(labels, count, texture) - p.typical_texture)
    face_size = np.count_nonzero(_coarse(faces, p.coarse)) / face_count
    smaller = np.bincount(labels.ravel(), minlength=count) < face_size
    kept = _without(grid, labels, unlike > p.max_unlike + p.small_allowance * smaller)
    # Edges have gaps: a region can run from bare legs into a skirt, and be
    # judged as their mix.  The same score averaged over each pixel's
    # neighbourhood, stopped by edges but not needing them closed, catches
    # the garment's part.
    score = np.minimum(distance, 10.0).astype(np.float32) + \
        np.float32(p.texture_weight) * (texture.astype(np.float32) - np.float32(p.typical_texture))
    far = _edge_aware_mean(score, grid > 0, small_luma, p.nearby_sigma / p.coarse, p.nearby_contrast, p.nearby_scale)
    dropped = (grid > 0) & ((kept == 0) | (far > p.max_unlike_nearby))
    return _drop_at_full_size(mask, dropped, faces)


def _coarse(image: np.ndarray, step: int) -> np.ndarray:
    """Every step-th row and column of image (a view)."""
    return image[::step, ::step]


def _drop_at_full_size(mask: np.ndarray, dropped: np.ndarray, keep: Optional[np.ndarray] = None) -> np.ndarray:
    """mask without the pixels whose coarse-grid cell is in dropped (but for those in keep)."""
    step = -(-mask.shape[0] // dropped.shape[0])
    if not dropped.any():
        return mask
    full = np.repeat(np.repeat(dropped, step, axis=0), step, axis=1)[:mask.shape[0], :mask.shape[1]]
    if keep is not None:
        full &= keep == 0
    out = mask.copy()
    out[full] = 0
    return out


def _edge_aware_mean(values: np.ndarray, where: np.ndarray, luma: np.ndarray, sigma: float,
                     contrast: float, scale: float) -> np.ndarray:
    """(H, W) float32: the mean of values over the pixels `where` in each
    pixel's neighbourhood, weighted by a domain transform filter guided by
    luma (normalised convolution): sigma is its reach in pixels, contrast
    the luminance step that stops it; computed on a copy `scale` the size (a
    smooth quantity)."""
    weight = where.astype(np.float32)
    total = np.where(where, values, 0).astype(np.float32)
    height, width = where.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    total = cv2.resize(total, size, interpolation=cv2.INTER_AREA)
    weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    guide = cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
    # The domain transform costs about 5 ms a call on a 320 x 212 grid, a quarter of that here.
    total = cv2.ximgproc.dtFilter(guide, total, sigma * scale, contrast, cv2.ximgproc.DTF_RF)
    weight = cv2.ximgproc.dtFilter(guide, weight, sigma * scale, contrast, cv2.ximgproc.DTF_RF)
    mean = total / np.maximum(weight, np.float32(1e-3))
    return cv2.resize(mean, (width, height), interpolation=cv2.INTER_LINEAR)


def drop_outside_person(mask: np.ndarray, luma: np.ndarray,
                        person: Union[np.ndarray, Callable[[], np.ndarray], None],
                        p: RegionParams = RegionParams(), threshold: float = 0.5) -> np.ndarray:
    """The mask without the regions the person segmenter does not support.

    Parameters
    ----------
    mask : (H, W) uint8 0/255 skin.
    luma : (H, W) uint8 luminance.
    person : (H, W) float person probability in [0, 1], a function that
        computes it (asked only when there is something to judge: more than
        one region), or None.
    threshold : probability above which a pixel is inside a person.

    Returns
    -------
    (H, W) uint8 0/255: unchanged when person is None, when it is a function
    and the mask is one region, or when less than
    person_share of the mask lies inside a person (the segmenter did not see
    the photo's skin as a person: a close-up); otherwise without every
    edge-bounded region (found on the coarse grid) of which less than
    min_person_support is inside a person.

    Raises
    ------
    ValueError if the arrays differ in size.
    """
    if person is None:
        return mask
    grid = _coarse(mask, p.coarse)
    count, labels = edge_regions(grid, cv2.resize(luma, grid.shape[::-1], interpolation=cv2.INTER_AREA), p)
    if callable(person):
        # One region is dropped only if less than min_person_support of it but
        # person_share of the mask (its edge pixels too) is inside a person:
        # it is kept without asking the segmenter (about 4 ms).  (On every
        # evaluation set the masks are the same as when it is asked.)
        if np.count_nonzero(np.bincount(labels.ravel(), minlength=count)[1:]) <= 1:
            return mask
        person = person()
    if person.shape != mask.shape:
        raise ValueError(f"person map {person.shape} and mask {mask.shape} differ in size")
    inside = _coarse(person, p.coarse) >= threshold
    skin = grid > 0
    if np.count_nonzero(inside & skin) < p.person_share * max(1, np.count_nonzero(skin)):
        return mask
    kept = _without(grid, labels, region_means(labels, count, inside) < p.min_person_support)
    return _drop_at_full_size(mask, (grid > 0) & (kept == 0))


def body_skin_share(mask: np.ndarray, person: Optional[np.ndarray], face_boxes: list[tuple[int, int, int, int]],
                    p: RegionParams = RegionParams(), threshold: float = 0.5) -> Optional[float]:
    """How much of the people's bodies the mask calls skin: a photo where it
    is most of them is a likely "clothes called skin" (report.py ranks it).

    Parameters
    ----------
    mask : (H, W) uint8, nonzero = skin.
    person : (H, W) float person probability in [0, 1], or None.
    face_boxes : the faces' boxes (x0, y0, x1, y1) in the mask's pixels.
    threshold : probability above which a pixel is inside a person.

    Returns
    -------
    The share (0..1) of the person pixels outside the heads (each face box
    grown by body_around above and to the sides, body_below below) that are
    skin; None without a person map or a face, or when that body is smaller
    than min_body_faces face boxes (a portrait: its body is a neck).

    Raises
    ------
    ValueError if mask and person differ in size.
    """
    if person is None or not face_boxes:
        return None
    if person.shape != mask.shape:
        raise ValueError(f"person map {person.shape} and mask {mask.shape} differ in size")
    body = person >= threshold
    face_area = 0
    for x0, y0, x1, y1 in face_boxes:
        w, h = x1 - x0, y1 - y0
        face_area += w * h
        body[max(0, int(y0 - p.body_around * h)):max(0, int(y1 + p.body_below * h)),
             max(0, int(x0 - p.body_around * w)):max(0, int(x1 + p.body_around * w))] = False
    size = np.count_nonzero(body)
    if size == 0 or size < p.min_body_faces * face_area / len(face_boxes):
        return None
    return float(np.count_nonzero(body & (mask > 0))) / size
