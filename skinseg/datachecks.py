"""The build's leakage and data-quality findings, from the records alone.

Every written image's record carries its measures (`Record.checks`, made by
`dataquality.measure` while the worker had the pixels), so this step reads no
image: a build, a re-run that reuses every record, a re-render and the merge
of shards all find the same duplicates and flags from the same records.
Duplicates and flags are reported, never acted on: no image is dropped.

Duplicate groups are the written images whose perceptual hashes are chained
within `dataquality.NEAR_DISTANCE` bits (`neardup.groups`: no pair-by-pair
comparison), "exact" when all have the same decoded pixels.  A group is
"across-splits" when it spans splits (the worst: the copy in the test split
inflates its score), else "across-classes" when it spans classes (one photo,
two labels), else "within-class".
"""

from __future__ import annotations

from typing import Iterable, Protocol

import numpy as np

from . import dataquality, neardup
from .buildinfo import (
    ACROSS_CLASSES,
    ACROSS_SPLITS,
    QUALITY_FLAGS,
    WHERE,
    WITHIN_CLASS,
    DataChecks,
    DuplicateGroup,
    DuplicateImage,
    FlaggedImage,
)
from .dataquality import ImageChecks


class CheckedRecord(Protocol):
    """What is read of a record (pipeline.Record has it)."""

    source: str
    split: str
    class_name: str
    status: str
    checks: object


THRESHOLDS = {"near_duplicate_bits": dataquality.NEAR_DISTANCE, "sharpness_below": dataquality.SHARPNESS_BELOW,
              "detail_below": dataquality.DETAIL_BELOW, "dark_luma_p99_below": dataquality.DARK_BELOW,
              "overexposed_clipped_above": dataquality.OVEREXPOSED_ABOVE}


def _where(images: list[DuplicateImage]) -> str:
    if len({i.split for i in images}) > 1:
        return ACROSS_SPLITS
    return ACROSS_CLASSES if len({i.class_name for i in images}) > 1 else WITHIN_CLASS


def _group(members: list[tuple[CheckedRecord, ImageChecks]]) -> DuplicateGroup:
    members = sorted(members, key=lambda m: m[0].source)
    first = members[0][1]
    images = [DuplicateImage(r.source, r.split, r.class_name, dataquality.hamming(first.phash, c.phash),
                             c.pixels == first.pixels) for r, c in members]
    kind = "exact" if all(i.identical for i in images) else "near"
    return DuplicateGroup(kind, _where(images), tuple(images))


def _badness(flag: str, c: ImageChecks) -> float:
    """Sorts the flagged images, the worst first."""
    if flag == "blurry":
        return min(c.sharpness / dataquality.SHARPNESS_BELOW, c.detail / dataquality.DETAIL_BELOW)
    return c.luma_p99 if flag == "dark" else -c.clipped


def assess(records: Iterable[CheckedRecord]) -> DataChecks:
    """Duplicate groups and quality flags among the written records.

    Parameters
    ----------
    records : iterable of records
        Each with source, split, class_name, status and checks (the dict
        `ImageChecks.to_record` gave, or None).  Only written ones count; a
        written record without usable checks is counted as unchecked.

    Returns
    -------
    DataChecks
        The same for the same records in any order: groups ordered across
        splits, across classes, within a class, then exact before near,
        larger first, then by their first source; flagged images the worst
        first, then by source.
    """
    known: list[tuple[CheckedRecord, ImageChecks]] = []
    unchecked = 0
    for record in records:
        if record.status != "written":
            continue
        checks = ImageChecks.from_record(record.checks)
        if checks is None:
            unchecked += 1
        else:
            known.append((record, checks))
    known.sort(key=lambda m: m[0].source)
    hashes = np.fromiter((c.phash for _, c in known), dtype=np.uint64, count=len(known))
    groups = [_group([known[i] for i in members])
              for members in neardup.groups(hashes, dataquality.NEAR_DISTANCE)]
    groups.sort(key=lambda g: (WHERE.index(g.where), g.kind != "exact", -len(g.images), g.images[0].source))
    flagged: dict[str, list[tuple[float, str, FlaggedImage]]] = {flag: [] for flag in QUALITY_FLAGS}
    for record, checks in known:
        for flag in checks.flags():
            measures = {"sharpness": checks.sharpness, "detail": checks.detail, "luma": checks.luma,
                        "luma_p99": checks.luma_p99, "clipped": checks.clipped}
            flagged[flag].append((_badness(flag, checks), record.source,
                                  FlaggedImage(record.source, record.split, record.class_name, measures)))
    return DataChecks(len(known), unchecked, dict(THRESHOLDS), tuple(groups),
                      **{flag: tuple(f for _, _, f in sorted(entries, key=lambda e: e[:2]))
                         for flag, entries in flagged.items()})
