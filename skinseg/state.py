"""Is there work to do?  One answer, from what the last finished build left.

A finished build leaves its build.json and ``.skinseg/final.json`` (the key
of its dataset-level files, each image's status, the size and modification
time of every file it listed); a build that did not finish leaves journals,
pending lists or the manifest set aside (layout.unfinished_state), and then
there is no finished build to compare with.  The same comparison answers at
two depths:

- `expected_work` (the command line, before the image libraries load): from
  the parameters alone, is work certain (True: no finished build, or other
  parameters that decide masks), only re-rendering (False: other output
  options), or maybe nothing (None: the same parameters)?
- `up_to_date` (build.build, once the source is listed and the models are
  planned): when the parameters are the same, is everything else too (class
  ids, models, every image's fingerprint, the files as they were left, every
  written image's outputs)?  Then the build ends without reading a record.

Imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from . import layout
from .buildinfo import BuildInfo, BuildInfoError, read_build_info
from .config import PipelineConfig
from .names import json_text
from .records import open_regular

# final.json's statuses: a letter per image.
STATUS_LETTERS = {"w": "written", "s": "skipped", "f": "failed"}


@dataclass(frozen=True)
class FinishedBuild:
    """What the last finished build in a destination left."""

    info: BuildInfo                        # its build.json
    key: str                               # final_key of its build.json and fingerprints
    statuses: str                          # each image's status, in source order: w, s or f
    files: dict[str, Optional[list[int]]]  # dataset file -> stamp (size, mtime) as it left it


def last_finished_build(dst: Path) -> Optional[FinishedBuild]:
    """The last build in dst, if it finished and nothing has run since
    without finishing; None otherwise (or when its files are damaged)."""
    if layout.unfinished_state(dst):
        return None
    try:
        with open_regular(dst / layout.FINAL_STATE) as handle:
            final = json.loads(handle.read().decode("utf-8")) if handle is not None else None
        info = read_build_info(dst)
    except (OSError, ValueError):               # BuildInfoError and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(final, dict):
        return None
    key, statuses, files = final.get("key"), final.get("statuses"), final.get("files")
    if not isinstance(key, str) or not isinstance(statuses, str) or not isinstance(files, dict) or \
            not set(statuses) <= set(STATUS_LETTERS):
        return None
    return FinishedBuild(info, key, statuses, files)


def work_expected(last: Optional[FinishedBuild], pipeline: PipelineConfig) -> Optional[bool]:
    """Given the last finished build (or None): True when a build with these
    parameters will look for faces and skin, False when it will only
    re-render (other output options), None when the parameters are the same
    (maybe nothing to do)."""
    if last is None:
        return True
    before = last.info.parameters
    now = json.loads(json.dumps(pipeline.to_dict()))          # as build.json holds it: lists, not tuples
    if any(before.get(key) != value for key, value in now.items() if key != "output"):
        return True
    return None if before.get("output") == now["output"] else False


def expected_work(dst: Path, pipeline: PipelineConfig) -> Optional[bool]:
    """work_expected for dst, judged from the last finished build's files
    only (nothing is listed): the command line asks it before the image
    libraries load, to start the workers' fork server at once when a build
    will have work."""
    try:
        return work_expected(last_finished_build(dst), pipeline)
    except BuildInfoError:
        return True


def up_to_date(dst: Path, last: FinishedBuild, current: BuildInfo, fingerprints: list[str],
               outputs: Iterable[list[str]], retry_failed: bool) -> bool:
    """Whether a build whose build.json would be `current` (without counts
    and run) and whose images have `fingerprints` has nothing to do: the
    last build had the same (final_key), its dataset-level files are as it
    left them (build.json by content, the others by size and modification
    time), and every image it wrote still has its files (`outputs`: each
    image's paths, in source order).  Failed images stand, unless
    retry_failed."""
    if len(last.statuses) != len(fingerprints) or (retry_failed and "f" in last.statuses):
        return False
    if any(stamp(dst / name) != saved for name, saved in last.files.items()):
        return False
    if last.key != final_key(current, fingerprints) or comparable(last.info) != comparable(current):
        return False
    return all(status != "w" or all(exists(dst, p) for p in paths) for status, paths in zip(last.statuses, outputs))


def comparable(info: BuildInfo) -> str:
    """What a re-run compares with the last build's build.json: all but its
    counts, run, data checks (made of the records) and warnings (a card's
    warning is added as it is written)."""
    return json_text(dataclasses.replace(info, counts=None, run=None, data_checks=None, warnings=()).to_json())


def final_key(info: BuildInfo, fingerprints: Iterable[str]) -> str:
    """Identifies the dataset-level files: build.json's content (info, without
    its counts and run) and every image's fingerprint, in order."""
    digest = hashlib.sha256(json_text(info.to_json()).encode("utf-8"))
    for fingerprint in fingerprints:
        digest.update(fingerprint.encode("ascii"))
    return digest.hexdigest()[:16]


def final_state_text(key: str, statuses: str, files: dict[str, Optional[list[int]]]) -> str:
    """The content of .skinseg/final.json (the build writes it last)."""
    return json_text({"key": key, "statuses": statuses, "files": files}) + "\n"


def stamp(path: Path) -> Optional[list[int]]:
    """[size, modification time in ns] of a file: whether it changed since."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def exists(dst: Path, relative: str) -> bool:
    """Whether dst/relative is a regular file."""
    # A string join and a stat: this runs for every output of 100 000 images.
    try:
        return stat.S_ISREG(os.stat(f"{dst}/{relative}").st_mode)
    except OSError:
        return False
