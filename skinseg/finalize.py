"""The end of a build: the dataset-level files, then the clean-up.

In this order a reader never finds a file listed (by the manifest, a
metadata file or the report) that is not there: the old lists name old
files, which stay until the new lists replace them.  The manifest is written
last and, until then, the old one waits in ``.skinseg`` (still read for
re-use): a build that cannot write these files (a full disk) leaves no
manifest, so nothing half-done looks done.  Only then are the outputs no
current record claims removed (journal.remove_stale_outputs), then
``.skinseg/final.json`` written (state.py reads it) and the resume state
removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path

from . import layout, outputs
from .atomic import atomic_write_bytes, remove_temp_files, write_lines, write_text
from .buildinfo import DataChecks, RunInfo
from .destination import manifest_is_ours
from .discover import BACKGROUND_NAME
from .encoding import encode_image
from .hub import label_maps, write_hub_files
from .journal import remove_stale_outputs
from .names import json_text
from .plan import Prepared
from .records import Record, by_status, record_line
from .report import write_report
from .state import final_key, final_state_text, stamp

log = logging.getLogger("skinseg")


def remove_temp_files_of(dst: Path) -> None:
    """The temporary files a killed build left in the tool's folders of dst."""
    for folder in layout.TEMP_FOLDERS:
        remove_temp_files(dst / folder)


def finalize(prepared: Prepared, records: list[Record], run: RunInfo, data_checks: DataChecks) -> list[str]:
    """Write the dataset-level files for `records` (every image's, in source
    order; `data_checks`: their duplicates and quality flags), then remove
    what no current record claims and the resume state.
    Returns the warnings the run's result adds (final.json not written).
    Raises OSError when a dataset file cannot be written."""
    config = prepared.config
    dst = config.dst
    remove_temp_files_of(dst)
    with contextlib.suppress(FileNotFoundError):
        (dst / layout.FINAL_STATE).unlink()
    if manifest_is_ours(dst):
        with contextlib.suppress(FileNotFoundError):       # another shard finishing set it aside
            os.replace(dst / layout.MANIFEST, dst / layout.PREVIOUS_MANIFEST)
    classes = [BACKGROUND_NAME] + prepared.class_names
    write_text(dst / layout.CLASSES_TXT, "\n".join(classes) + "\n")
    id2label, label2id = label_maps(classes)
    write_text(dst / layout.ID2LABEL, id2label)
    write_text(dst / layout.LABEL2ID, label2id)
    atomic_write_bytes(dst / layout.LEGEND, encode_image(outputs.legend_image(
        prepared.class_names, config.pipeline.output.layout, prepared.mask_dtype), ".png"))
    info = prepared.info()
    key = final_key(info, (r.fingerprint for r in records))
    # Everything above depends only on the source and the parameters;
    # "run" describes this particular run (or, sharded, the last shard's).
    info = dataclasses.replace(info, counts=counts(records), run=run, data_checks=data_checks)
    warnings, hub_files = write_hub_files(dst, records, info, write_lines)
    for warning in warnings:
        log.warning("%s", warning)
    info = dataclasses.replace(info, warnings=info.warnings + tuple(warnings))
    write_text(dst / layout.BUILD_JSON, json_text(info.to_json(), indent=2) + "\n")
    report_files = write_report(dst, config.src, records, info)
    write_lines(dst / layout.MANIFEST, (record_line(r) for r in records))
    remove_stale_outputs(dst, records, manifest_ours=True)
    listed = (layout.CLASSES_TXT, layout.ID2LABEL, layout.LABEL2ID, layout.LEGEND, layout.MANIFEST, *hub_files,
              *report_files)
    run_warnings = _save_final_state(dst, final_state_text(key, "".join(r.status[0] for r in records),
                                                           {name: stamp(dst / name) for name in listed}))
    # The dataset is complete: resume state is no longer needed.  The
    # pending lists go first: without them a journal only repeats the manifest.
    state = dst / layout.STATE_DIR
    leftovers = [*state.glob(layout.PENDING_GLOB), *state.glob(layout.JOURNAL_GLOB),
                 *layout.finished_shards(dst), dst / layout.PREVIOUS_MANIFEST]
    for leftover in leftovers:
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass    # another shard finishing at the same moment removed it
    return run_warnings


def _save_final_state(dst: Path, text: str) -> list[str]:
    """Write .skinseg/final.json: what a re-run with nothing to do checks
    instead of reading the records.  The dataset is complete without it, so
    a failure to write it (a full disk) is a warning, not an error."""
    try:
        write_text(dst / layout.FINAL_STATE, text)
    except OSError as exc:
        warning = (f"the dataset is complete, but {dst / layout.FINAL_STATE} could not be written "
                   f"({exc.strerror or exc}); it only lets a re-run with nothing to do end at once: "
                   "the next run checks every image's record instead")
        log.warning("%s", warning)
        return [warning]
    return []


def counts(records: list[Record]) -> dict:
    """build.json's counts: written, skipped and failed in total, per split,
    per class and per split and class."""
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
        "total": by_status(total),
        "by_split": {s: by_status(c) for s, c in sorted(by_split.items())},
        "by_class": {k: by_status(c) for k, c in sorted(by_class.items())},
        "by_split_and_class": {s: {k: by_status(c) for k, c in sorted(v.items())}
                               for s, v in sorted(by_split_class.items())},
    }
