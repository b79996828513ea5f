"""A missing model never silently makes a worse dataset.

A stage whose model cannot be had falls back (OpenCV's Haar cascade for the
face detector, the detector's keypoints for the face mesh, no person
segmentation): the plans record it (`modeluse.ModelUse`) and every build
says so in build.json, report.html and its summary.  What this module adds
is the refusal, decided before anything is written:

- a build that would replace the outputs of a finished build made with a
  model by outputs made without it (the same destination, a machine that
  lacks the model) stops, naming the missing file and where to put it;
- a shard that would fall back stops too, finished build or not: the shards
  of one build run on many machines, and one without the models would make
  outputs the others cannot be merged with.

`--allow-fallback` (BuildConfig.allow_fallback) lets either go ahead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .buildinfo import BuildInfo, BuildInfoError, read_build_info
from .layout import STATE_DIR
from .models import STAGE_SPECS, how_to_get
from .modeluse import STAGE_NAMES, ModelUse, ModelUses
from .names import Lines

log = logging.getLogger("skinseg")


def previous_build(dst: Path) -> Optional[BuildInfo]:
    """The last finished build's build.json in dst, or None.  A damaged one in
    a destination skinseg built (its state folder is there) is said once: it
    is not trusted, and the build writes it again."""
    try:
        return read_build_info(dst)
    except BuildInfoError as exc:
        if not exc.missing and (dst / STATE_DIR).is_dir():
            log.warning("%s; it is not used to decide what to keep, and this build writes it again", exc)
        return None


def _stage_lines(stages: list[tuple[str, ModelUse, str]]) -> list[str]:
    """Per stage: what happened, then every way to provide its model."""
    lines = []
    for stage, _, text in stages:
        lines += [f"  - {STAGE_NAMES[stage]}: {text}", f"    to use the model: {how_to_get(STAGE_SPECS[stage])}"]
    return lines


def refusal(dst: Path, previous: Optional[BuildInfo], now: ModelUses,
            shard: Optional[tuple[int, int]]) -> Optional[Lines]:
    """Why a build that would run with `now` must not start (None: it may):
    a stage that falls back where the previous finished build in dst used a
    model (it wrote images), or any fallback in a shard.  One line per
    stage and way to provide its model (`names.Lines`)."""
    if shard is not None and now.fallbacks():
        k, n = shard
        return Lines([f"shard {k}/{n} would run without models this machine does not have:",
                      *_stage_lines([(stage, use, f"{use.used} instead of {use.wanted}: {use.reason}")
                                     for stage, use in now.fallbacks()]),
                      "Every shard of a build must run with the same models (their outputs are merged): provide "
                      "them on every machine, or pass --allow-fallback to every shard to build without them. "
                      "Nothing was written."])
    if previous is None or previous.written == 0:
        return None
    worse = []
    for stage, use in now.fallbacks():
        before = getattr(previous.models, stage)
        if before.rank is not None and use.rank is not None and use.rank < before.rank:
            worse.append((stage, use, f"{dst} was built with {before.describe()}; here it would run with "
                                      f"{use.used} instead, because {use.reason}"))
    if not worse:
        return None
    return Lines(["this build would replace a dataset made with models by one made without them, so it stopped "
                  "before writing anything:", *_stage_lines(worse),
                  "(`skinseg models where` shows where models are looked for.) Or pass --allow-fallback to rebuild "
                  "without them (build.json, report.html and the summary then say so)."])
