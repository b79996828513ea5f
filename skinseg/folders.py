"""The folders of a source, each read once, whatever path leads to it.

Folders are told apart by device and inode (`Identity`): neither a link nor a
bind mount hides that two paths are one folder.  `Claims` holds every folder
a discovery reads (and the path it was read as) and the ones it must never
enter; `walk` lists the files below some folders with it, entering real
folders before those reached through a link, so that where a link and a real
path lead to one folder the real path wins, and every folder it cannot read
is said.  `destination_inside` uses what was read to refuse a destination
that is a source folder, reached however.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
from pathlib import Path
from typing import Iterator, Optional, TypeVar

Identity = tuple[int, int]      # (device, inode): one folder, whatever path, link or mount leads to it
Tag = TypeVar("Tag")

NOT_SOURCE = "the destination (--dst), or a folder in it, reached through a link or mount: not read as source"
CONTAINS_SOURCE = "a link to a folder that contains the source (such as / or ..): not followed"


def identity(path: Path) -> Optional[Identity]:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def identity_chain(path: Path) -> list[Identity]:
    """The identities of path (if it exists) and of every folder above it."""
    resolved = path.resolve()
    return [i for i in map(identity, [resolved, *resolved.parents]) if i is not None]


def folders_below(root: Path) -> dict[Identity, str]:
    """The identities of root and of every folder inside it (links not
    followed, hidden folders included), each with its path."""
    found = {}
    for folder, _dirs, _files in os.walk(root):
        if (i := identity(Path(folder))) is not None:
            found.setdefault(i, folder)
    return found


def alias_reason(first: str) -> str:
    first = first or "the source folder"
    return f"the same folder as {first}, reached again through a link or a mount: its images are read once, as {first}"


def why_unreadable(exc: OSError) -> str:
    """What an error listing or examining a folder says, for people."""
    if exc.errno == errno.ENAMETOOLONG:
        return "its path is longer than the system allows"
    return (exc.strerror or str(exc)).lower()


def unreadable_reason(exc: OSError) -> str:
    """Why a folder's images are not used, from the error listing it gave."""
    return f"a folder that cannot be read ({why_unreadable(exc)}): the images in it, if any, are not used"


def is_alias(reason: str) -> bool:
    return reason.startswith("the same folder as ")


def is_unreadable(reason: str) -> bool:
    return reason.startswith("a folder that cannot be read")


class UnreadableRoot(Exception):
    """A folder `walk` was asked to list cannot be listed."""

    def __init__(self, relative: str, error: OSError):
        super().__init__(relative)
        self.relative, self.error = relative, error


class Claims:
    """The folders read so far (identity -> the source-relative path that
    read it) and the folders never to enter (identity -> why)."""

    def __init__(self, refused: dict[Identity, str]):
        self.refused = refused
        self.read: dict[Identity, str] = {}

    def claim(self, folder: Identity, relative: str) -> Optional[str]:
        """Take folder as read at relative, or say why it is not read there."""
        why = self.refused.get(folder)
        if why is None and folder in self.read:
            why = alias_reason(self.read[folder])
        if why is None:
            self.read[folder] = relative
        return why


def walk(roots: list[tuple[str, str, Tag]], claims: Claims, unread: Optional[list[tuple[str, str]]] = None
         ) -> Iterator[tuple[Tag, str, list[str], list[tuple[str, str]]]]:
    """Per folder below the roots (the roots included) as it is listed:
    (tag, its relative path, the names of its non-hidden files, the folders
    not entered as (relative path, why)).

    roots are (path, source-relative path, tag), already claimed.  A folder
    is entered once (claims): a symlink loop ends, and a second way to the
    same images (a link to another class) is listed, not read again.  Real
    folders are all entered before any folder reached through a link, and
    links in the order of their paths, so which path reads a folder does not
    depend on the order of the walk.  A folder that cannot be listed (no
    permission, a path longer than the system allows) is a folder not
    entered, with why; a root that cannot be listed raises UnreadableRoot.
    Hidden folders are not entered; with `unread`, they are appended to it
    as (path, relative path).
    """
    real = [(path, relative, tag, True) for path, relative, tag in reversed(roots)]
    linked: list[tuple[str, str, Tag, Identity]] = []     # a heap of (relative, path, tag, folder)
    while real or linked:
        if not real:
            relative, path, tag, folder = heapq.heappop(linked)
            why = claims.claim(folder, relative)
            if why:
                yield tag, relative, [], [(relative, why)]
            else:
                real.append((path, relative, tag, False))
            continue
        directory, where, tag, is_root = real.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            if is_root:
                raise UnreadableRoot(where, exc) from None
            yield tag, where, [], [(where, unreadable_reason(exc))]
            continue
        prefix = where + "/"
        files: list[str] = []
        skipped: list[tuple[str, str]] = []
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                with contextlib.suppress(OSError):
                    if unread is not None and entry.is_dir(follow_symlinks=False):
                        unread.append((entry.path, prefix + name))
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(name)
                continue
            relative = prefix + name
            try:
                st = entry.stat(follow_symlinks=True)
                is_link = entry.is_symlink()
            except OSError as exc:
                skipped.append((relative, unreadable_reason(exc)))
                continue
            folder = (st.st_dev, st.st_ino)
            if is_link:
                heapq.heappush(linked, (relative, entry.path, tag, folder))     # relative paths are unique
                continue
            why = claims.claim(folder, relative)
            if why:
                skipped.append((relative, why))
            else:
                real.append((entry.path, relative, tag, False))
        yield tag, where, files, skipped


def destination_inside(dst: Path, claims: Claims, unread: list[tuple[str, str]]) -> Optional[str]:
    """The source-relative path of the source folder that dst is or is in,
    reached by whatever path (a bind mount of a class folder, a folder a link
    in the source leads to), or None.  Folders the discovery did not enter
    (hidden ones) count too: writing there is writing into the source."""
    chain = identity_chain(dst)
    for folder in chain:
        if folder in claims.read:
            return claims.read[folder]
    wanted = set(chain)
    for path, relative in unread:
        for folder, below in folders_below(Path(path)).items():
            if folder in wanted:
                return relative + below[len(path):].replace(os.sep, "/")
    return None
