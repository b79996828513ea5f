"""Find the images of a classification dataset and give every class an id.

Layout: ``src/<split>/<class>/**/<image>``, split folders named in any case
(`splits.SPLIT_NAMES`, each the split `splits.dataset_split` says:
``valid/`` is ``validation`` unless `InputParams.split_names` is 'as-is');
or ``src/<class>/**/<image>`` divided into splits by a seeded ratio
(`InputParams.split_ratio`).  Nothing here reads pixels; the
result is a deterministic, sorted list of `SourceImage` plus what was ignored
and why, so the build can report it.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .folders import (
    CONTAINS_SOURCE,
    NOT_SOURCE,
    Claims,
    Identity,
    UnreadableRoot,
    destination_inside,
    folders_below,
    identity,
    identity_chain,
    is_alias,
    is_unreadable,
    walk,
    why_unreadable,
)

# json_text is imported from here by build.py and hub.py.
from .names import json_text, name_bytes, printable, text_name  # noqa: F401
from .reading import NotReadable, read_regular_file
from .splits import SPLIT_NAMES, STANDARD_SPLITS, InputParams, dataset_split

# Not a dataset folder: the resource forks macOS's zip tool adds.
MACOS_ZIP_FOLDER = "__MACOSX"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
BACKGROUND_NAME = "background"


class DatasetError(Exception):
    """The source tree or a class file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class SourceImage:
    source: str          # path relative to src, forward slashes
    split: str
    class_name: str
    stem: str            # collision-free output stem, unique within the split


@dataclass
class Discovery:
    images: list[SourceImage]
    class_names: list[str]                               # sorted union over all splits
    ignored: list[tuple[str, str]] = field(default_factory=list)   # (path, reason)
    warnings: list[str] = field(default_factory=list)
    outside_classes: list[str] = field(default_factory=list)      # images not in a class folder: not used


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


OUTSIDE_CLASSES = "an image outside any class folder: not used (its class is unknown; move it into a class folder)"
TOP_LEVEL_FILE = "file at the top level of the source, outside any split folder"
SPLIT_LEVEL_FILE = "file directly in a split folder, outside any class folder"
NOT_AN_IMAGE = "not an image file name (extension is not one of " + " ".join(sorted(IMAGE_EXTENSIONS)) + ")"


def ignored_counts(ignored: list[tuple[str, str]]) -> tuple[int, int]:
    """(files that are not images, folders not read) of a Discovery's
    ignored paths; images outside class folders are neither (said apart)."""
    files = sum(why in (TOP_LEVEL_FILE, SPLIT_LEVEL_FILE, NOT_AN_IMAGE) for _, why in ignored)
    return files, sum(why != OUTSIDE_CLASSES for _, why in ignored) - files


_UNSAFE = re.compile(r"[^\w.\-]+")
# Output names are at most this long (UTF-8 bytes; 255 is the usual limit of
# a file name), leaving room for the extension and the temporary name a file
# is written under first (".<name>.skinseg-tmp-XXXXXXXX").
MAX_STEM_BYTES = 229


def class_name(text: str) -> str:
    """The class a folder name (or a line of classes.txt) names.  The same
    rule on both sides is what makes classes.txt round-trip: bytes that are
    not UTF-8 as \\xNN (a class name is text: it is written to classes.txt),
    NFC (macOS writes names decomposed: one name, one class), and no
    surrounding white space (invisible, and lost by editors)."""
    return unicodedata.normalize("NFC", text_name(text)).strip()


def class_name_problem(name: str) -> Optional[str]:
    """Why name cannot be a line of classes.txt, or None."""
    if not name:
        return "is empty or only white space"
    if name == BACKGROUND_NAME:
        return f"is '{BACKGROUND_NAME}', the name classes.txt gives id 0 (not skin)"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        return "contains a line break or another control character"
    return None


def safe_name(text: str) -> str:
    """A file-name-safe version of text: unicode letters and digits kept,
    runs of anything else (spaces, slashes, shell metacharacters) -> '_'."""
    text = unicodedata.normalize("NFC", text)
    cleaned = _UNSAFE.sub("_", text).strip("._")
    return cleaned or "_"


