"""What is written for an image: the image (skin-only, or real in the
train-ready layout), the integer training mask, the colour preview and, in
the train-ready layout, the 0/1 skin mask; the 1-bit skin mask a build
keeps to re-render from, and reading it back (`stored_skin_mask`); plus the
class legend and the report's thumbnails.  Functions on arrays and bytes:
the pipeline writes the files (atomic.py), layout.py names them, labels.py
says what their values mean."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .cleanup import disk
from .config import OutputParams
from .encoding import encode_image, encode_indexed_png, grey_png_with_palette
from .headers import plain_jpeg, sniff
from .imageio import decode_image, read_output
from .labels import IGNORE_COLOR, IGNORE_UINT8, IGNORE_UINT16, class_color, legend_rows
from .layout import IMAGE_FILES, LABEL_FILES
from .records import Record

Box = tuple[int, int, int, int]      # x0, y0, x1, y1, exclusive ends

def skin_only_image(bgr: np.ndarray, skin: np.ndarray, background: str) -> np.ndarray:
    """The image with non-skin removed: black, transparent (BGRA) or kept."""
    if background == "original":
        return bgr
    if background == "transparent":
        return np.dstack([bgr, skin])
    return cv2.bitwise_and(bgr, bgr, mask=skin)


def edge_band(skin: np.ndarray, width: int) -> np.ndarray:
    """0/255: the pixels within `width` pixels of a skin/not-skin edge, on
    either side: where a mask made by colour is least sure.  The image's own
    border is not an edge."""
    if width < 1 or not skin.any():
        return np.zeros_like(skin)
    return cv2.morphologyEx(skin, cv2.MORPH_GRADIENT, disk(width), borderType=cv2.BORDER_REPLICATE)


def label_mask(skin: np.ndarray, class_id: int, dtype: str, band: np.ndarray | None = None) -> np.ndarray:
    """0 where not skin, class_id on skin (skin is 0/255); with a band (the
    train-ready layout), the ignore value there."""
    if dtype == "uint8":
        labels = cv2.bitwise_and(skin, class_id)      # 255 & k == k
        ignore = IGNORE_UINT8
    else:
        labels = (skin > 0).astype(np.uint16) * np.uint16(class_id)
        ignore = IGNORE_UINT16
    if band is not None:
        labels[band > 0] = ignore
    return labels


def skin_mask(skin: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The train-ready layout's class-free mask: 0 not skin, 1 skin, 255 in the band."""
    binary = cv2.bitwise_and(skin, 1)
    binary[band > 0] = IGNORE_UINT8
    return binary


def preview_png(skin: np.ndarray, class_id: int, mask_png: bytes | None = None,
                band: np.ndarray | None = None) -> bytes:
    """The colour preview: a palette PNG, black where not skin, the class
    colour on skin, grey in the ignore band.  Given the 8-bit mask PNG, its
    pixel data is reused."""
    b, g, r = class_color(class_id)
    grey = IGNORE_COLOR[::-1]
    if mask_png is not None and class_id <= 255:
        palette = [(0, 0, 0)] * class_id + [(r, g, b)]       # index k (the class id) -> its colour
        if band is not None:
            palette += [(0, 0, 0)] * (254 - class_id) + [grey]      # index 255: the band
        return grey_png_with_palette(mask_png, palette)
    indices = cv2.bitwise_and(skin, 1)
    if band is not None:
        indices[band > 0] = 2
    return encode_indexed_png(indices, [(0, 0, 0), (r, g, b), grey])


def copies_source(output: OutputParams, source: bytes, region: tuple[int, int, int, int],
                  size: tuple[int, int]) -> bool:
    """Whether the image file is the source file unchanged: the whole photo
    with its background, as JPEG, from a plain JPEG (headers.plain_jpeg).
    Compressing it again would only lose detail, and cost time."""
    return (output.image_background == "original" and output.image_extension == ".jpg"
            and is_whole(region, *size) and plain_jpeg(source))


def render(crop: np.ndarray | None, skin: np.ndarray | None, class_id: int, dtype: str, output: OutputParams,
           kinds: tuple[str, ...] = IMAGE_FILES + LABEL_FILES, image_as_is: bytes | None = None) -> dict[str, bytes]:
    """The files of one image, encoded, by kind: 'image', 'mask', 'preview'
    and, in the train-ready layout, 'skin_mask'; only the `kinds` asked for
    (a re-render renders only what an option change affects).  `crop` is
    needed for the image, `skin` (0/255 over the crop) for everything but an
    image that keeps the background.  `image_as_is`: the image file's bytes
    when the source file can be written unchanged (see copies_source)."""
    files = {}
    if "image" in kinds and image_as_is is not None:
        files["image"] = image_as_is
    elif "image" in kinds:
        files["image"] = encode_image(skin_only_image(crop, skin, output.image_background), output.image_extension,
                                      output.jpeg_quality)
    if any(kind in kinds for kind in LABEL_FILES):
        band = edge_band(skin, output.ignore_band) if output.layout == "train-ready" else None
        mask_png = encode_image(label_mask(skin, class_id, dtype, band), ".png")
        files["mask"] = mask_png
        files["preview"] = preview_png(skin, class_id, mask_png if dtype == "uint8" else None, band)
        if band is not None:
            files["skin_mask"] = encode_image(skin_mask(skin, band), ".png")
    return files


