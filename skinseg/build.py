"""A whole build: check paths, discover images, decide what is already done,
process the rest, then write the dataset-level files.

The library entry point is `build(BuildConfig) -> BuildResult`.  State that
lets an interrupted build resume lives in ``dst/.skinseg/``: a journal gets a
line for every finished image; the final ``manifest.jsonl`` is written from
it in source order at the end, so an interrupted and resumed build ends with
the same files as an uninterrupted one.

A re-run costs what changed.  Each image has two fingerprints: its
segmentation (source file, the parameters that decide mask and crop, the
models) and its rendering (how its files are drawn from them: output
options, class id, output names).  Same segmentation, other rendering: the
workers render only the files that change from the stored mask, without
finding faces or skin.  Nothing changed at all (``.skinseg/final.json``
records the last finished build): the build checks that and the outputs
exist, and ends without starting a worker, opening a model or reading a
record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import logging
import os
import socket
import stat
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional, Union

from . import __version__, outputs
from .buildinfo import BuildInfo, BuildInfoError, DataChecks, IgnoredFile, ModelUses, RunInfo, read_build_info
from .config import BuildConfig
from .datachecks import assess
from .discover import (
    BACKGROUND_NAME,
    DatasetError,
    Discovery,
    assign_class_ids,
    discover,
    identity,
    identity_chain,
    json_text,
    name_bytes,
    read_class_file,
)
from .fallback import previous_build, refusal
from .forkserver import available_cpus
from .hub import is_metadata_name, write_hub_files
from .imageio import atomic_file, atomic_write_bytes, encode_image, remove_temp_files
from .journal import (
    PREVIOUS_MANIFEST,
    SHARDS_DIR,
    History,
    Journal,
    read_history,
    read_records,
    remove_stale_outputs,
    shard_file,
    shard_header,
    shared,
)
from .lock import Busy, LockUnusable, destination_lock
from .models import ModelUnavailable
from .outputs import IMAGE_FILES, LABEL_FILES, REPORT_DIR, ignore_index, mask_dtype, max_classes
from .pipeline import (
    OUTPUT_DIRS,
    PREVIEWS_DIR,
    STATUSES,
    ImageTask,
    ModelPlans,
    OutputWriteError,
    Record,
    Runtime,
    output_paths,
    plan_models,
    written_paths,
)
from .report import CLASSES_SHOWN, REPORT_HTML, sample_per_class, write_report
from .runner import WorkerStartError, run
from .state import BUILD_JSON, CLASSES_TXT, FINAL_STATE, MANIFEST, STATE_DIR

log = logging.getLogger("skinseg")

LEGEND = f"{PREVIEWS_DIR}/legend.png"
FAILED_SHOWN = 10                                 # failed images a BuildResult names (the summary shows them)


class BuildError(Exception):
    """The build cannot start: bad paths or options.  Nothing was written."""


class BuildAborted(Exception):
    """The build started but had to stop (e.g. the destination became
    unwritable).  Finished images are journaled; re-running resumes."""


class BuildInterrupted(Exception):
    """Stopped by the user (Ctrl-C).  Re-running resumes."""


@dataclass
class BuildResult:
    dst: Path
    class_names: list[str]
    processed: int                 # images worked on in this run (segmented or re-rendered)
    reused: int
    elapsed_seconds: float
    by_split: dict[str, dict[str, int]]     # per split: written, skipped, failed
    failed: list[tuple[str, str]]           # (source, reason) of the first FAILED_SHOWN failed images
    warnings: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    shard: Optional[tuple[int, int]] = None
    complete: bool = True          # False: a shard whose siblings have not all finished
    workers: int = 1               # worker processes used
    failed_reused: int = 0         # failed in an earlier run with the same inputs, not tried again
    outside_classes: list[str] = field(default_factory=list)   # images outside any class folder: not used
    segmented: int = 0             # of the processed images, those whose faces and skin were looked for
    models: Optional[ModelUses] = None      # what each stage ran with (the summary names every fallback)
    data_checks: Optional[DataChecks] = None    # duplicates and quality flags (build.json's), once complete
    # Every image's record; a build with nothing to do reads them from the
    # manifest only when asked (a 100 000-line manifest is not read for nothing).
    loaded_records: Optional[list[Record]] = field(default=None, repr=False)

    @property
    def records(self) -> list[Record]:
        if self.loaded_records is None:
            self.loaded_records = list(read_records(self.dst / MANIFEST))
        return self.loaded_records

    def counts(self) -> dict[str, int]:
        return {s: sum(c[s] for c in self.by_split.values()) for s in STATUSES}

    @property
    def exit_code(self) -> int:
        return 1 if self.counts()["failed"] else 0


def _by_split(pairs) -> dict[str, dict[str, int]]:
    """Counts per split and status from (split, status) pairs."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for split, status in pairs:
        counts[split][status] += 1
    return {split: _by_status(c) for split, c in counts.items()}


