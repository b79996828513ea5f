"""dst/report.html: one self-contained page to judge a build by eye.

The page shows the parameters and class legend, counts per split and class
with the reasons for skipped and failed images, face statistics, a skin
fraction histogram per class, a contact sheet per class and the images most
likely to be wrong.  Everything except the thumbnails is aggregate statistics
over the records, and what lists images or files is capped, so the page
stays small and quick to open at any number of images: only the sampled and
suspect images (at most SHEET_FIGURES plus `suspects`) are read.

The page is byte-deterministic for the same records and build parameters (no
times, stable ordering), like every other file of a build.  Thumbnails are
named after the record's fingerprint, which changes whenever anything that
decides the image's outputs changes; an existing thumbnail is therefore up to
date and is not rendered again, which keeps re-runs cheap.
"""

from __future__ import annotations

import heapq
import os
import statistics
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from ._quiet import native_stderr_silenced
from .atomic import atomic_write_bytes
from .buildinfo import BuildInfo
from .encoding import encode_image
from .headers import ImageReadError
from .layout import REPORT_HTML, THUMBS_DIR, is_thumbnail_name, thumbnail_paths
from .outputs import (
    THUMB_QUALITY,
    is_whole,
    stored_skin_mask,
    thumbnail_images,
    thumbnail_photo,
)
from .reading import read_source
from .records import Record
from .report_checks import thumbnail_sources
from .report_html import page
from .sampling import contact_sheet, sample_key

# The "most likely wrong" score; the page caption explains the same rule.
LOW, HIGH = 0.10, 0.95      # skin fractions that are suspicious in themselves
FACE_LOW = 0.25             # a face crop with less skin than this missed skin (or the face is wrong)
FACE_COMMON = 0.8           # a face is expected when at least this share of the class has one
BODY_SKIN = 0.5             # most of the people's bodies called skin: clothing counted (Record.body_skin)
FLAG_WEIGHT = 0.5
NO_FACE_WEIGHT = 0.25