def is_whole(region: Box, width: int, height: int) -> bool:
    """Whether a region (x0, y0, x1, y1) is the whole width x height image (no crop)."""
    return tuple(region) == (0, 0, width, height)


def stored_skin_png(skin: np.ndarray) -> bytes:
    """The crop's skin as a 1-bit PNG: what the train-ready layout keeps in
    dst/.skinseg to re-render from (its masks mark the edges as ignored,
    which hides the skin there)."""
    ok, encoded = cv2.imencode(".png", skin, [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise OSError(f"OpenCV could not encode a skin mask of shape {skin.shape}")
    return encoded.tobytes()


def stored_skin_mask(dst: Path, record: Record) -> Optional[np.ndarray]:
    """The crop's skin (0/255) as the build that wrote the record left it:
    the original layout's mask is the class id on skin and 0 elsewhere; the
    train-ready layout keeps it in layout.STORED_SKIN_DIR (stored_skin_png).
    None if unreadable."""
    stored = read_output(dst / (record.stored_skin() or record.mask))
    if stored is None or stored.ndim != 2:
        return None
    return cv2.compare(stored, 0, cv2.CMP_NE)


def legend_image(class_names: list[str], layout: str = "original", dtype: str = "uint8") -> np.ndarray:
    """A swatch, id and name per class.  OpenCV's fonts draw ASCII only, so
    other characters show as '?' (classes.txt has the exact names)."""
    row, width = 28, 520
    rows = legend_rows(class_names, layout, dtype)
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

# Their names: layout.thumbnail_paths (bump layout.THUMB_VERSION when their rendering changes).
THUMB_SIDE = 180            # long side of a thumbnail, pixels
THUMB_QUALITY = 85
OVERLAY_OPACITY = 0.5
CROP_BOX_COLOR = (0, 220, 255)      # BGR: the crop's outline on the whole photo


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of a crop's thumbnails; never enlarged."""
    scale = min(1.0, THUMB_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_reduction(region: tuple[int, int, int, int] | list[int]) -> int:
    """1, 2, 4 or 8: the largest JPEG decoding reduction (a few times faster
    than full size) that keeps the crop at least thumbnail-sized."""
    x0, y0, x1, y1 = region
    long_side = max(x1 - x0, y1 - y0)
    return next((f for f in (8, 4, 2) if long_side // f >= THUMB_SIDE), 1)


def thumbnail_photo(source: bytes, region: tuple[int, int, int, int] | list[int], size: tuple[int, int] | list[int],
                    max_pixels: int, decoded: np.ndarray | None = None) -> np.ndarray | None:
    """The whole photo the thumbnails are drawn from: the source file's
    bytes decoded at thumbnail_reduction(region), the same whoever draws them
    (a worker, with the full-size `decoded` photo at hand, or the report),
    so they do not depend on which did.  None when the photo is not `size`
    (width, height): the source changed since.  Raises ImageReadError."""
    width, height = size
    reduce = thumbnail_reduction(region)
    if decoded is not None and (reduce == 1 or sniff(source).format != "jpeg"):
        photo = decoded              # what decoding again would give: only JPEG decoders reduce
    else:
        photo = decode_image(source, max_pixels, reduce)
    if photo.shape[:2] not in ((height, width), (-(-height // reduce), -(-width // reduce))):
        return None
    return photo


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to a thumbnail.  INTER_AREA alone reads every pixel (17 ms for
    8 megapixels); sampling down to 4x the size first costs 1 ms and looks the same."""
    width, height = size
    if image.shape[1] > 4 * width and image.shape[0] > 4 * height:
        image = cv2.resize(image, (4 * width, 4 * height), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def thumbnail_images(photo: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int],
                     skin: np.ndarray, class_id: int) -> dict[str, np.ndarray]:
    """The report's thumbnails of one image: the whole photo with the crop's
    outline, the crop, its skin only, and the mask over it.  photo is the
    whole upright image of `size` (width, height), possibly decoded reduced
    by an integer factor; skin is the full-size mask of the crop region,
    non-zero on skin."""
    width, height = size
    x0, y0, x1, y1 = region
    factor = max(1, round(width / photo.shape[1]))
    crop = photo[y0 // factor:-(-y1 // factor), x0 // factor:-(-x1 // factor)]
    thumb = thumbnail_size(x1 - x0, y1 - y0)
    # Downscale first: the overlay maths then runs on thumbnail pixels only.
    crop = _shrink(crop, thumb)
    coverage = _shrink(cv2.compare(skin, 0, cv2.CMP_GT), thumb)[:, :, None].astype(np.float32) / 255.0
    alpha = coverage * OVERLAY_OPACITY
    colour = np.array(class_color(class_id), np.float32)
    overlay = (crop * (1.0 - alpha) + colour * alpha).round().astype(np.uint8)
    whole_size = thumbnail_size(width, height)
    whole = _shrink(photo, whole_size)
    scale = whole_size[0] / width
    cv2.rectangle(whole, (int(x0 * scale), int(y0 * scale)),
                  (max(0, round(x1 * scale) - 1), max(0, round(y1 * scale) - 1)), CROP_BOX_COLOR, 2)
    return {"photo": whole, "crop": crop, "skin": (crop * coverage).round().astype(np.uint8), "overlay": overlay}
