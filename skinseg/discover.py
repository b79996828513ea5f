"""Find the images of a classification dataset and give every class an id.

Layout: ``src/<split>/<class>/**/<image>``, split folders named in any case
(`SPLIT_NAMES`); or ``src/<class>/**/<image>`` divided into splits by a
seeded ratio (`InputParams.split_ratio`).  Nothing here reads pixels; the
result is a deterministic, sorted list of `SourceImage` plus what was ignored
and why, so the build can report it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from .config import InputParams
from .imageio import NotReadable, read_regular_file

# Folder names read as splits, in any case; the split is the name in lower case.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")
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


Identity = tuple[int, int]      # (device, inode): one folder, whatever path, link or mount leads to it


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


def _folders_below(root: Path) -> set[Identity]:
    """The identities of root and of every folder inside it (links not followed)."""
    found = set()
    for folder, _dirs, _files in os.walk(root):
        if (i := identity(Path(folder))) is not None:
            found.add(i)
    return found


OUTSIDE_CLASSES = "an image outside any class folder: not used (its class is unknown; move it into a class folder)"
NOT_SOURCE = "the destination (--dst), or a folder in it, reached through a link or mount: not read as source"
CONTAINS_SOURCE = "a link to a folder that contains the source (such as / or ..): not followed"
READ_ALREADY = "a folder already read, reached again through a link (a loop, or a second way to the same images)"


def _walk(root: str, seen: set[Identity], refused: dict[Identity, str]) -> Iterable[tuple[str, Optional[str]]]:
    """Every non-hidden file below root, as (path, None), following links to
    folders; and every folder not entered, as (path, why).  Paths are
    strings that start with root (a Path per file costs more than the walk).

    A folder is entered once (by device and inode), so a symlink loop, or a
    link back to another class or split, ends instead of recursing forever
    or listing the same images twice.  Folders in `refused` are not entered:
    the destination (outputs must not come back as sources) and folders that
    contain the source (a link to / would walk the whole file system).
    """
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if not is_dir:
                yield entry.path, None
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            folder = (st.st_dev, st.st_ino)
            why = refused.get(folder) or (READ_ALREADY if folder in seen else None)
            if why:
                yield entry.path, why
                continue
            seen.add(folder)
            stack.append(entry.path)


_UNSAFE = re.compile(r"[^\w.\-]+")
# Output names are at most this long (UTF-8 bytes; 255 is the usual limit of
# a file name), leaving room for the extension and the temporary name a file
# is written under first (".<name>.skinseg-tmp-XXXXXXXX").
MAX_STEM_BYTES = 229


def name_bytes(name: str) -> bytes:
    """The bytes of a file or folder name as os functions gave it: bytes that
    are not UTF-8 come back from their surrogate escapes.  For hashing."""
    return name.encode("utf-8", "surrogateescape")


def printable(name: str) -> str:
    """A name as text for people: bytes that are not UTF-8 as \\xNN."""
    return name_bytes(name).decode("utf-8", "backslashreplace")


def json_text(value: object, indent: Optional[int] = None) -> str:
    """JSON text that is valid UTF-8 whatever the names in it.  A name that
    is not UTF-8 holds surrogate escapes (as os functions give it); each
    becomes a JSON \\udcXX escape, which json.loads turns back into the
    same name."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def class_name(text: str) -> str:
    """The class a folder name (or a line of classes.txt) names.  The same
    rule on both sides is what makes classes.txt round-trip: bytes that are
    not UTF-8 as \\xNN (a class name is text: it is written to classes.txt),
    NFC (macOS writes names decomposed: one name, one class), and no
    surrounding white space (invisible, and lost by editors)."""
    return unicodedata.normalize("NFC", printable(text)).strip()


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


def _fit(stem: str, source: str) -> str:
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
        stems.append(_fit(stem, source))
    return stems


def split_name(folder: str) -> Optional[str]:
    """The split a top-level folder is (its name in lower case), or None."""
    name = unicodedata.normalize("NFC", printable(folder)).strip().casefold()
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