def _by_status(counts: Counter) -> dict[str, int]:
    """Every status's count, in STATUSES order, 0 where there are none."""
    return {s: counts.get(s, 0) for s in STATUSES}


def _summaries(records: list[Record]) -> dict:
    """BuildResult's fields that summarise its records."""
    return {"by_split": _by_split((r.split, r.status) for r in records), "loaded_records": records,
            "failed": [(r.source, r.reason or "") for r in records if r.status == "failed"][:FAILED_SHOWN]}


# ------------------------------------------------------------------ checks

def _manifest_is_ours(dst: Path) -> bool:
    """Whether dst/manifest.jsonl is this tool's: its build.json says so."""
    try:
        read_build_info(dst)
    except BuildInfoError:
        return False
    return True


def is_skinseg_build(dst: Path) -> bool:
    return (dst / STATE_DIR).is_dir() or _manifest_is_ours(dst)


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    if not src.is_dir():
        raise BuildError(f"--src {src} is not an existing folder")
    # By device and inode, folder by folder up to /: links and bind mounts
    # cannot hide that one is inside the other.
    src_id, dst_id = identity(src), identity(dst)
    if src_id in identity_chain(dst):
        raise BuildError(f"--dst {dst} is {'the same folder as' if dst_id == src_id else 'inside'} --src {src}: "
                         "the source is never written to; choose a destination outside it")
    if dst_id is not None and dst_id in identity_chain(src):
        raise BuildError(f"--src {src} is inside --dst {dst}: building would overwrite the source; "
                         "choose a destination outside it")
    if dst.exists() and not dst.is_dir():
        raise BuildError(f"--dst {dst} exists and is not a folder")
    if dst.is_dir() and any(dst.iterdir()) and not is_skinseg_build(dst) and not overwrite:
        raise BuildError(f"--dst {dst} is not empty and is not a skinseg build; refusing to write into it "
                         "(pass --overwrite to build there anyway, or choose an empty or new folder)")
    theirs = _foreign_dataset_files(dst) if dst.is_dir() and not is_skinseg_build(dst) else []
    if theirs:
        raise BuildError(f"--dst {dst} holds {', '.join(theirs)}, which skinseg did not write: a build writes files "
                         "of these names and never replaces another tool's, not even with --overwrite; move them "
                         "out of --dst, or choose another folder")


def _foreign_dataset_files(dst: Path) -> list[str]:
    """The files in dst, not a skinseg build yet, that a build would replace:
    manifest, build.json, classes.txt, report, metadata files.  (Another
    tool's README.md is kept, with a warning: the dataset works without
    skinseg's card.)"""
    ours = {MANIFEST, BUILD_JSON, CLASSES_TXT, REPORT_HTML}
    return sorted(entry.name for entry in os.scandir(dst) if entry.name in ours or is_metadata_name(entry.name))


