"""Regenerate examples/dataset_original from its two public-domain sources.

    pip download --no-deps scikit-image==0.26.0   # astronaut.png is inside the wheel
    python examples/make_examples.py ASTRONAUT_PNG GRACE_HOPPER_JPG

astronaut.png: skimage/data/astronaut.png in the scikit-image wheel;
grace_hopper.jpg: mpl-data/sample_data/grace_hopper.jpg in the matplotlib
package.  See examples/SOURCES.md for licences.  The output is deterministic.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent / "dataset_original"


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF block holding only the orientation tag."""
    tiff = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
            + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0))
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def crop(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> np.ndarray:
    """image[y0:y1, x0:x1] resized to width x height."""
    return cv2.resize(image[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_CUBIC)


def main(astronaut_path: str, hopper_path: str) -> None:
    astronaut = cv2.imread(astronaut_path)
    hopper = cv2.imread(hopper_path)
    assert astronaut is not None and hopper is not None, "give the paths of astronaut.png and grace_hopper.jpg"
    # No image of one split is a copy, resize, crop or mirror image of an
    # image of another: valid and test get other framings of the two
    # portraits, and every close-up covers pixels no other close-up covers.
    files: dict[str, np.ndarray] = {
        "train/Normal Skin/1.jpg": astronaut,
        "train/Normal Skin/2.jpg": hopper,
        "train/Normal Skin/3.jpg": cv2.flip(astronaut, 1),
        "train/Normal Skin/4.png": cv2.flip(cv2.resize(hopper, (256, 300), interpolation=cv2.INTER_AREA), 1),
        # Same file name as in "Normal Skin": outputs must not collide.
        "train/Close Up/1.jpg": crop(astronaut, 180, 60, 270, 125, 225, 163),
        "train/Close Up/2.jpg": crop(hopper, 200, 280, 340, 360, 320, 183),
        "train/Close Up/3.jpg": cv2.flip(crop(hopper, 210, 160, 350, 225, 320, 149), 1),
        "valid/Close Up/1.jpg": crop(astronaut, 185, 125, 265, 195, 200, 175),
        "test/Normal Skin/1.jpg": crop(hopper, 100, 40, 420, 420, 384, 456),
        "test/Close Up/1.jpg": crop(hopper, 200, 225, 340, 280, 320, 126),
    }
    for relative, image in files.items():
        path = OUT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        ext = path.suffix
        params = [cv2.IMWRITE_JPEG_QUALITY, 88] if ext == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 9]
        path.write_bytes(cv2.imencode(ext, image, params)[1].tobytes())
    # Stored sideways with an EXIF "rotate 90 degrees clockwise" tag, as phone
    # cameras do: read upright, the photo is the astronaut's head and shoulders.
    sideways = cv2.rotate(crop(astronaut, 76, 0, 436, 360, 512, 512), cv2.ROTATE_90_COUNTERCLOCKWISE)
    jpeg = cv2.imencode(".jpg", sideways, [cv2.IMWRITE_JPEG_QUALITY, 88])[1].tobytes()
    path = OUT / "valid/Normal Skin/1.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(with_exif_orientation(jpeg, 6))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
