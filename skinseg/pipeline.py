"""One image from source file to written outputs.

Stages, each a function on arrays that can be tested alone:
read (reading.read_source, imageio.decode_image) -> working copy -> faces (face.FaceDetector)
-> skin (adaptive.adaptive_mask, or skin.rules_mask) -> clean-up
(cleanup.clean_mask) -> region (crop.crop_region) -> the skip rule
(`skip_reason`) -> render (outputs) -> write (atomic).  `process_image` runs them and returns the manifest record; it
never raises for a bad image, only for a problem with the destination.
`rerender` renders an image's files again from the mask an earlier build
stored, when only output options changed: no faces, no skin, no models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

from . import config as config_module
from . import layout, outputs
from ._quiet import native_stderr_silenced
from .adaptive import AdaptiveParams, Person, adaptive_mask, candidate_faces, whole_faces
from .atomic import atomic_write_bytes
from .cleanup import clean_mask, skin_fraction
from .config import OutputParams, PipelineConfig
from .crop import crop_region
from .dataquality import measure
from .dermoscopy import within_field_of_view
from .encoding import encode_image
from .engines import Engines
from .errors import OutputWriteError
from .face import Face, best_face
from .headers import ImageReadError, sniff
from .imageio import decode_image, downscaled
from .lesions import fill_lesions
from .mesh import with_meshes
from .partface import part_of_a_face
from .reading import read_source
from .records import ImageTask, Record
from .regions import body_skin_share
from .skin import rules_mask

if TYPE_CHECKING:
    from .runner import Runtime

# The most confident faces get a mesh: those adaptive.candidate_faces looks at (a mesh costs ~5-10 ms).
MESHED_FACES = AdaptiveParams().max_faces


def working_copy(bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """The image shrunk to config.WORK_SIZE on its long side (or as is), and the scale.

    Face detection (BlazeFace looks at 128-192 px anyway), person
    segmentation (256 px) and the adaptive colour model all use this one
    copy; only the final mask is brought back to full resolution.
    """
    return downscaled(bgr, config_module.WORK_SIZE)


def full_size_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """The working copy's 0/255 mask brought to the image's size (smooth edges, then 0/255 again)."""
    return cv2.threshold(cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR), 127, 255,
                         cv2.THRESH_BINARY)[1]


@dataclass
class Segmentation:
    mask: np.ndarray                         # 0/255, covers `region`
    region: tuple[int, int, int, int]        # x0, y0, x1, y1 in image pixels
    face: Optional[Face]                     # the best face
    faces: list[Face] = field(default_factory=list)     # the faces the region was decided from
    body_skin: Optional[float] = None        # regions.body_skin_share: how much of the people's bodies is skin


def _region(faces: list[Face], config: PipelineConfig, width: int, height: int,
            skin: Optional[np.ndarray] = None) -> tuple[int, int, int, int]:
    return crop_region(faces, config.face, width, height, skin)


def working_mask(small: np.ndarray, faces: list[Face], person: Person,
                 config: PipelineConfig, find_mouths: bool = True) -> tuple[np.ndarray, list[Face]]:
    """The adaptive method on the working copy: skin estimate, clean-up, the
    lesions put back (and a dermoscope's field of view); (0/255 mask, the
    faces that seeded the skin model).  find_mouths: see adaptive_mask."""
    estimate = adaptive_mask(small, faces, person, config.skin, find_mouths=find_mouths)
    mask = clean_mask(estimate.mask, config.cleanup)
    if config.skin.fill_lesions:
        # A close-up has no face at all (a face too small to seed the model
        # still makes this a photo of people, whose gaps are not lesions).
        mask = fill_lesions(mask, small, estimate.keep_out, estimate.close_up, estimate.face_area,
                            estimate.hair_like, bins=estimate.bins)
        if estimate.close_up:
            # A dermoscopy photo: its lens's disc is skin, its vignette is not.
            mask = within_field_of_view(mask, small, estimate.keep_out)
    return mask, estimate.faces


def segment(bgr: np.ndarray, config: PipelineConfig, engines: Engines,
            work: Optional[tuple[np.ndarray, float]] = None) -> Segmentation:
    """Find faces, compute the clean skin mask and decide the output region.
    work: `working_copy(bgr)`, when the caller has made it already."""
    height, width = bgr.shape[:2]
    small, scale = work or working_copy(bgr)
    small_faces = engines.detector.detect(small) if config.face.enabled else []

    if config.skin.method == "rules":
        # The original tool: crop to the face, colour box on the crop, clean-up at full size.
        faces = [f.scaled(1 / scale) for f in small_faces]
        x0, y0, x1, y1 = region = _region(faces, config, width, height)
        mask = clean_mask(rules_mask(bgr[y0:y1, x0:x1], config.skin), config.cleanup, zero_border=True)
        return Segmentation(mask, region, best_face(faces), faces)

    meshed = engines.mesher is not None and config.uses_face_mesh
    if meshed:
        small_faces = with_meshes(engines.mesher, small, small_faces, MESHED_FACES)
        if not candidate_faces(small_faces):        # a close-up of part of a face? (partface.py)
            part = part_of_a_face(small, engines.mesher)
            small_faces = small_faces + [part] if part is not None else small_faces
    person = None
    if engines.segmenter is not None and config.skin.person_segmentation:
        # With a face: the people's outline; without: which skin regions a person supports
        # (regions.py), computed only if the adaptive method asks (not on close-ups).
        segmenter = engines.segmenter
        person = segmenter.probability(small) if whole_faces(small_faces) else \
            (lambda: segmenter.probability(small))
    mask, used = working_mask(small, small_faces, person, config, find_mouths=not meshed)
    body_skin = body_skin_share(mask, None if callable(person) else person, [face.box for face in used])
    if scale != 1.0:
        mask = full_size_mask(mask, width, height)
    # Crop only to faces that proved real by seeding the skin model.
    faces = [f.scaled(1 / scale) for f in used]
    x0, y0, x1, y1 = region = _region(faces, config, width, height, mask)
    return Segmentation(np.ascontiguousarray(mask[y0:y1, x0:x1]), region, best_face(faces), faces, body_skin)


def skip_reason(result: Segmentation, config: PipelineConfig, width: int, height: int) -> Optional[str]:
    """Why a build skips an image of width x height with this segmentation
    (a sentence for the manifest), or None when it writes it: the one skip
    rule of a build and of `Segmenter.segment`.

    Parameters
    ----------
    result : Segmentation
        What `segment` found: the mask over its region, the best face.
    config : PipelineConfig
        ``cleanup.min_skin_fraction`` and ``skin.method`` decide.
    width, height : int
        The image's size (the message says crop or image).

    Returns
    -------
    str or None
        "too little skin: ..." when less than ``min_skin_fraction`` of the
        region is skin, except with the adaptive method when a face seeded
        the skin model (such a photo has skin, however small its people
        are in the frame); None otherwise.
    """
    fraction = skin_fraction(result.mask)
    proven = config.skin.method == "adaptive" and result.face is not None
    if fraction >= config.cleanup.min_skin_fraction or proven:
        return None
    where = "image" if outputs.is_whole(result.region, width, height) else "crop"
    return (f"too little skin: {fraction:.1%} of the {where} is skin, "
            f"below --min-skin-fraction {config.cleanup.min_skin_fraction:g}")


def _write_files(runtime: Runtime, files: dict[str, bytes]) -> None:
    """Write files (dst-relative path -> bytes); a failure stops the build."""
    for relative, data in files.items():
        try:
            atomic_write_bytes(runtime.dst / relative, data)
        except OSError as exc:
            raise OutputWriteError(f"cannot write {runtime.dst / relative}: {exc.strerror or exc}") from exc


def _rendered(runtime: Runtime, task: ImageTask, kinds: tuple[str, ...], bgr: Optional[np.ndarray],
              region: tuple[int, int, int, int], skin: Optional[np.ndarray],
              image_as_is: Optional[bytes]) -> dict[str, bytes]:
    """The files of `kinds`, by dst-relative path.  image_as_is: the source
    file when it is the image file (outputs.copies_source); bgr may then be
    None, as when the image is not drawn."""
    x0, y0, x1, y1 = region
    output = runtime.config.output
    paths = layout.output_paths(task.split, task.stem, output)
    crop = bgr[y0:y1, x0:x1] if bgr is not None else None
    files = outputs.render(crop, skin, task.class_id, runtime.mask_dtype, output, kinds, image_as_is)
    written = {paths[kind]: data for kind, data in files.items()}
    if "mask" in files and output.layout == "train-ready":
        written[layout.stored_skin_path(task.split, task.stem)] = outputs.stored_skin_png(skin)
    return written


def _thumbnails(runtime: Runtime, task: ImageTask, source: bytes, region: tuple[int, int, int, int],
                size: tuple[int, int], skin: np.ndarray, decoded: Optional[np.ndarray]) -> dict[str, bytes]:
    """The report's thumbnails of the image, by dst-relative path, made while
    the source and the mask are in memory (reading them back later costs
    more than the whole image's processing); none if they cannot be drawn."""
    try:
        photo = outputs.thumbnail_photo(source, region, size, runtime.config.max_pixels, decoded)
    except ImageReadError:
        return {}
    if photo is None:
        return {}
    images = outputs.thumbnail_images(photo, region, size, skin, task.class_id)
    return {relative: encode_image(images[kind], ".jpg", outputs.THUMB_QUALITY)
            for kind, relative in layout.thumbnail_paths(task.source, task.segmentation, task.class_id).items()}


def _written_record(task: ImageTask, output: OutputParams, record: Record) -> Record:
    record.status = "written"
    for kind, path in layout.output_paths(task.split, task.stem, output).items():
        setattr(record, kind, path)
    return record


def failed_record(task: ImageTask, reason: Optional[str] = None) -> Record:
    """The task's record as it stands until the image is written."""
    return Record(task.source, task.split, task.class_name, task.class_id, "failed", reason=reason,
                  fingerprint=task.fingerprint, segmentation=task.segmentation, rendering=task.rendering)


def process_image(task: ImageTask, runtime: Runtime, engines: Engines) -> Record:
    """Run every stage for one image; a bad image gives a 'failed' record."""
    record = failed_record(task)
    config = runtime.config
    try:
        with native_stderr_silenced():       # libjpeg/libpng/TFLite chatter
            source = read_source(runtime.src / task.source, config.max_pixels)
            bgr = decode_image(source, config.max_pixels)
            record.size = [bgr.shape[1], bgr.shape[0]]
            work = working_copy(bgr)
            # The data checks' measures, while the pixels are here (a re-render keeps them).
            record.checks = measure(bgr, work[0]).to_record()
            result = segment(bgr, config, engines, work)
    except ImageReadError as exc:
        record.reason = str(exc)
        return record
    x0, y0, x1, y1 = result.region
    record.crop = [x0, y0, x1, y1]
    record.face = result.face.to_record() if result.face is not None else None
    record.skin_fraction = round(skin_fraction(result.mask), 6)
    record.body_skin = None if result.body_skin is None else round(result.body_skin, 4)
    skipped = skip_reason(result, config, bgr.shape[1], bgr.shape[0])
    if skipped is not None:
        record.status, record.reason = "skipped", skipped
        return record
    # A plain JPEG is upright: the decoded size is its header's.
    as_is = source if outputs.copies_source(config.output, source, result.region, (bgr.shape[1], bgr.shape[0])) \
        else None
    files = _rendered(runtime, task, outputs.IMAGE_FILES + outputs.LABEL_FILES, bgr, result.region, result.mask, as_is)
    if task.thumbnails:
        with native_stderr_silenced():
            files.update(_thumbnails(runtime, task, source, result.region, (bgr.shape[1], bgr.shape[0]),
                                     result.mask, bgr))
    _write_files(runtime, files)
    return _written_record(task, config.output, record)


def rerender(task: ImageTask, runtime: Runtime) -> Optional[Record]:
    """Render the files `task.render` names again from the mask stored for
    `task.previous`, whose segmentation (source file, crop, mask) is this
    task's: no faces or skin are looked for.  The source is read only when
    the image (or a thumbnail) is rendered.  None when what is stored cannot
    be used (deleted, unreadable, not the recorded size): process the image."""
    previous, output = task.previous, runtime.config.output
    x0, y0, x1, y1 = region = tuple(previous.crop)
    thumbs = task.thumbnails and not all(
        (runtime.dst / p).is_file() for p in layout.thumbnail_paths(task.source, task.segmentation,
                                                                     task.class_id).values())
    want_source = "image" in task.render or thumbs
    want_skin = (thumbs or any(kind in outputs.LABEL_FILES for kind in task.render)
                 or ("image" in task.render and output.image_background != "original"))
    as_is = bgr = source = None
    try:
        with native_stderr_silenced():
            if want_source:
                source = read_source(runtime.src / task.source, runtime.config.max_pixels)
                # An image written as the source file needs no pixels (a plain
                # JPEG is upright: its header's size is the recorded one).
                if "image" in task.render and sniff(source).size == tuple(previous.size) and \
                        outputs.copies_source(output, source, region, tuple(previous.size)):
                    as_is = source
                if "image" in task.render and as_is is None:
                    bgr = decode_image(source, runtime.config.max_pixels)
    except ImageReadError:
        return None
    if bgr is not None and [bgr.shape[1], bgr.shape[0]] != previous.size:
        return None
    skin = outputs.stored_skin_mask(runtime.dst, previous) if want_skin else None
    if want_skin and (skin is None or skin.shape != (y1 - y0, x1 - x0)):
        return None
    files = _rendered(runtime, task, task.render, bgr, region, skin, as_is)
    if thumbs and source is not None:
        with native_stderr_silenced():
            files.update(_thumbnails(runtime, task, source, region, tuple(previous.size), skin, bgr))
    _write_files(runtime, files)
    record = dataclasses.replace(previous, split=task.split, class_name=task.class_name, class_id=task.class_id,
                                 image=None, mask=None, preview=None, skin_mask=None, fingerprint=task.fingerprint,
                                 segmentation=task.segmentation, rendering=task.rendering)
    return _written_record(task, output, record)
