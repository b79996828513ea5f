"""One image from source file to written outputs.

Stages, each a function on arrays that can be tested alone:
read (imageio.read_image) -> working copy -> faces (face.FaceDetector)
-> skin (adaptive.adaptive_mask, or skin.rules_mask) -> clean-up
(cleanup.clean_mask) -> region (crop.crop_region) -> render (outputs) -> write
(atomic).  `process_image` runs them and returns the manifest record; it
never raises for a bad image, only for a problem with the destination.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from . import outputs
from ._quiet import native_stderr_silenced
from .adaptive import adaptive_mask, candidate_faces
from .cleanup import clean_mask, skin_fraction
from .config import OutputParams, PipelineConfig
from .crop import crop_region, is_whole
from .face import DetectorPlan, Face, FaceDetector, best_face, open_detector, plan_detector
from .imageio import ImageReadError, atomic_write_bytes, downscaled, encode_image, read_image
from .lesions import fill_lesions
from .mesh import FaceMesher, open_mesher, plan_mesher, with_meshes
from .models import ModelPlan
from .person import PersonSegmenter, open_segmenter, plan_segmenter
from .skin import rules_mask

IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR, SKIN_MASKS_DIR = "images", "masks", "masks_preview", "skin_masks"
OUTPUT_DIRS = (IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR, SKIN_MASKS_DIR)
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
    skin_mask: Optional[str] = None      # the train-ready layout's 0/1 skin mask
    size: Optional[list[int]] = None     # [width, height] of the upright source
    crop: Optional[list[int]] = None     # [x0, y0, x1, y1], exclusive ends
    face: Optional[dict] = None
    skin_fraction: Optional[float] = None
    fingerprint: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)

    def output_paths(self) -> list[str]:
        return [p for p in (self.image, self.mask, self.preview, self.skin_mask) if p]


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


def plan_models(config: PipelineConfig, show_progress: bool = False) -> ModelPlans:
    """Find (or download) every model the config uses; raises ModelUnavailable.
    Warnings about fallbacks are in the plans' notes."""
    face, skin = config.face, config.skin

    def explicit(path: Optional[str]) -> Optional[Path]:
        return Path(path) if path else None

    return ModelPlans(
        plan_detector(face.enabled, face.detector, explicit(face.model_path), face.min_score,
                      show_progress=show_progress),
        plan_segmenter(config.uses_person_segmentation, explicit(skin.person_model_path), show_progress=show_progress),
        plan_mesher(config.uses_face_mesh, explicit(skin.mesh_model_path), show_progress=show_progress))


def open_engines(models: ModelPlans) -> Engines:
    return Engines(open_detector(models.detector), open_segmenter(models.segmenter), open_mesher(models.mesher))


def output_paths(task: ImageTask, output: OutputParams) -> dict[str, str]:
    """dst-relative paths of an image's files, by kind (as outputs.render names them)."""
    paths = {"image": f"{IMAGES_DIR}/{task.split}/{task.stem}{output.image_extension}",
             "mask": f"{MASKS_DIR}/{task.split}/{task.stem}.png",
             "preview": f"{PREVIEWS_DIR}/{task.split}/{task.stem}.png"}
    if output.layout == "train-ready":
        paths["skin_mask"] = f"{SKIN_MASKS_DIR}/{task.split}/{task.stem}.png"
    return paths


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
    face: Optional[Face]                     # the best face
    faces: list[Face] = field(default_factory=list)     # the faces the region was decided from


def _region(faces: list[Face], config: PipelineConfig, width: int, height: int,
            skin: Optional[np.ndarray] = None) -> tuple[int, int, int, int]:
    return crop_region(faces, config.face, width, height, skin)


def working_mask(small: np.ndarray, faces: list[Face], person: Optional[np.ndarray],
                 config: PipelineConfig) -> tuple[np.ndarray, list[Face]]:
    """The adaptive method on the working copy: skin estimate, clean-up, the
    lesions put back; (0/255 mask, the faces that seeded the skin model)."""
    estimate = adaptive_mask(small, faces, person, config.skin)
    mask = clean_mask(estimate.mask, config.cleanup)
    if config.skin.fill_lesions:
        # A close-up: no face at all (a face too small to seed the model still
        # makes this a photo of people, whose gaps are not lesions).
        close_up = not estimate.faces and not candidate_faces(faces)
        mask = fill_lesions(mask, small, estimate.keep_out, close_up, estimate.face_area, estimate.hair_like)
    return mask, estimate.faces


def segment(bgr: np.ndarray, config: PipelineConfig, engines: Engines) -> Segmentation:
    """Find faces, compute the clean skin mask and decide the output region."""
    height, width = bgr.shape[:2]
    small, scale = working_copy(bgr)
    small_faces = engines.detector.detect(small) if config.face.enabled else []

    if config.skin.method == "rules":
        # The original tool: crop to the face, colour box on the crop, clean-up at full size.
        faces = [f.scaled(1 / scale) for f in small_faces]
        x0, y0, x1, y1 = region = _region(faces, config, width, height)
        mask = clean_mask(rules_mask(bgr[y0:y1, x0:x1], config.skin), config.cleanup, zero_border=True)
        return Segmentation(mask, region, best_face(faces), faces)

    if engines.mesher is not None and config.uses_face_mesh:
        small_faces = with_meshes(engines.mesher, small, small_faces, MESHED_FACES)
    person = None
    if engines.segmenter is not None and config.skin.person_segmentation and candidate_faces(small_faces):
        person = engines.segmenter.probability(small)     # only where a face makes it useful
    mask, used = working_mask(small, small_faces, person, config)
    if scale != 1.0:
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)[1]
    # Crop only to faces that proved real by seeding the skin model.
    faces = [f.scaled(1 / scale) for f in used]
    x0, y0, x1, y1 = region = _region(faces, config, width, height, mask)
    return Segmentation(np.ascontiguousarray(mask[y0:y1, x0:x1]), region, best_face(faces), faces)


def _write_outputs(runtime: Runtime, task: ImageTask, paths: dict[str, str], bgr: np.ndarray,
                   region: tuple[int, int, int, int], mask: np.ndarray) -> None:
    x0, y0, x1, y1 = region
    files = outputs.render(bgr[y0:y1, x0:x1], mask, task.class_id, runtime.mask_dtype, runtime.config.output)
    written = [(paths[kind], data) for kind, data in files.items()]
    if task.thumbnails:
        # The report's contact sheet, while the pixels are in memory (reading
        # them back later costs more than the whole image's processing).
        images = outputs.thumbnail_images(bgr, region, (bgr.shape[1], bgr.shape[0]), mask, task.class_id)
        for kind, relative in outputs.thumbnail_paths(task.source, task.fingerprint).items():
            written.append((relative, encode_image(images[kind], ".jpg", outputs.THUMB_QUALITY)))
    for relative, data in written:
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
        where = "image" if is_whole(result.region, bgr.shape[1], bgr.shape[0]) else "crop"
        record.status = "skipped"
        record.reason = (f"too little skin: {fraction:.1%} of the {where} is skin, "
                         f"below --min-skin-fraction {config.cleanup.min_skin_fraction:g}")
        return record
    paths = output_paths(task, config.output)
    _write_outputs(runtime, task, paths, bgr, result.region, result.mask)
    record.status = "written"
    for kind, path in paths.items():
        setattr(record, kind, path)
    return record
