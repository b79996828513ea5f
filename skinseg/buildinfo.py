"""build.json: what a build says about itself, as one typed definition.

A build writes a `BuildInfo` (`to_json`) and every reader gets one back from
`read_build_info` (the report, the loader, the CLI's glance at the last
build, a re-run's checks): the keys are spelled once, here, so a renamed or
retyped key fails the readers' tests instead of silently giving a default.
A file that is not a skinseg build.json (damaged, hand-edited into another
shape, another tool's) raises `BuildInfoError`, whose message says why.

What each stage ran with (build.json's "models") is modeluse.py's
`ModelUses`: written by its `to_json`, read and validated here (a file
written before "models" existed: from its older keys, `_legacy_models`).

Imports nothing heavy: the command line reads build.json before the image
libraries load.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from .layout import BUILD_JSON
from .modeluse import BUILTIN, FALLBACK, MODEL, OFF, STAGE_NAMES, STAGES, STATUSES, ModelUse, ModelUses

TOOL = "skinseg"
LAYOUTS = ("original", "train-ready")
MASK_DTYPES = ("uint8", "uint16")


class BuildInfoError(ValueError):
    """build.json is missing, damaged or not skinseg's; str(exc) says which."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def _fail(what: str) -> BuildInfoError:
    return BuildInfoError(f"not a skinseg build.json: {what}")


def _get(data: Mapping, key: str, kind: Any, where: str = "", optional: bool = False) -> Any:
    """data[key], checked to be of `kind` (a type or a tuple of types; bool
    is never an int here)."""
    if key not in data:
        if optional:
            return None
        raise _fail(f"{where}{key!r} is missing")
    value = data[key]
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise _fail(f"{where}{key!r} is {type(value).__name__}, not {_kind_name(kind)}")
    return value


def _as_tuple(kind: Any) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: Any) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"{what} is not a list of strings")
    return tuple(value)


def _model_use(data: Any, stage: str) -> ModelUse:
    """build.json's models.<stage>, validated."""
    where = f"models.{stage}."
    if not isinstance(data, dict):
        raise _fail(f"models.{stage} is not an object")
    status = _get(data, "status", str, where)
    if status not in STATUSES:
        raise _fail(f"{where}status is {status!r}, not one of {', '.join(STATUSES)}")
    return ModelUse(status, _get(data, "used", str, where),
                    **{name: _get(data, name, str, where, optional=True)
                       for name in ("file", "sha256", "source", "path", "wanted", "reason")})


def _model_uses(data: Any) -> ModelUses:
    """build.json's "models", validated."""
    if not isinstance(data, dict):
        raise _fail("'models' is not an object")
    return ModelUses(**{stage: _model_use(data.get(stage), stage) for stage in STAGES})


def _legacy_models(data: dict, parameters: dict) -> ModelUses:
    """The models of a build.json written before "models" existed (its
    face_detector, face_mesh and person_segmenter keys named the model file
    only), so that a dataset built then is still protected from a downgrade."""
    face = parameters.get("face") if isinstance(parameters.get("face"), dict) else {}
    skin = parameters.get("skin") if isinstance(parameters.get("skin"), dict) else {}
    adaptive = face.get("enabled", True) and skin.get("method", "adaptive") == "adaptive"

    def model(key: str, enabled: bool, preferred: str, instead: str) -> ModelUse:
        part = data.get(key) if isinstance(data.get(key), dict) else {}
        name = part.get("model") if isinstance(part.get("model"), str) else None
        if not enabled:
            return ModelUse(OFF, "not used")
        if name:
            return ModelUse(MODEL if name == preferred else FALLBACK, f"MediaPipe's {STAGE_NAMES[key]}", file=name,
                            wanted=None if name == preferred else preferred,
                            reason=None if name == preferred else "recorded before skinseg kept the reason")
        return ModelUse(FALLBACK, instead, wanted=preferred, reason="recorded before skinseg kept the reason")

    detector = data.get("face_detector") if isinstance(data.get("face_detector"), dict) else {}
    if not face.get("enabled", True):
        face_use = ModelUse(OFF, "not used")
    elif detector.get("name") == "opencv" and face.get("detector") == "opencv":
        face_use = ModelUse(BUILTIN, "OpenCV's Haar cascade")
    else:
        face_use = model("face_detector", True, "blaze_face_full_range.tflite", "OpenCV's Haar cascade")
    return ModelUses(face_use,
                     model("face_mesh", adaptive and skin.get("face_mesh", True), "face_landmarker.task",
                           "the face detector's keypoints"),
                     model("person_segmenter", adaptive and skin.get("person_segmentation", True),
                           "selfie_segmenter.tflite", "no person segmentation"))


