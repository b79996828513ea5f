"""Reading files safely: regular files only, never more bytes than allowed.

A named pipe named like an image would block a build forever, a link to
/dev/zero never ends, and a huge file must not be read whole: every file
the tool reads from a source or a destination goes through
`read_regular_file` (a source image through `read_source`, whose errors are
`ImageReadError`s with a reason for the manifest).  Memory follows the bytes
read, not the limit.

Imports nothing heavy.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .headers import ImageReadError


class NotReadable(Exception):
    """A path that must not be read as a file: not a regular file, or too
    large.  str(exc) says why."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
        raise NotReadable(f"not a regular file: this is {kind}; not read")


READ_CHUNK = 64 * 2**20


def _read_capped(handle: BinaryIO, size: int, limit: int) -> bytes:
    """At most limit + 1 bytes of an open file whose size is said to be
    size.  Memory follows the bytes read, not the limit (read(n) reserves n
    bytes first: a --max-pixels of 10^10 would ask for 80 GB): the said size
    in one read, then, for a file that grew or says 0 (/proc), chunks."""
    data = handle.read(size + 1)
    if len(data) <= size:
        return data
    parts, total = [data], len(data)
    while total <= limit:
        chunk = handle.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Anything else is refused before it is read: a named pipe would block
    forever and a link to /dev/zero never ends.  The file is opened
    non-blocking (a pipe swapped in after the check cannot block the open)
    and checked again once open.  Raises NotReadable, or OSError as open()
    does.
    """
    _require_regular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        _require_regular(st.st_mode)
        data = _read_capped(handle, st.st_size, limit) if st.st_size <= limit else b""
    if st.st_size > limit or len(data) > limit:
        raise NotReadable(f"the file is {max(st.st_size, len(data)) / 1e6:.0f} MB, more than {limit / 1e6:.0f} MB; "
                          "not read")
    return data


def max_file_bytes(max_pixels: int) -> int:
    """The largest file an image of max_pixels can plausibly be: 8 bytes a
    pixel (16-bit RGBA, uncompressed) plus room for metadata."""
    return 8 * max_pixels + 64 * 2**20


def read_source(path: Path, max_pixels: int) -> bytes:
    """A source image file's bytes (regular files only, capped), or ImageReadError."""
    try:
        return read_regular_file(path, max_file_bytes(max_pixels))
    except NotReadable as exc:
        raise ImageReadError(str(exc)) from None
    except FileNotFoundError:
        if path.is_symlink():
            raise ImageReadError("broken symbolic link: its target does not exist") from None
        raise ImageReadError("the file disappeared before it could be read") from None
    except PermissionError:
        raise ImageReadError("permission denied: the file cannot be read") from None
    except OSError as exc:
        raise ImageReadError(f"the file could not be read: {exc.strerror or exc}") from None