def _check_writable(dst: Path) -> None:
    probe = dst / STATE_DIR / f".write-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        (dst / STATE_DIR).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
    except OSError as exc:
        raise BuildError(f"cannot write to --dst {dst}: {exc.strerror or exc}") from None
    finally:
        # On a full disk the probe is created but cannot be written to.
        with contextlib.suppress(OSError):
            probe.unlink()


# ------------------------------------------------------------------ records

def _hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(name_bytes(text)).hexdigest()[:length]


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
        return cls(_hash(f"{__version__}|{config.pipeline.segmentation_fingerprint()}|{plans.signature}"),
                   _hash(f"{__version__}|{output.image_key()}"), _hash(f"{__version__}|{output.labels_key()}|{dtype}"))

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
        segmentation = _hash(f"{self.segmentation}|{source}|{stamp}")
        rendering = _hash(f"{self.image}|{split}|{stem}", 8) + _hash(f"{self.labels}|{split}|{stem}|{class_id}", 8)
        return ImageTask(source, split, class_name, class_id, stem, _hash(f"{segmentation}|{rendering}"),
                         segmentation, rendering)


def _stamp(path: Path) -> Optional[list[int]]:
    """[size, modification time in ns] of a file: whether it changed since."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _exists(dst: Path, relative: str) -> bool:
    # A string join and a stat: this runs for every output of 100 000 images.
    try:
        return stat.S_ISREG(os.stat(f"{dst}/{relative}").st_mode)
    except OSError:
        return False


def _kept(dst: Path, history: History, record: Record, relative: str) -> bool:
    """Whether the record's file is there and holds what the record says: no
    build that did not finish wrote to it since."""
    return _exists(dst, relative) and history.owns(record, relative)


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


def _rerender(task: ImageTask, previous: Record, config: BuildConfig, history: History
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
    paths = output_paths(task, config.pipeline.output)
    kinds: tuple[str, ...] = ()

    def kept(relative: str) -> bool:
        return _kept(config.dst, history, previous, relative)

    if previous.rendering[:8] != task.rendering[:8] or not kept(paths["image"]):
        kinds += IMAGE_FILES
    labels = [kind for kind in LABEL_FILES if kind in paths]
    if previous.rendering[8:] != task.rendering[8:] or not all(kept(paths[k]) for k in labels):
        kinds += LABEL_FILES
    return dataclasses.replace(task, previous=previous, render=kinds)


def _schedule(tasks: list[ImageTask], history: History, config: BuildConfig
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
            decided = (_rerender(task, previous, config, history) if previous.segmentation == task.segmentation
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
             if t.previous is not None and t.previous.mask != output_paths(t, output)["mask"]]
    if moved:
        targets = {(t.split, t.stem) for t in tasks}
        for i in moved:
            previous = pending[i].previous
            if (previous.split, PurePosixPath(previous.mask).stem) in targets:
                pending[i] = dataclasses.replace(pending[i], previous=None, render=())
    return final, pending


# ------------------------------------------------------------------ build

def _resolve_classes(config: BuildConfig, discovery: Discovery) -> list[str]:
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
    layout = config.pipeline.output.layout
    if len(class_names) > max_classes(layout, "uint16"):
        raise BuildError(f"{len(class_names)} classes do not fit in a 16-bit mask (at most "
                         f"{max_classes(layout, 'uint16')} with --layout {layout})")
    if mask_dtype(len(class_names), layout) == "uint16":
        log.warning("%d classes do not fit in 8 bits: masks are written as 16-bit PNGs (uint16; mmsegmentation "
                    "casts masks to 8 bits, see the README)", len(class_names))
    return class_names


def _plan_models(config: BuildConfig) -> ModelPlans:
    """Find (or download) the models once, before any worker starts."""
    try:
        return plan_models(config.pipeline, config.progress)
    except ModelUnavailable as exc:
        raise BuildError(str(exc)) from None


def _counts(records: list[Record]) -> dict:
    total: Counter = Counter()
    by_split: dict[str, Counter] = defaultdict(Counter)
    by_class: dict[str, Counter] = defaultdict(Counter)
    by_split_class: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in records:
        total[r.status] += 1
        by_split[r.split][r.status] += 1
        by_class[r.class_name][r.status] += 1
        by_split_class[r.split][r.class_name][r.status] += 1

    return {
        "total": _by_status(total),
        "by_split": {s: _by_status(c) for s, c in sorted(by_split.items())},
        "by_class": {k: _by_status(c) for k, c in sorted(by_class.items())},
        "by_split_and_class": {s: {k: _by_status(c) for k, c in sorted(v.items())}
                               for s, v in sorted(by_split_class.items())},
    }


def _write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write a file of many lines (a manifest of 100 000 images) atomically,
    a line at a time: never the whole text in memory."""
    with atomic_file(path) as handle:
        for line in lines:
            handle.write(line.encode("utf-8"))