@dataclass(frozen=True)
class IgnoredFile:
    path: str
    reason: str


@dataclass(frozen=True)
class RunInfo:
    """This particular run (or, sharded, the last shard's): not part of what the dataset is."""

    started_at: str
    elapsed_seconds: float
    workers: int
    processed: int             # images worked on (segmented or re-rendered)
    segmented: int             # of those, the ones whose faces and skin were looked for
    reused: int
    shard: Optional[tuple[int, int]] = None

    def to_json(self) -> dict:
        return {"started_at": self.started_at, "elapsed_seconds": self.elapsed_seconds, "workers": self.workers,
                "processed": self.processed, "segmented": self.segmented, "reused": self.reused,
                "shard": list(self.shard) if self.shard else None}

    @classmethod
    def from_json(cls, data: Any) -> "RunInfo":
        if not isinstance(data, dict):
            raise _fail("'run' is not an object")
        shard = _get(data, "shard", list, "run.", optional=True)
        if shard is not None and (len(shard) != 2 or not all(isinstance(k, int) for k in shard)):
            raise _fail("run.shard is not [K, N]")
        return cls(_get(data, "started_at", str, "run."), _get(data, "elapsed_seconds", (int, float), "run."),
                   *(_get(data, key, int, "run.") for key in ("workers", "processed", "segmented", "reused")),
                   tuple(shard) if shard else None)


# DuplicateGroup.where, most harmful first: a photo in two splits inflates test scores.
ACROSS_SPLITS, ACROSS_CLASSES, WITHIN_CLASS = "across-splits", "across-classes", "within-class"
WHERE = (ACROSS_SPLITS, ACROSS_CLASSES, WITHIN_CLASS)
QUALITY_FLAGS = ("blurry", "dark", "overexposed")
MEASURES = ("sharpness", "detail", "luma", "luma_p99", "clipped")


@dataclass(frozen=True)
class DuplicateImage:
    source: str
    split: str
    class_name: str
    distance: int           # bits between its perceptual hash and the group's first image's
    identical: bool         # the same decoded pixels as the group's first image


@dataclass(frozen=True)
class DuplicateGroup:
    """Photos that are one photo: the same pixels (kind "exact"), or hashes
    within the near-duplicate distance of each other ("near")."""

    kind: str                             # "exact" or "near"
    where: str                            # one of WHERE
    images: tuple[DuplicateImage, ...]    # in source order

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted({i.split for i in self.images}))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted({i.class_name for i in self.images}))


@dataclass(frozen=True)
class FlaggedImage:
    source: str
    split: str
    class_name: str
    measures: Mapping[str, float]         # the image's MEASURES


