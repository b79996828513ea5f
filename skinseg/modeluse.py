"""What each stage that can use a model ran with: `ModelUse` (one stage:
which model file, its name, sha256 and where it came from, or what was used
instead and why) and `ModelUses` (every stage, build.json's "models").

The plans make them (models.py, face.py, engines.py), a build records them
in build.json and buildinfo.py reads them back (with old files' models);
`fallback.refusal` compares them.  Imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

# ModelUse.status
MODEL = "model"          # the stage ran with its model file
FALLBACK = "fallback"    # its model could not be had: `used` says what ran instead, `reason` why
BUILTIN = "builtin"      # the user chose a model that ships with a library (--face-detector opencv)
OFF = "off"              # the stage is not used with these options (--no-face-mesh, --method rules, ...)
STATUSES = (MODEL, FALLBACK, BUILTIN, OFF)

# The stages that use a model, in build.json's order, with their names for people.
STAGES = ("face_detector", "face_mesh", "person_segmenter")
STAGE_NAMES = {"face_detector": "face detector", "face_mesh": "face mesh", "person_segmenter": "person segmenter"}


@dataclass(frozen=True)
class ModelUse:
    """What one stage ran with."""

    status: str                    # one of STATUSES
    used: str                      # in words: the model, or what ran instead of it
    file: Optional[str] = None     # the model file's name, when one was used
    sha256: Optional[str] = None   # of that file
    source: Optional[str] = None   # where it came from: the --*-model option, $SKINSEG_MODEL_DIR, cache, downloaded
    path: Optional[str] = None
    wanted: Optional[str] = None   # FALLBACK: the model file that could not be had
    reason: Optional[str] = None   # FALLBACK: why (BUILTIN, OFF: the option that says so)

    @property
    def fell_back(self) -> bool:
        return self.status == FALLBACK

    @property
    def rank(self) -> Optional[int]:
        """How much model went into the outputs: 2 the stage's own model, 1 a
        fallback model file (the short-range face detector), 0 a fallback
        without a model; None for the user's own choice (builtin, off), which
        no fallback rule overrides."""
        if self.status == MODEL:
            return 2
        if self.status == FALLBACK:
            return 1 if self.file else 0
        return None

    def warning(self, stage: str) -> str:
        """One line for build.json's warnings and the summary (FALLBACK only)."""
        return f"{STAGE_NAMES[stage]}: {self.used} instead of {self.wanted} ({self.reason or 'no reason recorded'})"

    def describe(self) -> str:
        """In a few words: what ran, and from where."""
        if self.file:
            short = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
            where = f", from {self.source}" if self.source else ""
            return f"{self.used} [{self.file}{short}{where}]"
        return self.used

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ModelUses:
    """What every stage that can use a model ran with (build.json's "models")."""

    face_detector: ModelUse
    face_mesh: ModelUse
    person_segmenter: ModelUse

    def items(self) -> list[tuple[str, ModelUse]]:
        return [(stage, getattr(self, stage)) for stage in STAGES]

    def fallbacks(self) -> list[tuple[str, ModelUse]]:
        return [(stage, use) for stage, use in self.items() if use.fell_back]

    def warnings(self) -> list[str]:
        return [use.warning(stage) for stage, use in self.fallbacks()]

    def to_json(self) -> dict:
        return {stage: use.to_json() for stage, use in self.items()}
