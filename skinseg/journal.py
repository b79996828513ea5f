"""What builds leave in ``dst/.skinseg`` to resume from, and what it proves.

While it runs, a build appends to two files (one pair per shard):
``pending.jsonl`` gets a line naming every file an image may write *before*
the image goes to a worker, and ``journal.jsonl`` gets the image's record
once its files are written.  Each pending line carries the journal's length
when it was written, so together the two files say, for every output path,
what touched it last: a record that names it (the file holds that record's
bytes) or a write that no record followed (its bytes are unknown: a run
killed there may have replaced them, with other options).  A record is
trusted for a file only if it is that file's last writer
(`History.owns`); the final manifest of the last finished build comes
before everything in these files.

Every reader here skips a damaged line (cut short by a kill, not UTF-8, not
JSON, a field of the wrong type) and never opens anything but a regular
file: what the line was about is then done again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Optional

from .discover import SPLIT_NAMES, json_text
from .pipeline import OUTPUT_DIRS, Record
from .state import MANIFEST, STATE_DIR, STORED_SKIN_DIR

PREVIOUS_MANIFEST = "manifest-previous.jsonl"     # in STATE_DIR while the new manifest is written
SHARDS_DIR = "shards"                             # in STATE_DIR: each finished shard's records


def state_name(kind: str, shard: Optional[tuple[int, int]]) -> str:
    """File name of a build's journal or pending list ("journal", "pending")."""
    # One file per shard: shards on different machines never append to one file.
    return f"{kind}.jsonl" if shard is None else f"{kind}-{shard[0]}-of-{shard[1]}.jsonl"


def shard_file(dst: Path, index: int, count: int) -> Path:
    return dst / STATE_DIR / SHARDS_DIR / f"{index}-of-{count}.jsonl"


# ------------------------------------------------------------------ reading

@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[Optional[BinaryIO]]:
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
        with _open_regular(path) as handle:
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
            and (r.skin_fraction is None or type(r.skin_fraction) in (int, float)))


def shared(record: Record) -> Record:
    """The record with one copy of the strings that 100 000 records repeat
    (split, class, status): a build holds every record in memory."""
    for name in ("split", "class_name", "status"):
        value = getattr(record, name)
        if isinstance(value, str):
            setattr(record, name, sys.intern(value))
    return record


def read_records(path: Path) -> Iterator[Record]:
    """The records of a manifest, journal or shard file, in file order."""
    for _, row in read_rows(path):
        record = to_record(row)
        if record is not None:
            yield record


def record_files(dst: Path, manifest_ours: bool) -> list[Path]:
    """Where this tool recorded images, oldest first: the final manifest
    (set aside while a build writes the new one), then finished shards and
    the journals of interrupted builds."""
    state = dst / STATE_DIR
    return ([state / PREVIOUS_MANIFEST] + ([dst / MANIFEST] if manifest_ours else [])
            + sorted((state / SHARDS_DIR).glob("*.jsonl")) + sorted(state.glob("journal*.jsonl")))


def _pending_outputs(row: dict) -> list[str]:
    """The paths a pending line names (a field of another type names none)."""
    outputs = row.get("outputs")
    return [p for p in outputs if isinstance(p, str)] if isinstance(outputs, list) else []


def _pairs(state: Path) -> list[tuple[Path, Path]]:
    """(journal, pending list) of every build or shard that wrote some."""
    keys = {p.name[len(kind):] for kind in ("journal", "pending") for p in state.glob(f"{kind}*.jsonl")}
    return [(state / f"journal{key}", state / f"pending{key}") for key in sorted(keys)]


@dataclass
class History:
    """What earlier builds left: the newest record of each source, and who
    last wrote each output path that an interrupted build touched."""

    records: dict[str, Record] = field(default_factory=dict)
    # Output path -> its last writer since the last finished build: the
    # record that names it, or None (a write no record followed, or writes
    # of several shards, whose order is unknown).  A path not here was
    # written by the build whose manifest names it.
    last_writer: dict[str, Optional[Record]] = field(default_factory=dict)

    def owns(self, record: Record, path: str) -> bool:
        """Whether the file at `path` holds what `record` says (as far as
        this tool's own writes go): no unfinished write came after it."""
        if path not in self.last_writer:
            return True
        writer = self.last_writer[path]
        return writer is not None and (writer is record or writer == record)


def read_history(dst: Path, manifest_ours: bool) -> History:
    """Every record earlier builds left in dst (the newest of each source)
    and the last writer of every path that builds since the last finished
    one touched (see the module's docstring)."""
    history = History()
    state = dst / STATE_DIR
    for path in record_files(dst, manifest_ours):
        if path.parent == state and path.name.startswith("journal"):
            continue                        # read below, with the pending lists
        for record in read_records(path):
            history.records[record.source] = record
    for index, (journal, pending) in enumerate(_pairs(state)):
        writers = _last_writers(journal, pending, history.records)
        if index == 0:
            history.last_writer = writers
            continue
        for path, writer in writers.items():
            # Written by two shards (or by a shard and a build without
            # --shard): nothing orders their writes.
            history.last_writer[path] = None if path in history.last_writer else writer
    return history


