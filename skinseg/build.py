"""A whole build: check paths, discover images, decide what is already done,
process the rest, then write the dataset-level files.

The library entry point is `build(BuildConfig) -> BuildResult`; this module
is its story, told in order, and each chapter lives in a module of its own:
the destination's checks (destination.py), what the build will do
(plan.py: class ids, models, fingerprints, scheduling), whether there is
anything to do at all (state.py), the worker processes (runner.py), the
journal that lets an interrupted build resume (journal.py), several machines
(shards.py) and the dataset-level files at the end (finalize.py).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import layout
from .atomic import write_text
from .buildinfo import DataChecks, RunInfo
from .config import BuildConfig
from .datachecks import assess
from .destination import check_paths, check_writable, manifest_is_ours
from .discover import BACKGROUND_NAME, DatasetError, discover
from .errors import BuildAborted, BuildError, BuildInterrupted, OutputWriteError
from .fallback import previous_build, refusal
from .finalize import finalize, remove_temp_files_of
from .journal import Journal, read_history
from .labels import mask_dtype
from .lock import Busy, LockUnusable, destination_lock
from .modeluse import ModelUses
from .names import json_text
from .plan import (
    Keys,
    Prepared,
    mark_report_sample,
    plan_build_models,
    resolve_classes,
    sample_sources,
    schedule,
    worker_count,
)
from .progress import Progress
from .records import STATUSES, ImageTask, Record, by_status, failed_lines, read_records, shared
from .runner import Runtime, WorkerStartError, run
from .shards import check_shards, finish_shard, in_shard, lock_group
from .state import STATUS_LETTERS, last_finished_build, up_to_date, work_expected

__all__ = ["BuildAborted", "BuildError", "BuildInterrupted", "BuildResult", "build", "in_shard"]

log = logging.getLogger("skinseg")

FAILED_SHOWN = 10                                 # failed images a BuildResult names (the summary shows them)


@dataclass
class BuildResult:
    """What a build did: counts per split, the first failures, the models
    each stage ran with, and every image's record (`records`).
    `class_names` is classes.txt's list: index = class id, 0 = "background"
    (not skin), as in `SkinDataset.classes` and id2label.json."""

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
            self.loaded_records = list(read_records(self.dst / layout.MANIFEST))
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
    return {split: by_status(c) for split, c in counts.items()}


def _summaries(records: list[Record]) -> dict:
    """BuildResult's fields that summarise its records."""
    return {"by_split": _by_split((r.split, r.status) for r in records), "loaded_records": records,
            "failed": [(r.source, r.reason or "") for r in records if r.status == "failed"][:FAILED_SHOWN]}


def build(config: BuildConfig) -> BuildResult:
    """Build the segmentation dataset `config.dst` from the classification
    dataset `config.src`.

    Parameters
    ----------
    config : BuildConfig
        Paths, every parameter, and how to run (workers, shard, sample).

    Returns
    -------
    BuildResult
        Counts per split, the first failed images with their reasons, the
        models each stage ran with; ``exit_code`` is 1 when an image failed.

    Raises
    ------
    BuildError
        The build cannot start (bad paths, a source it cannot read, a
        missing model it would not fall back from, a destination in use);
        nothing was written.
    BuildAborted
        The destination stopped taking writes mid-build; finished images
        are kept and the same call resumes.
    BuildInterrupted
        Ctrl-C (KeyboardInterrupt) during the images; the same call resumes.
    """
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
    class_names = resolve_classes(config, discovery)
    class_ids = {name: i for i, name in enumerate(class_names, start=1)}
    dtype = mask_dtype(len(class_names), config.pipeline.output.layout)
    plans = plan_build_models(config)
    refused = refusal(dst, previous_build(dst), plans.uses, config.shard)
    if refused and not config.allow_fallback:
        raise BuildError(refused)
    for note in plans.notes:         # after the refusal, which says it all
        log.warning("%s", note)
    check_writable(dst)

    keys = Keys.of(config, plans, dtype)
    sampled = sample_sources(discovery, config.sample)
    tasks = [keys.task(src, img.source, img.split, img.class_name, class_ids[img.class_name], img.stem)
             for img in discovery.images if sampled is None or img.source in sampled]
    prepared = Prepared(config, discovery, class_names, dtype, plans, keys, tasks, started, started_at)
    try:
        with destination_lock(dst, lock_group(prepared)):
            return _unchanged(prepared) or _build_locked(prepared)
    except (Busy, LockUnusable) as exc:      # raised only on the way in: nothing was written
        raise BuildError(str(exc)) from None


def _unchanged(prepared: Prepared) -> Optional[BuildResult]:
    """The result of a build with nothing to do (state.py decides), or None
    if there is work.  No record is read; only build.json's run is rewritten."""
    config, tasks = prepared.config, prepared.tasks
    dst, output = config.dst, config.pipeline.output
    if config.overwrite or config.shard is not None:
        return None
    last = last_finished_build(dst)
    if work_expected(last, config.pipeline) is not None:
        return None
    assert last is not None
    if not up_to_date(dst, last, prepared.info(), [t.fingerprint for t in tasks],
                      (layout.output_paths(t.split, t.stem, output).values() for t in tasks), config.retry_failed):
        return None
    statuses = last.statuses
    failed = (failed_lines(dst / layout.MANIFEST, {i for i, s in enumerate(statuses) if s == "f"}, FAILED_SHOWN)
              if "f" in statuses else [])
    if failed is None:
        return None
    elapsed = time.monotonic() - prepared.started
    info = dataclasses.replace(last.info, run=RunInfo(prepared.started_at, round(elapsed, 3), workers=0, processed=0,
                                                      segmented=0, reused=len(tasks)))
    write_text(dst / layout.BUILD_JSON, json_text(info.to_json(), indent=2) + "\n")
    return BuildResult(dst, [BACKGROUND_NAME, *prepared.class_names], processed=0, reused=len(tasks),
                       elapsed_seconds=elapsed,
                       by_split=_by_split((t.split, STATUS_LETTERS[s]) for t, s in zip(tasks, statuses)),
                       failed=failed, warnings=list(prepared.discovery.warnings), ignored=prepared.discovery.ignored,
                       outside_classes=prepared.discovery.outside_classes, workers=0,
                       failed_reused=statuses.count("f"), models=prepared.plans.uses, data_checks=info.data_checks)


def _build_locked(prepared: Prepared) -> BuildResult:
    """The build, once the destination is its own."""
    config = prepared.config
    src, dst = config.src, config.dst
    if config.shard is None:
        # Leftovers of a killed build.  Shards skip this: a sibling shard may
        # be writing its temp files right now; the merge removes them.
        remove_temp_files_of(dst)
    else:
        check_shards(prepared)
    mine = [t for t in mark_report_sample(prepared.tasks, prepared.class_names) if in_shard(t.source, config.shard)]
    final, pending = schedule(mine, read_history(dst, manifest_is_ours(dst)), config)
    reused = len(final)
    failed_reused = sum(r.status == "failed" for r in final.values())
    workers = worker_count(config.workers, len(pending))

    runtime = Runtime(src=src, dst=dst, config=config.pipeline, models=prepared.plans,
                      mask_dtype=prepared.mask_dtype)
    bar = Progress(len(mine), reused, "building" if config.shard is None else f"shard {config.shard[0]}",
                   config.progress, config.progress_interval)
    output = config.pipeline.output
    try:
        journal = Journal(dst, config.shard)
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
            journal.starting(task.source, layout.written_paths(task.split, task.stem, output))
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

    result = BuildResult(dst, [BACKGROUND_NAME, *prepared.class_names], processed=len(pending), reused=reused,
                         elapsed_seconds=time.monotonic() - prepared.started,
                         warnings=list(prepared.discovery.warnings), ignored=prepared.discovery.ignored,
                         outside_classes=prepared.discovery.outside_classes, shard=config.shard, workers=workers,
                         failed_reused=failed_reused, segmented=segmented, models=prepared.plans.uses,
                         **_summaries([final[t.source] for t in mine]))
    try:
        if config.shard is not None:
            all_records = finish_shard(prepared, result.records)
            if all_records is None:
                result.complete = False
                return result
            result = dataclasses.replace(result, **_summaries(all_records))
        run_info = RunInfo(prepared.started_at, round(result.elapsed_seconds, 3), result.workers, result.processed,
                           result.segmented, result.reused, config.shard)
        # The duplicates and quality flags come from the records' measures: no image is read.
        result.data_checks = assess(result.records)
        result.warnings += finalize(prepared, result.records, run_info, result.data_checks)
    except OSError as exc:
        raise BuildAborted(f"cannot write the dataset files in {dst}: {exc.strerror or exc}; "
                           "re-running the same command finishes them") from None
    return result
