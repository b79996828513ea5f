"""Every model file at once, for `skinseg models fetch|check|where`.

`fetch` downloads each pinned model (and checks its sha256) into the cache
or a folder of the user's choice: on a cluster whose nodes have no network,
fetch once on a login node and point ``$SKINSEG_MODEL_DIR`` at the folder.
`survey` looks where a build would look (or in one folder) and says, per
model, whether it is there and is the pinned file, reading every file again
(not trusting the remembered digests).  The command line only prints what
these return.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .models import (
    ALL_SPECS,
    ENV_MODEL_DIR,
    ENV_OFFLINE,
    FACE_FULL_RANGE,
    FROM_CACHE,
    ModelSpec,
    ModelUnavailable,
    cache_dir,
    candidates,
    download_url,
    fetch_into,
    model_dir,
    offline,
    verify,
)

OK, MISSING, WRONG, FETCHED, FAILED = "ok", "missing", "wrong", "fetched", "failed"


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    state: str                      # OK, MISSING, WRONG (refused by a build), FETCHED, FAILED (fetch)
    detail: str                     # a sentence: where, its sha256, or what is wrong and how to fix it
    path: Optional[Path] = None

    @property
    def ok(self) -> bool:
        """Nothing to fix: the file is there and right, or missing but only a
        fallback for another model (the short-range face detector)."""
        return self.state in (OK, FETCHED) or (self.state == MISSING and not self.spec.required)

    def line(self) -> str:
        return f"{self.state:<8} {self.spec.filename:<30} {self.detail}"


def _where_not(spec: ModelSpec, places: list[tuple[Path, str]], folder: Optional[Path]) -> str:
    looked = " nor ".join(f"in {'the cache' if source == FROM_CACHE else source} ({path.parent})"
                          for path, source in places)
    if folder is None and model_dir() is None:
        looked += f" (${ENV_MODEL_DIR} is not set)"
    if not spec.required:
        then = f"used only when {FACE_FULL_RANGE.filename} is missing"
    elif offline():
        then = f"${ENV_OFFLINE} is set, so a build runs without it (a fallback, recorded)"
    else:
        then = f"a build downloads it from {download_url(spec)}"
    return f"not {looked}: {then}"


def survey(folder: Optional[Path] = None) -> list[ModelStatus]:
    """Each model where a build would load it from (or in `folder`): there
    and the pinned file (OK), a file a build refuses (WRONG), or MISSING."""
    statuses = []
    for spec in ALL_SPECS:
        places = [(folder / spec.filename, str(folder))] if folder else candidates(spec)
        status = None
        for path, source in places:
            if not os.path.lexists(path):
                continue
            try:
                found = verify(spec, path, source, reread=True)
            except ModelUnavailable as exc:
                status = ModelStatus(spec, WRONG, str(exc), path)
            else:
                status = ModelStatus(spec, OK, f"{path} (from {source}), sha256 {found.sha256[:16]}… as pinned", path)
            break
        statuses.append(status or ModelStatus(spec, MISSING, _where_not(spec, places, folder)))
    return statuses


def fetch(folder: Optional[Path] = None, show_progress: bool = False) -> list[ModelStatus]:
    """Download every model that is not already in `folder` (default: the
    cache) as its pinned file, replacing a wrong one.  A model is fetched
    whatever ${ENV_OFFLINE} says: this is the explicit request to download."""
    target = folder or cache_dir()
    statuses = []
    for spec in ALL_SPECS:
        path = target / spec.filename
        replaced = ""
        if os.path.lexists(path):
            try:
                found = verify(spec, path, str(target), reread=True)
                statuses.append(ModelStatus(spec, OK, f"already in {target}, sha256 {found.sha256[:16]}… as pinned",
                                            path))
                continue
            except ModelUnavailable:
                replaced = " (replacing a file that was not the pinned model)"
        try:
            fetched = fetch_into(spec, target, show_progress)
        except ModelUnavailable as exc:
            statuses.append(ModelStatus(spec, FAILED, str(exc), path))
        else:
            statuses.append(ModelStatus(spec, FETCHED, f"downloaded into {target}{replaced}, sha256 "
                                                       f"{fetched.sha256[:16]}… as pinned", path))
    return statuses


def lookup_order() -> list[str]:
    """Where a build looks for a model, in order, as lines for people."""
    folder = model_dir()
    return ["A build looks for each model in this order:",
            "  1. the path given with --face-model, --mesh-model or --person-model (its sha256 is recorded, "
            "not checked)",
            f"  2. ${ENV_MODEL_DIR}: {folder if folder else '(not set)'}",
            f"  3. the cache: {cache_dir()}",
            "  4. downloaded into the cache from its pinned URL" + (f" (not now: ${ENV_OFFLINE} is set)"
                                                                   if offline() else ""),
            "A file found in 2 or 3 must have the pinned sha256, or the build stops."]
