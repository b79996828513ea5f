"""One build per destination at a time.

A build holds a lock in ``dst/.skinseg/`` while it runs: an exclusive one,
or, for a shard (--shard), a shared one, so that the shards of one build run
side by side while any other build is refused.  The shards of one build are
those that agree on what they build (parameters, models, class ids, the
source's image list): each also holds a lock named after that, and a shard
that finds another such lock in use is refused.

The locks are flock()s on open files: the kernel drops them when the process
ends, however it ends, so a crashed or killed build never leaves one stuck.
Where there are no such locks (Windows, some network file systems) the build
goes on unlocked, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Iterator, Optional

try:
    import fcntl
except ImportError:      # Windows
    fcntl = None  # type: ignore[assignment]

from .layout import LOCK, LOCK_GROUP_PREFIX, STATE_DIR

log = logging.getLogger("skinseg")


class Busy(Exception):
    """Another build is writing to the destination; str(exc) says which."""


class LockUnusable(Exception):
    """Something other than a file is where the lock must be (a folder, a
    named pipe); str(exc) names it and says what to do."""


def _flock(fd: int, operation: int) -> bool:
    """flock; False if another process holds a conflicting lock."""
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    return True


def _open(path: Path) -> int:
    """The lock file, opened (created if need be); LockUnusable if what is
    at its path is not a regular file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o666)
    except IsADirectoryError:
        fd = None
    if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    if fd is not None:
        os.close(fd)
    raise LockUnusable(f"{path} is not a file (skinseg keeps the lock of its builds there): remove it "
                       "and run the build again")


def _hold_group(state: Path, group: str) -> int:
    """A shared lock on this build's group file, on the file that is still
    at its path (a finishing build removes the file once it is unused)."""
    path = state / f"{LOCK_GROUP_PREFIX}{group}"
    while True:
        fd = _open(path)
        fcntl.flock(fd, fcntl.LOCK_SH)      # waits only while another build checks or removes it
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)


def _other_group_running(state: Path, group: str) -> bool:
    """Whether shards of another build hold their group lock; the files of
    groups that have ended are removed."""
    for path in state.glob(f"{LOCK_GROUP_PREFIX}*"):
        if path.name == f"{LOCK_GROUP_PREFIX}{group}":
            continue
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            raise LockUnusable(f"{path} is not a file (skinseg keeps the locks of sharded builds there): remove it "
                               "and run the build again") from None
        try:
            if not _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
                return True
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        finally:
            os.close(fd)
    return False


def _release_group(state: Path, group: str, fd: int) -> None:
    """Unlock; the last shard of the group out removes its file."""
    try:
        if _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
            with contextlib.suppress(FileNotFoundError):
                (state / f"{LOCK_GROUP_PREFIX}{group}").unlink()
    finally:
        os.close(fd)


@contextlib.contextmanager
def destination_lock(dst: Path, group: Optional[str]) -> Iterator[None]:
    """Hold the destination for one build (group None) or for the shards of
    one build (group: what they agree on).  Raises Busy at once if it is in
    use; never waits for another build."""
    if fcntl is None:
        log.warning("builds cannot lock %s on this system: make sure only one build writes to it at a time", dst)
        yield
        return
    state = dst / STATE_DIR
    fd = _open(dst / LOCK)
    group_fd = None
    try:
        try:
            held = _flock(fd, (fcntl.LOCK_EX if group is None else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:         # a file system without locks
            log.warning("cannot lock %s (%s): make sure only one build writes to it at a time", dst,
                        exc.strerror or exc)
            yield
            return
        if not held:
            raise Busy(f"another skinseg build is writing to --dst {dst}; wait for it to finish, or choose another "
                       "--dst" + ("" if group is None else " (shards of one build run together; a build without "
                                  "--shard does not)"))
        if group is not None:
            group_fd = _hold_group(state, group)
            if _other_group_running(state, group):
                raise Busy(f"shards of another build (other parameters, class ids or source images) are writing "
                           f"to --dst {dst}; run every shard with the same options, or wait for them to finish")
        yield
    finally:
        if group_fd is not None:
            _release_group(state, group, group_fd)
        os.close(fd)
