"""What a build will do, decided before anything is written: class ids,
models, every image's fingerprints, which images this run does (--sample,
--shard), and which earlier records stand, which images are only re-rendered
and which are processed in full.

Each image has two fingerprints: its segmentation (source file, the
parameters that decide mask and crop, the models) and its rendering (how its
files are drawn from them: output options, class id, output names).  An
earlier record with the same fingerprint stands if its files are there and
its own (journal.History.owns); one with the same segmentation only is
re-rendered from its stored mask; anything else is processed in full.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional, Union

from . import __version__
from .buildinfo import BuildInfo, IgnoredFile
from .config import BuildConfig
from .discover import BACKGROUND_NAME, DatasetError, Discovery, assign_class_ids, read_class_file
from .engines import ModelPlans, plan_models
from .errors import BuildError
from .forkserver import available_cpus
from .journal import History
from .labels import ignore_index, mask_dtype, max_classes
from .layout import IMAGE_FILES, LABEL_FILES, output_paths
from .models import ModelUnavailable
from .names import json_text, name_bytes
from .progress import is_terminal
from .records import ImageTask, Record
from .sampling import contact_sheet, sample_key
from .state import exists

log = logging.getLogger("skinseg")


def digest(text: str, length: int = 16) -> str:
    """A short hex digest of a text (names that are not UTF-8 included)."""
    return hashlib.sha256(name_bytes(text)).hexdigest()[:length]


# ------------------------------------------------------------------ what the build is

def resolve_classes(config: BuildConfig, discovery: Discovery) -> list[str]:
    """The class list (index + 1 is the id): the classes found, after those
    of --classes; BuildError when it is empty or does not fit in a mask."""
    try:
        pinned = read_class_file(config.classes_file) if config.classes_file else None
    except DatasetError as exc:
        raise BuildError(str(exc)) from None
    class_names, added = assign_class_ids(discovery.class_names, pinned)
    if added:
        log.warning("classes not in %s were appended with new ids: %s", config.classes_file,
                    ", ".join(f"{class_names.index(n) + 1}={n}" for n in added))
    if not class_names:
        raise BuildError(f"no class folders found under the split folders of {config.src}")
    layout_name = config.pipeline.output.layout
    if len(class_names) > max_classes(layout_name, "uint16"):
        raise BuildError(f"{len(class_names)} classes do not fit in a 16-bit mask (at most "
                         f"{max_classes(layout_name, 'uint16')} with --layout {layout_name})")
    if mask_dtype(len(class_names), layout_name) == "uint16":
        log.warning("%d classes do not fit in 8 bits: masks are written as 16-bit PNGs (uint16; mmsegmentation "
                    "casts masks to 8 bits, see the README)", len(class_names))
    return class_names


def plan_build_models(config: BuildConfig) -> ModelPlans:
    """Find (or download) the models once, before any worker starts."""
    try:
        return plan_models(config.pipeline, config.progress and is_terminal())    # a download's bar
    except ModelUnavailable as exc:
        raise BuildError(str(exc)) from None


@dataclass(frozen=True)
class Keys:
    """The parts of every image's fingerprints that the whole build shares."""

    segmentation: str       # version, the parameters that decide mask and crop, the models
    image: str              # how the image file is rendered from crop and mask
    labels: str             # how the mask files are rendered (layout, ignore band, mask type)

    @classmethod
    def of(cls, config: BuildConfig, plans: ModelPlans, dtype: str) -> "Keys":
        # The version is part of it: a new release may compute masks differently.
        output = config.pipeline.output
        return cls(digest(f"{__version__}|{config.pipeline.segmentation_fingerprint()}|{plans.signature}"),
                   digest(f"{__version__}|{output.image_key()}"),
                   digest(f"{__version__}|{output.labels_key()}|{dtype}"))

    def task(self, src: Path, source: str, split: str, class_name: str, class_id: int, stem: str) -> ImageTask:
        """An image's task with its fingerprints: segmentation (the source
        file, the shared key), rendering (8 hex for the image file, 8 for the
        mask files, each with the output name; the masks' with the class id)
        and the whole (both).  The source file is known by what one stat
        says: size, modification time, inode and change time.  The last two
        tell a file replaced by other content with the same size and
        modification time (a rename over it, or a write whose time was set
        back: setting a time changes the change time); a copy of the source
        on another disk has other ones, and is processed again."""
        try:
            st = os.stat(f"{src}/{source}")
            stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"
        except OSError:
            stamp = "unreadable"
        segmentation = digest(f"{self.segmentation}|{source}|{stamp}")
        rendering = digest(f"{self.image}|{split}|{stem}", 8) + digest(f"{self.labels}|{split}|{stem}|{class_id}", 8)
        return ImageTask(source, split, class_name, class_id, stem, digest(f"{segmentation}|{rendering}"),
                         segmentation, rendering)


