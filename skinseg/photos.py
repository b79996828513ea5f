"""Photos without a dataset: `skinseg segment IMG_OR_DIR... --out DIR`.

Each photo gets the files a build writes for an image (the skin-only image,
the training mask, the preview and, in the train-ready layout, the skin
mask), named by `layout.photo_paths` under --out: `api.Segmenter` finds the
faces, the skin and the crop and applies a build's skip rule, and
`outputs.render` draws the files, as in a build (the mask's class id is 1,
a one-class build's), so a photo's files are the bytes a build would write
for it.  A folder is read as it is: the images directly in it, sorted (its
sub-folders are not entered).  One bad photo never stops the others; --out
is refused when it would write into the photos' folders.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import layout, outputs
from ._quiet import native_stderr_silenced
from .api import Segmenter
from .atomic import atomic_write_bytes
from .config import PipelineConfig
from .discover import IMAGE_EXTENSIONS, fit_stem, safe_name
from .folders import identity, identity_chain
from .headers import ImageReadError
from .imageio import decode_image
from .names import name_bytes, printable
from .reading import read_source

CLASS_ID = 1            # the masks' value on skin: a one-class build's
MASK_DTYPE = "uint8"


class OutputFolderError(ValueError):
    """--out cannot be used; str(exc) says why."""


@dataclass(frozen=True)
class Photo:
    path: Path           # as given (a file, or a folder's path joined with its name)
    stem: str            # the output name, unique among the photos (layout.photo_paths)


@dataclass
class Listing:
    """What the inputs hold: the photos, and what was not read (path, why)."""

    photos: list[Photo]
    problems: list[tuple[str, str]] = field(default_factory=list)     # inputs that could not be read: failures
    ignored: list[tuple[str, str]] = field(default_factory=list)      # other files, sub-folders: not photos


@dataclass(frozen=True)
class PhotoResult:
    """What was done with one photo: 'written' (files: by kind, relative to
    --out), 'skipped' (a build would skip it: nothing written) or 'failed';
    `reason` says why for the last two."""

    path: str
    status: str
    reason: Optional[str] = None
    files: dict[str, str] = field(default_factory=dict)
    skin_fraction: Optional[float] = None
    faces: int = 0


def _stems(paths: list[Path]) -> list[str]:
    """An output stem for each photo: its name without the extension, made
    safe; names that collide (a.jpg and a.png, one name in two folders)
    all get a hash of their path."""
    readable = [safe_name(path.stem) for path in paths]
    counts = Counter(stem.casefold() for stem in readable)
    return [fit_stem(f"{stem}-{hashlib.sha1(name_bytes(str(path))).hexdigest()[:8]}"
                     if counts[stem.casefold()] > 1 else stem, str(path))
            for stem, path in zip(readable, paths)]


def list_photos(inputs: Sequence[Path]) -> Listing:
    """The photos of `inputs` (files, and the image files directly in
    folders, sorted); an input that does not exist or cannot be read is a
    problem, a folder's other files and sub-folders are ignored."""
    paths: list[Path] = []
    problems, ignored = [], []
    for given in inputs:
        given = Path(given)
        if not given.is_dir():
            if given.exists() or given.is_symlink():
                paths.append(given)          # read as a build reads a source: refused there if not a file
            else:
                problems.append((str(given), "no such file or folder"))
            continue
        try:
            entries = sorted(os.scandir(given), key=lambda e: e.name)
        except OSError as exc:
            problems.append((str(given), f"the folder cannot be read ({exc.strerror or exc})"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = given / entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                ignored.append((str(path), "a folder inside a folder given: not entered"))
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                paths.append(path)
            else:
                ignored.append((str(path), "not an image file name"))
    unique = list(dict.fromkeys(paths))
    return Listing([Photo(path, stem) for path, stem in zip(unique, _stems(unique))], problems, ignored)


def check_out(out: Path, inputs: Sequence[Path]) -> None:
    """Raise OutputFolderError if writing into `out` would write into the
    photos' folders: `out` is a folder given or inside one, or is the
    folder holding a photo given, or a folder it writes into is one of
    those (by device and inode: links and mounts do not hide them).  A new
    sub-folder of a photo's folder is taken (``--out results``)."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {printable(str(out))} exists and is not a folder")
    chain = identity_chain(out)
    written = {identity(out / folder) for folder in layout.OUTPUT_DIRS} - {None}
    for given in map(Path, inputs):
        folder = given if given.is_dir() else given.parent
        here = identity(folder)
        if here is None:
            continue                       # not there: a failure of its own
        if (here in chain if given.is_dir() else here == identity(out)) or here in written:
            what = f"the folder {printable(str(given))}" if given.is_dir() else \
                f"the folder of {printable(str(given))}"
            raise OutputFolderError(f"--out {printable(str(out))} would write into {what}: the photos' folders "
                                    "are never written to; choose a folder outside them")


def render_photo(source: bytes, bgr, result, config: PipelineConfig) -> dict[str, bytes]:
    """A photo's files, by kind, from its source bytes, its decoded pixels
    (BGR) and what `Segmenter.segment` found: what a build writes for it
    (pipeline.process_image: the same `outputs.render`)."""
    x0, y0, x1, y1 = result.crop
    as_is = source if outputs.copies_source(config.output, source, result.crop, result.image_size) else None
    return outputs.render(bgr[y0:y1, x0:x1], result.mask, CLASS_ID, MASK_DTYPE, config.output,
                          outputs.IMAGE_FILES + outputs.LABEL_FILES, as_is)


def segment_photo(segmenter: Segmenter, photo: Photo, out: Path) -> PhotoResult:
    """Segment one photo and write its files under out; never raises for
    the photo (a failed result says why)."""
    config = segmenter.config
    shown = str(photo.path)
    try:
        with native_stderr_silenced():       # libjpeg/libpng/TFLite chatter
            source = read_source(photo.path, config.max_pixels)
            bgr = decode_image(source, config.max_pixels)
            result = segmenter.segment(bgr)
    except (ImageReadError, ValueError) as exc:
        return PhotoResult(shown, "failed", str(exc))
    except Exception as exc:   # noqa: BLE001 - one photo never stops the others
        return PhotoResult(shown, "failed", f"internal error: {type(exc).__name__}: {exc} (please report it)")
    if result.skip_reason is not None:
        return PhotoResult(shown, "skipped", result.skip_reason + "; nothing written",
                           skin_fraction=result.skin_fraction, faces=len(result.faces))
    paths = layout.photo_paths(photo.stem, config.output)
    try:
        for kind, data in render_photo(source, bgr, result, config).items():
            atomic_write_bytes(out / paths[kind], data)
    except OSError as exc:
        return PhotoResult(shown, "failed", f"cannot write into {out}: {exc.strerror or exc}")
    return PhotoResult(shown, "written", files=paths, skin_fraction=result.skin_fraction, faces=len(result.faces))


def segment_photos(listing: Listing, out: Path, segmenter: Segmenter,
                   on_result: Callable[[PhotoResult], None]) -> list[PhotoResult]:
    """Every photo of listing, one after the other (one process; the
    segmenter's models opened once), each result given to on_result as it
    comes; the listing's problems first, as failures."""
    results = []
    for path, why in listing.problems:
        results.append(PhotoResult(path, "failed", why))
        on_result(results[-1])
    for photo in listing.photos:
        results.append(segment_photo(segmenter, photo, out))
        on_result(results[-1])
    return results