def _worker_count(requested: int, pending: int) -> int:
    """The workers to start: no more than the CPUs this process may use
    (more only add memory and switching) nor than images to do."""
    cpus = available_cpus()
    if requested > cpus:
        log.warning("--workers %d is more than the %d CPU%s available: lowered to %d", requested, cpus,
                    "s" if cpus > 1 else "", cpus)
    return max(1, min(requested, cpus, pending))


def in_shard(source: str, shard: Optional[tuple[int, int]]) -> bool:
    """Shard k of n owns the sources whose hash is k-1 modulo n: a fixed
    split that does not move when images are added elsewhere."""
    if shard is None:
        return True
    index, count = shard
    return int(hashlib.sha1(name_bytes(source)).hexdigest()[:12], 16) % count == index - 1


def sample_sources(discovery: Discovery, per_class: Optional[int]) -> Optional[set[str]]:
    """At most per_class images of each class: those with the smallest hash
    of their source path, so the choice is stable when images are added."""
    if per_class is None:
        return None
    by_class: dict[str, list[str]] = defaultdict(list)
    for image in discovery.images:
        by_class[image.class_name].append(image.source)
    chosen = set()
    for sources in by_class.values():
        chosen.update(sorted(sources, key=outputs.sample_key)[:per_class])
    return chosen


def _mark_report_sample(tasks: list[ImageTask], class_names: list[str]) -> list[ImageTask]:
    """Ask the workers for thumbnails of the images the report's contact sheet
    will show: per class shown, the first by the report's sampling order (plus
    a few in case some are skipped)."""
    by_class: dict[str, list[ImageTask]] = defaultdict(list)
    shown_classes = set(class_names[:CLASSES_SHOWN])
    for task in tasks:
        if task.class_name in shown_classes:
            by_class[task.class_name].append(task)
    shown = sample_per_class(len(class_names))
    chosen = set()
    for group in by_class.values():
        group.sort(key=lambda t: outputs.sample_key(t.source))
        chosen.update(t.source for t in group[:shown + 2])
    return [dataclasses.replace(t, thumbnails=True) if t.source in chosen else t for t in tasks]


@dataclass
class _Prepared:
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
        return {"build": _hash(json_text(dataclasses.asdict(self.keys))), "classes": self.class_names,
                "images": len(self.tasks), "listing": _hash(listing)}

    def info(self) -> BuildInfo:
        """build.json without its counts and run: everything it says that
        depends only on the source and the parameters."""
        config, plans = self.config, self.plans
        layout = config.pipeline.output.layout
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
            layout=layout,
            ignore_index=ignore_index(layout, self.mask_dtype),
            ignored_files=tuple(IgnoredFile(p, why) for p, why in self.discovery.ignored),
            # Every fallback is a warning too: a stage ran without its model.
            warnings=(*self.discovery.warnings, *plans.uses.warnings()),
        )