def sample_sources(discovery: Discovery, per_class: Optional[int]) -> Optional[set[str]]:
    """At most per_class images of each class in each split (every split
    keeps some: a sample per class alone may leave a small split empty):
    those with the smallest hash of their source path, so the choice is
    stable when images are added."""
    if per_class is None:
        return None
    by_class: dict[tuple[str, str], list[str]] = defaultdict(list)
    for image in discovery.images:
        by_class[(image.split, image.class_name)].append(image.source)
    chosen = set()
    for sources in by_class.values():
        chosen.update(sorted(sources, key=sample_key)[:per_class])
    return chosen


def mark_report_sample(tasks: list[ImageTask], class_names: list[str]) -> list[ImageTask]:
    """Ask the workers for thumbnails of the images the report's contact sheet
    will show (report.contact_sheet chooses them, as the report will), plus
    a few per class in case some are skipped."""
    chosen = {t.source for group in contact_sheet(tasks, class_names, spare=2).values() for t in group}
    return [dataclasses.replace(t, thumbnails=True) if t.source in chosen else t for t in tasks]




@dataclass
class Prepared:
    """Everything decided before the destination is locked."""

    config: BuildConfig
    discovery: Discovery
    class_names: list[str]
    mask_dtype: str
    plans: ModelPlans
    keys: Keys
    tasks: list[ImageTask]           # every image of the build (all shards)
    started: float
    started_at: str

    def identity(self) -> dict:
        """What the shards of one build agree on: parameters and models,
        class ids, the images (not their contents: a shard on another
        machine sees other modification times)."""
        listing = "\n".join(f"{t.source}|{t.split}|{t.class_id}|{t.stem}" for t in self.tasks)
        return {"build": digest(json_text(dataclasses.asdict(self.keys))), "classes": self.class_names,
                "images": len(self.tasks), "listing": digest(listing)}

    def info(self) -> BuildInfo:
        """build.json without its counts and run: everything it says that
        depends only on the source and the parameters."""
        config, plans = self.config, self.plans
        layout_name = config.pipeline.output.layout
        parameters = {
            "src": str(config.src),
            "classes_file": str(config.classes_file) if config.classes_file else None,
            "sample_per_class": config.sample,
            "input": dataclasses.asdict(config.input),
            **config.pipeline.to_dict(),
        }
        return BuildInfo(
            version=__version__,
            parameters=json.loads(json_text(parameters)),      # as build.json holds it: lists, not tuples
            models=plans.uses,
            classes=(BACKGROUND_NAME, *self.class_names),
            mask_dtype=self.mask_dtype,
            layout=layout_name,
            ignore_index=ignore_index(layout_name, self.mask_dtype),
            ignored_files=tuple(IgnoredFile(p, why) for p, why in self.discovery.ignored),
            # Every fallback is a warning too: a stage ran without its model.
            warnings=(*self.discovery.warnings, *plans.uses.warnings()),
        )


# ------------------------------------------------------------------ what this run does

def _kept(dst: Path, history: History, record: Record, relative: str) -> bool:
    """Whether the record's file is there and holds what the record says: no
    build that did not finish wrote to it since."""
    return exists(dst, relative) and history.owns(record, relative)


