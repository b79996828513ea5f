"""One image from source file to written outputs.

Stages, each a function on arrays that can be tested alone:
read (imageio.read_image) -> face (face.FaceDetector) -> crop (face.crop_box)
-> skin (skin_mask) -> clean-up (cleanup.clean_mask) -> render (outputs) ->
write (atomic).  `process_image` runs them and returns the manifest record;
it never raises for a bad image, only for a problem with the destination.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from . import outputs
from ._quiet import native_stderr_silenced
from .cleanup import clean_mask, skin_fraction
from .config import PipelineConfig
from .face import DetectorPlan, Face, FaceDetector, best_face, crop_box, open_detector
from .imageio import ImageReadError, atomic_write_bytes, encode_image, read_image
from .skin import rules_mask

IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR = "images", "masks", "masks_preview"


class OutputWriteError(Exception):
    """The destination cannot be written (full disk, read-only, ...): the
    build must stop, because every following image would fail the same way."""


@dataclass(frozen=True)
class ImageTask:
    source: str            # relative to src, forward slashes
    split: str
    class_name: str
    class_id: int
    stem: str
    fingerprint: str       # changes whenever anything that decides the outputs changes


@dataclass
class Record:
    """One line of manifest.jsonl."""

    source: str
    split: str
    class_name: str
    class_id: int
    status: str                          # 'written' | 'skipped' | 'failed'
    reason: Optional[str] = None
    image: Optional[str] = None
    mask: Optional[str] = None
    preview: Optional[str] = None
    size: Optional[list[int]] = None     # [width, height] of the upright source
    crop: Optional[list[int]] = None     # [x0, y0, x1, y1], exclusive ends
    face: Optional[dict] = None
    skin_fraction: Optional[float] = None
    fingerprint: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)

    def output_paths(self) -> list[str]:
        return [p for p in (self.image, self.mask, self.preview) if p]


@dataclass(frozen=True)
class Runtime:
    """What a worker needs to process any image of this build."""

    src: Path
    dst: Path
    config: PipelineConfig
    detector_plan: DetectorPlan
    mask_dtype: str


@dataclass
class Engines:
    """Models opened once per worker."""

    detector: FaceDetector

    def close(self) -> None:
        self.detector.close()


def open_engines(runtime: Runtime) -> Engines:
    return Engines(detector=open_detector(runtime.detector_plan))


def output_paths(task: ImageTask, image_extension: str) -> tuple[str, str, str]:
    return (f"{IMAGES_DIR}/{task.split}/{task.stem}{image_extension}",
            f"{MASKS_DIR}/{task.split}/{task.stem}.png",
            f"{PREVIEWS_DIR}/{task.split}/{task.stem}.png")


def skin_mask(bgr: np.ndarray, faces: list[Face], config: PipelineConfig) -> np.ndarray:
    """Raw skin/not-skin mask (0/255) of an image region, before clean-up."""
    return rules_mask(bgr, config.skin)


def segment(bgr: np.ndarray, faces: list[Face], config: PipelineConfig
            ) -> tuple[np.ndarray, tuple[int, int, int, int], Optional[Face]]:
    """Decide the output region and its clean skin mask.

    Returns (mask of the region, region box in image pixels, chosen face).
    """
    height, width = bgr.shape[:2]
    face = best_face(faces)
    region = (0, 0, width, height)
    if face is not None and config.face.crop:
        region = crop_box(face.box, config.face.margin, width, height)
    x0, y0, x1, y1 = region
    crop = bgr[y0:y1, x0:x1]
    local_faces = [f.shifted(x0, y0) for f in faces]
    mask = clean_mask(skin_mask(crop, local_faces, config), config.cleanup)
    return mask, region, face


def _write_outputs(runtime: Runtime, paths: tuple[str, str, str], crop: np.ndarray, mask: np.ndarray,
                   class_id: int) -> None:
    out = runtime.config.output
    image_path, mask_path, preview_path = paths
    files = (
        (image_path, encode_image(outputs.skin_only_image(crop, mask, out.background), Path(image_path).suffix,
                                  out.jpeg_quality)),
        (mask_path, encode_image(outputs.label_mask(mask, class_id, runtime.mask_dtype), ".png")),
        (preview_path, outputs.preview_png(mask, class_id)),
    )
    for relative, data in files:
        try:
            atomic_write_bytes(runtime.dst / relative, data)
        except OSError as exc:
            raise OutputWriteError(f"cannot write {runtime.dst / relative}: {exc.strerror or exc}") from exc


def process_image(task: ImageTask, runtime: Runtime, engines: Engines) -> Record:
    """Run every stage for one image; a bad image gives a 'failed' record."""
    record = Record(task.source, task.split, task.class_name, task.class_id, "failed",
                    fingerprint=task.fingerprint)
    config = runtime.config
    try:
        with native_stderr_silenced():       # libjpeg/libpng/TFLite chatter
            bgr = read_image(runtime.src / task.source, config.max_pixels)
            height, width = bgr.shape[:2]
            record.size = [width, height]
            faces = engines.detector.detect(bgr) if config.face.enabled else []
            mask, region, face = segment(bgr, faces, config)
    except ImageReadError as exc:
        record.reason = str(exc)
        return record
    x0, y0, x1, y1 = region
    record.crop = [x0, y0, x1, y1]
    record.face = face.to_record() if face is not None else None
    fraction = skin_fraction(mask)
    record.skin_fraction = round(fraction, 6)
    if fraction < config.cleanup.min_skin_fraction:
        record.status = "skipped"
        record.reason = (f"too little skin: {fraction:.1%} of the {'face crop' if face and config.face.crop else 'image'}"
                         f" is skin, below --min-skin-fraction {config.cleanup.min_skin_fraction:g}")
        return record
    paths = output_paths(task, config.output.image_extension)
    _write_outputs(runtime, paths, bgr[y0:y1, x0:x1], mask, task.class_id)
    record.status = "written"
    record.image, record.mask, record.preview = paths
    return record