def discover(src: Path, dst: Optional[Path] = None, params: Optional[InputParams] = None) -> Discovery:
    """List every image under the split/class folders of src, sorted.

    Links to folders are followed (a dataset assembled from links keeps
    working), each folder once, except into dst and into a folder that
    contains src; what is not followed is listed as ignored, with why.
    """
    params = params or InputParams()
    if not src.is_dir():
        raise DatasetError(f"source folder {src} does not exist or is not a folder")
    refused = dict.fromkeys(identity_chain(src), CONTAINS_SOURCE)
    if dst is not None and dst.is_dir():
        refused.update(dict.fromkeys(_folders_below(dst), NOT_SOURCE))
    warnings: list[str] = []
    ignored: list[tuple[str, str]] = []
    outside: list[str] = []
    found: list[tuple[str, str, str, str]] = []      # source, split, class, path below the class folder
    class_names: set[str] = set()

    def folders(parent: Path, where: str) -> Iterable[os.DirEntry]:
        """The usable folders in parent; files and refused folders go to ignored."""
        for entry in sorted(os.scandir(parent), key=lambda e: e.name):
            relative = f"{where}{entry.name}"
            if _is_hidden(entry.name):
                continue
            if not entry.is_dir():
                if Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    outside.append(relative)
                    ignored.append((relative, OUTSIDE_CLASSES))
                else:
                    ignored.append((relative, "file at the top level of the source, outside any split folder"
                                    if not where else "file directly in a split folder, outside any class folder"))
            elif why := refused.get(identity(Path(entry.path))):
                ignored.append((relative, why))
            elif entry.name == MACOS_ZIP_FOLDER:
                ignored.append((relative, "macOS zip metadata (resource forks), not images"))
            else:
                yield entry

    top = list(folders(src, ""))
    splits = [(entry, split_name(entry.name)) for entry in top]
    split_dirs = [(entry.name, split) for entry, split in splits if split]
    others = [entry.name for entry, split in splits if not split]
    class_dirs: list[tuple[str, Path, str]] = []     # split ("" until divided), folder, class name
    if split_dirs and params.split_ratio:
        raise DatasetError(f"--split-ratio is for sources without split folders, and {src} has "
                           f"{', '.join(printable(f) for f, _ in split_dirs)}: leave --split-ratio out")
    if split_dirs:
        by_split: dict[str, list[str]] = {}
        for folder, split in split_dirs:
            by_split.setdefault(split, []).append(folder)
        for split, names in by_split.items():
            if len(names) > 1:
                raise DatasetError(f"the folders {' and '.join(repr(printable(n)) for n in names)} in {src} are both "
                                   f"split '{split}': merge them or rename one")
        for folder in others:
            if params.skip_unknown_folders:
                ignored.append((folder, "not a split folder: skipped (--skip-unknown-folders)"))
            else:
                raise DatasetError(f"top-level folder '{printable(folder)}' in {src} is not a split folder "
                                   f"({', '.join(SPLIT_NAMES)}, in any case), so its images would not be used: "
                                   "rename it, move it out, or pass --skip-unknown-folders to leave it out")
        present = {split for _, split in split_dirs}
        if {"val", "valid"} <= present or {"val", "validation"} <= present or {"valid", "validation"} <= present:
            warnings.append("more than one validation folder (val, valid, validation) exists; "
                            "they are kept as separate splits")
        for folder, split in split_dirs:
            for entry in folders(src / folder, f"{folder}/"):
                class_dirs.append((split, Path(entry.path), entry.name))
    elif params.split_ratio:
        class_dirs = [("", src / name, name) for name in others]
    else:
        raise _no_splits_error(src, others)

    named: list[tuple[str, Path, str]] = []
    for split, folder, raw in class_dirs:
        name = class_name(raw)
        problem = class_name_problem(name)
        if problem:
            shown = folder.relative_to(src).as_posix()
            raise DatasetError(f"class folder {printable(shown)!r} cannot be a class: its name {problem}; "
                               "rename the folder")
        named.append((split, folder, name))
    if not named and outside:
        raise DatasetError(f"the images in {src} are not in class folders (e.g. {printable(outside[0])}): "
                           "skinseg needs <split>/<class>/<image>, the class being the folder's name")
    if outside:
        warnings.append(f"{len(outside)} image{'s' if len(outside) > 1 else ''} outside any class folder "
                        f"(e.g. {printable(outside[0])}) {'are' if len(outside) > 1 else 'is'} not used: "
                        "move them into class folders")
    # Folders that are splits or classes themselves are never entered through a link.
    seen = {i for i in (identity(p) for p in [src] + [src / f for f, _ in split_dirs] + [d for _, d, _ in named])
            if i is not None}
    for split, class_dir, name in named:
        class_names.add(name)
        where = class_dir.relative_to(src).as_posix() + "/"
        cut = len(str(class_dir)) + 1            # the walk's paths start with the class folder's
        for path, why in _walk(str(class_dir), seen, refused):
            below = path[cut:].replace(os.sep, "/")
            if why:
                ignored.append((where + below, why))
            elif os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
                found.append((where + below, split, name, below))
            else:
                ignored.append((where + below, "not an image file name (extension is not one of "
                                + " ".join(sorted(IMAGE_EXTENSIONS)) + ")"))
    if params.split_ratio:
        chosen = divide([(source, name) for source, _, name, _ in found], params.split_ratio, params.split_seed)
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