def fit_stem(stem: str, source: str) -> str:
    """stem, or, when too long for a file name, its start and a hash of the
    source (unique, as the source path is)."""
    if len(name_bytes(stem)) <= MAX_STEM_BYTES:
        return stem
    start = name_bytes(stem)[:MAX_STEM_BYTES - 17].decode("utf-8", "ignore")
    return f"{start}-{hashlib.sha1(name_bytes(source)).hexdigest()[:16]}"


def _output_stems(items: list[tuple[str, str, str, str]]) -> list[str]:
    """The stem of each source, unique within its split, in the order of items.

    The readable stem is ``<class>__<path below class without extension>``.
    Sources whose readable stems collide (``a.jpg`` and ``a.png``, or two names
    that sanitise alike) all get a short hash of their source path appended,
    so the result does not depend on which one was seen first.
    """
    prefixes: dict[str, str] = {}
    readable = []
    counts: Counter = Counter()
    for _source, split, name, below_class in items:
        prefix = prefixes.get(name)
        if prefix is None:
            prefix = prefixes[name] = safe_name(name) + "__"
        stem = prefix + safe_name(below_class.rsplit(".", 1)[0].replace("/", "__"))
        readable.append(stem)
        counts[(split, stem.casefold())] += 1     # case-insensitive file systems exist
    stems = []
    for (source, split, _, _), stem in zip(items, readable):
        if counts[(split, stem.casefold())] > 1:
            stem += "-" + hashlib.sha1(name_bytes(source)).hexdigest()[:8]
        stems.append(fit_stem(stem, source))
    return stems


def split_name(folder: str) -> Optional[str]:
    """Whether a top-level folder is a split folder: its name in lower case
    (one of SPLIT_NAMES), or None."""
    name = unicodedata.normalize("NFC", text_name(folder)).strip().casefold()
    return name if name in SPLIT_NAMES else None


def divide(items: list[tuple[str, str]], ratio: tuple[tuple[str, float], ...], seed: int) -> dict[str, str]:
    """Split of each (source, class): per class, in an order fixed by a hash
    of the seed and the source path, the first shares go to the first split
    and so on; counts are rounded so that they add up (largest remainder)."""
    by_class: dict[str, list[str]] = {}
    for source, name in items:
        by_class.setdefault(name, []).append(source)
    chosen: dict[str, str] = {}
    for sources in by_class.values():
        sources.sort(key=lambda s: hashlib.sha1(name_bytes(f"{seed}|{s}")).hexdigest())
        exact = [share * len(sources) for _, share in ratio]
        counts = [int(x) for x in exact]
        by_remainder = sorted(range(len(ratio)), key=lambda i: (counts[i] - exact[i], i))
        for i in by_remainder[:len(sources) - sum(counts)]:
            counts[i] += 1
        start = 0
        for (split, _), count in zip(ratio, counts):
            chosen.update(dict.fromkeys(sources[start:start + count], split))
            start += count
    return chosen


def _no_splits_error(src: Path, folders: list[str]) -> DatasetError:
    """Why a source without split folders cannot be read, and what to do."""
    expected = ", ".join(SPLIT_NAMES)
    if split_name(src.resolve().name):
        parent = src.resolve().parent
        return DatasetError(f"--src {src} is itself a split folder ('{src.resolve().name}'): point --src at the "
                            f"folder that holds the split folders, {parent}")
    if folders:
        shown = ", ".join(f"'{printable(f)}'" for f in folders[:5]) + (", ..." if len(folders) > 5 else "")
        return DatasetError(f"no split folders in {src} (expected {expected}, in any case); its folders {shown} "
                            "look like class folders: pass --split-ratio train=1 to convert them into one split, "
                            "or e.g. --split-ratio train=0.8,val=0.1,test=0.1 to divide them (--split-seed)")
    return DatasetError(f"no split folders in {src}: expected at least one of {expected} "
                        "(layout: <src>/<split>/<class>/<image>)")


def _shown(paths: list[str], more: int = 3) -> str:
    """A few paths for a message, escaped: 'a, b, c and 2 more'."""
    head = ", ".join(printable(p) for p in paths[:more])
    return head + (f" and {len(paths) - more} more" if len(paths) > more else "")


def discover(src: Path, dst: Optional[Path] = None, params: Optional[InputParams] = None) -> Discovery:
    """List every image under the split/class folders of src, sorted.

    Every folder is read once (by device and inode): where split or class
    folders, or folders below them, are one folder reached through a link
    or a mount, the path without a link reads it and the others are listed
    as ignored, with a warning.  Links to folders are followed otherwise,
    except into dst and into a folder that contains src.  A split or class
    folder that cannot be read stops discovery (its images, or its class,
    would be missing); a folder below a class folder that cannot be read is
    listed as ignored, with a warning.  A dst that is a folder of the source
    (reached by any path) is refused: the source is never written to.
    """
    params = params or InputParams()
    if not src.is_dir():
        raise DatasetError(f"source folder {printable(str(src))} does not exist or is not a folder")
    refused = dict.fromkeys(identity_chain(src), CONTAINS_SOURCE)
    if dst is not None and dst.is_dir():
        refused.update(dict.fromkeys(folders_below(dst), NOT_SOURCE))
    claims = Claims(refused)
    claims.read[identity(src)] = ""
    unread: Optional[list[tuple[str, str]]] = [] if dst is not None else None   # folders not entered
    warnings: list[str] = []
    ignored: list[tuple[str, str]] = []
    outside: list[str] = []
    found: list[tuple[str, str, str, str]] = []      # source, split, class, path below the class folder
    class_names: set[str] = set()

    def cannot_read(what: str, exc: OSError) -> DatasetError:
        return DatasetError(f"cannot read {what} ({why_unreadable(exc)}): its images would be missing; "
                            f"make it readable, or move it out of {printable(str(src))}")

    def folders(parent: Path, where: str) -> list[tuple[os.DirEntry, Identity, bool]]:
        """The usable folders in parent, as (entry, identity, is a link);
        files and refused folders go to ignored.  Raises DatasetError where
        parent or a folder in it cannot be read: a split or a class would
        silently lose its images."""
        try:
            entries = sorted(os.scandir(parent), key=lambda e: e.name)
        except OSError as exc:
            raise cannot_read(f"the folder {printable(where[:-1])}" if where else f"--src {printable(str(src))}",
                              exc) from None
        usable = []
        for entry in entries:
            relative = f"{where}{entry.name}"
            try:
                if _is_hidden(entry.name):
                    if unread is not None and entry.is_dir(follow_symlinks=False):
                        unread.append((entry.path, relative))
                    continue
                if not entry.is_dir():
                    if Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                        outside.append(relative)
                        ignored.append((relative, OUTSIDE_CLASSES))
                    else:
                        ignored.append((relative, SPLIT_LEVEL_FILE if where else TOP_LEVEL_FILE))
                    continue
                st = entry.stat()
                folder, is_link = (st.st_dev, st.st_ino), entry.is_symlink()
            except OSError as exc:
                raise cannot_read(printable(relative), exc) from None
            if why := refused.get(folder):
                ignored.append((relative, why))
            elif entry.name == MACOS_ZIP_FOLDER:
                ignored.append((relative, "macOS zip metadata (resource forks), not images"))
                if unread is not None:
                    unread.append((entry.path, relative))
            else:
                usable.append((entry, folder, is_link))
        return usable

    def read_once(candidates: list[tuple[str, Identity, bool]]) -> set[str]:
        """The relative paths, of (relative path, identity, reached through a
        link) candidates, that read their folder: without a link first, then
        in path order.  The others are aliases: listed as ignored."""
        kept = set()
        for relative, folder, _ in sorted(candidates, key=lambda c: (c[2], c[0])):
            why = claims.claim(folder, relative)
            if why:
                ignored.append((relative, why))
            else:
                kept.add(relative)
        return kept

    top = folders(src, "")
    splits = [(entry, folder, link, split_name(entry.name)) for entry, folder, link in top]
    split_dirs = [(entry.name, split) for entry, _, _, split in splits if split]
    others = [(entry, folder, link) for entry, folder, link, split in splits if not split]
    class_dirs: list[tuple[str, Path, str, Identity, bool]] = []   # split ("" until divided), folder, name, id, link
    if split_dirs and params.split_ratio:
        raise DatasetError(f"--split-ratio is for sources without split folders, and {printable(str(src))} has "
                           f"{', '.join(printable(f) for f, _ in split_dirs)}: leave --split-ratio out")
    if split_dirs:
        for entry, _, _ in others:
            if params.skip_unknown_folders:
                ignored.append((entry.name, "not a split folder: skipped (--skip-unknown-folders)"))
                if unread is not None:
                    unread.append((entry.path, entry.name))
            else:
                raise DatasetError(f"top-level folder '{printable(entry.name)}' in {printable(str(src))} is not a "
                                   f"split folder ({', '.join(SPLIT_NAMES)}, in any case), so its images would not "
                                   "be used: rename it, move it out, or pass --skip-unknown-folders to leave it out")
        kept = read_once([(entry.name, folder, link) for entry, folder, link, split in splits if split])
        split_dirs = [(name, dataset_split(split, params.split_names)) for name, split in split_dirs if name in kept]
        by_split: dict[str, list[str]] = {}
        for folder, split in split_dirs:
            by_split.setdefault(split, []).append(folder)
        for split, names in by_split.items():
            if len(names) > 1:
                apart = (" (or pass --split-names as-is to keep them as separate splits)"
                         if len({split_name(n) for n in names}) > 1 else "")
                raise DatasetError(f"the folders {' and '.join(repr(printable(n)) for n in names)} in "
                                   f"{printable(str(src))} are both split '{split}': merge them or rename "
                                   f"one{apart}")
        # As they are (--split-names as-is), two folders of one standard split stay apart: say so.
        by_standard: dict[str, list[str]] = {}
        for folder, split in split_dirs:
            by_standard.setdefault(STANDARD_SPLITS[split], []).append(folder)
        for split, names in by_standard.items():
            if len(names) > 1:
                warnings.append(f"the folders {' and '.join(repr(printable(n)) for n in names)} are "
                                f"{'both' if len(names) == 2 else 'all'} {split} folders; they are kept as separate "
                                "splits (--split-names as-is)")
        linked_splits = {entry.name for entry, _, link, _ in splits if link}
        for folder, split in split_dirs:
            for entry, identity_, link in folders(src / folder, f"{folder}/"):
                class_dirs.append((split, Path(entry.path), entry.name, identity_, link or folder in linked_splits))
    elif params.split_ratio:
        class_dirs = [("", Path(entry.path), entry.name, folder, link) for entry, folder, link in others]
    else:
        raise _no_splits_error(src, [entry.name for entry, _, _ in others])

    def relative_to_src(folder: Path) -> str:
        return folder.relative_to(src).as_posix()

    kept = read_once([(relative_to_src(d), folder, link) for _, d, _, folder, link in class_dirs])
    named: list[tuple[str, Path, str]] = []
    for split, folder, raw, _, _ in class_dirs:
        if relative_to_src(folder) not in kept:
            continue
        name = class_name(raw)
        problem = class_name_problem(name)
        if problem:
            raise DatasetError(f"class folder {printable(relative_to_src(folder))!r} cannot be a class: its name "
                               f"{problem}; rename the folder")
        named.append((split, folder, name))
    if not named and outside:
        raise DatasetError(f"the images in {printable(str(src))} are not in class folders (e.g. "
                           f"{printable(outside[0])}): skinseg needs <split>/<class>/<image>, the class being the "
                           "folder's name")
    if outside:
        warnings.append(f"{len(outside)} image{'s' if len(outside) > 1 else ''} outside any class folder "
                        f"(e.g. {printable(outside[0])}) {'are' if len(outside) > 1 else 'is'} not used: "
                        "move them into class folders")
    roots = [(str(folder), relative_to_src(folder), (split, name, len(relative_to_src(folder)) + 1))
             for split, folder, name in named]
    try:
        for (split, name, cut), folder, files, skipped in walk(roots, claims, unread):
            ignored.extend(skipped)
            prefix = folder + "/"
            below = prefix[cut:]                 # the folder's path below its class folder
            for file in files:
                if os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS:
                    found.append((prefix + file, split, name, below + file))
                else:
                    ignored.append((prefix + file, NOT_AN_IMAGE))
    except UnreadableRoot as exc:
        raise cannot_read(f"the class folder {printable(exc.relative)}", exc.error) from None
    class_names.update(name for _, _, name in named)
    if dst is not None and (inside := destination_inside(dst, claims, unread or [])) is not None:
        where = f"the source's folder {printable(inside)}" if inside else "the source folder itself"
        raise DatasetError(f"--dst {printable(str(dst))} is inside --src {printable(str(src))}: it is in {where}, "
                           "reached through a link or a mount; the source is never written to: choose a "
                           "destination outside it")
    aliases = sorted(path for path, why in ignored if is_alias(why))
    if aliases:
        warnings.append(f"{len(aliases)} folder{'s are' if len(aliases) > 1 else ' is'} the same as a folder read "
                        f"already, reached again through a link or a mount ({_shown(aliases)}): each folder is "
                        "read once (listed in build.json as ignored)")
    unreadable = sorted(path for path, why in ignored if is_unreadable(why))
    if unreadable:
        warnings.append(f"{len(unreadable)} folder{'s' if len(unreadable) > 1 else ''} below the class folders "
                        f"cannot be read ({_shown(unreadable)}): the images in "
                        f"{'them' if len(unreadable) > 1 else 'it'} are not used (listed in build.json as ignored)")
    if params.split_ratio:
        ratio = tuple((dataset_split(name, params.split_names), share) for name, share in params.split_ratio)
        chosen = divide([(source, name) for source, _, name, _ in found], ratio, params.split_seed)
        found = [(source, chosen[source], name, below) for source, _, name, below in found]
    found.sort()
    images = [SourceImage(source, split, cls, stem)
              for (source, split, cls, _), stem in zip(found, _output_stems(found))]
    ignored.sort()
    return Discovery(images, sorted(class_names), ignored, warnings, sorted(outside))


