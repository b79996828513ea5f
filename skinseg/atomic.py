"""Writing files atomically: a file that exists is complete.

Every file is written to a temporary name next to it (layout.temp_prefix)
and renamed once complete, so a path holds the old bytes or the new ones,
never half of them; a build killed mid-write leaves only temporary names,
which the next build removes (`remove_temp_files`).  A file that already
holds the bytes is not written again, so a rebuild touches only what
changed.  The fault point `_faults.before_write` lets tests fill the disk
at any file.

Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from . import _faults
from .layout import is_temp_name, temp_prefix
from .reading import NotReadable, read_regular_file


def _file_mode() -> int:
    """The mode open() would give a new file (mkstemp would give 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def _same_content(path: Path, data: bytes) -> bool:
    try:
        return read_regular_file(path, len(data)) == data
    except (OSError, NotReadable):
        return False


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a temp file next to path; on success it replaces path, on any
    error (or Ctrl-C) it is deleted.  So path is either absent/old or complete.

    The temp file sits in the same folder (same file system) and carries
    layout.TEMP_MARKER, so a process killed mid-write leaves only files that the next
    build recognises and removes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _faults.before_write(str(path))
            yield handle
            os.fchmod(handle.fileno(), FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path atomically (see atomic_file).  A file that already
    holds exactly these bytes is left alone, so a rebuild touches only
    outputs that changed."""
    if _same_content(path, data):
        return
    with atomic_file(path) as handle:
        handle.write(data)


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically (see atomic_file)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write a file of many lines (a manifest of 100 000 images) atomically,
    a line at a time: never the whole text in memory."""
    with atomic_file(path) as handle:
        for line in lines:
            handle.write(line.encode("utf-8"))


def remove_temp_files(folder: Path) -> int:
    """Delete temp files that a killed build left below folder; return the count."""
    removed = 0
    if not folder.is_dir():
        return 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if is_temp_name(name):
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed
