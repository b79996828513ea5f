"""Decoding images: bytes -> an upright 8-bit BGR array.

`decode_image` checks the header first (headers.sniff: format, size within
--max-pixels, damage decoders hide) and raises `ImageReadError` with a
sentence a person understands; it applies the EXIF orientation and puts
transparent pixels on black.  `read_image` reads a source file safely
(reading.read_source) and decodes it; `read_output` decodes a file the tool
wrote, or gives None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .headers import ImageReadError, damage, size_problem, sniff
from .reading import NotReadable, read_regular_file, read_source

REDUCED_DECODE = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, max_pixels: int, reduce: int = 1) -> np.ndarray:
    """Bytes -> upright (EXIF applied) 8-bit BGR array, or ImageReadError.

    reduce 2, 4 or 8 decodes a JPEG at that fraction of its size (the decoder
    skips the work, several times faster: for thumbnails); sizes round up.
    Other formats ignore it.
    """
    header = sniff(data)
    if header.size is None:
        # Without a size the --max-pixels check cannot be made before decoding.
        raise ImageReadError(f"the {header.format.upper()} header does not give the image size "
                             "(damaged or unusual file); not decoded")
    width, height = header.size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"the {header.format.upper()} header declares an empty image ({width}x{height})")
    problem = size_problem(width, height, max_pixels)
    if problem:
        raise ImageReadError(f"{problem}; not decoded")
    damaged = damage(header, data)
    if damaged:
        raise ImageReadError(damaged)
    buffer = np.frombuffer(data, np.uint8)
    # IMREAD_COLOR applies the EXIF orientation and converts grey, palette,
    # CMYK and 16-bit images to 8-bit BGR.
    flags = REDUCED_DECODE.get(reduce, cv2.IMREAD_COLOR) if header.format == "jpeg" else cv2.IMREAD_COLOR
    image = cv2.imdecode(buffer, flags)
    if image is None:
        raise ImageReadError(f"the {header.format.upper()} data is corrupt and could not be decoded")
    if header.format in ("png", "webp", "tiff"):
        image = _composite_alpha(buffer, image)
    return image


def _composite_alpha(buffer: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """Put transparent pixels on black: their stored colour is arbitrary and
    must not be mistaken for skin."""
    full = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] != 4 or full.shape[:2] != bgr.shape[:2]:
        return bgr
    alpha = full[:, :, 3]
    if alpha.dtype != np.uint8:
        alpha = (alpha >> 8).astype(np.uint8)
    if alpha.min() == 255:
        return bgr
    return on_black(bgr, alpha)


def on_black(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """8-bit colour laid over black by its 8-bit alpha (transparent is black)."""
    return cv2.multiply(np.ascontiguousarray(bgr), cv2.merge([alpha, alpha, alpha]), scale=1 / 255)


def downscaled(bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk (INTER_AREA) so its long side is at most max_side, and the scale used."""
    height, width = bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return bgr, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), scale


def read_image(path: Path, max_pixels: int, reduce: int = 1) -> np.ndarray:
    """Read a source image file; see decode_image."""
    return decode_image(read_source(path, max_pixels), max_pixels, reduce)


OUTPUT_BYTES = 2**31       # read_output's cap: far above any file the tool writes


def read_output(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> Optional[np.ndarray]:
    """A file this tool wrote (mask, image), decoded as stored; None when it
    is missing, empty, unreadable or not a regular file (a named pipe put in
    its place is not waited on: the file is then made again)."""
    try:
        data = read_regular_file(path, OUTPUT_BYTES)
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    except (OSError, NotReadable, cv2.error):
        return None