CLASS_FILE_LIMIT = 64 * 2**20     # far more than 65535 names


def read_class_file(path: Path) -> list[str]:
    """Read a classes.txt: line N is the name of id N, line 0 is 'background'.
    Names are read as class_name() reads folder names."""
    try:
        data = read_regular_file(path, CLASS_FILE_LIMIT)
    except NotReadable as exc:
        raise DatasetError(f"class file {path}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read class file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"class file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    names = [class_name(line) for line in text.removeprefix("\ufeff").split("\n")]    # a BOM: Windows editors
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DatasetError(f"class file {path} is empty; line 0 must be '{BACKGROUND_NAME}' (line N names class id N)")
    if names[0] != BACKGROUND_NAME:
        raise DatasetError(
            f"class file {path}: line 0 must be '{BACKGROUND_NAME}' (line N names class id N)"
        )
    classes = names[1:]
    for index, name in enumerate(classes, start=1):
        problem = class_name_problem(name)
        if problem:
            raise DatasetError(f"class file {path}: line {index} {problem}; every id needs a name of its own")
    duplicates = sorted({n for n in classes if classes.count(n) > 1})
    if duplicates:
        raise DatasetError(f"class file {path}: names listed twice: {', '.join(duplicates)}")
    return classes


def assign_class_ids(found: list[str], pinned: Optional[list[str]] = None) -> tuple[list[str], list[str]]:
    """Return (class list where index+1 is the id, names added to the pinned list).

    Without a pinned list ids follow the sorted names.  With one, its ids stay
    as they are and classes it does not know are appended in sorted order.
    """
    if pinned is None:
        return sorted(found), []
    added = sorted(set(found) - set(pinned))
    return list(pinned) + added, added
