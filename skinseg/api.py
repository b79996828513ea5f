"""The public Python API, re-exported by the package (``from skinseg import ...``).

- `build_dataset(BuildConfig)`: a whole dataset, as the command line builds
  it (the CLI is this call with its options parsed into the config; the
  name `skinseg.build` is the module that does it);
- `Segmenter`: the models opened once, then `segment(image)` on a numpy
  array, a PIL image, an encoded file's bytes or a path, for notebooks and
  for running skinseg inside another pipeline (a Ray or Spark map, a torch
  Dataset);
- `SkinDataset` and `collate`: read a built dataset back for training.

Everything here is built on the same functions a build uses
(`engines.plan_models`, `engines.open_engines`, `pipeline.segment`,
`pipeline.skip_reason`), so a mask from `Segmenter.segment` is the mask a
build writes for that image, and its result says when a build would skip it.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import cv2
import numpy as np

from .build import BuildAborted, BuildError, BuildInterrupted, BuildResult
from .build import build as build_dataset
from .cleanup import skin_fraction
from .config import BuildConfig, CleanupParams, FaceParams, OutputParams, PipelineConfig, SkinParams
from .engines import Engines, open_engines, plan_models
from .face import Face
from .headers import size_problem
from .imageio import decode_image, on_black
from .loader import SkinDataset, collate
from .models import ModelUnavailable
from .modeluse import ModelUses
from .pipeline import segment, skip_reason
from .reading import read_source
from .splits import InputParams

__all__ = [
    "BuildAborted", "BuildConfig", "BuildError", "BuildInterrupted", "BuildResult", "CleanupParams", "Face",
    "FaceParams", "InputParams", "ModelUnavailable", "OutputParams", "PipelineConfig", "SegmentResult", "Segmenter",
    "SkinDataset", "SkinParams", "build_dataset", "collate",
]

log = logging.getLogger("skinseg")

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SegmentResult:
    """What `Segmenter.segment` found in one image.

    Attributes
    ----------
    mask : (h, w) uint8 ndarray
        255 on skin, 0 elsewhere, over `crop` (as the dataset's mask covers
        it): the mask a build writes for the image.
    crop : (x0, y0, x1, y1)
        The region of the image the dataset keeps (x1, y1 exclusive), in
        image pixels.
    faces : list of Face
        The faces the crop was decided from (boxes in image pixels).
    face : Face or None
        The best of them.
    skin_fraction : float
        The share of the crop that is skin.
    image_size : (width, height)
        The image's size (upright, for a file or bytes).
    skip_reason : str or None
        Why a build would skip the image ("too little skin: ..."), as its
        manifest would say; None when a build writes it.
    """

    mask: np.ndarray
    crop: Box
    faces: list[Face]
    face: Optional[Face]
    skin_fraction: float
    image_size: tuple[int, int]
    skip_reason: Optional[str] = None

    @property
    def skipped(self) -> bool:
        """Whether a build would skip the image (see skip_reason)."""
        return self.skip_reason is not None

    def full_mask(self) -> np.ndarray:
        """The mask over the whole image, (height, width) uint8, 0 outside the crop."""
        width, height = self.image_size
        x0, y0, x1, y1 = self.crop
        full = np.zeros((height, width), np.uint8)
        full[y0:y1, x0:x1] = self.mask
        return full


ImageInput = Union[np.ndarray, bytes, str, "os.PathLike[str]", Any]     # Any: a PIL image


def _as_bgr(image: np.ndarray, channels: str, max_pixels: int) -> np.ndarray:
    """An 8-bit 3-channel BGR array from a grey, colour or colour+alpha one
    (transparent pixels on black, as when files are read).  Raises
    ValueError for an image a build would refuse (headers.size_problem)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    problem = size_problem(image.shape[1], image.shape[0], max_pixels, "PipelineConfig.max_pixels")
    if problem:
        raise ValueError(problem)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    colour = image[:, :, :3] if channels == "bgr" else image[:, :, 2::-1]
    if image.shape[2] == 4:
        colour = on_black(colour, image[:, :, 3])
    return np.ascontiguousarray(colour)


def _is_pil_image(image: object) -> bool:
    """A PIL (Pillow) image, known by its type's module: PIL is not a
    dependency, and is not imported here."""
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode") and hasattr(image, "getbands")


def _pil_pixels(image: Any) -> np.ndarray:
    """A PIL image's pixels as an 8-bit grey, RGB or RGBA array, as a file of
    its mode would be read (16-bit: the high byte; transparency kept)."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
    if mode == "F":
        raise ValueError("a PIL image of mode F (floating point) has no 8-bit colours: convert it first")
    if mode not in ("L", "RGB", "RGBA"):
        transparent = "A" in image.getbands() or "transparency" in getattr(image, "info", {})
        image = image.convert("RGBA" if transparent else "RGB")
    return np.asarray(image)


def _to_bgr(image: ImageInput, channels: str, max_pixels: int) -> np.ndarray:
    """An upright 8-bit BGR array from what users have, checked as a build
    checks a file (ValueError, ImageReadError for a file it would fail)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image), max_pixels)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such image file", str(path))
        return decode_image(read_source(path, max_pixels), max_pixels)
    if _is_pil_image(image):
        return _as_bgr(_pil_pixels(image), "rgb", max_pixels)
    return _as_bgr(image, channels, max_pixels)


