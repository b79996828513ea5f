"""The public Python API, re-exported by the package (``from skinseg import ...``).

- `build_dataset(BuildConfig)`: a whole dataset, as the command line builds
  it (the CLI is this call with its options parsed into the config; the
  name `skinseg.build` is the module that does it);
- `Segmenter`: the models opened once, then `segment(image)` on numpy arrays,
  for notebooks and for running skinseg inside another pipeline (a Ray or
  Spark map, a torch Dataset);
- `SkinDataset` and `collate`: read a built dataset back for training.

Everything here is built on the same functions a build uses
(`engines.plan_models`, `engines.open_engines`, `pipeline.segment`), so a
mask from `Segmenter.segment` is the mask a build writes for that image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Optional

import cv2
import numpy as np

from .build import BuildAborted, BuildError, BuildInterrupted, BuildResult
from .build import build as build_dataset
from .buildinfo import ModelUses
from .cleanup import skin_fraction
from .config import BuildConfig, CleanupParams, FaceParams, InputParams, OutputParams, PipelineConfig, SkinParams
from .engines import Engines, open_engines, plan_models
from .face import Face
from .headers import size_problem
from .imageio import on_black
from .loader import SkinDataset, collate
from .models import ModelUnavailable
from .pipeline import segment

__all__ = [
    "BuildAborted", "BuildConfig", "BuildError", "BuildInterrupted", "BuildResult", "CleanupParams", "Face",
    "FaceParams", "InputParams", "ModelUnavailable", "OutputParams", "PipelineConfig", "SegmentResult", "Segmenter",
    "SkinDataset", "SkinParams", "build_dataset", "collate",
]

log = logging.getLogger("skinseg")

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SegmentResult:
    """What `Segmenter.segment` found in one image."""

    mask: np.ndarray            # uint8, 255 = skin, 0 = not; covers `crop` (as the dataset's mask does)
    crop: Box                   # x0, y0, x1, y1 (exclusive) in the image: the region the dataset keeps
    faces: list[Face]           # the faces the crop was decided from (boxes in image pixels)
    face: Optional[Face]        # the best of them, or None
    skin_fraction: float        # share of the crop that is skin
    image_size: tuple[int, int]     # (width, height) of the image

    def full_mask(self) -> np.ndarray:
        """The mask over the whole image (0 outside the crop)."""
        width, height = self.image_size
        x0, y0, x1, y1 = self.crop
        full = np.zeros((height, width), np.uint8)
        full[y0:y1, x0:x1] = self.mask
        return full


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


class Segmenter:
    """Skin masks for numpy images, with the models opened once.

        with Segmenter() as segmenter:                 # PipelineConfig() defaults, as the CLI's
            result = segmenter.segment(cv2.imread("photo.jpg"))
            result.mask, result.crop, result.faces, result.skin_fraction

    Models are found (or downloaded) as for a build: --face-model etc. are
    the config's paths, then $SKINSEG_MODEL_DIR, the cache, the download; a
    missing optional model is a logged warning, and `models` says what each
    stage runs with (`models.fallbacks()`: the stages without their model).
    One Segmenter is not safe to share between threads: open one per worker
    process or thread.
    """

    def __init__(self, config: Optional[PipelineConfig] = None, *, show_progress: bool = False):
        self.config = config or PipelineConfig()
        plans = plan_models(self.config, show_progress)
        for note in plans.notes:
            log.warning("%s", note)
        self.models: ModelUses = plans.uses
        self._engines: Optional[Engines] = open_engines(plans)

    def segment(self, image: np.ndarray, *, channels: Literal["bgr", "rgb"] = "bgr") -> SegmentResult:
        """Faces, crop and skin mask of an image: uint8, (H, W) grey, or
        (H, W, 3|4) in `channels` order (OpenCV's cv2.imread gives BGR; PIL
        and most other libraries RGB).  Raises ValueError for an image a
        build would refuse: a side under 16 pixels, more pixels than the
        config's max_pixels, a side over 65500."""
        if self._engines is None:
            raise RuntimeError("this Segmenter is closed")
        if channels not in ("bgr", "rgb"):
            raise ValueError(f"channels must be 'bgr' or 'rgb', not {channels!r}")
        bgr = _as_bgr(image, channels, self.config.max_pixels)
        result = segment(bgr, self.config, self._engines)
        return SegmentResult(result.mask, tuple(result.region), list(result.faces), result.face,
                             skin_fraction(result.mask), (bgr.shape[1], bgr.shape[0]))

    def close(self) -> None:
        if self._engines is not None:
            self._engines.close()
            self._engines = None

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
