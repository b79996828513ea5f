"""The affected skin: lesions the colour model leaves out, put back.

A skin-condition photo is about its lesion (a mole, a wound, acne, a rash, a
depigmented patch), and the lesion's colour is exactly what a skin model
fitted to the healthy skin around it rejects: brown, black, blue-grey, red,
yellow slough, white scale.  So after the clean-up, non-skin regions that
are surrounded by skin are put back as skin:

1. holes: regions enclosed by skin (a mole on a cheek, a wound bed on a sole);
2. bays, on photos without a face (close-ups, where lesions are large and
   reach the edge of the skin): regions that a closing of the skin mask with
   a disk of `bay_radius` x the photo's short side encloses (a lesion at the
   edge of a foot, a wound whose rim of callus touches the background);
3. on faces, whatever is not skin inside the face oval (acne or a rash at
   the edge of the cheek's skin), but for the eyes, brows, lips and nostrils.

A region is not put back when most of its pixels have the colours of the
photo's own background (its non-skin pixels that are neither holes nor
bays): the gap between an arm and the body, a sheet between two feet.  On
close-ups, regions enclosed by skin are always put back (the dark core of a
mole is not background however dark the dermoscope's vignette is).  What
must stay out stays out: eyes, brows, lips, nostrils, the people's
background (`keep_out`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import colour_model
from .cleanup import disk


@dataclass(frozen=True)
class LesionParams:
    """Chosen on the lesion photos (PH2, FUSeg) against the abdominal close-ups'
    precision; their two halves are reported apart in docs/quality.md."""

    bay_radius: float = 0.08        # closing disk for bays, share of the photo's short side (close-ups)
    channel_radius: float = 0.02    # ...and for holes (close-ups): seals the thin channels of hairs and cracks
    background_share: float = 0.5   # a region this much in the background's colours is background
    background_typical: float = 25  # ...a colour is the background's if it is denser there than this percentile
    min_background: float = 0.02    # less background than this share of the photo: nothing to compare with
    min_close_up_region: float = 0.1    # bays only where one skin region is this big (not a crowd seen from afar)


def _enclosed(mask: np.ndarray) -> np.ndarray:
    """Non-skin pixels not connected to the photo's border (4-connectivity)."""
    outside = cv2.copyMakeBorder(np.where(mask == 0, 1, 0).astype(np.uint8), 1, 1, 1, 1,
                                 cv2.BORDER_CONSTANT, value=1)
    _, labels = cv2.connectedComponents(outside, connectivity=4)
    return (labels != labels[0, 0])[1:-1, 1:-1] & (mask == 0)


def _largest_region(mask: np.ndarray) -> float:
    """Share of the photo covered by the largest skin region (on a copy a
    quarter the size: this is a coarse measure)."""
    small = cv2.resize(mask, (max(1, mask.shape[1] // 4), max(1, mask.shape[0] // 4)), interpolation=cv2.INTER_NEAREST)
    count, _, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / small.size if count > 1 else 0.0


def _bays(mask: np.ndarray, radius: int) -> np.ndarray:
    """Non-skin pixels that a closing with a disk of `radius` covers or encloses.

    A closing costs the disk's area per pixel, so large ones are done on a
    copy shrunk until the disk is BAY_DISK pixels (the bays they find are
    large-scale shapes), then brought back to the mask's size."""
    scale = min(1.0, BAY_DISK / radius)
    small = mask
    if scale < 1.0:
        size = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
        small = cv2.threshold(cv2.resize(mask, size, interpolation=cv2.INTER_AREA), 127, 255, cv2.THRESH_BINARY)[1]
        radius = BAY_DISK
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    covered = np.where((closed > 0) | _enclosed(closed), 255, 0).astype(np.uint8)
    if scale < 1.0:
        covered = cv2.resize(covered, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_NEAREST)
    return (covered > 0) & (mask == 0)


BAY_DISK = 6      # radius in pixels at which bays are looked for


def _background_like(candidates: np.ndarray, background: np.ndarray, bins: np.ndarray,
                     p: LesionParams) -> np.ndarray:
    """Per candidate pixel, True where its region has mostly the background's
    colours (bins: colour_model.bin_index of the photo)."""
    every_2nd = colour_model.EVERY_2ND
    # (Contiguous copies: the gather reads them faster than the strided views.)
    sample_bins = np.ascontiguousarray(bins[every_2nd])[np.ascontiguousarray(background[every_2nd])]
    density = colour_model.density_of(sample_bins)
    typical = density >= np.percentile(density[sample_bins], p.background_typical)
    count, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=8)
    inside = labels[candidates]
    share = np.bincount(inside, weights=typical[bins[candidates]], minlength=count) / \
        np.maximum(np.bincount(inside, minlength=count), 1)
    return (share >= p.background_share)[labels] & candidates


def fill_lesions(mask: np.ndarray, bgr: np.ndarray, keep_out: Optional[np.ndarray], close_up: bool,
                 face_area: Optional[np.ndarray] = None, hair_like: Optional[np.ndarray] = None,
                 p: LesionParams = LesionParams(), bins: Optional[np.ndarray] = None) -> np.ndarray:
    """The skin mask with the lesions the colour model left out put back.

    Holes of the skin (and, on a close-up, bays that a closing of it
    encloses) become skin unless their colours are the photo's own
    background; what must stay out (eyes, lips, outside the people, hair)
    stays out.

    Parameters
    ----------
    mask : (H, W) uint8 ndarray
        0/255 skin, after the clean-up.
    bgr : (H, W, 3) uint8 ndarray
        The image of the mask, BGR.
    keep_out : (H, W) uint8 ndarray or None
        0/255: pixels that must stay not skin (features, outside the people).
    close_up : bool
        No plausible face at all in the photo: a skin close-up.
    face_area : (H, W) uint8 ndarray, optional
        0/255 inside the seeding faces' ovals, where any non-skin that does
        not look like the photo's background (a fringe of hair does) is a
        lesion of the face, also at the edge of its skin.
    hair_like : (H, W) uint8 ndarray, optional
        0/255: colours of the person's hair (a beard or a curl over the
        forehead is not a lesion).
    p : LesionParams
        The tuned constants.
    bins : (H, W) ndarray, optional
        bgr's colour_model.bin_index, when already computed
        (adaptive.SkinEstimate.bins).

    Returns
    -------
    (H, W) uint8 ndarray
        0/255: mask with the lesions put back (mask itself when there are none).
    """
    # Holes, also those a hair or a crack connects to the outside by a thin
    # channel (close-ups): enclosed once the channel is closed.
    holes = _bays(mask, max(1, int(p.channel_radius * min(mask.shape)))) if close_up else _enclosed(mask)
    candidates = holes.copy()
    if close_up and _largest_region(mask) >= p.min_close_up_region:
        candidates |= _bays(mask, max(1, int(p.bay_radius * min(mask.shape))))
    if face_area is not None:
        candidates |= (face_area > 0) & (mask == 0)
    if keep_out is not None:
        candidates &= keep_out == 0
    if hair_like is not None:
        candidates &= hair_like == 0
    if not candidates.any():
        return mask
    background = (mask == 0) & ~candidates
    accept = candidates
    if np.count_nonzero(background) >= p.min_background * mask.size:
        if bins is None:
            bins = colour_model.bin_index(cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb))
        accept = candidates & ~_background_like(candidates, background, bins, p)
        if close_up:
            accept |= holes & candidates
    out = mask.copy()
    out[accept] = 255
    return out
