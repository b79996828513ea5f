"""The default skin method: a colour model fitted to each image's own skin.

Fixed colour boxes fail on two sides: they call beige walls, wood and hair
"skin", and they miss pale or shadowed skin.  Here the skin colour of the
person in the photo is learnt from the face and applied to the whole image:

1. faces: the detector's faces confirmed by the face mesh (mesh.py; without
   its model, by their keypoint layout), up to `max_faces`, each with dark
   eyes (false detections on bellies, arms and toes have none) and, when the
   person segmenter runs, inside a person;
2. seed: the face's skin below the brows, inside the oval, without eyes,
   brows, lips and nostrils (facemap.py);
3. model: a robust Gaussian in luminance and shading-tolerant chromaticity
   (colour_model.py), its luminance spread widened for the body, less so
   towards the dark, where hair and clothing are;
4. decision (naive Bayes by colour and texture, every density from this
   image): a pixel the model admits is skin if skin explains it better than
   the image's other colours (pixels far from the model or outside the
   person) and than its hair (sampled in the zone around the face where hair
   grows); the person segmenter's background is dropped; then regions
   (regions.py): what lies between the photo's edges and is, on average,
   unlike the face's skin by colour and texture is not skin (clothing the
   model admits at its margin);
5. eyes, brows, lips and the mouth, nostrils are cut out with their outlines;
6. no usable face: the same model, seeded from the confident core of the
   colour box (--hsv/--ycrcb bounds); a region the person segmenter does not
   support is dropped where it saw the skin as a person (a wall beside a
   hand), and a mouth found by its teeth (mouth.py) is not skin;
7. self-check: a mask over nearly the whole photo that the model grew far
   beyond the colour box keeps only additions close to the box's pixels.

Measured against human masks in docs/quality.md; the constants were chosen
on half of the evaluation photos and checked on the other half.  Input: a
working copy of the image (long side <= config.WORK_SIZE) and faces in its
coordinates; output: a 0/255 mask of the same size, before the morphological
clean-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Union

import cv2
import numpy as np

from . import colour_model
from .cleanup import disk
from .config import SkinParams
from .face import Face, confidence_order
from .facemap import (
    FaceGeometry,
    draw_eyes,
    draw_face_oval,
    draw_features,
    draw_hair_zone,
    draw_seed_region,
    face_geometry,
)
from .mouth import find_mouth
from .regions import RegionParams, drop_outside_person, drop_unlike_regions
from .skin import rules_mask


@dataclass(frozen=True)
class AdaptiveParams:
    """Chosen on the odd-id half of the evaluation photos, checked on the even half."""

    # --- face seeding (the detector's confidence is FaceParams.min_score: the detector applies it)
    max_faces: int = 4              # most confident faces pooled (more: a broader, worse model)
    min_eye_dist_px: float = 6.0    # at working resolution; smaller faces give too few seeds
    min_seed_agree: float = 0.5     # share of seed pixels inside the wide chroma box
    min_eye_contrast: float = 0.3   # eyes must be this much darker than the skin (_eye_contrast):
                                    # real eyes are dark, false faces on bellies have none
    min_eye_check_px: float = 20.0  # ...checked only on faces this big (eye distance, px)
    # --- colour model
    chroma_floor: float = 2.0       # smallest chroma spread of the model (Cr/Cb units)
    y_scale: float = 2.5            # widen the Y spread above the mean: faces are lit more evenly than bodies
    y_scale_below: float = 1.5      # ...and below it (less: dark pixels are where hair and clothing are)
    maha_thresh: float = 3.5        # skin if the Mahalanobis distance is at most this
    # --- test against the image's own non-skin colours
    ratio_bg_dist: float = 2.5      # farther than this from the model (or outside the person): non-skin
    ratio_weight: float = 12.0      # skin if weight * prior * p_skin >= (1 - prior) * p_nonskin
    texture_weight: float = 1.0     # weight of the texture log-likelihood ratio (0: colour only)
    hair_prior: float = 0.5         # prior of the hair class where a hair colour was sampled
    min_hair_pixels: int = 200      # fewer unlike-skin pixels in the hair zone: no hair class
    hair_texture_pct: float = 90.0  # in the hair zone, rougher than this percentile of the face: hair
    hair_like_dist: float = 3.0     # within this distance of the hair colour: hair, not a lesion
    hair_dist: float = 2.0          # in the hair zone, farther than this from the model: hair
    hair_inner: float = 0.1         # hair zone: from this far beyond the face oval (fraction of its size)
    hair_outer: float = 0.6         # ...to this far
    hair_above: float = 0.6         # ...above the line this many eye distances over the eyes
    # --- geometry
    feature_margin: float = 0.0     # mesh outlines of eyes, brows, lips, nostrils grown by this x eye distance
    seed_feature_margin: float = 0.1  # ...and by this much where skin colour is sampled
    person_thresh: float = 0.5      # person-probability gate
    # --- self-check: a mask over nearly the whole photo
    balloon_fraction: float = 0.85  # a mask covering this much of the photo is checked...
    balloon_growth: float = 0.10    # ...and if the model added this much of the photo beyond the colour box,
    balloon_reach: float = 0.015    # additions are kept only this close to the box's pixels (share of the short side)
    # --- no usable face
    min_core_fraction: float = 0.01
    close_up_core: float = 0.5      # a core this share of the photo: a close-up, not judged by the person segmenter
    self_maha_thresh: float = 3.5   # wider than maha_thresh: the core of a rule mask is a noisier seed


# Wide chroma box used only to vet seed pixels: it holds ~99 % of the annotated
# skin pixels of every evaluation set (the original 135-180 / 85-135 box
# rejects pale skin).
_WIDE_CR, _WIDE_CB = (130, 186), (70, 136)          # half-open ranges
_WIDE = np.zeros((256, 256), bool)
_WIDE[slice(*_WIDE_CR), slice(*_WIDE_CB)] = True

def plausible(face: Face, g: Optional[FaceGeometry], p: AdaptiveParams) -> bool:
    """A face the landmarker confirmed with a mesh, or (without the mesh model)
    whose keypoints are laid out like a face (eyes apart for the box size,
    mouth centred below the eyes).  Detections on skin close-ups fail."""
    if g is None or g.d < p.min_eye_dist_px:
        return False
    if face.mesh_tried and face.mesh is None:       # the landmarker saw no face there
        return False
    if face.mesh is not None:                       # the landmarker found one: its layout is a face's
        return True
    if not 0.2 <= g.d / g.width <= 0.65:            # real detections: 0.28-0.49
        return False
    offset = g.mouth - g.mid
    return 0.6 * g.d <= offset @ g.v <= 1.7 * g.d and abs(offset @ g.u) <= 0.5 * g.d


def _face_seed_region(ycc: np.ndarray, g: FaceGeometry, p: AdaptiveParams,
                      partial: bool = False) -> Optional[np.ndarray]:
    """0/255 mask of the pixels skin colour is sampled from on this face, or None
    if the face looks unusable (samples mostly outside the wide skin chroma
    box, or no eyes darker than the skin: a false detection on a belly or an
    arm; part of a face on a close-up had its eyes checked by partface.py)."""
    region = np.zeros(ycc.shape[:2], np.uint8)
    draw_seed_region(region, g, 255)
    draw_features(region, g, 0, grow=p.seed_feature_margin)
    inside_region = region > 0
    seed = ycc[inside_region]
    if len(seed) < 20:
        return None
    inside = _WIDE[seed[:, 1], seed[:, 2]]
    if inside.mean() < p.min_seed_agree:
        return None
    region[inside_region] = np.where(inside, 255, 0).astype(np.uint8)
    if not partial and g.d >= p.min_eye_check_px and \
            _eye_contrast(ycc, g, np.median(seed[inside, 0])) < p.min_eye_contrast:
        return None
    return region


def _eye_contrast(ycc: np.ndarray, g: FaceGeometry, skin_y: float) -> float:
    """How much darker the eyes are than the skin, as a share of the skin's
    distance from the image's black level: about 0.8 for real eyes, near 0 for
    a "face" found on a belly or a toe.  Relative to the black level, so that
    flat light and lifted blacks do not make real eyes look pale."""
    eyes = np.zeros(ycc.shape[:2], np.uint8)
    draw_eyes(eyes, g, 255)
    eye_y = ycc[..., 0][eyes > 0]
    if not len(eye_y):
        return 0.0
    # The black level counts only where the photo has some contrast: in a
    # uniform close-up the darkest pixel is just noise away from the skin.
    black = min(float(np.percentile(ycc[::4, ::4, 0], 1)), 0.5 * skin_y)
    return float((skin_y - np.percentile(eye_y, 10)) / max(skin_y - black, 1.0))


def _person_support(person: np.ndarray, g: FaceGeometry) -> float:
    """Mean person probability over the central face square (side = eye distance)."""
    cx, cy = g.mid + 0.45 * g.d * g.v
    r = max(1, int(0.5 * g.d))
    x0, y0 = max(0, int(cx) - r), max(0, int(cy) - r)
    patch = person[y0:max(y0, int(cy) + r + 1), x0:max(x0, int(cx) + r + 1)]
    return float(patch.mean()) if patch.size else 0.0


def candidate_faces(faces: list[Face], p: AdaptiveParams = AdaptiveParams()) -> list[tuple[Face, FaceGeometry]]:
    """The most confident faces whose layout is plausible, with their geometry."""
    ranked = sorted(faces, key=confidence_order)[:p.max_faces]
    out = []
    for face in ranked:
        g = face_geometry(face)
        if plausible(face, g, p):
            out.append((face, g))
    return out


def whole_faces(faces: list[Face], p: AdaptiveParams = AdaptiveParams()) -> bool:
    """Whether a plausible face that is not part of a face on a close-up is
    among faces (the person segmenter is run for such a photo)."""
    return any(not face.partial for face, _ in candidate_faces(faces, p))


TEXTURE_BINS = 24


# Roughness r (x 8, saturating at 255) -> bin 4 log2(1 + r): finer steps where skin is.
_TEXTURE_BIN = np.minimum(4.0 * np.log2(1.0 + np.arange(256) / 8.0), TEXTURE_BINS - 1).astype(np.uint8)


def _texture_bins(ycc: np.ndarray) -> np.ndarray:
    """Per pixel, a bin (0..TEXTURE_BINS-1) of local roughness: the mean
    absolute fine detail of Y in a 5x5 window, in percent of its brightness.
    Skin is smooth at this scale; hair, fabric and foliage are not.  (8-bit
    arithmetic throughout: the bins are coarser than its rounding.)"""
    y = cv2.extractChannel(ycc, 0)
    detail = cv2.blur(cv2.absdiff(y, cv2.GaussianBlur(y, (0, 0), 1.0)), (5, 5))
    rough = cv2.divide(detail, cv2.add(cv2.blur(y, (5, 5)), 10), scale=800.0)      # saturates at 255
    return cv2.LUT(rough, _TEXTURE_BIN)


def _texture_likelihood(texture: np.ndarray, weight: float) -> np.ndarray:
    """p(texture bin | class) ** weight, from the texture bins of a sample of
    the class's pixels (add-one smoothed, then [1 2 1])."""
    counts = np.convolve(np.bincount(texture, minlength=TEXTURE_BINS) + 1.0, [1.0, 2.0, 1.0], "same")
    return (counts / counts.sum()) ** weight