@dataclass(frozen=True)
class DataChecks:
    """build.json's "data_checks": duplicates and quality flags among the
    written images, found from their records (datachecks.assess)."""

    checked: int                          # written images with measures
    unchecked: int                        # written images whose record has none (made before the checks)
    thresholds: Mapping[str, float]
    duplicates: tuple[DuplicateGroup, ...]    # ordered as WHERE, then exact first, larger first
    blurry: tuple[FlaggedImage, ...] = ()     # each: the worst first
    dark: tuple[FlaggedImage, ...] = ()
    overexposed: tuple[FlaggedImage, ...] = ()

    def groups(self, where: str) -> list[DuplicateGroup]:
        return [g for g in self.duplicates if g.where == where]

    def flagged(self, flag: str) -> tuple[FlaggedImage, ...]:
        return getattr(self, flag)

    def to_json(self) -> dict:
        def image(i: DuplicateImage) -> dict:
            return {"source": i.source, "split": i.split, "class_name": i.class_name, "distance": i.distance,
                    "identical": i.identical}

        return {"checked": self.checked, "unchecked": self.unchecked, "thresholds": dict(self.thresholds),
                "duplicates": [{"kind": g.kind, "where": g.where, "splits": list(g.splits),
                                "classes": list(g.classes), "images": [image(i) for i in g.images]}
                               for g in self.duplicates],
                **{flag: [{"source": f.source, "split": f.split, "class_name": f.class_name, **f.measures}
                          for f in self.flagged(flag)] for flag in QUALITY_FLAGS}}

    @classmethod
    def from_json(cls, data: Any) -> "DataChecks":
        def obj(value: Any, what: str) -> dict:
            if not isinstance(value, dict):
                raise _fail(f"{what} is not an object")
            return value

        def place(entry: dict, what: str) -> tuple:
            return tuple(_get(entry, key, str, f"{what}.") for key in ("source", "split", "class_name"))

        data, where = obj(data, "'data_checks'"), "data_checks."
        thresholds = _get(data, "thresholds", dict, where)
        if not all(type(v) in (int, float) for v in thresholds.values()):
            raise _fail("data_checks.thresholds holds a value that is not a number")
        groups = []
        for n, group in enumerate(_get(data, "duplicates", list, where)):
            what = f"data_checks.duplicates[{n}]"
            kind, at = _get(obj(group, what), "kind", str, f"{what}."), _get(group, "where", str, f"{what}.")
            if kind not in ("exact", "near") or at not in WHERE:
                raise _fail(f"{what} has kind {kind!r} / where {at!r}")
            images = [obj(i, f"{what}.images[{k}]") for k, i in enumerate(_get(group, "images", list, f"{what}."))]
            groups.append(DuplicateGroup(kind, at, tuple(DuplicateImage(
                *place(i, what), _get(i, "distance", int, f"{what}."), _get(i, "identical", bool, f"{what}."))
                for i in images)))
        flagged = {flag: tuple(FlaggedImage(*place(obj(e, f"{where}{flag}"), f"{where}{flag}"), {
            key: _get(e, key, (int, float), f"{where}{flag}.") for key in MEASURES})
            for e in _get(data, flag, list, where)) for flag in QUALITY_FLAGS}
        return cls(_get(data, "checked", int, where), _get(data, "unchecked", int, where), thresholds,
                   tuple(groups), **flagged)