def _reusable(dst: Path, history: History, record: Record, retry_failed: bool) -> bool:
    """An earlier record with the current fingerprint stands, unless its
    files went missing or may have been overwritten since (by a build that
    did not finish).  A failure stands too: the same input fails the same
    way, and an image that crashed or hung its worker must not do it again
    on every run (--retry-failed tries them again)."""
    if record.status == "failed":
        return not retry_failed
    return record.status == "skipped" or (all(_kept(dst, history, record, p) for p in record.output_paths())
                                          and all(history.owns(record, p) for p in record.files()))


def _rerender_task(task: ImageTask, previous: Record, config: BuildConfig, history: History
              ) -> Union[Record, ImageTask, None]:
    """What an image with an earlier record of the same segmentation needs:
    the earlier record (a skipped image is skipped again, for the same
    reason), a task that renders again the files that change (or went
    missing, or may have been overwritten), or None when it must be
    processed (a failure is tried again, as after any change; the stored
    mask may have been overwritten)."""
    if previous.status == "skipped":
        return dataclasses.replace(previous, split=task.split, class_name=task.class_name, class_id=task.class_id,
                                   fingerprint=task.fingerprint, rendering=task.rendering)
    if previous.status != "written" or not previous.rendering or not previous.crop or not previous.size:
        return None
    if not history.owns(previous, previous.stored_skin() or previous.mask or ""):
        return None
    paths = output_paths(task.split, task.stem, config.pipeline.output)
    kinds: tuple[str, ...] = ()

    def kept(relative: str) -> bool:
        return _kept(config.dst, history, previous, relative)

    if previous.rendering[:8] != task.rendering[:8] or not kept(paths["image"]):
        kinds += IMAGE_FILES
    labels = [kind for kind in LABEL_FILES if kind in paths]
    if previous.rendering[8:] != task.rendering[8:] or not all(kept(paths[k]) for k in labels):
        kinds += LABEL_FILES
    return dataclasses.replace(task, previous=previous, render=kinds)


def schedule(tasks: list[ImageTask], history: History, config: BuildConfig
              ) -> tuple[dict[str, Record], list[ImageTask]]:
    """Split tasks into records kept as they are and tasks to run (to
    process in full, or to re-render from a stored mask)."""
    final: dict[str, Record] = {}
    pending: list[ImageTask] = []
    for task in tasks:
        previous = None if config.overwrite else history.records.get(task.source)
        if previous is None:
            pending.append(task)
        elif previous.fingerprint == task.fingerprint and _reusable(config.dst, history, previous,
                                                                    config.retry_failed):
            final[task.source] = previous
        else:
            decided = (_rerender_task(task, previous, config, history) if previous.segmentation == task.segmentation
                       else None)
            if isinstance(decided, Record):
                final[task.source] = decided
            else:
                pending.append(decided or task)
    # A re-render reads the mask where the earlier build wrote it; if another
    # image's files now go there (names that moved between splits), that
    # image might overwrite it first: such images are processed in full.
    output = config.pipeline.output
    moved = [i for i, t in enumerate(pending)
             if t.previous is not None and t.previous.mask != output_paths(t.split, t.stem, output)["mask"]]
    if moved:
        targets = {(t.split, t.stem) for t in tasks}
        for i in moved:
            previous = pending[i].previous
            if (previous.split, PurePosixPath(previous.mask).stem) in targets:
                pending[i] = dataclasses.replace(pending[i], previous=None, render=())
    return final, pending


def worker_count(requested: Optional[int], pending: int) -> int:
    """The workers to start: no more than the CPUs this process may use
    (more only add memory and switching; None: all of them) nor than images
    to do."""
    cpus = available_cpus()
    if requested is None:
        requested = cpus
    elif requested > cpus:
        log.warning("--workers %d is more than the %d CPU%s available: lowered to %d", requested, cpus,
                    "s" if cpus > 1 else "", cpus)
    return max(1, min(requested, cpus, pending))
