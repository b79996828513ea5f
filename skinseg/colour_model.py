"""A per-image skin colour model, evaluated through a table of colour bins.

Colour is described in a shading-tolerant way: luminance Y and the
chromaticity u = (Cr - 128) / (Y + K), v = (Cb - 128) / (Y + K).  When the
light on a surface gets weaker, Cr - 128 and Cb - 128 shrink with Y (also
after gamma), so with K = 0 u and v would stay put: a shadowed cheek would
have the chromaticity of a lit one.  K = 256 keeps half of that tolerance and
half of raw chroma's power to tell a face from a paler, less saturated
object of the same hue (a beige sweater, a cream backdrop): chosen on the
evaluation photos between the two (docs/quality.md).

A pixel's distance to the model weighs luminance asymmetrically (fit()):
shadows may go darker than the face, but not as far as highlights go
brighter, because the dark end of a photo is where hair, clothing and the
unreliable chroma of dark pixels are.

Every pixel falls in one of 16 x 64 x 64 bins (Y >> 4, Cr >> 2, Cb >> 2): a
decision is made once per bin that occurs in the image, then looked up per
pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

K = 256.0                # partial normalisation: shading-tolerant, yet keeps saturation
Y_SHIFT, C_SHIFT = 4, 2
Y_BINS, C_BINS = 256 >> Y_SHIFT, 256 >> C_SHIFT
BIN_COUNT = Y_BINS * C_BINS * C_BINS
EVERY_2ND = (slice(None, None, 2), slice(None, None, 2))     # a subsample with plenty of pixels for densities

# Per channel (Y, Cr, Cb), its bin already at its place in the index, 16-bit: a
# one-channel cv2.LUT each (a 3-channel LUT costs more than the three); the three
# fields do not overlap, so their sum (at most 65535: never saturated) is the index.
_Y_FIELD = ((np.arange(256) >> Y_SHIFT) << 2 * (8 - C_SHIFT)).astype(np.uint16)
_CR_FIELD = ((np.arange(256) >> C_SHIFT) << (8 - C_SHIFT)).astype(np.uint16)
_CB_FIELD = (np.arange(256) >> C_SHIFT).astype(np.uint16)

# Bin centres, (BIN_COUNT,) each.
_CENTRE_Y, _CENTRE_CR, _CENTRE_CB = (a.ravel() for a in np.meshgrid(
    np.arange(Y_BINS) * (1 << Y_SHIFT) + ((1 << Y_SHIFT) - 1) / 2,
    np.arange(C_BINS) * (1 << C_SHIFT) + ((1 << C_SHIFT) - 1) / 2,
    np.arange(C_BINS) * (1 << C_SHIFT) + ((1 << C_SHIFT) - 1) / 2, indexing="ij"))
_BIN_VOLUME = float((1 << Y_SHIFT) * (1 << C_SHIFT) ** 2)


def invariant(ycc: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 Y, Cr, Cb -> (N, 3) float64 Y, u, v."""
    y = ycc[:, 0].astype(np.float64)
    d = y + K
    return np.stack([y, (ycc[:, 1] - 128.0) / d, (ycc[:, 2] - 128.0) / d], axis=1)


def bin_index(ycc: np.ndarray) -> np.ndarray:
    """Per-pixel bin index (uint16, same height and width) of a YCrCb image:
    (Y >> 4) << 12 | (Cr >> 2) << 6 | Cb >> 2."""
    y, cr, cb = cv2.split(ycc)
    index = cv2.LUT(y, _Y_FIELD)
    cv2.add(index, cv2.LUT(cr, _CR_FIELD), dst=index)
    cv2.add(index, cv2.LUT(cb, _CB_FIELD), dst=index)
    return index


@dataclass(frozen=True)
class ColourModel:
    """A Gaussian in (Y, u, v) with Y independent of the chromaticity."""

    mean: np.ndarray          # (3,) Y, u, v
    y_sd: float               # luminance spread above the mean (widened: highlights, lighter body skin)
    y_sd_below: float         # ...and below it (shadows; dark pixels are where hair and clothing are)
    chroma_cov: np.ndarray    # (2, 2) chromaticity covariance of the skin itself


MAX_SAMPLES = 2000       # fit() thins its seed pixels to this many, evenly spaced


def _thinning(count: int, max_samples: int) -> np.ndarray:
    """Indices of max_samples of count items, evenly spaced, the first and the last included."""
    return np.linspace(0, count - 1, max_samples).astype(np.int64)


def sample_pixels(ycc: np.ndarray, where: np.ndarray, max_samples: int = MAX_SAMPLES) -> np.ndarray:
    """ycc[where] thinned as fit() thins it: the same (N, 3) pixels fit() would
    use of ycc[where] (N at most max_samples), without gathering the others.

    Parameters
    ----------
    ycc : (H, W, 3) array, a view with any strides (e.g. every 2nd row and column).
    where : (H, W) bool.
    """
    index = np.flatnonzero(where)
    if len(index) > max_samples:
        index = index[_thinning(len(index), max_samples)]
    rows, cols = np.divmod(index, where.shape[1])
    return ycc[rows, cols]