@dataclass(frozen=True)
class BuildInfo:
    """build.json.  Everything but `counts`, `run` and `data_checks` depends
    only on the source and the parameters (a re-run compares it); those three
    are added when the build has finished."""

    version: str
    parameters: Mapping[str, Any]      # every option that affects outputs (PipelineConfig.to_dict, src, input, ...)
    models: ModelUses
    classes: tuple[str, ...]           # line N = class id N; 0 is background
    mask_dtype: str                    # one of MASK_DTYPES
    layout: str                        # one of LAYOUTS
    ignore_index: int                  # the mask value a loss must ignore
    ignored_files: tuple[IgnoredFile, ...] = ()
    warnings: tuple[str, ...] = ()
    counts: Optional[Mapping[str, Any]] = None
    run: Optional[RunInfo] = None
    data_checks: Optional[DataChecks] = None    # like counts: added when the build has finished
    tool: str = TOOL

    # The parameters readers use, by the names PipelineConfig gives them.
    @property
    def src(self) -> str:
        return self.parameters["src"]

    @property
    def face_enabled(self) -> bool:
        return self.parameters["face"]["enabled"]

    @property
    def min_skin_fraction(self) -> float:
        return self.parameters["cleanup"]["min_skin_fraction"]

    @property
    def max_pixels(self) -> int:
        return self.parameters["max_pixels"]

    @property
    def written(self) -> Optional[int]:
        """Images the build wrote, when it has finished (None before)."""
        return None if self.counts is None else self.counts["total"]["written"]

    def to_json(self) -> dict:
        out = {"tool": self.tool, "version": self.version, "parameters": self.parameters,
               "models": self.models.to_json(), "classes": list(self.classes), "mask_dtype": self.mask_dtype,
               "layout": self.layout, "ignore_index": self.ignore_index,
               "ignored_files": [{"path": i.path, "reason": i.reason} for i in self.ignored_files],
               "warnings": list(self.warnings)}
        if self.counts is not None:
            out["counts"] = self.counts
        if self.run is not None:
            out["run"] = self.run.to_json()
        if self.data_checks is not None:
            out["data_checks"] = self.data_checks.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any) -> "BuildInfo":
        """The BuildInfo a parsed build.json holds; BuildInfoError if it is not one."""
        if not isinstance(data, dict):
            raise _fail(f"it holds a JSON {type(data).__name__}, not an object")
        if data.get("tool") != TOOL:
            raise _fail(f"its tool is {data.get('tool')!r}")
        parameters = _get(data, "parameters", dict)
        for group in ("face", "skin", "cleanup", "output"):
            _get(parameters, group, dict, "parameters.")
        _get(parameters, "src", str, "parameters.")
        _get(parameters["face"], "enabled", bool, "parameters.face.")
        _get(parameters["cleanup"], "min_skin_fraction", (int, float), "parameters.cleanup.")
        _get(parameters, "max_pixels", int, "parameters.")
        layout, dtype = _get(data, "layout", str), _get(data, "mask_dtype", str)
        if layout not in LAYOUTS or dtype not in MASK_DTYPES:
            raise _fail(f"layout {layout!r} / mask_dtype {dtype!r} unknown")
        models = (_model_uses(data["models"]) if "models" in data
                  else _legacy_models(data, parameters))
        ignored = _get(data, "ignored_files", list, optional=True) or []
        if not all(isinstance(i, dict) and isinstance(i.get("path"), str) and isinstance(i.get("reason"), str)
                   for i in ignored):
            raise _fail("'ignored_files' holds an entry that is not {path, reason}")
        counts = _get(data, "counts", dict, optional=True)
        if counts is not None:
            total = counts.get("total")
            if not isinstance(total, dict) or not isinstance(total.get("written"), int):
                raise _fail("counts.total.written is missing")
        run, checks = data.get("run"), data.get("data_checks")
        return cls(_get(data, "version", str), parameters, models, _strings(data.get("classes"), "'classes'"),
                   dtype, layout, _get(data, "ignore_index", int),
                   tuple(IgnoredFile(i["path"], i["reason"]) for i in ignored),
                   _strings(data.get("warnings", []), "'warnings'"), counts,
                   None if run is None else RunInfo.from_json(run),
                   None if checks is None else DataChecks.from_json(checks))


def parse_build_info(text: str) -> BuildInfo:
    """The BuildInfo of build.json's text; BuildInfoError if it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _fail(f"it is not JSON ({exc})") from None
    return BuildInfo.from_json(data)


def read_build_info(dst: Path) -> BuildInfo:
    """dst/build.json, validated.  Raises BuildInfoError (missing=True when
    there is no such file) with a message that names the file and says why.
    Only a regular file is read (a named pipe there is not waited on)."""
    return read_build_info_file(Path(dst) / BUILD_JSON)


def read_build_info_file(path: Path) -> BuildInfo:
    """A build.json at any path (``--like``), validated as read_build_info does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BuildInfoError(f"{path} does not exist", missing=True) from None
    except OSError as exc:
        raise BuildInfoError(f"{path} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BuildInfoError(f"{path} is not a skinseg build.json: it is not a regular file")
        data = handle.read()
    try:
        return parse_build_info(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BuildInfoError(f"{path} is not a skinseg build.json: it is not UTF-8 text") from None
    except BuildInfoError as exc:
        raise BuildInfoError(f"{path} is {exc}") from None
