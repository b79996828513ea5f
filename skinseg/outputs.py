"""What is written for an image: the skin-only image, the integer training
mask and the colour preview; plus the class legend.  Pure array functions;
file writing lives in the pipeline."""

from __future__ import annotations

import colorsys
import hashlib
import re

import cv2
import numpy as np

from .discover import name_bytes
from .imageio import encode_indexed_png, grey_png_with_palette

# Kelly's colours of maximum contrast, without white and black (black is
# "not skin"): fixed, so a class keeps its colour across builds and machines.
_KELLY_HEX = (
    "F3C300", "875692", "F38400", "A1CAF1", "BE0032", "C2B280", "848482", "008856", "E68FAC", "0067A5",
    "F99379", "604E97", "F6A600", "B3446C", "DCD300", "882D17", "8DB600", "654522", "E25822", "2B3D26",
)
_GOLDEN = 0.618033988749895


def class_color(class_id: int) -> tuple[int, int, int]:
    """BGR preview colour of a class id; id 0 (not skin) is black."""
    if class_id <= 0:
        return (0, 0, 0)
    if class_id <= len(_KELLY_HEX):
        h = _KELLY_HEX[class_id - 1]
        r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        return (b, g, r)
    # Beyond the fixed list: golden-ratio hue steps, alternating brightness.
    k = class_id - len(_KELLY_HEX)
    hue = (k * _GOLDEN) % 1.0
    value = 0.95 if k % 2 else 0.7
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
    return (int(b * 255), int(g * 255), int(r * 255))


def skin_only_image(bgr: np.ndarray, skin: np.ndarray, background: str) -> np.ndarray:
    """The image with non-skin removed: black, transparent (BGRA) or kept."""
    if background == "original":
        return bgr
    if background == "transparent":
        return np.dstack([bgr, skin])
    return cv2.bitwise_and(bgr, bgr, mask=skin)


def label_mask(skin: np.ndarray, class_id: int, dtype: str) -> np.ndarray:
    """0 where not skin, class_id on skin (skin is 0/255)."""
    if dtype == "uint8":
        return cv2.bitwise_and(skin, class_id)      # 255 & k == k
    return (skin > 0).astype(np.uint16) * np.uint16(class_id)


def preview_png(skin: np.ndarray, class_id: int, mask_png: bytes | None = None) -> bytes:
    """The colour preview: a palette PNG, black where not skin and the class
    colour on skin.  Given the 8-bit mask PNG, its pixel data is reused."""
    b, g, r = class_color(class_id)
    if mask_png is not None and class_id <= 255:
        palette = [(0, 0, 0)] * class_id + [(r, g, b)]       # index k (the class id) -> its colour
        return grey_png_with_palette(mask_png, palette)
    return encode_indexed_png(cv2.bitwise_and(skin, 1), [(0, 0, 0), (r, g, b)])


def legend_image(class_names: list[str]) -> np.ndarray:
    """A swatch, id and name per class.  OpenCV's fonts draw ASCII only, so
    other characters show as '?' (classes.txt has the exact names)."""
    row, width = 28, 520
    rows = [("0", "background / not skin (ignored)", (0, 0, 0))]
    rows += [(str(i), name, class_color(i)) for i, name in enumerate(class_names, start=1)]
    image = np.full((row * len(rows) + 8, width, 3), 255, np.uint8)
    for index, (text_id, name, color) in enumerate(rows):
        top = 4 + index * row
        cv2.rectangle(image, (6, top + 3), (46, top + row - 3), color, thickness=-1)
        cv2.rectangle(image, (6, top + 3), (46, top + row - 3), (120, 120, 120), thickness=1)
        label = f"{text_id}  {name}".encode("ascii", "replace").decode("ascii")
        cv2.putText(image, label, (56, top + row - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1,
                    cv2.LINE_AA)
    return image


# ------------------------------------------------------------ report thumbnails
# Rendered by the workers for the images the report will show (they still have
# the pixels in memory) and by the report for any other image it shows.

REPORT_DIR = "report"
THUMBS_DIR = f"{REPORT_DIR}/thumbs"
THUMB_SIDE = 180            # long side of a thumbnail, pixels
THUMB_QUALITY = 85
THUMB_VERSION = "1"         # part of thumbnail names: bump when their rendering changes
THUMB_KINDS = ("crop", "skin", "overlay")
OVERLAY_OPACITY = 0.5


def sample_key(source: str) -> str:
    """The report's sampling order: stable when other images are added or removed."""
    return hashlib.sha1(name_bytes(source)).hexdigest()


def thumbnail_paths(source: str, fingerprint: str) -> dict[str, str]:
    """dst-relative thumbnail paths.  Named after the image's fingerprint, which
    changes whenever its outputs do, so an existing thumbnail is up to date."""
    key = hashlib.sha1(name_bytes(f"{THUMB_VERSION}|{source}|{fingerprint}")).hexdigest()[:16]
    return {kind: f"{THUMBS_DIR}/{key}_{kind}.jpg" for kind in THUMB_KINDS}


_THUMB_NAME = re.compile(rf"[0-9a-f]{{16}}_({'|'.join(THUMB_KINDS)})\.jpg")


def is_thumbnail_name(name: str) -> bool:
    """Whether a file name in THUMBS_DIR is one thumbnail_paths gives."""
    return _THUMB_NAME.fullmatch(name) is not None


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of a crop's thumbnails; never enlarged."""
    scale = min(1.0, THUMB_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to a thumbnail.  INTER_AREA alone reads every pixel (17 ms for
    8 megapixels); sampling down to 4x the size first costs 1 ms and looks the same."""
    width, height = size
    if image.shape[1] > 4 * width and image.shape[0] > 4 * height:
        image = cv2.resize(image, (4 * width, 4 * height), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def thumbnail_images(crop: np.ndarray, skin: np.ndarray, mask: np.ndarray, class_id: int) -> dict[str, np.ndarray]:
    """Crop, skin-only image and mask overlay at thumbnail size.  crop and skin
    may be decoded at reduced size; mask is the full-size mask of the crop."""
    size = thumbnail_size(mask.shape[1], mask.shape[0])
    # Downscale first: the overlay maths then runs on thumbnail pixels only.
    crop = _shrink(crop, size)
    skin = _shrink(skin, size)
    if skin.ndim == 3 and skin.shape[2] == 4:       # --background transparent: show transparency as black
        skin = (skin[:, :, :3] * (skin[:, :, 3:] / 255.0)).astype(np.uint8)
    coverage = _shrink(cv2.compare(mask, 0, cv2.CMP_GT), size)
    alpha = coverage[:, :, None].astype(np.float32) * (OVERLAY_OPACITY / 255.0)
    colour = np.array(class_color(class_id), np.float32)
    overlay = (crop * (1.0 - alpha) + colour * alpha).round().astype(np.uint8)
    return {"crop": crop, "skin": skin, "overlay": overlay}
