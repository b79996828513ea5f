"""The record of one source image (a line of manifest.jsonl), the task that
makes it (`ImageTask`), and the files of records.

A build writes records to its journal as images finish, to a shard's file
when a shard finishes, and to the manifest at the end (journal.py,
finalize.py); the report, the Hugging Face files and the loader read them.
The format is defined here, once: `Record` (its fields, in manifest order),
`record_line` (one line of JSON) and `read_records`, which reads every kind
of record file the same way: a damaged line (cut short by a kill, not UTF-8,
not JSON, a field of the wrong type) is skipped, and only a regular file is
ever opened (a named pipe put in its place is never waited on).

Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator, Mapping, Optional

from .layout import stored_skin_path
from .names import json_text

STATUSES = ("written", "skipped", "failed")     # what became of an image (Record.status)


@dataclass(slots=True)
class Record:
    """One line of manifest.jsonl."""

    source: str
    split: str
    class_name: str
    class_id: int
    status: str                          # one of STATUSES
    reason: Optional[str] = None
    image: Optional[str] = None
    mask: Optional[str] = None
    preview: Optional[str] = None
    skin_mask: Optional[str] = None      # the train-ready layout's 0/1 skin mask
    size: Optional[list[int]] = None     # [width, height] of the upright source
    crop: Optional[list[int]] = None     # [x0, y0, x1, y1], exclusive ends
    face: Optional[dict] = None
    skin_fraction: Optional[float] = None
    body_skin: Optional[float] = None    # share of the people's bodies (below the faces) that is skin, when measured
    fingerprint: Optional[str] = None    # segmentation + rendering: everything that decides the files
    segmentation: Optional[str] = None   # what decides mask and crop: source file, parameters, models
    rendering: Optional[str] = None      # how the files were rendered: 8 hex for the image, 8 for the masks
    checks: Optional[dict] = None        # dataquality.ImageChecks.to_record(): duplicates and quality, for build.json

    def to_dict(self) -> dict:
        # Not dataclasses.asdict, which deep-copies: 90 us a record, 9 s for
        # the manifest of 100 000 images.  The values are only serialised.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def output_paths(self) -> list[str]:
        return [p for p in (self.image, self.mask, self.preview, self.skin_mask) if p]

    def stored_skin(self) -> Optional[str]:
        """The skin mask the train-ready layout keeps to re-render from, or None."""
        if not (self.skin_mask and self.mask):
            return None
        return stored_skin_path(self.split, PurePosixPath(self.mask).stem)

    def files(self) -> list[str]:
        """Every file written for this image: the outputs and the stored skin mask."""
        stored = self.stored_skin()
        return self.output_paths() + ([stored] if stored else [])


@dataclass(frozen=True, slots=True)
class ImageTask:
    """One image's work, as the build plans it and a worker does it."""

    source: str            # relative to src, forward slashes
    split: str
    class_name: str
    class_id: int
    stem: str
    fingerprint: str       # changes whenever anything that decides the outputs changes
    segmentation: str = ""     # Record.segmentation
    rendering: str = ""        # Record.rendering
    thumbnails: bool = False   # the report will likely show it: render its thumbnails now
    # An earlier record with the same segmentation: the files in `render`
    # (kinds as outputs.render names them) are rendered again from its stored
    # mask instead of processing the image.
    previous: Optional[Record] = None
    render: tuple[str, ...] = ()


def by_status(counts: Mapping[str, int]) -> dict[str, int]:
    """Every status's count, in STATUSES order, 0 where there are none."""
    return {s: counts.get(s, 0) for s in STATUSES}


def record_line(record: Record) -> str:
    """The record as one line of a record file."""
    return json_text(record.to_dict()) + "\n"


# ------------------------------------------------------------------ reading

@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[Optional[BinaryIO]]:
    """The file open for reading, or None when it is missing, unreadable or
    not a regular file (a named pipe put in its place is never waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        yield None
        return
    with os.fdopen(fd, "rb") as handle:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        yield handle if regular else None


def read_rows(path: Path, key: str = "source") -> Iterator[tuple[int, dict]]:
    """(byte offset, row) of every line of a JSON-lines state file (manifest,
    journal, pending list, shard records) that is an object with `key`.
    Damaged lines are skipped; a missing or unreadable file has none."""
    try:
        with open_regular(path) as handle:
            if handle is None:
                return
            offset = 0
            for line in handle:
                start, offset = offset, offset + len(line)
                try:
                    row = json.loads(line.decode("utf-8"))
                except ValueError:          # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
                    continue
                if isinstance(row, dict) and key in row:
                    yield start, row
    except OSError:
        return


_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def to_record(row: dict) -> Optional[Record]:
    """The record a row holds, if it is one of this tool's (it has a
    fingerprint and its fields have their types)."""
    if not isinstance(row.get("fingerprint"), str) or not _FINGERPRINT.fullmatch(row["fingerprint"]):
        return None
    try:
        record = Record(**{k: row.get(k) for k in Record.__dataclass_fields__})
    except TypeError:
        return None
    return shared(record) if _well_typed(record) else None


def _ints(value: object, count: int) -> bool:
    # Unrolled, not all(...): this runs for every record of a 100 000-image build.
    if type(value) is not list or len(value) != count:
        return False
    for v in value:
        if type(v) is not int:
            return False
    return True


def _text(value: object) -> bool:
    return value is None or type(value) is str


def _well_typed(r: Record) -> bool:
    """Whether every field a build uses has its type (a tampered line may not)."""
    return (type(r.source) is str and type(r.split) is str and type(r.class_name) is str and type(r.status) is str
            and type(r.class_id) is int and _text(r.image) and _text(r.mask) and _text(r.preview)
            and _text(r.skin_mask) and _text(r.segmentation) and _text(r.rendering) and _text(r.reason)
            and (r.crop is None or _ints(r.crop, 4)) and (r.size is None or _ints(r.size, 2))
            and (r.face is None or type(r.face) is dict) and (r.checks is None or type(r.checks) is dict)
            and (r.skin_fraction is None or type(r.skin_fraction) in (int, float))
            and (r.body_skin is None or type(r.body_skin) in (int, float)))


def shared(record: Record) -> Record:
    """The record with one copy of the strings that 100 000 records repeat
    (split, class, status): a build holds every record in memory."""
    for name in ("split", "class_name", "status"):
        value = getattr(record, name)
        if isinstance(value, str):
            setattr(record, name, sys.intern(value))
    return record


def failed_lines(path: Path, indexes: set[int], limit: int) -> Optional[list[tuple[str, str]]]:
    """(source, reason) of the records on lines `indexes` (0-based) of a
    records file, at most `limit`, read from those lines only (the summary
    names a few failed images of a 100 000-line manifest); None when one of
    them is damaged or the file cannot be read."""
    found: list[tuple[str, str]] = []
    try:
        with open_regular(path) as handle:
            if handle is None:
                return None
            for index, line in enumerate(handle):
                if index in indexes and len(found) < limit:
                    row = json.loads(line.decode("utf-8"))
                    found.append((str(row["source"]), str(row.get("reason") or "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return found


def read_records(path: Path) -> Iterator[Record]:
    """The records of a manifest, journal or shard file, in file order."""
    for _, row in read_rows(path):
        record = to_record(row)
        if record is not None:
            yield record