def _comparable(info: BuildInfo) -> str:
    """What a re-run compares with the last build's build.json: all but its
    counts, run, data checks (made of the records) and warnings (a card's
    warning is added as it is written)."""
    return json_text(dataclasses.replace(info, counts=None, run=None, data_checks=None, warnings=()).to_json())


def _final_key(info: BuildInfo, fingerprints) -> str:
    """Identifies the dataset-level files: build.json's content (info, without
    its counts and run) and every image's fingerprint, in order."""
    digest = hashlib.sha256(json_text(info.to_json()).encode("utf-8"))
    for fingerprint in fingerprints:
        digest.update(fingerprint.encode("ascii"))
    return digest.hexdigest()[:16]


def build(config: BuildConfig) -> BuildResult:
    started = time.monotonic()
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    src, dst = config.src, config.dst
    check_paths(src, dst, config.overwrite)
    try:
        discovery = discover(src, dst, config.input)
    except DatasetError as exc:
        raise BuildError(str(exc)) from None
    for warning in discovery.warnings:
        log.warning("%s", warning)
    class_names = _resolve_classes(config, discovery)
    class_ids = {name: i for i, name in enumerate(class_names, start=1)}
    dtype = mask_dtype(len(class_names), config.pipeline.output.layout)
    plans = _plan_models(config)
    refused = refusal(dst, previous_build(dst), plans.uses, config.shard)
    if refused and not config.allow_fallback:
        raise BuildError(refused)
    for note in plans.notes:         # after the refusal, which says it all
        log.warning("%s", note)
    _check_writable(dst)

    keys = Keys.of(config, plans, dtype)
    sampled = sample_sources(discovery, config.sample)
    tasks = [keys.task(src, img.source, img.split, img.class_name, class_ids[img.class_name], img.stem)
             for img in discovery.images if sampled is None or img.source in sampled]
    prepared = _Prepared(config, discovery, class_names, dtype, plans, keys, tasks, started, started_at)
    group = None
    if config.shard is not None:
        group = hashlib.sha256(json_text([config.shard[1], prepared.identity()]).encode()).hexdigest()[:16]
    try:
        with destination_lock(dst / STATE_DIR, dst, group):
            return _unchanged(prepared) or _build_locked(prepared)
    except (Busy, LockUnusable) as exc:      # raised only on the way in: nothing was written
        raise BuildError(str(exc)) from None


def _unchanged(prepared: _Prepared) -> Optional[BuildResult]:
    """The result of a build with nothing to do, or None if there is work:
    the last build finished (no journal, shard or pending file), the
    dataset-level files are as it left them (sizes and modification
    times; build.json by content) and up to date (final.json's key), and
    every written image's outputs exist.  No record is read; only
    build.json's run is rewritten."""
    config, tasks = prepared.config, prepared.tasks
    dst, state = config.dst, config.dst / STATE_DIR
    if config.overwrite or config.shard is not None:
        return None
    if (state / PREVIOUS_MANIFEST).exists() or any(state.glob("journal*.jsonl")) or any(state.glob("pending*.jsonl")):
        return None
    try:
        final = json.loads((state / FINAL_STATE).read_text(encoding="utf-8"))
        info = read_build_info(dst)
        statuses = final["statuses"]
        if len(statuses) != len(tasks) or any(_stamp(dst / name) != stamp for name, stamp in final["files"].items()):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):      # BuildInfoError is a ValueError
        return None
    current = prepared.info()
    if (final.get("key") != _final_key(current, (t.fingerprint for t in tasks))
            or _comparable(info) != _comparable(current)):
        return None
    if config.retry_failed and "f" in statuses:
        return None
    output = config.pipeline.output
    for task, status in zip(tasks, statuses):
        if status == "w" and not all(_exists(dst, p) for p in output_paths(task, output).values()):
            return None
    by_status = {"w": "written", "s": "skipped", "f": "failed"}
    failed = _failed_lines(dst / MANIFEST, statuses) if "f" in statuses else []
    if failed is None:
        return None
    elapsed = time.monotonic() - prepared.started
    info = dataclasses.replace(info, run=RunInfo(prepared.started_at, round(elapsed, 3), workers=0, processed=0,
                                                 segmented=0, reused=len(tasks)))
    _write_text(dst / BUILD_JSON, json_text(info.to_json(), indent=2) + "\n")
    return BuildResult(dst, prepared.class_names, processed=0, reused=len(tasks), elapsed_seconds=elapsed,
                       by_split=_by_split((t.split, by_status[s]) for t, s in zip(tasks, statuses)), failed=failed,
                       warnings=list(prepared.discovery.warnings), ignored=prepared.discovery.ignored,
                       outside_classes=prepared.discovery.outside_classes, workers=0,
                       failed_reused=statuses.count("f"), models=prepared.plans.uses, data_checks=info.data_checks)


