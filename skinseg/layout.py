"""Every path and file name in a destination folder, in one place.

Paths are relative to the destination (forward slashes), as the records
hold them; a module that writes or reads a file in dst takes its name from
here.  The tool's own forms are also what makes removal safe: only paths
`is_own_output` accepts are ever deleted (journal.remove_stale_outputs).

    manifest.jsonl  build.json  classes.txt  id2label.json  label2id.json  report.html  README.md
    metadata-<split>.jsonl
    images/<split>/<stem>.jpg|png      masks/<split>/<stem>.png      masks_preview/<split>/<stem>.png
    skin_masks/<split>/<stem>.png      masks_preview/legend.png      report/thumbs/<key>_<kind>.jpg
    .skinseg/  final.json  journal[-K-of-N].jsonl  pending[-K-of-N].jsonl  manifest-previous.jsonl
               shards/<K>-of-<N>.jsonl  skin/<split>/<stem>.png  lock  lock-<group>

Imports nothing heavy: the command line reads it before the image libraries load.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path
from typing import Optional

from .config import OutputParams
from .names import name_bytes
from .splits import SPLIT_NAMES

# ------------------------------------------------------------------ the dataset's files
MANIFEST = "manifest.jsonl"          # one record per source image (records.py), written last
BUILD_JSON = "build.json"            # buildinfo.BuildInfo
CLASSES_TXT = "classes.txt"          # line N names class id N
ID2LABEL = "id2label.json"           # classes.txt as Hugging Face's id2label: {"0": "background", "1": ...}
LABEL2ID = "label2id.json"           # and its inverse: {"background": 0, ...}
REPORT_HTML = "report.html"
CARD = "README.md"                   # the Hugging Face dataset card (hub.py)
METADATA_GLOB = "metadata-*.jsonl"
_METADATA = re.compile(rf"metadata-({'|'.join(SPLIT_NAMES)})\.jsonl")


def metadata_name(split: str) -> str:
    """A split's Hugging Face metadata file."""
    return f"metadata-{split}.jsonl"


def metadata_split(name: str) -> Optional[str]:
    """The split of a file name metadata_name gives, or None."""
    match = _METADATA.fullmatch(name)
    return match.group(1) if match else None


# The names a first build must not find there, written by another tool:
# skinseg's loader reads them, so they cannot be someone else's.
def is_dataset_file_name(name: str) -> bool:
    return name in (MANIFEST, BUILD_JSON, CLASSES_TXT, ID2LABEL, LABEL2ID, REPORT_HTML) or \
        metadata_split(name) is not None


# ------------------------------------------------------------------ each image's files
IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR, SKIN_MASKS_DIR = "images", "masks", "masks_preview", "skin_masks"
OUTPUT_DIRS = (IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR, SKIN_MASKS_DIR)
LEGEND = f"{PREVIEWS_DIR}/legend.png"
STATE_DIR = ".skinseg"
STORED_SKIN_DIR = f"{STATE_DIR}/skin"     # the train-ready layout's skin masks, kept to re-render from


# The kinds of an image's files (outputs.render's keys), by what decides them:
# the image file (background, format), the label files (layout, ignore band, class id).
IMAGE_FILES = ("image",)
LABEL_FILES = ("mask", "preview", "skin_mask")


def output_paths(split: str, stem: str, output: OutputParams) -> dict[str, str]:
    """An image's files, by kind (as outputs.render names them)."""
    return _image_files(f"/{split}", stem, output)


def photo_paths(stem: str, output: OutputParams) -> dict[str, str]:
    """A photo's files written by `skinseg segment`, relative to its --out,
    by kind: a build's folders and names, without the split."""
    return _image_files("", stem, output)


def _image_files(split_folder: str, stem: str, output: OutputParams) -> dict[str, str]:
    paths = {"image": f"{IMAGES_DIR}{split_folder}/{stem}{output.image_extension}",
             "mask": f"{MASKS_DIR}{split_folder}/{stem}.png",
             "preview": f"{PREVIEWS_DIR}{split_folder}/{stem}.png"}
    if output.layout == "train-ready":
        paths["skin_mask"] = f"{SKIN_MASKS_DIR}{split_folder}/{stem}.png"
    return paths


def stored_skin_path(split: str, stem: str) -> str:
    """The skin mask the train-ready layout keeps for re-rendering."""
    return f"{STORED_SKIN_DIR}/{split}/{stem}.png"


def written_paths(split: str, stem: str, output: OutputParams) -> list[str]:
    """Every file processing an image may write (records.Record.files of its record)."""
    paths = list(output_paths(split, stem, output).values())
    if output.layout == "train-ready":
        paths.append(stored_skin_path(split, stem))
    return paths


_OWN_OUTPUT = re.compile(rf"(?:(?:{'|'.join(OUTPUT_DIRS)})/({'|'.join(SPLIT_NAMES)})/[\w\-][\w.\-]*\.(?:jpg|png)"
                         rf"|{re.escape(STORED_SKIN_DIR)}/({'|'.join(SPLIT_NAMES)})/[\w\-][\w.\-]*\.png)")