def _close_at_exit(segmenter: "Segmenter") -> None:
    """Close the segmenter's models when the interpreter exits, if it is
    still open then.

    MediaPipe's objects close themselves in __del__, which, run while the
    interpreter tears its modules down, prints "Exception ignored in ...
    __del__ ... TypeError: 'NoneType' object is not callable"; and from an
    ordinary atexit hook they cannot close either, because their executor
    threads have stopped by then.  So they are closed at the moment
    concurrent.futures stops those threads, just before (threading's own
    exit hooks, run last registered first: this one is registered after
    the models started theirs)."""
    alive = weakref.ref(segmenter)

    def close() -> None:
        still_open = alive()
        if still_open is not None:
            still_open.close()

    register = getattr(threading, "_register_atexit", atexit.register)
    try:
        register(close)
    except RuntimeError:       # the interpreter is already exiting
        pass


class Segmenter:
    """Skin masks for images, with the models opened once.

        with Segmenter() as segmenter:                 # PipelineConfig() defaults, as the CLI's
            result = segmenter.segment("photo.jpg")    # or a BGR array, a PIL image, bytes
            result.mask, result.crop, result.faces, result.skin_fraction, result.skip_reason

    Parameters
    ----------
    config : PipelineConfig, optional
        The parameters, as a build takes them (default: the CLI's defaults).
    show_progress : bool
        Show a progress bar while a model downloads.

    Models are found (or downloaded) as for a build: --face-model etc. are
    the config's paths, then $SKINSEG_MODEL_DIR, the cache, the download; a
    missing optional model is a logged warning, and `models` says what each
    stage runs with (`models.fallbacks()`: the stages without their model).
    `close()` (or the ``with`` block) releases the models; a Segmenter that
    is never closed releases them when it is garbage collected, or at the
    latest when the interpreter exits.  One Segmenter is not safe to share
    between threads: open one per worker process or thread.

    Raises
    ------
    ModelUnavailable
        A model named explicitly (a path, ``detector="mediapipe"``) cannot be had.
    """

    def __init__(self, config: Optional[PipelineConfig] = None, *, show_progress: bool = False):
        self.config = config or PipelineConfig()
        plans = plan_models(self.config, show_progress)
        for note in plans.notes:
            log.warning("%s", note)
        self.models: ModelUses = plans.uses
        self._engines: Optional[Engines] = open_engines(plans)
        _close_at_exit(self)

    def segment(self, image: ImageInput, *, channels: Literal["bgr", "rgb"] = "bgr") -> SegmentResult:
        """Faces, crop and skin mask of an image, as a build finds them.

        Parameters
        ----------
        image : ndarray, PIL image, bytes, str or os.PathLike
            A uint8 array, (H, W) grey or (H, W, 3|4) colour (+ alpha) in
            `channels` order; a PIL image (taken as its pixels are: apply
            ``ImageOps.exif_transpose`` first to honour EXIF); the bytes of
            an image file; or the path of one.  Files and bytes are read as
            a build reads its sources (EXIF orientation applied,
            transparent pixels black, the header checked first).
        channels : {'bgr', 'rgb'}
            The order of an array's colour channels: OpenCV's cv2.imread
            gives BGR, PIL and most other libraries RGB.

        Returns
        -------
        SegmentResult
            The mask over the crop, the crop, the faces, the skin fraction
            and, when a build would skip the image, why (`skip_reason`).

        Raises
        ------
        ValueError
            An image a build would refuse or fail: a side under 16 pixels,
            more pixels than the config's max_pixels, a side over 65500,
            bytes or a file that is not a usable image (`ImageReadError`, a
            ValueError, with the reason a build records), unknown channels.
        TypeError
            An array that is not uint8.
        FileNotFoundError
            A path where there is no file.
        RuntimeError
            The Segmenter is closed.
        """
        if self._engines is None:
            raise RuntimeError("this Segmenter is closed")
        if channels not in ("bgr", "rgb"):
            raise ValueError(f"channels must be 'bgr' or 'rgb', not {channels!r}")
        bgr = _to_bgr(image, channels, self.config.max_pixels)
        height, width = bgr.shape[:2]
        result = segment(bgr, self.config, self._engines)
        return SegmentResult(result.mask, tuple(result.region), list(result.faces), result.face,
                             skin_fraction(result.mask), (width, height),
                             skip_reason(result, self.config, width, height))

    def close(self) -> None:
        """Release the models; `segment` then raises RuntimeError."""
        if self._engines is not None:
            engines, self._engines = self._engines, None
            engines.close()

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