def _failed_lines(manifest: Path, statuses: str) -> Optional[list[tuple[str, str]]]:
    """(source, reason) of the first failed images, read from their lines of
    the manifest only (the summary names a few); None if one is damaged."""
    wanted = {i for i, status in enumerate(statuses) if status == "f"}
    failed = []
    try:
        with open(manifest, "rb") as handle:
            for index, line in enumerate(handle):
                if index in wanted and len(failed) < FAILED_SHOWN:
                    row = json.loads(line.decode("utf-8"))
                    failed.append((str(row["source"]), str(row.get("reason") or "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return failed


def _build_locked(prepared: _Prepared) -> BuildResult:
    """The build, once the destination is its own."""
    config = prepared.config
    src, dst = config.src, config.dst
    if config.shard is None:
        # Leftovers of a killed build.  Shards skip this: a sibling shard may
        # be writing its temp files right now; the merge removes them.
        _remove_temp_files(dst)
    else:
        _check_shards(prepared)
    mine = [t for t in _mark_report_sample(prepared.tasks, prepared.class_names) if in_shard(t.source, config.shard)]
    final, pending = _schedule(mine, read_history(dst, _manifest_is_ours(dst)), config)
    reused = len(final)
    failed_reused = sum(r.status == "failed" for r in final.values())
    workers = _worker_count(config.workers, len(pending))

    runtime = Runtime(src=src, dst=dst, config=config.pipeline, models=prepared.plans,
                      mask_dtype=prepared.mask_dtype)
    from tqdm import tqdm

    bar = tqdm(total=len(mine), initial=reused, unit="img", disable=not config.progress, file=sys.stderr,
               dynamic_ncols=True, desc="building" if config.shard is None else f"shard {config.shard[0]}")
    output = config.pipeline.output
    try:
        journal = Journal(dst / STATE_DIR, config.shard)
    except OSError as exc:
        bar.close()
        raise BuildAborted(f"cannot write to --dst {dst}: {exc.strerror or exc}; re-running the same command "
                           "resumes") from None
    segmented = 0

    def on_dispatch(task: ImageTask) -> None:
        # What is about to be written, before it is: a build killed half-way
        # through an image leaves files no record names (or files an earlier
        # record names, with other bytes); this line lets a later build
        # remove them, and distrust them.
        try:
            journal.starting(task.source, written_paths(task, output))
        except OSError as exc:
            raise OutputWriteError(f"cannot write {journal.pending_path}: {exc.strerror or exc}") from None

    def on_record(record: Record, was_segmented: bool) -> None:
        nonlocal segmented
        final[record.source] = shared(record)
        segmented += was_segmented
        try:
            journal.finished(record)
        except OSError as exc:
            raise OutputWriteError(f"cannot write {journal.path}: {exc.strerror or exc}") from None
        bar.update(1)

    try:
        run(pending, runtime, workers, on_record, config.image_timeout, on_dispatch)
    except KeyboardInterrupt:
        raise BuildInterrupted(f"interrupted after {len(final)} of {len(mine)} images; "
                               "run the same command again to resume") from None
    except OutputWriteError as exc:
        raise BuildAborted(f"{exc}; the build stopped, finished images are kept "
                           "and re-running the same command resumes") from None
    except WorkerStartError as exc:
        raise BuildAborted(str(exc)) from None
    finally:
        journal.close()
        bar.close()

    result = BuildResult(dst, prepared.class_names, processed=len(pending), reused=reused,
                         elapsed_seconds=time.monotonic() - prepared.started,
                         warnings=list(prepared.discovery.warnings), ignored=prepared.discovery.ignored,
                         outside_classes=prepared.discovery.outside_classes, shard=config.shard, workers=workers,
                         failed_reused=failed_reused, segmented=segmented, models=prepared.plans.uses,
                         **_summaries([final[t.source] for t in mine]))
    try:
        if config.shard is not None:
            all_records = _finish_shard(prepared, result.records)
            if all_records is None:
                result.complete = False
                return result
            result = dataclasses.replace(result, **_summaries(all_records))
        _finalize(prepared, result)
    except OSError as exc:
        raise BuildAborted(f"cannot write the dataset files in {dst}: {exc.strerror or exc}; "
                           "re-running the same command finishes them") from None
    return result


def _disagreement(prepared: _Prepared, index: int, count: int) -> Optional[str]:
    """Why shard `index` of `count`, finished in dst, cannot be merged with
    this build (None if it can, or has not finished)."""
    header = shard_header(shard_file(prepared.config.dst, index, count))
    if header is None or all(header.get(key) == value for key, value in prepared.identity().items()):
        return None
    return (f"shard {index}/{count} in {prepared.config.dst} was built with other parameters, class ids (--classes) "
            "or source images; run every shard with the same options and --src (running shard "
            f"{index}/{count} again with these options replaces its results)")


def _check_shards(prepared: _Prepared) -> None:
    """Refuse a shard, before it writes anything, whose finished siblings
    built something else: the results could never be merged."""
    assert prepared.config.shard is not None
    index, count = prepared.config.shard
    for k in range(1, count + 1):
        why = _disagreement(prepared, k, count) if k != index else None
        if why:
            raise BuildError(why)


def _finish_shard(prepared: _Prepared, records: list[Record]) -> Optional[list[Record]]:
    """Save this shard's records; if every shard is done, return all records
    (this shard then writes the dataset files), else None.  Siblings that
    cannot be merged raise BuildAborted (this shard's images are kept)."""
    config, tasks = prepared.config, prepared.tasks
    assert config.shard is not None
    index, count = config.shard
    header = json_text({"shard": index, "of": count, **prepared.identity()}) + "\n"
    _write_lines(shard_file(config.dst, index, count),
                 itertools.chain([header], (json_text(r.to_dict()) + "\n" for r in records)))
    kept = (f"shard {index}/{count}'s images are written and kept (running it again reuses them), "
            "but the shards cannot be merged: ")
    merged: dict[str, Record] = {}
    for k in range(1, count + 1):
        path = shard_file(config.dst, k, count)
        if shard_header(path) is None:
            if path.exists():
                log.warning("the results of shard %d/%d in %s are damaged: run shard %d/%d again", k, count,
                            config.dst, k, count)
            return None     # not finished yet (or another shard has just merged everything)
        why = _disagreement(prepared, k, count)
        if why:             # it finished while this one ran (where builds cannot lock the destination)
            raise BuildAborted(kept + why)
        merged.update((record.source, record) for record in read_records(path))
    missing = [t.source for t in tasks if t.source not in merged]
    if missing:
        raise BuildAborted(kept + f"the shards do not cover {len(missing)} images (e.g. {missing[0]}); "
                           "were they run with different --src contents?")
    return [merged[t.source] for t in tasks]


def _remove_temp_files(dst: Path) -> None:
    for folder in (*OUTPUT_DIRS, STATE_DIR, REPORT_DIR):
        remove_temp_files(dst / folder)


def _finalize(prepared: _Prepared, result: BuildResult) -> None:
    """Write the dataset-level files, then remove what no current record
    claims.  In this order a reader never finds a file listed (by the
    manifest, a metadata file or the report) that is not there: the old
    lists name old files, which stay until the new lists replace them."""
    config, records = prepared.config, result.records
    dst = config.dst
    _remove_temp_files(dst)
    state = dst / STATE_DIR
    # The manifest is written last and, until then, the old one waits in
    # .skinseg (still read for re-use): a build that cannot write these files
    # (a full disk) leaves no manifest, so nothing half-done looks done.
    with contextlib.suppress(FileNotFoundError):
        (state / FINAL_STATE).unlink()
    if _manifest_is_ours(dst):
        with contextlib.suppress(FileNotFoundError):       # another shard finishing set it aside
            os.replace(dst / MANIFEST, state / PREVIOUS_MANIFEST)
    _write_text(dst / CLASSES_TXT, "\n".join([BACKGROUND_NAME] + result.class_names) + "\n")
    layout = config.pipeline.output.layout
    atomic_write_bytes(dst / LEGEND, encode_image(outputs.legend_image(result.class_names, layout,
                                                                       prepared.mask_dtype), ".png"))
    info = prepared.info()
    key = _final_key(info, (r.fingerprint for r in records))
    # Everything above depends only on the source and the parameters;
    # "run" describes this particular run (or, sharded, the last shard's).
    # The duplicates and quality flags come from the records' measures: no image is read.
    result.data_checks = assess(records)
    info = dataclasses.replace(info, counts=_counts(records), run=RunInfo(
        prepared.started_at, round(result.elapsed_seconds, 3), result.workers, result.processed, result.segmented,
        result.reused, config.shard), data_checks=result.data_checks)
    warnings, hub_files = write_hub_files(dst, records, info.to_json(), _write_lines)
    for warning in warnings:
        log.warning("%s", warning)
    info = dataclasses.replace(info, warnings=info.warnings + tuple(warnings))
    _write_text(dst / BUILD_JSON, json_text(info.to_json(), indent=2) + "\n")
    report_files = write_report(dst, config.src, records, info)
    _write_lines(dst / MANIFEST, (json_text(r.to_dict()) + "\n" for r in records))
    remove_stale_outputs(dst, records, manifest_ours=True)
    _save_final_state(dst, result, {
        "key": key, "statuses": "".join(r.status[0] for r in records),
        "files": {name: _stamp(dst / name) for name in (CLASSES_TXT, LEGEND, MANIFEST, *hub_files, *report_files)},
    })
    # The dataset is complete: resume state is no longer needed.  The
    # pending lists go first: without them a journal only repeats the manifest.
    leftovers = [*state.glob("pending*.jsonl"), *state.glob("journal*.jsonl"), *(state / SHARDS_DIR).glob("*.jsonl"),
                 state / PREVIOUS_MANIFEST]
    for leftover in leftovers:
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass    # another shard finishing at the same moment removed it


def _save_final_state(dst: Path, result: BuildResult, final: dict) -> None:
    """Write .skinseg/final.json: what a re-run with nothing to do checks
    instead of reading the records.  The dataset is complete without it, so
    a failure to write it (a full disk) is a warning, not an error."""
    try:
        _write_text(dst / STATE_DIR / FINAL_STATE, json_text(final) + "\n")
    except OSError as exc:
        warning = (f"the dataset is complete, but {dst / STATE_DIR / FINAL_STATE} could not be written "
                   f"({exc.strerror or exc}); it only lets a re-run with nothing to do end at once: "
                   "the next run checks every image's record instead")
        log.warning("%s", warning)
        result.warnings.append(warning)
