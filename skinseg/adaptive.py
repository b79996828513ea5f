"""The default skin method: a colour model fitted to each image's own skin.

Fixed colour boxes fail on two sides: they call beige walls, wood and hair
"skin", and they miss pale or shadowed skin.  Here the skin colour of the
person in the photo is learnt from the face and applied to the whole image:

1. seed: pixels of the face interior (cheeks, nose, forehead, chin; eyes,
   brows and lips cut out) of up to `max_faces` plausible faces, vetted by a
   wide chroma box and an "eyes are darker than skin" check, which rejects
   face detections on bellies and arms;
2. model: one robust Gaussian in (Y, Cr, Cb) of the pooled seeds, its Y
   spread widened (body skin is lit less evenly than the face); a pixel is
   skin if its Mahalanobis distance is at most `maha_thresh`, evaluated
   exactly through two 256x256 (Cr, Cb) tables of Y bounds;
3. gate: person probability >= 0.5 (selfie segmenter), only when the
   segmenter confirms a detected face (it is trained on people, not on skin
   close-ups, where it would erase everything);
4. a likelihood-ratio test against the image's own non-skin colours
   (16x64x64 histogram) removes skin-coloured background the model admits;
5. eye and lip ellipses placed from the keypoints are removed;
6. no usable face: the same Gaussian, seeded from the confident (eroded)
   core of the colour-box rule (--hsv/--ycrcb bounds).

Measured against human masks in docs/quality.md.  Input: a working copy of the
image (long side <= pipeline.WORK_SIZE) and faces in its coordinates; output:
a 0/255 mask of the same size, before the morphological clean-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .config import SkinParams
from .face import Face
from .skin import rules_mask


@dataclass(frozen=True)
class AdaptiveParams:
    """Chosen on the odd-id half of the evaluation photos, checked on the even half."""

    # --- face seeding
    min_face_score: float = 0.5     # detector confidence needed to seed from a face
    max_faces: int = 4              # most confident faces pooled (more: a broader, worse model)
    min_eye_dist_px: float = 6.0    # at working resolution; smaller faces give too few seeds
    min_seed_agree: float = 0.5     # share of seed pixels inside the wide chroma box
    max_eye_darkness: float = 0.7   # eye 10th-percentile Y / median seed Y must be below this:
                                    # real eyes are dark, false faces on bellies have none
    min_eye_check_px: float = 20.0  # ...checked only on faces this big (eye distance, px)
    # --- colour model
    cov_floor: float = 4.0          # added to the covariance diagonal (units^2)
    y_scale: float = 2.5            # widen the Y spread: faces are lit more evenly than bodies
    maha_thresh: float = 3.25       # skin if the Mahalanobis distance is at most this
    # --- test against the image's own non-skin colours
    ratio_bg_dist: float = 3.5      # farther than this from the model (or outside the person): non-skin
    ratio_weight: float = 6.0       # skin if weight * prior * p_skin >= (1 - prior) * p_nonskin
    # --- geometry
    feature_scale: float = 0.6      # eye and lip ellipses relative to the measured template
    person_thresh: float = 0.5      # person-probability gate
    # --- no usable face
    min_core_fraction: float = 0.01
    self_maha_thresh: float = 3.5   # wider than maha_thresh: the core of a rule mask is a noisier seed


# Wide chroma box used only to vet seed pixels: it holds ~99 % of the annotated
# skin pixels of every evaluation set (the original 135-180 / 85-135 box
# rejects pale skin).
_WIDE = np.zeros((256, 256), bool)
_WIDE[130:186, 70:136] = True

# Keypoint positions relative to a BlazeFace box, for detectors without
# keypoints (OpenCV's Haar cascade): medians over the evaluation photos.
_BOX_EYE_X = (0.313, 0.711)
_BOX_EYE_Y = 0.325


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


def face_geometry(face: Face) -> Optional[FaceGeometry]:
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    kp = face.keypoints
    if "right_eye" in kp and "left_eye" in kp:
        right, left = np.asarray(kp["right_eye"], float), np.asarray(kp["left_eye"], float)
    else:
        right = np.array([x0 + _BOX_EYE_X[0] * w, y0 + _BOX_EYE_Y * h])
        left = np.array([x0 + _BOX_EYE_X[1] * w, y0 + _BOX_EYE_Y * h])
    d = float(np.hypot(*(left - right)))
    if d < 1e-6:
        return None
    u = (left - right) / d
    v = np.array([-u[1], u[0]])            # u turned 90 degrees (image y points down)
    mid = (right + left) / 2
    mouth = np.asarray(kp["mouth_center"], float) if "mouth_center" in kp else mid + 1.06 * d * v
    return FaceGeometry(right, left, mouth, mid, d, u, v, float(max(w, 1)))


def plausible(face: Face, g: Optional[FaceGeometry], p: AdaptiveParams) -> bool:
    """A face whose keypoints are laid out like a face (eyes apart for the box
    size, mouth centred below the eyes).  Detections on skin close-ups fail."""
    if g is None or g.d < p.min_eye_dist_px:
        return False
    if face.score is not None and face.score < p.min_face_score:
        return False
    if not 0.2 <= g.d / g.width <= 0.65:            # real detections: 0.28-0.49
        return False
    offset = g.mouth - g.mid
    return 0.6 * g.d <= offset @ g.v <= 1.7 * g.d and abs(offset @ g.u) <= 0.5 * g.d


def _ellipse(image, center, axes, u, value, origin=(0, 0)) -> None:
    angle = float(np.degrees(np.arctan2(u[1], u[0])))
    cv2.ellipse(image, (int(round(center[0] - origin[0])), int(round(center[1] - origin[1]))),
                (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))), angle, 0, 360, value, -1)


def draw_features(image: np.ndarray, g: FaceGeometry, value: int, origin=(0, 0), scale: float = 1.0) -> None:
    """Eyes and lips, sized from the mean ground-truth non-skin template in
    eye-distance units: eyes ~0.45 d wide, lips ~0.6 d wide (times scale)."""
    d = g.d * scale
    for eye in (g.right_eye, g.left_eye):
        _ellipse(image, eye, (0.22 * d, 0.11 * d), g.u, value, origin)
    _ellipse(image, g.mouth, (0.30 * d, 0.12 * d), g.u, value, origin)


def _face_seeds(ycc: np.ndarray, g: FaceGeometry, p: AdaptiveParams) -> Optional[np.ndarray]:
    """(N, 3) YCrCb seed pixels from the face interior, or None if the face
    looks unusable.  The region (an ellipse around nose and cheeks minus eyes,
    brows and lips) covers the face's own range of shading."""
    h, w = ycc.shape[:2]
    d, u, v = g.d, g.u, g.v
    center = g.mid + 0.45 * d * v
    r = int(1.2 * d) + 2                                  # a local window: cheap with many faces
    x0, y0 = max(0, int(center[0]) - r), max(0, int(center[1]) - r)
    x1, y1 = min(w, int(center[0]) + r + 1), min(h, int(center[1]) + r + 1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    window = ycc[y0:y1, x0:x1]
    region = np.zeros(window.shape[:2], np.uint8)
    _ellipse(region, center, (0.85 * d, 1.05 * d), u, 255, (x0, y0))
    draw_features(region, g, 0, (x0, y0))
    for eye in (g.right_eye, g.left_eye):                 # eyebrows
        _ellipse(region, eye - 0.3 * d * v, (0.3 * d, 0.12 * d), u, 0, (x0, y0))
    seed = window[region > 0]
    if len(seed) < 20:
        return None
    inside = _WIDE[seed[:, 1], seed[:, 2]]
    if inside.mean() < p.min_seed_agree:
        return None
    seed = seed[inside]
    eyes = np.zeros(window.shape[:2], np.uint8)
    for eye in (g.right_eye, g.left_eye):
        _ellipse(eyes, eye, (0.2 * d, 0.1 * d), u, 255, (x0, y0))
    eye_y = window[..., 0][eyes > 0]
    if d >= p.min_eye_check_px and len(eye_y) and \
            np.percentile(eye_y, 10) > p.max_eye_darkness * np.median(seed[:, 0]):
        return None
    return seed


def _fit_gaussian(x: np.ndarray, cov_floor: float, max_samples: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Robust mean and covariance: start at the median, three trimming passes
    at the 99 % chi-square bound.  At most max_samples evenly spaced samples
    (deterministic, well under a millisecond)."""
    k = x.shape[1]
    chi2 = {2: 9.21, 3: 11.34}[k]
    if len(x) > max_samples:
        x = x[np.linspace(0, len(x) - 1, max_samples).astype(np.int64)]
    x = x.astype(np.float64)
    floor = cov_floor * np.eye(k)

    def covariance(a, m):
        c = a - m
        return c.T @ c / max(len(a) - 1, 1) + floor

    mu = np.median(x, axis=0)
    cov = covariance(x, x.mean(0))
    for _ in range(3):
        diff = x - mu
        inliers = x[((diff @ np.linalg.inv(cov)) * diff).sum(1) <= chi2]
        if len(inliers) < 10:
            break
        mu = inliers.mean(0)
        cov = covariance(inliers, mu)
    return mu, cov


# A 3-D Gaussian test d^2(Y, Cr, Cb) <= t^2 as two 2-D lookups.  Completing
# the square in Y, d^2 = a (Y - m(c))^2 + q(c) with c = (Cr, Cb), so the test
# is m(c) - r(c) <= Y <= m(c) + r(c), r(c) = sqrt((t^2 - q(c)) / a): per pixel
# two table lookups and two compares, exact for integer Y.
def _chroma_box(mu: np.ndarray, cov: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer (Cr, Cb) ranges [lo, hi) holding the t-ellipsoid's chroma projection."""
    sd = t * np.sqrt(np.diag(cov)[1:])
    lo = np.clip(np.floor(mu[1:] - sd) - 1, 0, 256).astype(int)
    hi = np.clip(np.ceil(mu[1:] + sd) + 2, 0, 256).astype(int)
    return lo, hi


def _gauss_bounds(mu: np.ndarray, cov: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    lo_table = np.full((256, 256), 255, np.uint8)          # default: an empty range (lo > hi)
    hi_table = np.zeros((256, 256), np.uint8)
    (r0, b0), (r1, b1) = _chroma_box(mu, cov, t)
    if r1 <= r0 or b1 <= b0:
        return lo_table, hi_table
    precision = np.linalg.inv(cov)
    a, b, c2 = precision[0, 0], precision[0, 1:], precision[1:, 1:]
    dcr = np.arange(r0, r1, dtype=np.float64)[:, None] - mu[1]
    dcb = np.arange(b0, b1, dtype=np.float64)[None, :] - mu[2]
    m = mu[0] - (b[0] * dcr + b[1] * dcb) / a
    s = c2 - np.outer(b, b) / a
    q = s[0, 0] * dcr ** 2 + 2 * s[0, 1] * dcr * dcb + s[1, 1] * dcb ** 2
    r = np.sqrt(np.maximum(t * t - q, 0.0) / a)
    lo, hi = np.ceil(m - r - 1e-9), np.floor(m + r + 1e-9)
    empty = (q > t * t) | (lo > 255) | (hi < 0) | (lo > hi)
    lo_table[r0:r1, b0:b1] = np.where(empty, 255, np.clip(lo, 0, 255))
    hi_table[r0:r1, b0:b1] = np.where(empty, 0, np.clip(hi, 0, 255))
    return lo_table, hi_table


def _chroma_index(ycc: np.ndarray) -> np.ndarray:
    """uint16 Cr * 256 + Cb per pixel (mixChannels packs the two bytes)."""
    h, w = ycc.shape[:2]
    pair = np.empty((h, w, 2), np.uint8)
    cv2.mixChannels([ycc], [pair], [2, 0, 1, 1])
    return pair.view(np.uint16)[..., 0]


def _in_gaussian(y: np.ndarray, chroma: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lo, hi = bounds
    return cv2.bitwise_and(cv2.compare(y, np.take(lo.ravel(), chroma), cv2.CMP_GE),
                           cv2.compare(y, np.take(hi.ravel(), chroma), cv2.CMP_LE))


# 16x64x64 colour bins (Y >> 4, Cr >> 2, Cb >> 2) of the non-skin histogram.
_BIN12 = (((np.arange(65536) >> 10) << 6) | ((np.arange(65536) & 255) >> 2)).astype(np.uint16)
_Y4 = (np.arange(256) >> 4).astype(np.uint16) << 12


def _box3(hist: np.ndarray) -> np.ndarray:
    """3x3x3 box sum of a 3-D histogram (zero outside), separable."""
    for axis in range(3):
        padded = np.pad(hist, [(1, 1) if a == axis else (0, 0) for a in range(3)])
        index = [slice(None)] * 3
        parts = []
        for offset in range(3):
            index[axis] = slice(offset, offset + hist.shape[axis])
            parts.append(padded[tuple(index)])
        hist = parts[0] + parts[1] + parts[2]
    return hist


def _ratio_reject(y, chroma, person_ok, prior, mu, cov, p: AdaptiveParams) -> np.ndarray:
    """0/255: pixels whose colour is more typical of this image's own non-skin
    pixels than of the skin model, i.e. weight*prior*p_skin < (1-prior)*p_nonskin.
    Non-skin = farther than ratio_bg_dist from the model, or outside the person.
    p_nonskin is a smoothed 16x64x64 histogram of them (every 2nd row and
    column); p_skin is the Gaussian mass at each bin centre.  Only bins in
    the model's chroma box matter (elsewhere the mask is already 0)."""
    every_2nd = (slice(None, None, 2), slice(None, None, 2))
    ys, cs = y[every_2nd], chroma[every_2nd]
    background = _in_gaussian(ys, cs, _gauss_bounds(mu, cov, p.ratio_bg_dist)) == 0
    if person_ok is not None:
        background |= ~person_ok[every_2nd]
    count = int(np.count_nonzero(background))
    if count == 0:
        return np.zeros(y.shape, np.uint8)
    bins = np.take(_BIN12, cs) | np.take(_Y4, ys)
    hist = np.bincount(bins[background], minlength=65536).astype(np.float64).reshape(16, 64, 64)
    (r0, b0), (r1, b1) = _chroma_box(mu, cov, p.maha_thresh)
    r0, b0, r1, b1 = r0 >> 2, b0 >> 2, (r1 + 3) >> 2, (b1 + 3) >> 2
    hist = _box3(hist[:, max(r0 - 1, 0):r1 + 1, max(b0 - 1, 0):b1 + 1])
    hist = hist[:, r0 - max(r0 - 1, 0):, b0 - max(b0 - 1, 0):][:, :r1 - r0, :b1 - b0] / (27.0 * count)
    cy, cr, cb = np.meshgrid(np.arange(16) * 16 + 7.5, np.arange(r0, r1) * 4 + 1.5,
                             np.arange(b0, b1) * 4 + 1.5, indexing="ij")
    diff = np.stack([cy, cr, cb], -1) - mu
    d2 = np.einsum("...i,ij,...j->...", diff, np.linalg.inv(cov), diff)
    p_skin = np.exp(-0.5 * d2) * 256.0 / ((2 * np.pi) ** 1.5 * np.sqrt(np.linalg.det(cov)))
    reject = np.zeros((16, 64, 64), np.uint8)
    reject[:, r0:r1, b0:b1] = np.where(p.ratio_weight * prior * p_skin < (1.0 - prior) * hist, 255, 0)
    return np.take(reject.ravel(), np.take(_BIN12, chroma) | np.take(_Y4, y))


def _person_support(person: np.ndarray, g: FaceGeometry) -> float:
    """Mean person probability over the central face square (side = eye distance)."""
    cx, cy = g.mid + 0.45 * g.d * g.v
    r = max(1, int(0.5 * g.d))
    x0, y0 = max(0, int(cx) - r), max(0, int(cy) - r)
    patch = person[y0:max(y0, int(cy) + r + 1), x0:max(x0, int(cx) + r + 1)]
    return float(patch.mean()) if patch.size else 0.0


def candidate_faces(faces: list[Face], p: AdaptiveParams = AdaptiveParams()) -> list[tuple[Face, FaceGeometry]]:
    """The most confident faces whose layout is plausible, with their geometry."""
    ranked = sorted(faces, key=lambda f: (-(1.0 if f.score is None else f.score), f.box))[:p.max_faces]
    out = []
    for face in ranked:
        g = face_geometry(face)
        if plausible(face, g, p):
            out.append((face, g))
    return out


def adaptive_mask(bgr: np.ndarray, faces: list[Face], person: Optional[np.ndarray], rules: SkinParams,
                  p: AdaptiveParams = AdaptiveParams()) -> tuple[np.ndarray, list[Face]]:
    """(0/255 skin mask before clean-up, faces that seeded the model).

    bgr is the working copy; faces are in its coordinates; person is the
    person-probability map of the same size, or None.
    """
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    used: list[tuple[Face, FaceGeometry]] = []
    seeds = []
    supported = False
    for face, g in candidate_faces(faces, p):
        # A real face belongs to a person: with a segmenter, it must agree.
        confirmed = person is not None and _person_support(person, g) >= p.person_thresh
        supported |= confirmed
        if person is not None and not confirmed:
            continue
        seed = _face_seeds(ycc, g, p)
        if seed is not None:
            used.append((face, g))
            seeds.append(seed)
    person_ok = person >= p.person_thresh if supported else None

    y = cv2.extractChannel(ycc, 0)
    chroma = _chroma_index(ycc)
    if used:
        mu, cov = _fit_gaussian(np.concatenate(seeds), p.cov_floor)
        widen = np.diag([p.y_scale, 1.0, 1.0])
        cov = widen @ cov @ widen
        mask = _in_gaussian(y, chroma, _gauss_bounds(mu, cov, p.maha_thresh))
        if person_ok is not None:
            mask[~person_ok] = 0
        prior = max(cv2.countNonZero(mask) / mask.size, 0.01)
        mask = cv2.bitwise_and(mask, cv2.bitwise_not(_ratio_reject(y, chroma, person_ok, prior, mu, cov, p)))
        for _, g in used:
            draw_features(mask, g, 0, scale=p.feature_scale)
    else:
        # No usable face: self-seed from the confident core of the colour-box rule.
        prior_mask = rules_mask(bgr, rules, ycc)
        core = cv2.erode(prior_mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)), iterations=2)
        if cv2.countNonZero(core) >= p.min_core_fraction * core.size:
            flat = np.flatnonzero(core)
            pick = flat[np.linspace(0, len(flat) - 1, min(len(flat), 2000)).astype(np.int64)]
            mu, cov = _fit_gaussian(ycc.reshape(-1, 3)[pick], p.cov_floor)
            mask = _in_gaussian(y, chroma, _gauss_bounds(mu, cov, p.self_maha_thresh))
        else:
            mask = prior_mask        # little or no skin: a model would be fitted to noise
        if person_ok is not None:    # a confirmed face exists but could not seed
            mask[~person_ok] = 0
    return mask, [face for face, _ in used]