def is_own_output(path: str) -> bool:
    """Whether a path is of the form this tool writes images' files in
    (images|masks|masks_preview|skin_masks/<split>/<name>.jpg|png,
    .skinseg/skin/<split>/<name>.png): never outside dst, nor another tool's."""
    return _OWN_OUTPUT.fullmatch(path) is not None


def own_output_folders() -> list[str]:
    """The tool's own output folders, deepest first: removed when a change empties them."""
    return [f"{top}/{split}" for top in (*OUTPUT_DIRS, STORED_SKIN_DIR) for split in SPLIT_NAMES] + \
        [*OUTPUT_DIRS, STORED_SKIN_DIR]


# ------------------------------------------------------------------ the report's thumbnails
REPORT_DIR = "report"                # a user's notes there stay
THUMBS_DIR = f"{REPORT_DIR}/thumbs"
THUMB_VERSION = "2"                  # part of thumbnail names: bump when their rendering changes (outputs.py)
THUMB_KINDS = ("photo", "crop", "skin", "overlay")
_THUMB_NAME = re.compile(rf"[0-9a-f]{{16}}_({'|'.join(THUMB_KINDS)})\.jpg")


def thumbnail_paths(source: str, segmentation: str, class_id: int) -> dict[str, str]:
    """An image's thumbnails, by kind.  Named after what they show: the
    image's segmentation fingerprint (source, crop and mask) and class id
    (the overlay's colour), so an existing thumbnail is up to date, and an
    option that only changes how files are rendered keeps them."""
    key = hashlib.sha1(name_bytes(f"{THUMB_VERSION}|{source}|{segmentation}|{class_id}")).hexdigest()[:16]
    return {kind: f"{THUMBS_DIR}/{key}_{kind}.jpg" for kind in THUMB_KINDS}


def is_thumbnail_name(name: str) -> bool:
    """Whether a file name in THUMBS_DIR is one thumbnail_paths gives."""
    return _THUMB_NAME.fullmatch(name) is not None


# ------------------------------------------------------------------ the build's own state
FINAL_STATE = f"{STATE_DIR}/final.json"                # what the last finished build left (state.py)
PREVIOUS_MANIFEST = f"{STATE_DIR}/manifest-previous.jsonl"     # while the new manifest is written
SHARDS_DIR = f"{STATE_DIR}/shards"                     # each finished shard's records
LOCK = f"{STATE_DIR}/lock"                             # lock.py
LOCK_GROUP_PREFIX = "lock-"                            # in STATE_DIR: the shards of one build
JOURNAL_GLOB, PENDING_GLOB = "journal*.jsonl", "pending*.jsonl"     # in STATE_DIR


def journal_path(shard: Optional[tuple[int, int]]) -> str:
    """A build's journal: each finished image's record (journal.py)."""
    return f"{STATE_DIR}/{_per_shard('journal', shard)}"


def pending_path(shard: Optional[tuple[int, int]]) -> str:
    """A build's pending list: each image's files before a worker gets it."""
    return f"{STATE_DIR}/{_per_shard('pending', shard)}"


def _per_shard(kind: str, shard: Optional[tuple[int, int]]) -> str:
    # One file per shard: shards on different machines never append to one file.
    return f"{kind}.jsonl" if shard is None else f"{kind}-{shard[0]}-of-{shard[1]}.jsonl"


def journal_pairs(dst: Path) -> list[tuple[Path, Path]]:
    """(journal, pending list) of every build or shard that left some."""
    state = Path(dst) / STATE_DIR
    keys = {p.name[len(kind):] for kind in ("journal", "pending") for p in state.glob(f"{kind}*.jsonl")}
    return [(state / f"journal{key}", state / f"pending{key}") for key in sorted(keys)]


def unfinished_state(dst: Path) -> list[Path]:
    """The files a build that did not finish leaves in dst (journals, pending
    lists, the manifest set aside); finished shards' records are not among them."""
    state = Path(dst) / STATE_DIR
    return [*state.glob(PENDING_GLOB), *state.glob(JOURNAL_GLOB),
            *([Path(dst) / PREVIOUS_MANIFEST] if (Path(dst) / PREVIOUS_MANIFEST).exists() else [])]


def shard_records(index: int, count: int) -> str:
    """The records of shard `index` of `count`, saved when it finishes."""
    return f"{SHARDS_DIR}/{index}-of-{count}.jsonl"


def finished_shards(dst: Path) -> list[Path]:
    """The records of every finished shard in dst (shard_records), sorted."""
    return sorted((Path(dst) / SHARDS_DIR).glob("*-of-*.jsonl"))


def write_probe() -> str:
    """A file the build writes and removes to see that dst takes writes."""
    return f"{STATE_DIR}/.write-probe-{socket.gethostname()}-{os.getpid()}"


# ------------------------------------------------------------------ temporary files
# Every file is written under a temporary name next to it and renamed
# (atomic.py); a build killed mid-write leaves only names with this marker,
# which the next build removes.
TEMP_MARKER = ".skinseg-tmp-"


def temp_prefix(name: str) -> str:
    """The start of the temporary name a file is written under."""
    return f".{name}{TEMP_MARKER}"


def is_temp_name(name: str) -> bool:
    return TEMP_MARKER in name


# Folders where a killed build may have left temporary files.
TEMP_FOLDERS = (*OUTPUT_DIRS, STATE_DIR, REPORT_DIR)
