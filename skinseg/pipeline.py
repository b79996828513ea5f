"""One image from source file to written outputs.

Stages, each a function on arrays that can be tested alone:
read (imageio.read_image) -> working copy -> faces (face.FaceDetector)
-> skin (adaptive.adaptive_mask, or skin.rules_mask) -> clean-up
(cleanup.clean_mask) -> region (face.crop_box) -> render (outputs) -> write
(atomic).  `process_image` runs them and returns the manifest record; it
never raises for a bad image, only for a problem with the destination.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from . import outputs
from ._quiet import native_stderr_silenced
from .adaptive import adaptive_mask, candidate_faces
from .cleanup import clean_mask, skin_fraction
from .config import PipelineConfig
from .face import DetectorPlan, Face, FaceDetector, best_face, crop_box, open_detector
from .imageio import ImageReadError, atomic_write_bytes, downscaled, encode_image, read_image
from .mesh import FaceMesher, open_mesher, with_meshes
from .models import ModelPlan
from .person import PersonSegmenter, open_segmenter
from .skin import rules_mask

IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR = "images", "masks", "masks_preview"
WORK_SIZE = 640       # long side of the copy that detection and the adaptive method work on
MESHED_FACES = 8      # the most confident faces get a mesh; more are rare and cost ~10 ms each


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
    thumbnails: bool = False   # the report will likely show it: render its thumbnails now


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
class ModelPlans:
    """Which model files every worker opens, decided once in the parent."""

    detector: DetectorPlan
    segmenter: ModelPlan = ModelPlan()
    mesher: ModelPlan = ModelPlan()

    @property
    def signature(self) -> str:
        """Identifies every model's bytes: part of each image's fingerprint."""
        return f"{self.detector.signature}|{self.segmenter.signature}|{self.mesher.signature}"


@dataclass(frozen=True)
class Runtime:
    """What a worker needs to process any image of this build."""

    src: Path
    dst: Path
    config: PipelineConfig
    models: ModelPlans
    mask_dtype: str


@dataclass
class Engines:
    """Models opened once per worker."""

    detector: FaceDetector
    segmenter: Optional[PersonSegmenter] = None
    mesher: Optional[FaceMesher] = None

    def close(self) -> None:
        for engine in (self.detector, self.segmenter, self.mesher):
            if engine is not None:
                engine.close()


def open_engines(runtime: Runtime) -> Engines:
    models = runtime.models
    return Engines(open_detector(models.detector), open_segmenter(models.segmenter), open_mesher(models.mesher))


def output_paths(task: ImageTask, image_extension: str) -> tuple[str, str, str]:
    return (f"{IMAGES_DIR}/{task.split}/{task.stem}{image_extension}",
            f"{MASKS_DIR}/{task.split}/{task.stem}.png",
            f"{PREVIEWS_DIR}/{task.split}/{task.stem}.png")


def working_copy(bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """The image shrunk to WORK_SIZE on its long side (or as is), and the scale.

    Face detection (BlazeFace looks at 128-192 px anyway), person
    segmentation (256 px) and the adaptive colour model all use this one
    copy; only the final mask is brought back to full resolution.
    """
    return downscaled(bgr, WORK_SIZE)


@dataclass
class Segmentation:
    mask: np.ndarray                         # 0/255, covers `region`
    region: tuple[int, int, int, int]        # x0, y0, x1, y1 in image pixels
    face: Optional[Face]                     # the face the region is about


def _region(face: Optional[Face], config: PipelineConfig, width: int, height: int) -> tuple[int, int, int, int]:
    if face is not None and config.face.crop:
        return crop_box(face.box, config.face.margin, width, height)
    return (0, 0, width, height)


def segment(bgr: np.ndarray, config: PipelineConfig, engines: Engines) -> Segmentation:
    """Find faces, compute the clean skin mask and decide the output region."""
    height, width = bgr.shape[:2]
    small, scale = working_copy(bgr)
    small_faces = engines.detector.detect(small) if config.face.enabled else []

    if config.skin.method == "rules":
        # The original tool: crop to the face, colour box on the crop, clean-up at full size.
        face = best_face([f.scaled(1 / scale) for f in small_faces])
        x0, y0, x1, y1 = region = _region(face, config, width, height)
        mask = clean_mask(rules_mask(bgr[y0:y1, x0:x1], config.skin), config.cleanup, zero_border=True)
        return Segmentation(mask, region, face)

    if engines.mesher is not None and config.uses_face_mesh:
        small_faces = with_meshes(engines.mesher, small, small_faces, MESHED_FACES)
    person = None
    if engines.segmenter is not None and config.skin.person_segmentation and candidate_faces(small_faces):
        person = engines.segmenter.probability(small)     # only where a face makes it useful
    raw, used = adaptive_mask(small, small_faces, person, config.skin)
    mask = clean_mask(raw, config.cleanup)
    if scale != 1.0:
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)[1]
    # Crop only to a face that proved real by seeding the skin model.
    face = best_face([f.scaled(1 / scale) for f in used])
    x0, y0, x1, y1 = region = _region(face, config, width, height)
    return Segmentation(np.ascontiguousarray(mask[y0:y1, x0:x1]), region, face)


def _write_outputs(runtime: Runtime, task: ImageTask, paths: tuple[str, str, str], crop: np.ndarray,
                   mask: np.ndarray) -> None:
    out = runtime.config.output
    image_path, mask_path, preview_path = paths
    class_id = task.class_id
    skin_only = outputs.skin_only_image(crop, mask, out.background)
    mask_png = encode_image(outputs.label_mask(mask, class_id, runtime.mask_dtype), ".png")
    files = [
        (image_path, encode_image(skin_only, Path(image_path).suffix, out.jpeg_quality)),
        (mask_path, mask_png),
        (preview_path, outputs.preview_png(mask, class_id, mask_png if runtime.mask_dtype == "uint8" else None)),
    ]
    if task.thumbnails:
        # The report's contact sheet, while the pixels are in memory (reading
        # them back later costs more than the whole image's processing).
        images = outputs.thumbnail_images(crop, skin_only, mask, class_id)
        for kind, relative in outputs.thumbnail_paths(task.source, task.fingerprint).items():
            files.append((relative, encode_image(images[kind], ".jpg", outputs.THUMB_QUALITY)))
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
            record.size = [bgr.shape[1], bgr.shape[0]]
            result = segment(bgr, config, engines)
    except ImageReadError as exc:
        record.reason = str(exc)
        return record
    x0, y0, x1, y1 = result.region
    record.crop = [x0, y0, x1, y1]
    record.face = result.face.to_record() if result.face is not None else None
    fraction = skin_fraction(result.mask)
    record.skin_fraction = round(fraction, 6)
    # A face that seeded the skin model is skin the photo has: such a photo is
    # never skipped, however small its people are in the frame.
    proven = config.skin.method == "adaptive" and result.face is not None
    if fraction < config.cleanup.min_skin_fraction and not proven:
        where = "face crop" if result.face is not None and config.face.crop else "image"
        record.status = "skipped"
        record.reason = (f"too little skin: {fraction:.1%} of the {where} is skin, "
                         f"below --min-skin-fraction {config.cleanup.min_skin_fraction:g}")
        return record
    paths = output_paths(task, config.output.image_extension)
    _write_outputs(runtime, task, paths, bgr[y0:y1, x0:x1], result.mask)
    record.status = "written"
    record.image, record.mask, record.preview = paths
    return record