MIN_SAMPLES = 200             # (under colour_model.MAX_SAMPLES: _classify relies on it)


class Classified(NamedTuple):
    mask: np.ndarray                  # 0/255 skin
    hair_like: Optional[np.ndarray]   # 0/255 colours of this person's hair (when a hair colour was sampled)
    distance: np.ndarray              # float32 per colour bin: distance to the skin model (regions.py)
    texture: np.ndarray               # uint8: each pixel's texture bin (regions.py)


def _classify(ycc: np.ndarray, bins: np.ndarray, seed: np.ndarray, person_ok: Optional[np.ndarray],
              p: AdaptiveParams, thresh: float, hair_zone: Optional[np.ndarray] = None) -> Optional[Classified]:
    """Skin: pixels whose colour the skin model admits (distance <= thresh)
    and that skin explains better than the image's own other classes, by colour
    and texture (naive Bayes, every density estimated on this image); None when
    the seed is too small for a model:

    - skin: the Gaussian fitted to the seed, and the seed's texture;
    - hair: where there is a hair zone, a Gaussian fitted to its pixels unlike
      the face's skin, and their texture;
    - other: a histogram of the pixels far from the skin model or outside the
      person, and their texture.

    Densities are estimated on every 2nd row and column (plenty of samples).
    The decision depends only on (colour bin, texture bin), so it is made once
    per pair that occurs in the image and looked up per pixel.
    """
    every_2nd = colour_model.EVERY_2ND
    sub, sub_ycc, sub_seed = np.ascontiguousarray(bins[every_2nd]), ycc[every_2nd], seed[every_2nd] > 0  # (read faster)
    samples = colour_model.sample_pixels(sub_ycc, sub_seed)   # only those fit() uses: all cost more than the fit
    if len(samples) < MIN_SAMPLES:                   # a small image or seed: every pixel of it
        samples, sub_seed = colour_model.sample_pixels(ycc, seed > 0), None
    model = colour_model.fit(samples, p.y_scale, p.chroma_floor, p.y_scale_below)
    if model is None:
        return None
    occupied = colour_model.occupied_bins(sub)       # a colour too rare to be sampled is not skin
    d2, p_skin = colour_model.tables(model, occupied)
    admitted = d2 <= thresh * thresh
    prior_skin = max(float(np.count_nonzero(colour_model.lookup(admitted, sub))) / sub.size, 0.01)
    # Other: far from the model, or outside the person.
    other = colour_model.lookup(d2 > p.ratio_bg_dist ** 2, sub)
    if person_ok is not None:
        other |= ~person_ok[every_2nd]
    texture = _texture_bins(ycc)
    sub_texture = texture[every_2nd]
    weight = p.texture_weight

    seed_texture = sub_texture[sub_seed] if sub_seed is not None else texture[seed > 0]
    skin_term = (p.ratio_weight * prior_skin * p_skin[occupied])[:, None] * \
        _texture_likelihood(seed_texture, weight)[None, :]
    evidence = ((1.0 - prior_skin) * colour_model.nonskin_density(sub, other)[occupied])[:, None] * \
        _texture_likelihood(sub_texture[other], weight)[None, :]
    hair_like = None
    if hair_zone is not None:
        # Hair: what is unlike the face's skin in the zone.
        hair = (hair_zone[every_2nd] > 0) & colour_model.lookup(d2 > p.hair_dist ** 2, sub)
        hair_model = colour_model.fit(colour_model.sample_pixels(sub_ycc, hair), 1.0, p.chroma_floor) \
            if np.count_nonzero(hair) >= p.min_hair_pixels else None
        if hair_model is not None:
            d2_hair, p_hair = colour_model.tables(hair_model, occupied)
            evidence = evidence + (p.hair_prior * p_hair[occupied])[:, None] * \
                _texture_likelihood(sub_texture[hair], weight)[None, :]
            # 0/255 per colour bin, then per pixel (one uint8 lookup, no full-size temporaries).
            hair_like = colour_model.lookup(np.where(d2_hair <= p.hair_like_dist ** 2, 255, 0).astype(np.uint8), bins)
    decision = np.zeros((len(occupied) + 1, TEXTURE_BINS), np.uint8)    # the last row: colours not sampled
    decision[:-1] = np.where((skin_term >= evidence) & admitted[occupied][:, None], 255, 0)
    rank = np.full(colour_model.BIN_COUNT, len(occupied) * TEXTURE_BINS, np.int32)
    rank[occupied] = np.arange(0, len(occupied) * TEXTURE_BINS, TEXTURE_BINS, dtype=np.int32)
    index = np.take(rank, bins)
    index += texture
    mask = np.take(decision.ravel(), index)
    if person_ok is not None:
        mask[~person_ok] = 0
    # (d2 is infinite outside the occupied bins: 10 there, as min(d2, 100) gives, at a tenth of the cost.)
    distance = np.full(colour_model.BIN_COUNT, 10.0, np.float32)
    distance[occupied] = np.sqrt(np.minimum(d2[occupied], 100.0))
    return Classified(mask, hair_like, distance, texture)


