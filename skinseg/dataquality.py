"""Per-image data-quality measures: what the leakage and quality checks need.

A worker calls `measure` while the decoded pixels are in memory (no second
decode) and the image's record keeps the result (`ImageChecks.to_record`),
so that a re-run, a re-render or the merge of shards finds duplicates and
flags from the records alone (`datachecks.assess`).  Everything here is a
function on arrays: no file is read or written.

What is measured, and on what:

- the **perceptual hash** (pHash): the 2-D DCT of a 32x32 grey thumbnail,
  its 8x8 lowest frequencies compared with their median: 64 bits that
  survive re-encoding, resizing and brightness changes (a copy is 0-4 bits
  away, another photo about 32; a crop of 2 % a side about 6).  It is
  computed on the working copy the pipeline makes anyway (long side at most
  640 px, INTER_AREA): a 32x32 resize of a small image, not of a large one,
  and two sizes of one photo give the same working copy up to resampling.
  Rotated and mirrored copies are other photos to it.
- the **pixel digest**: SHA-256 of the decoded pixels and their shape: the
  same picture saved twice, in another lossless format, with other metadata
  or stored sideways with an EXIF rotation, has one digest.
- **sharpness** and **detail**, on the grey working copy (a large photo is
  judged at the size a model sees it; a small one is never enlarged, which
  would blur it): sharpness is how fine the photo's detail is, the
  Laplacian's energy over the gradient's (x 1000: neither the contrast nor
  the amount of detail changes it; blur lowers it); detail is how much there
  is, the Laplacian's mean square (a blank wall has none).
- **exposure**: mean luma, the luma below which 99 % of the pixels lie, and
  the share of blown-out pixels (luma >= CLIPPED_LEVEL), from one histogram.

The thresholds that turn these into findings (`NEAR_DISTANCE`,
`SHARPNESS_BELOW`, `DETAIL_BELOW`, `DARK_BELOW`, `OVEREXPOSED_ABOVE`) were
measured on the evaluation photos and on synthetic copies of them:
docs/dataquality.md, `python benchmarks/dataquality.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Optional

import cv2
import numpy as np

from .buildinfo import QUALITY_FLAGS

HASH_SIDE = 32           # the grey thumbnail the DCT is taken of
HASH_FREQUENCIES = 8     # its 8x8 lowest frequencies: 64 bits
DIGEST_HEX = 16          # hex digits kept of the pixel digest (64 bits: no collision among millions)
CLIPPED_LEVEL = 250      # luma at or above this is blown out

# The findings (measured: docs/dataquality.md).
NEAR_DISTANCE = 4        # perceptual hashes at most this many bits apart: one photo
SHARPNESS_BELOW = 6.0    # very blurry: sharpness below this ...
DETAIL_BELOW = 5.0       # ... or detail below this
DARK_BELOW = 100         # very dark: 99 % of the pixels have a luma below this
OVEREXPOSED_ABOVE = 0.5  # over-exposed: more than this share of the pixels blown out

BLURRY, DARK, OVEREXPOSED = QUALITY_FLAGS


def _check_image(image: Any, channels: int) -> None:
    shape = getattr(image, "shape", None)
    ok = (isinstance(image, np.ndarray) and image.dtype == np.uint8 and min(image.shape or (0,)) >= 1
          and (image.ndim == 3 and image.shape[2] == 3 if channels == 3 else image.ndim == 2))
    if not ok:
        wanted = "(H, W, 3) uint8 BGR" if channels == 3 else "(H, W) uint8 grey"
        raise ValueError(f"expected a non-empty {wanted} image, got {getattr(image, 'dtype', type(image).__name__)} "
                         f"of shape {shape}")


def grey(bgr: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601, as OpenCV computes it) of a BGR image.

    Parameters
    ----------
    bgr : (H, W, 3) uint8 ndarray
        A colour image, in OpenCV's channel order.

    Returns
    -------
    (H, W) uint8 ndarray

    Raises
    ------
    ValueError
        If `bgr` is not a non-empty (H, W, 3) uint8 array.
    """
    _check_image(bgr, 3)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def perceptual_hash(luma: np.ndarray) -> int:
    """The 64-bit perceptual hash (pHash) of a grey image.

    The image is shrunk to 32x32 (INTER_AREA, whatever its aspect ratio),
    its 2-D DCT taken, and bit ``63 - (8 * row + col)`` is set where the
    (row, col) coefficient of the 8x8 lowest frequencies is above their
    median (so about 32 bits are set).  Copies of one photo (re-encoded,
    resized, brighter or darker) differ in a few bits (`hamming`), unrelated
    photos in about 32.

    Parameters
    ----------
    luma : (H, W) uint8 ndarray
        A grey image (`grey`) of any size: best the working copy.

    Returns
    -------
    int
        In ``[0, 2**64)``.

    Raises
    ------
    ValueError
        If `luma` is not a non-empty (H, W) uint8 array.
    """
    _check_image(luma, 1)
    small = cv2.resize(luma, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:HASH_FREQUENCIES, :HASH_FREQUENCIES].ravel()
    return int.from_bytes(np.packbits(low > np.median(low)).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """The number of bits in which two 64-bit hashes differ, 0-64."""
    return (a ^ b).bit_count()


def pixel_digest(bgr: np.ndarray) -> str:
    """SHA-256 of an image's shape and pixels, as DIGEST_HEX hex digits.

    Two files whose decoded pixels are the same (one picture saved as PNG and
    as BMP, with other metadata, or stored sideways with an EXIF rotation)
    have one digest; any changed pixel changes it.

    Parameters
    ----------
    bgr : (H, W, 3) uint8 ndarray
        The decoded, upright image.

    Returns
    -------
    str
        DIGEST_HEX lower-case hex digits.

    Raises
    ------
    ValueError
        If `bgr` is not a non-empty (H, W, 3) uint8 array.
    """
    _check_image(bgr, 3)
    digest = hashlib.sha256(f"{bgr.shape[0]}x{bgr.shape[1]}|".encode("ascii"))
    digest.update(np.ascontiguousarray(bgr).data)
    return digest.hexdigest()[:DIGEST_HEX]


def focus(luma: np.ndarray) -> tuple[float, float]:
    """How fine, and how much, detail a grey image has: (sharpness, detail).

    With L the Laplacian (3x3, ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``) and G
    the 3x3 Sobel gradient, both with reflected borders:
    ``sharpness = 1000 * sum(L**2) / sum(|G|**2)`` and
    ``detail = mean(L**2)``.  Sharpness does not change with the contrast or
    with how much of the photo is plain background; blur lowers it (a
    Gaussian blur of 2 px takes nearly every photo below 6).  Detail is 0 for
    a flat image.  Measured at the size given: pass the working copy, so that
    a large photo and its half-size copy score alike.

    Parameters
    ----------
    luma : (H, W) uint8 ndarray
        A grey image.

    Returns
    -------
    sharpness : float
        0 for a flat image; about 10-100 for photos in focus.
    detail : float
        0 for a flat image; tens to thousands for photos.

    Raises
    ------
    ValueError
        If `luma` is not a non-empty (H, W) uint8 array.
    """
    _check_image(luma, 1)
    laplacian = cv2.Laplacian(luma, cv2.CV_32F, ksize=1)
    dx, dy = cv2.spatialGradient(luma)
    energy = cv2.norm(laplacian, cv2.NORM_L2SQR)
    gradient = cv2.norm(dx, cv2.NORM_L2SQR) + cv2.norm(dy, cv2.NORM_L2SQR)
    return (1000.0 * energy / gradient if gradient else 0.0), energy / luma.size


def exposure(luma: np.ndarray) -> tuple[float, int, float]:
    """Mean luma, the luma of the brightest 1 % and the share blown out.

    Parameters
    ----------
    luma : (H, W) uint8 ndarray
        A grey image.

    Returns
    -------
    mean : float
        Mean luma, 0-255.
    p99 : int
        The smallest luma that at least 99 % of the pixels are at or below,
        0-255: below DARK_BELOW nothing in the photo is bright.
    clipped : float
        Share of the pixels at or above CLIPPED_LEVEL, 0-1.

    Raises
    ------
    ValueError
        If `luma` is not a non-empty (H, W) uint8 array.
    """
    _check_image(luma, 1)
    histogram = cv2.calcHist([luma], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    total = histogram.sum()
    mean = float(histogram @ np.arange(256) / total)
    p99 = int(np.searchsorted(np.cumsum(histogram), 0.99 * total))
    return mean, p99, float(histogram[CLIPPED_LEVEL:].sum() / total)


@dataclass(frozen=True)
class ImageChecks:
    """What the checks know about one decoded image (a record's `checks`)."""

    phash: int           # perceptual_hash of the working copy
    pixels: str          # pixel_digest of the decoded image
    sharpness: float     # focus() of the grey working copy
    detail: float
    luma: float          # exposure() of the grey working copy: mean luma, 0-255
    luma_p99: int        # 99 % of the pixels are at or below this luma
    clipped: float       # share of blown-out pixels

    def flags(self) -> tuple[str, ...]:
        """Which of QUALITY_FLAGS the image has: very blurry, very dark, over-exposed."""
        found = []
        if self.sharpness < SHARPNESS_BELOW or self.detail < DETAIL_BELOW:
            found.append(BLURRY)
        if self.luma_p99 < DARK_BELOW:
            found.append(DARK)
        if self.clipped > OVEREXPOSED_ABOVE:
            found.append(OVEREXPOSED)
        return tuple(found)

    def to_record(self) -> dict:
        """As manifest.jsonl holds it: the hash as 16 hex digits, the measures rounded."""
        return {"phash": f"{self.phash:016x}", "pixels": self.pixels, "sharpness": round(self.sharpness, 2),
                "detail": round(self.detail, 2), "luma": round(self.luma, 2), "luma_p99": self.luma_p99,
                "clipped": round(self.clipped, 4)}

    @classmethod
    def from_record(cls, data: Any) -> Optional["ImageChecks"]:
        """The checks a record holds; None if it holds none (a record written
        before the checks existed) or they are damaged (a hand-edited line)."""
        # Unrolled (no all(...), no generator): this runs for every record of a 100 000-image build.
        if type(data) is not dict:
            return None
        try:
            phash, pixels, p99 = data["phash"], data["pixels"], data["luma_p99"]
            sharp, detail, luma, clipped = data["sharpness"], data["detail"], data["luma"], data["clipped"]
        except KeyError:
            return None
        if type(phash) is not str or len(phash) != 16 or type(pixels) is not str or type(p99) is not int:
            return None
        for number in (sharp, detail, luma, clipped):
            if type(number) is not float and type(number) is not int:
                return None
        try:
            value = int(phash, 16)
        except ValueError:
            return None
        return cls(value, pixels, float(sharp), float(detail), float(luma), p99, float(clipped))


def measure(bgr: np.ndarray, working: np.ndarray) -> ImageChecks:
    """Every check's measure of one decoded image.

    Parameters
    ----------
    bgr : (H, W, 3) uint8 ndarray
        The decoded, upright image: the pixel digest covers all of it.
    working : (h, w, 3) uint8 ndarray
        The pipeline's working copy of `bgr` (`pipeline.working_copy`: long
        side at most 640 px, INTER_AREA; `bgr` itself when smaller): hash,
        focus and exposure are measured on it.

    Returns
    -------
    ImageChecks

    Raises
    ------
    ValueError
        If an image is not a non-empty (H, W, 3) uint8 array.
    """
    luma = grey(working)
    sharp, detail = focus(luma)
    mean, p99, clipped = exposure(luma)
    return ImageChecks(perceptual_hash(luma), pixel_digest(bgr), sharp, detail, mean, p99, clipped)