def write_report(dst: Path, src: Path, records: list[Record], info: BuildInfo, per_class: Optional[int] = None,
                 suspects: int = 24) -> list[str]:
    """Write dst/report.html and its thumbnails (dst/report/…); return their
    paths, relative to dst."""
    max_pixels = info.max_pixels
    class_names = list(info.classes[1:])
    written = [r for r in records if r.status == "written"]

    samples = {name: sorted(group, key=lambda r: r.source)            # shown in source order
               for name, group in contact_sheet(written, class_names, per_class=per_class).items()}
    ranked = _rank_suspects(written, info.face_enabled, suspects)
    shown = {r.source: r for group in samples.values() for r in group}
    shown.update((r.source, r) for r, _, _ in ranked)
    by_source = {r.source: r for r in written}
    shown.update((s, by_source[s]) for s in thumbnail_sources(info.data_checks) if s in by_source)
    # Decoding the sources dominates; OpenCV releases the GIL, so threads use
    # every core.  libjpeg's warnings ("Corrupt JPEG data") would reach the
    # terminal from here: the image's record already says what is wrong.
    with native_stderr_silenced(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        thumbs = dict(zip(shown, pool.map(lambda r: _thumbnails(dst, src, r, max_pixels), shown.values())))

    text = page(records, info, class_names, samples, ranked, thumbs, suspect_rule())
    atomic_write_bytes(dst / REPORT_HTML, text.encode("utf-8"))
    used = sorted({name for names in thumbs.values() if names for name in names.values()})
    _remove_unreferenced(dst / THUMBS_DIR, {dst / name for name in used})
    return [REPORT_HTML, *used]


# ------------------------------------------------------------------ choosing images

def _stable_key(record: Record) -> str:
    """Order that does not change when other images are added or removed."""
    return sample_key(record.source)


def _rank_suspects(written: list[Record], face_on: bool, count: int) -> list[tuple[Record, float, list[str]]]:
    """The written records most likely to be wrong, highest score first: (record, score, reasons);
    face_on: faces were looked for (a class without them is then suspect)."""
    by_class: dict[str, list[Record]] = defaultdict(list)
    for record in written:
        by_class[record.class_name].append(record)
    median = {c: statistics.median(r.skin_fraction for r in group) for c, group in by_class.items()}
    face_rate = {c: sum(r.face is not None for r in group) / len(group) for c, group in by_class.items()}

    def scored(record: Record) -> tuple[float, list[str]]:
        fraction, name = record.skin_fraction, record.class_name
        score = abs(fraction - median[name])
        reasons = [f"class median {median[name]:.0%}"]
        if fraction < LOW:
            score += FLAG_WEIGHT
            reasons.append("very little skin")
        # Only a crop around a face has a margin of hair, eyes and background;
        # a whole photo that is all skin is a close-up, as it should be.
        face_crop = record.face is not None and not is_whole(record.crop, *record.size)
        if fraction > HIGH and face_crop:
            score += FLAG_WEIGHT
            reasons.append("almost all skin around a face: background or hair counted?")
        if face_crop and fraction < FACE_LOW:
            score += FLAG_WEIGHT
            reasons.append("face found, little skin in its crop")
        if (record.body_skin or 0.0) > BODY_SKIN:
            score += FLAG_WEIGHT
            reasons.append(f"{record.body_skin:.0%} of the person's body is skin: clothing counted?")
        if face_on and record.face is None and face_rate[name] >= FACE_COMMON:
            score += NO_FACE_WEIGHT
            reasons.append(f"no face, {face_rate[name]:.0%} of the class have one")
        return round(score, 6), reasons

    # Scores of every image, reasons (text) only for those shown.
    top = heapq.nsmallest(count, written, key=lambda r: (-scored(r)[0], _stable_key(r)))
    return [(record, *scored(record)) for record in top]


def suspect_rule() -> str:
    """The score of _rank_suspects in words (the page's caption)."""
    return (f"the distance of the skin fraction from its class median, +{FLAG_WEIGHT:g} if it is below {LOW:.0%}, "
            f"or above {HIGH:.0%} around a face (a whole photo all skin is a close-up), +{FLAG_WEIGHT:g} if a "
            f"face was found but less than {FACE_LOW:.0%} of its crop is skin, +{FLAG_WEIGHT:g} if more than "
            f"{BODY_SKIN:.0%} of the people's bodies (below their faces) is skin, "
            f"+{NO_FACE_WEIGHT:g} if no face was found in a class where at least {FACE_COMMON:.0%} of the images "
            "have one.")


# ------------------------------------------------------------------ thumbnails

def _render(dst: Path, src: Path, record: Record, max_pixels: int) -> Optional[dict[str, np.ndarray]]:
    """The thumbnails of a written record, or None when a file is unreadable.
    Drawn as a worker draws them (outputs.thumbnail_photo, the stored skin),
    so a thumbnail is the same whoever made it."""
    x0, y0, x1, y1 = record.crop
    try:
        photo = thumbnail_photo(read_source(src / record.source, max_pixels), record.crop, record.size, max_pixels)
    except ImageReadError:
        return None
    if photo is None:
        return None                  # the source changed since it was processed
    skin = stored_skin_mask(dst, record)
    if skin is None or skin.shape != (y1 - y0, x1 - x0):
        return None                  # outputs went missing or do not match the record
    return thumbnail_images(photo, tuple(record.crop), tuple(record.size), skin, record.class_id)


def _thumbnails(dst: Path, src: Path, record: Record, max_pixels: int) -> Optional[dict[str, str]]:
    """Paths (relative to dst) of a record's thumbnails, rendered unless already there."""
    names = thumbnail_paths(record.source, record.segmentation, record.class_id)
    if all((dst / name).is_file() for name in names.values()):
        return names
    images = _render(dst, src, record, max_pixels)
    if images is None:
        return None
    for kind, image in images.items():
        atomic_write_bytes(dst / names[kind], encode_image(image, ".jpg", THUMB_QUALITY))
    return names


def _remove_unreferenced(folder: Path, keep: set[Path]) -> None:
    """Delete thumbnails in folder that this report does not use (rendered for
    earlier builds).  Only files named as thumbnails are: a user's notes stay,
    and so does a write in progress (two shards finishing at once both write
    the report; the build's temp-file clean-up removes leftovers)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if is_thumbnail_name(entry.name) and entry.is_file(follow_symlinks=False) and Path(entry.path) not in keep:
            os.unlink(entry.path)