DEFAULT_REGIONS = RegionParams()
Person = Union[np.ndarray, Callable[[], np.ndarray], None]     # adaptive_mask's person map, or how to get it


class SkinEstimate(NamedTuple):
    mask: np.ndarray                  # 0/255 on the working copy, before the clean-up
    faces: list[Face]                 # the faces that seeded the skin model
    keep_out: Optional[np.ndarray]    # 0/255: what must stay not skin (the faces' features, outside the people)
    face_area: Optional[np.ndarray]   # 0/255: inside the seeding faces' ovals (a lesion there is the face's)
    hair_like: Optional[np.ndarray]   # 0/255: colours of the person's hair (a beard is not a lesion)
    bins: np.ndarray                  # colour_model.bin_index of the working copy (the lesion stage reuses it)
    close_up: bool                    # no plausible face, or part of one: a close-up (lesions.py, dermoscopy.py)


def adaptive_mask(bgr: np.ndarray, faces: list[Face], person: Person, rules: SkinParams,
                  p: AdaptiveParams = AdaptiveParams(), regions: RegionParams = DEFAULT_REGIONS,
                  find_mouths: bool = True) -> SkinEstimate:
    """The skin mask of the working copy, the faces that seeded it, and what
    later stages (lesions.py) must leave out.

    Parameters
    ----------
    bgr : (H, W, 3) uint8 ndarray
        The working copy (long side at most config.WORK_SIZE), BGR.
    faces : list of Face
        The detector's faces, in the working copy's coordinates (with their
        meshes when the face mesh ran).
    person : (H, W) float32 ndarray, callable returning one, or None
        The person probability (0-1) of every pixel; or a function that
        computes it when asked (the segmenter costs about 5 ms: without a
        face it is asked only when needed); or None.  With a face it drops
        the background around the people; without one it only judges regions
        (regions.drop_outside_person), and not on a close-up that the colour
        box's core fills more than close_up_core of (no background beside
        the skin to judge).
    rules : SkinParams
        Its colour box seeds the model where there is no usable face.
    p : AdaptiveParams
        The tuned constants.
    regions : RegionParams
        The constants of the region stage (regions.py).
    find_mouths : bool
        Look for a mouth by its teeth on a photo without a face (mouth.py); off
        where the face mesh looked for part of a face (partface.py finds them).

    Returns
    -------
    SkinEstimate
        ``mask`` (H, W) uint8 0/255 before the clean-up, the faces that
        seeded the model, and the masks later stages need (keep_out,
        face_area, hair_like, the colour bins, close_up).
    """
    person_later = person if callable(person) else None
    candidates = candidate_faces(faces, p)
    if person_later is not None:        # not for part of a face: a close-up has no background to judge
        person = person_later() if whole_faces(faces, p) else None
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    used: list[tuple[Face, FaceGeometry]] = []
    seed = np.zeros(ycc.shape[:2], np.uint8)
    supported = False
    for face, g in candidates:
        # A real face belongs to a person: with a segmenter, it must agree (not part of one: a close-up).
        confirmed = person is not None and not face.partial and _person_support(person, g) >= p.person_thresh
        supported |= confirmed
        if person is not None and not face.partial and not confirmed:
            continue
        region = _face_seed_region(ycc, g, p, face.partial)
        if region is not None:
            used.append((face, g))
            cv2.bitwise_or(seed, region, dst=seed)
    person_ok = person >= p.person_thresh if supported else None
    bins = colour_model.bin_index(ycc)

    box = None                           # the colour box's mask, when computed
    mask = hair_like = None
    if used:
        hair_zone = np.zeros(ycc.shape[:2], np.uint8)
        for _, g in used:
            draw_hair_zone(hair_zone, g, 255, p.hair_inner, p.hair_outer, p.hair_above)
        classified = _classify(ycc, bins, seed, person_ok, p, p.maha_thresh, hair_zone)
        if classified is None:
            used = []                    # too small to sample: as if there were no face
        else:
            # Clothing the model admits at its margin: unlike skin as a region.
            ovals = np.zeros(ycc.shape[:2], np.uint8)
            for _, g in used:
                draw_face_oval(ovals, g, 255)
            coarse = regions.coarse
            mask = drop_unlike_regions(classified.mask, cv2.extractChannel(ycc, 0),
                                       colour_model.lookup(classified.distance, bins[::coarse, ::coarse]),
                                       classified.texture[::coarse, ::coarse], ovals, len(used), regions)
            hair_like = classified.hair_like
    if mask is None:
        # No usable face: self-seed from the confident core of the colour box,
        # or, where the box finds next to nothing (pale pink or beige skin
        # under a cool light), of the wide box that holds nearly all skin.
        box = rules_mask(bgr, rules, ycc)
        for seed_box in (box, _wide_box(ycc)):
            core = cv2.erode(seed_box, disk(2), iterations=2)
            if cv2.countNonZero(core) >= p.min_core_fraction * core.size:
                if person_later is not None and cv2.countNonZero(core) < p.close_up_core * core.size:
                    person = person_later       # asked by drop_outside_person if there is something to judge
                classified = _classify(ycc, bins, core, person_ok, p, p.self_maha_thresh)
                # A wall or a shirt beside a hand: outside the person the segmenter sees.
                mask = None if classified is None else \
                    drop_outside_person(classified.mask, cv2.extractChannel(ycc, 0), person, regions, p.person_thresh)
                break
        if mask is None:
            mask = box.copy()        # little or no skin: a model would be fitted to noise
    keep_out = face_area = None
    mouth = find_mouth(ycc, mask) if find_mouths and not candidates else None    # no face: teeth show the mouth
    if mouth is not None:
        keep_out = mouth
        mask[mouth > 0] = 0
    if used:
        face_area = np.zeros(mask.shape, np.uint8)
        for _, g in used:
            draw_face_oval(face_area, g, 255)
    if used or person_ok is not None:
        keep_out = np.zeros(mask.shape, np.uint8) if keep_out is None else keep_out
        for _, g in used:
            draw_features(keep_out, g, 255, grow=p.feature_margin)
        if person_ok is not None:
            keep_out[~person_ok] = 255
        mask[keep_out > 0] = 0
    if cv2.countNonZero(mask) >= p.balloon_fraction * mask.size:
        mask = _held_to_evidence(mask, box if box is not None else rules_mask(bgr, rules, ycc), p)
    close_up = all(face.partial for face, _ in candidates)
    return SkinEstimate(mask, [face for face, _ in used], keep_out, face_area, hair_like, bins, close_up)


def _wide_box(ycc: np.ndarray) -> np.ndarray:
    """0/255: the wide chroma box (about 99 % of the annotated skin of every
    evaluation set), not too dark or too bright for its chroma to mean much."""
    return cv2.inRange(ycc, (40, _WIDE_CR[0], _WIDE_CB[0]), (245, _WIDE_CR[1] - 1, _WIDE_CB[1] - 1))


def _held_to_evidence(mask: np.ndarray, box: np.ndarray, p: AdaptiveParams) -> np.ndarray:
    """The self-check for a mask that covers nearly the whole photo.

    That happens with skin close-ups, and with a colour model that admits
    what it should not (a colour cast makes a backdrop and dark hair look
    like the face, a broad seed takes in the background).  Where the model
    added much beyond the colour box, only additions close to the box's own
    pixels are kept: at worst the result is the box's, never a mask that
    ballooned over everything.
    """
    added = cv2.countNonZero(cv2.bitwise_and(mask, cv2.bitwise_not(box)))
    if added < p.balloon_growth * mask.size:
        return mask
    radius = max(1, int(p.balloon_reach * min(mask.shape)))
    near = cv2.dilate(box, disk(radius))
    return cv2.bitwise_and(mask, near)