def _last_writers(journal: Path, pending: Path, newest: dict[str, Record]) -> dict[str, Optional[Record]]:
    """Path -> the record that wrote it last, or None, from one journal and
    its pending list; `newest` gets the journal's records."""
    writes: list[tuple[float, list[str]]] = []
    for _, row in read_rows(pending, "pending"):
        at = row.get("journal_at")
        # Before every record journaled after it; a line without a position
        # (an older version's) comes after all of them.
        writes.append((at - 0.5 if type(at) is int else math.inf, _pending_outputs(row)))
    writes.sort(key=lambda write: write[0])
    writers: dict[str, Optional[Record]] = {}
    next_write = 0
    for offset, row in read_rows(journal):
        record = to_record(row)
        if record is None:
            continue
        newest[record.source] = record
        while next_write < len(writes) and writes[next_write][0] < offset:
            writers.update(dict.fromkeys(writes[next_write][1]))
            next_write += 1
        for path in record.files():
            writers[path] = record
    for _, paths in writes[next_write:]:
        writers.update(dict.fromkeys(paths))
    return writers


_OUTPUT_PATH = re.compile(rf"(?:(?:{'|'.join(OUTPUT_DIRS)})/({'|'.join(SPLIT_NAMES)})/[\w\-][\w.\-]*\.(?:jpg|png)"
                          rf"|{re.escape(STORED_SKIN_DIR)}/({'|'.join(SPLIT_NAMES)})/[\w\-][\w.\-]*\.png)")


def written_outputs(dst: Path, manifest_ours: bool) -> set[str]:
    """Every output this tool recorded writing, or starting to write, in dst:
    image, mask and preview paths (and stored skin masks) of every record
    and of every image that was in progress when a build was killed.  Only
    paths in the tool's own form (images|masks|masks_preview|skin_masks/
    <split>/<name>.jpg|png, .skinseg/skin/<split>/<name>.png) count: never
    one outside dst, nor another tool's file."""
    claimed: set[str] = set()
    for path in record_files(dst, manifest_ours):
        for record in read_records(path):
            claimed.update(record.files())
    for path in (dst / STATE_DIR).glob("pending*.jsonl"):
        for _, row in read_rows(path, "pending"):
            claimed.update(_pending_outputs(row))
    return {p for p in claimed if _OUTPUT_PATH.fullmatch(p)}


def remove_stale_outputs(dst: Path, current: Iterable[Record], manifest_ours: bool) -> int:
    """Delete outputs this tool wrote and no current record claims (source
    removed, now skipped, another image format, in progress when a build was
    killed), then the tool's output folders this leaves empty.  Files
    skinseg did not write are never touched, nor a folder that holds one."""
    keep = {p for r in current for p in r.files()}
    removed = 0
    for relative in sorted(written_outputs(dst, manifest_ours) - keep):
        path = dst / relative
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
                removed += 1
    remove_empty_output_folders(dst)
    return removed


def remove_empty_output_folders(dst: Path) -> None:
    """Remove the tool's own output folders (images/<split>/ ... and their
    parents, .skinseg/skin/<split>/) that are empty: a split that is gone, a
    layout's folder that it no longer writes.  A clean build never makes them."""
    for top in (*OUTPUT_DIRS, STORED_SKIN_DIR):
        for split in SPLIT_NAMES:
            with contextlib.suppress(OSError):      # not there, or not empty: kept
                os.rmdir(dst / top / split)
        with contextlib.suppress(OSError):
            os.rmdir(dst / top)


def shard_header(path: Path) -> Optional[dict]:
    """What a finished shard agreed to build (its file's first line), or
    None if the file is missing or that line is damaged."""
    for offset, row in read_rows(path, "shard"):
        return row if offset == 0 else None
    return None


# ------------------------------------------------------------------ writing

def _append(path: Path) -> BinaryIO:
    """Open a state file to append to, ending a line cut short by a kill
    first: the next line must not be glued to it (and lost with it).
    Raises OSError, also when something other than a file is there (a
    named pipe is not waited on)."""
    not_a_file = OSError(errno.EEXIST, f"{path} is not a file (remove it)")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError:
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            regular = True          # not there: the error is about the folder
        if not regular:
            raise not_a_file from None
        raise
    handle = os.fdopen(fd, "ab")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_a_file
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as reader:
                reader.seek(size - 1)
                if reader.read(1) != b"\n":
                    handle.write(b"\n")
                    handle.flush()
    except BaseException:
        handle.close()
        raise
    return handle


class Journal:
    """The state files a running build appends to: what each image is about
    to write (before a worker gets it) and each image's record (once its
    files are written).  Each method raises OSError when the destination
    cannot be written."""

    def __init__(self, state: Path, shard: Optional[tuple[int, int]]):
        self.path = state / state_name("journal", shard)
        self.pending_path = state / state_name("pending", shard)
        self._pending = _append(self.pending_path)
        try:
            self._journal = _append(self.path)
        except BaseException:
            self._pending.close()
            raise

    def starting(self, source: str, outputs: list[str]) -> None:
        """Before an image's files are written: their paths, and where the
        journal stands (records after this point were written after them)."""
        at = os.fstat(self._journal.fileno()).st_size
        self._pending.write((json_text({"pending": source, "outputs": outputs, "journal_at": at}) + "\n")
                            .encode("utf-8"))
        self._pending.flush()

    def finished(self, record: Record) -> None:
        """An image's record, once its files are written."""
        self._journal.write((json_text(record.to_dict()) + "\n").encode("utf-8"))
        self._journal.flush()

    def close(self) -> None:
        for handle in (self._journal, self._pending):
            with contextlib.suppress(OSError):     # a full disk: what it could not write is redone next time
                handle.close()
