"""A source's splits: which folder names are splits, which split each is,
and `InputParams` (how the source folder is read: its split folders, or
``--split-ratio`` dividing class folders).

The folder names read as splits are in `SPLIT_NAMES` (any case,
discover.py); `dataset_split` gives the split each is, by `--split-names`.
`InputParams` is one of config.py's dataclasses (a part of `BuildConfig`),
checked as they are (checks.py).  Imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, get_args

from .checks import Choice, Flag, Optional_, SplitRatio, Whole, check_fields, checked, fail

# Folder names read as splits, in any case (discover.py), and the names
# --split-ratio takes.  By default (--split-names standard) each is the split
# Hugging Face and most training code expect; `as-is`: its name in lower case.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")
STANDARD_SPLITS = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                   "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}
SplitNaming = Literal["standard", "as-is"]
SPLIT_NAMINGS = get_args(SplitNaming)


def dataset_split(name: str, naming: SplitNaming = "standard") -> str:
    """The split a split folder's name (in lower case, one of SPLIT_NAMES) gives."""
    return STANDARD_SPLITS[name] if naming == "standard" else name


@dataclass(frozen=True)
class InputParams:
    """How the source folder is read (discover.py).

    Parameters
    ----------
    skip_unknown_folders : bool
        A top-level folder that is not a split folder is skipped (recorded)
        instead of stopping the build.
    split_ratio : sequence of (str, float), optional
        For a source of class folders without split folders: (split, share)
        pairs, split names of `SPLIT_NAMES` (any case; kept in lower case),
        shares above 0 that add up to 1.
    split_seed : int
        With split_ratio: which images go to which split.
    split_names : {'standard', 'as-is'}
        'standard': split folders (and split_ratio's names) become train,
        validation and test (`STANDARD_SPLITS`: val, valid and dev are
        validation); 'as-is': the folder's name in lower case.

    Raises
    ------
    ConfigError
        An unknown split name, a share out of range, shares not adding up to
        1, two names of split_ratio that are one split.
    """

    skip_unknown_folders: bool = checked(False, "--skip-unknown-folders", Flag())
    split_ratio: Optional[tuple[tuple[str, float], ...]] = checked(None, "--split-ratio",
                                                                   Optional_(SplitRatio(SPLIT_NAMES)))
    split_seed: int = checked(0, "--split-seed", Whole())
    split_names: SplitNaming = checked("standard", "--split-names", Choice(SPLIT_NAMINGS))

    def __post_init__(self) -> None:
        check_fields(self)
        named: dict[str, str] = {}
        for name, _ in self.split_ratio or ():
            split = dataset_split(name, self.split_names)
            if split in named:
                raise fail(self, "split_ratio", f"{named[split]} and {name} are both the split {split} "
                                                "(--split-names standard): give one, or --split-names as-is")
            named[split] = name

