"""Hugging Face `datasets` files: ``load_dataset(dst)`` gives image, mask and class.

Per split, ``metadata-<split>.jsonl`` pairs each written image with its mask
(and skin mask) by path, the way the `imagefolder` builder reads metadata
(``file_name``, ``mask_file_name``: columns ``image``, ``mask``); the dataset
card, ``README.md``, names these files in its YAML ``configs`` (with
``metadata_filenames``, which `datasets` 4.0 added), gives the features
(``class_id`` a ``ClassLabel`` whose names are classes.txt's, so
``features["class_id"].int2str`` names a class), says what the mask values
mean (``id2label``, the ignore value), the splits, the task and how the
dataset was built (tool version, parameters).  ``id2label.json`` and
``label2id.json`` (`label_maps`) are classes.txt as the `transformers`
convention has it.  The YAML is written as JSON, which
YAML reads, so no YAML library is needed; the characters a YAML stream may
not hold are escaped, and names in the card's markdown are escaped too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .buildinfo import BuildInfo
from .labels import legend_rows
from .layout import CARD, IMAGES_DIR, MASKS_DIR, METADATA_GLOB, PREVIEWS_DIR, metadata_name, metadata_split
from .names import json_text
from .records import Record

# A card without this line is someone else's README: it is left alone.
CARD_MARK = "<!-- written by skinseg: every build rewrites this file -->"


# What a YAML stream may not hold (control characters but tab and line
# breaks, DEL, U+FFFE, U+FFFF) and what YAML reads as a line break (NEL,
# U+2028, U+2029: it would fold a string): as JSON escapes, which YAML's
# double-quoted strings read back as the same characters.
_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]")
# ASCII punctuation: backslash-escaped in a markdown table cell, it shows as
# itself (a '|' would start a cell, '<b>' would be HTML, '*' emphasis).
_MARKDOWN = re.compile(r"[!-/:-@\[-`{-~]")


def yaml_text(value: object) -> str:
    """value as JSON (which YAML reads) that is also a valid YAML stream."""
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text(value))


def markdown_cell(text: str) -> str:
    """text as the content of a markdown table cell that shows it as it is."""
    return _MARKDOWN.sub(lambda m: "\\" + m.group(), text)


def metadata_lines(records: list[Record], split: str) -> Iterator[str]:
    """The lines of a split's metadata file, one per written image: its files
    (relative to dst), class and source."""
    for r in records:
        if r.status != "written" or r.split != split:
            continue
        row = {"file_name": r.image, "mask_file_name": r.mask}
        if r.skin_mask:
            row["skin_mask_file_name"] = r.skin_mask
        row.update(class_id=r.class_id, class_name=r.class_name, source=r.source)
        yield json_text(row) + "\n"


def label_maps(classes: Iterable[str]) -> tuple[str, str]:
    """The text of id2label.json and label2id.json: classes.txt's lines
    (line N names id N, 0 is background) as {"N": name} and {name: N}."""
    names = list(classes)
    return (json_text({str(i): name for i, name in enumerate(names)}, indent=2) + "\n",
            json_text({name: i for i, name in enumerate(names)}, indent=2) + "\n")


def split_folders(records: list[Record], info: BuildInfo) -> dict[str, str]:
    """The source's split folders whose split has another name (``valid`` ->
    ``validation``), from the records' sources; none for a source divided
    by --split-ratio (its first folders are classes)."""
    if info.parameters.get("input", {}).get("split_ratio"):
        return {}
    renamed = {}
    for r in records:
        folder = r.source.split("/", 1)[0]
        if folder.casefold() != r.split:
            renamed[folder] = r.split
    return dict(sorted(renamed.items()))


def _splits_text(splits: list[str], renamed: dict[str, str], info: BuildInfo) -> str:
    names = ", ".join(f"`{s}`" for s in splits)          # names of splits.SPLIT_NAMES: nothing to escape
    if info.parameters.get("input", {}).get("split_names", "standard") != "standard":
        return f"Splits: {names}, named as the source's split folders (`--split-names as-is`)."
    moved = "; ".join(f"{markdown_cell(f)}/ is `{s}`" for f, s in renamed.items())
    return (f"Splits: {names}, named as Hugging Face expects (train, validation, test; "
            f"`--split-names standard`){': ' + moved if moved else ''}.")


def _card(splits: list[str], info: BuildInfo, skin_masks: bool, renamed: dict[str, str]) -> str:
    classes = list(info.classes)
    layout, dtype = info.layout, info.mask_dtype
    values = legend_rows(classes[1:], layout, dtype)
    id2label = {value: meaning if value != "0" else classes[0] for value, meaning, _ in values}
    features = [{"name": "image", "dtype": "image"}, {"name": "mask", "dtype": "image"}]
    if skin_masks:
        features.append({"name": "skin_mask", "dtype": "image"})
    # A ClassLabel: its names are classes.txt's lines (index = class id; 0, background, is no image's class).
    class_label = {"class_label": {"names": {str(i): name for i, name in enumerate(classes)}}}
    features += [{"name": "class_id", "dtype": class_label}, {"name": "class_name", "dtype": "string"},
                 {"name": "source", "dtype": "string"}]
    meta = {
        "task_categories": ["image-segmentation"],
        "task_ids": ["semantic-segmentation"],
        "tags": ["skin", "skinseg"],
        # `datasets` picks its builder by the most common file extension of a
        # split's files: the images, masks and previews listed here make it
        # `imagefolder` (which then reads the rows of the metadata file).
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": [metadata_name(s)] + [f"{folder}/{s}/*" for folder in
                                                                                (IMAGES_DIR, MASKS_DIR, PREVIEWS_DIR)]}
                                    for s in splits],
                     "metadata_filenames": [metadata_name(s) for s in splits],
                     # The builder's own features (dataset_info's alone are not applied to a folder with
                     # metadata files: `datasets` would infer class_id as a plain int64).
                     "features": features}],
        "dataset_info": {"features": features},
        "id2label": id2label,
        "ignore_index": info.ignore_index,
        "skinseg": {"version": info.version, "layout": layout, "mask_dtype": dtype,
                    "parameters": info.parameters},
    }
    header = "".join(f"{key}: {yaml_text(value)}\n" for key, value in meta.items())
    learn = ("0 is not skin and is ignored (`ignore_index=0`): a model learns which skin class an image shows, "
             "not where skin is." if layout == "original" else
             f"0 is not skin, a class to learn; {info.ignore_index} along every mask edge is ignored "
             f"(`ignore_index={info.ignore_index}`); `skin_mask` is 0/1 (255 ignored).")
    table = "".join(f"| {value} | {markdown_cell(meaning)} |\n" for value, meaning in id2label.items())
    return (f"---\n{header}---\n{CARD_MARK}\n\n# Skin segmentation dataset\n\n"
            f"Built by skinseg {info.version} (layout `{layout}`) from a skin classification dataset: "
            "per image, `image`, `mask` (a pixel's value is its label) and the image's class.\n\n"
            "```python\nfrom datasets import load_dataset\n\n"
            "dataset = load_dataset(\"path/to/this/folder\")   # needs datasets 4.0 or later\n```\n\n"
            f"{_splits_text(splits, renamed, info)} `class_id` is a `ClassLabel` "
            "(`dataset[\"train\"].features[\"class_id\"].int2str(k)` names class `k`); `classes.txt`, "
            "`id2label.json` and `label2id.json` list the same names.\n\n"
            f"Mask values ({dtype}): {learn}\n\n| value | label |\n| --- | --- |\n{table}\n"
            "Every parameter of the build is in `build.json`; every source image's record, including the "
            "skipped and failed ones, in `manifest.jsonl`; `report.html` shows the build.\n")


def write_hub_files(dst: Path, records: list[Record], info: BuildInfo,
                    write: Callable[[Path, Iterable[str]], None]) -> tuple[list[str], list[str]]:
    """Write (with `write`, given a path and the lines) the metadata files
    and the card (unless dst/README.md is not skinseg's); remove metadata
    files of splits that are gone.  Returns warnings and the names of the
    files written."""
    splits = list(dict.fromkeys(r.split for r in records if r.status == "written"))
    written = [metadata_name(split) for split in splits]
    for split in splits:
        write(dst / metadata_name(split), metadata_lines(records, split))
    for path in dst.glob(METADATA_GLOB):
        split = metadata_split(path.name)
        if split is not None and split not in splits:
            path.unlink()
    card = dst / CARD
    if card.exists() and CARD_MARK not in card.read_text(encoding="utf-8", errors="replace"):
        return [f"{card} is not a skinseg dataset card, so it was left as it is: Hugging Face's load_dataset "
                "needs the card skinseg writes there (move that file and build again)"], written
    write(card, [_card(sorted(splits), info, any(r.skin_mask for r in records), split_folders(records, info))])
    return [], written + [CARD]