def fit(seed_ycc: np.ndarray, y_widen: float, chroma_floor: float, y_widen_below: Optional[float] = None,
        max_samples: int = MAX_SAMPLES) -> Optional[ColourModel]:
    """Robust fit to (N, 3) uint8 YCrCb seed pixels: start at the median, then
    three passes that drop pixels beyond the 99 % chi-square bound (a fringe
    or a beard in the seed region is a minority and is trimmed away).
    chroma_floor: the smallest chroma spread, in Cr/Cb units; y_widen (and
    y_widen_below, below the mean) widen the luminance spread."""
    if len(seed_ycc) < 20:
        return None
    if len(seed_ycc) > max_samples:
        seed_ycc = seed_ycc[_thinning(len(seed_ycc), max_samples)]
    x = invariant(seed_ycc)
    scale = 1.0 / (np.median(x[:, 0]) + K)         # raw chroma units -> chromaticity at the seed's luminance
    floor = np.diag([4.0, (chroma_floor * scale) ** 2, (chroma_floor * scale) ** 2])

    def covariance(a, m):
        c = a - m
        return c.T @ c / max(len(a) - 1, 1) + floor

    mu = np.median(x, axis=0)
    cov = covariance(x, x.mean(0))
    for _ in range(3):
        diff = x - mu
        inliers = x[((diff @ np.linalg.inv(cov)) * diff).sum(1) <= 11.34]
        if len(inliers) < 10:
            break
        mu = inliers.mean(0)
        cov = covariance(inliers, mu)
    y_sd = float(np.sqrt(cov[0, 0]))
    below = y_widen if y_widen_below is None else y_widen_below
    return ColourModel(mu, y_sd * y_widen, y_sd * below, cov[1:, 1:].copy())


def occupied_bins(bins: np.ndarray) -> np.ndarray:
    """The bins that hold at least one pixel, ascending (int64): a few thousand
    of the 65536, so tables are computed for these only.  (Flags set by the
    bins as indices: a third of the cost of counting them.)"""
    present = np.zeros(BIN_COUNT, bool)
    present[bins] = True
    return np.flatnonzero(present)


def tables(model: ColourModel, occupied: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(squared Mahalanobis distance, density per unit of (Y, Cr, Cb)), per bin;
    computed at the occupied bins' centres (elsewhere: infinite, 0)."""
    y = _CENTRE_Y[occupied]
    d = y + K
    du = (_CENTRE_CR[occupied] - 128.0) / d - model.mean[1]
    dv = (_CENTRE_CB[occupied] - 128.0) / d - model.mean[2]
    precision = np.linalg.inv(model.chroma_cov)
    y_sd = np.where(y >= model.mean[0], model.y_sd, model.y_sd_below)
    dy = (y - model.mean[0]) / y_sd
    d2_occupied = dy * dy + precision[0, 0] * du * du + 2 * precision[0, 1] * du * dv + precision[1, 1] * dv * dv
    # Density in (Y, u, v) times the Jacobian 1 / (Y + K)^2 of (Cr, Cb) -> (u, v);
    # Y is a split normal (its two halves meet at the mean).
    norm = (2 * np.pi) ** 1.5 * 0.5 * (model.y_sd + model.y_sd_below) * np.sqrt(np.linalg.det(model.chroma_cov))
    d2 = np.full(BIN_COUNT, np.inf)
    density = np.zeros(BIN_COUNT)
    d2[occupied] = d2_occupied
    density[occupied] = np.exp(-0.5 * d2_occupied) / (norm * d * d)
    return d2, density


def nonskin_density(bins: np.ndarray, nonskin: np.ndarray) -> np.ndarray:
    """Density per unit of (Y, Cr, Cb) of the pixels marked nonskin, from their
    bins, smoothed over neighbouring bins (3 x 3 x 3)."""
    return density_of(bins[nonskin])


def density_of(pixel_bins: np.ndarray) -> np.ndarray:
    """nonskin_density of the (N,) bins of the pixels marked (when the caller has them already)."""
    count = len(pixel_bins)
    if count == 0:
        return np.zeros(BIN_COUNT)
    hist = np.bincount(pixel_bins, minlength=BIN_COUNT).astype(np.float32).reshape(Y_BINS, C_BINS, C_BINS)
    return _box3(hist).ravel() / (27.0 * count * _BIN_VOLUME)


def _box3(hist: np.ndarray) -> np.ndarray:
    """3x3x3 box sum of a 3-D histogram (zero outside), separable.  (Counts in
    float32 are integers: the sums are exact in any order.)"""
    for axis in range(3):
        before = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
        after = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        summed = hist.copy()
        summed[after] += hist[before]
        summed[before] += hist[after]
        hist = summed
    return hist


def lookup(table: np.ndarray, bins: np.ndarray) -> np.ndarray:
    return np.take(table, bins)
