"""Which images the report's contact sheets show, and --sample's images:
the smallest SHA-1 of their source path per class, so the choice stays put
when images are added.  The report and the build (which asks the workers
for the sheets' thumbnails while the pixels are in memory) choose with the
same function, `contact_sheet`.  Imports nothing heavy.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Iterable, Optional, Protocol, TypeVar

from .names import name_bytes

PER_CLASS = 8               # images per class on the contact sheet, with few classes
SHEET_FIGURES = 200         # images on all contact sheets together, at most
CLASSES_SHOWN = 50          # classes with a histogram, a faces row and a contact sheet, at most


class _HasSource(Protocol):
    class_name: str
    source: str


Sampled = TypeVar("Sampled", bound=_HasSource)


def sample_per_class(classes: int) -> int:
    """Images per class on the contact sheets: fewer when there are many classes."""
    return max(1, min(PER_CLASS, SHEET_FIGURES // max(1, min(classes, CLASSES_SHOWN))))


def sample_key(source: str) -> str:
    """The sampling order of sources (the contact sheets, --sample): stable
    when other images are added or removed."""
    return hashlib.sha1(name_bytes(source)).hexdigest()


def contact_sheet(items: Iterable[Sampled], class_names: list[str], spare: int = 0,
                  per_class: Optional[int] = None) -> dict[str, list[Sampled]]:
    """The images the contact sheets show: per class the report details (the
    first CLASSES_SHOWN), the first `per_class` (default: sample_per_class)
    by sample_key, in that order; `spare` more each (the build asks the
    workers for thumbnails of a few more, in case some are skipped).  items:
    anything with a class_name and a source (a build's tasks, the written
    records)."""
    shown = set(class_names[:CLASSES_SHOWN])
    count = (per_class or sample_per_class(len(class_names))) + spare
    by_class: dict[str, list[Sampled]] = defaultdict(list)
    for item in items:
        if item.class_name in shown:
            by_class[item.class_name].append(item)
    return {name: sorted(group, key=lambda item: sample_key(item.source))[:count] for name, group in by_class.items()}
