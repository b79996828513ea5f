"""Where model files come from: an explicit path, a model folder named by an
environment variable, or a per-user cache filled by downloading the official
MediaPipe file on first use.

Only the parent process provisions models (once, before workers start), so a
download happens at most once per build and workers just open a path.  A
model's digest (part of every image's fingerprint) is remembered in the cache
folder by path, size and modification time: a re-run does not read the
model files to know they did not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .imageio import atomic_file

ENV_MODEL_DIR = "SKINSEG_MODEL_DIR"      # a folder holding model files; checked before the cache
ENV_CACHE_DIR = "SKINSEG_CACHE_DIR"      # overrides the download cache location
ENV_OFFLINE = "SKINSEG_OFFLINE"          # "1": never download
DOWNLOAD_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ModelSpec:
    key: str
    filename: str
    url: str
    what: str
    option: str = ""          # the CLI option that takes an explicit path
    kind: str = "tflite"      # "tflite": a TFLite flatbuffer; "task": a MediaPipe task bundle (zip)


FACE_SHORT_RANGE = ModelSpec(
    "face-short-range",
    "blaze_face_short_range.tflite",
    "https://storage.googleapis.com/mediapipe-models/face_detector/blaze_face_short_range/float16/latest/"
    "blaze_face_short_range.tflite",
    "MediaPipe BlazeFace short-range face detector",
    "--face-model",
)
FACE_FULL_RANGE = ModelSpec(
    "face-full-range",
    "blaze_face_full_range.tflite",
    "https://storage.googleapis.com/mediapipe-assets/face_detection_full_range_sparse.tflite",
    "MediaPipe BlazeFace full-range face detector",
    "--face-model",
)
FACE_LANDMARKER = ModelSpec(
    "face-landmarker",
    "face_landmarker.task",
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    "MediaPipe Face Landmarker (478-point face mesh)",
    "--mesh-model",
    kind="task",
)
PERSON_SEGMENTER = ModelSpec(
    "person-segmenter",
    "selfie_segmenter.tflite",
    "https://storage.googleapis.com/mediapipe-models/image_segmenter/selfie_segmenter/float16/latest/"
    "selfie_segmenter.tflite",
    "MediaPipe selfie (person) segmenter",
    "--person-model",
)


class ModelUnavailable(Exception):
    """The model could not be found or fetched; str(exc) says what to do."""


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skinseg" / "models"


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes")


TFLITE_ID = b"TFL3"          # TFLite flatbuffers carry this identifier at byte 4
ZIP_ID = b"PK\x03\x04"       # a MediaPipe .task bundle is a zip of TFLite files (after 2 padding bytes)
KIND_NAMES = {"tflite": "a TFLite model", "task": "a MediaPipe task bundle"}


def has_model_signature(head: bytes, kind: str) -> bool:
    """Whether a file's first 8 bytes look like a model of this kind (and
    not, say, a captive portal's HTML page saved under the model's name)."""
    return ZIP_ID in head[:8] if kind == "task" else head[4:8] == TFLITE_ID


def is_model_file(path: Path, kind: str = "tflite") -> bool:
    try:
        with open(path, "rb") as handle:
            return has_model_signature(handle.read(8), kind)
    except OSError:
        return False


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


DIGESTS = "digests.json"     # in cache_dir(): {"<path>|<size>|<mtime ns>": sha256} of model files checked before


def _stamp(path: Path) -> Optional[str]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def _known_digests() -> dict[str, str]:
    try:
        known = json.loads((cache_dir() / DIGESTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def model_digest(path: Path) -> str:
    """The sha256 of a model file that is_model_file accepted: remembered
    by path, size and modification time, so it is read once, not on every
    run (a cache that cannot be written only costs the reading)."""
    stamp = _stamp(path)
    known = _known_digests()
    if stamp is not None and stamp in known:
        return known[stamp]
    digest = file_digest(path)
    if stamp is not None:
        where = stamp.rsplit("|", 2)[0]
        known = {k: v for k, v in known.items() if k.rsplit("|", 2)[0] != where}   # the file's older versions
        known[stamp] = digest
        try:
            with atomic_file(cache_dir() / DIGESTS) as handle:
                handle.write(json.dumps(known, indent=1).encode("utf-8"))
        except OSError:
            pass
    return digest


def _usable(path: Path, kind: str) -> bool:
    """A file that is a model of this kind: already known by its digest (it
    was checked as it is now), or checked now by its first bytes."""
    stamp = _stamp(path)
    return stamp is not None and (stamp in _known_digests() or (path.is_file() and is_model_file(path, kind)))


def find_model(spec: ModelSpec) -> Optional[Path]:
    """The model file if it is already on disk (model folder, then cache)."""
    candidates = []
    if os.environ.get(ENV_MODEL_DIR):
        candidates.append(Path(os.environ[ENV_MODEL_DIR]) / spec.filename)
    candidates.append(cache_dir() / spec.filename)
    for candidate in candidates:
        if _usable(candidate, spec.kind):
            return candidate
    return None


def download(url: str, destination: Path, show_progress: bool, kind: str = "tflite",
             timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch url into destination atomically (temp file + rename), checking
    that it is a model file of the expected kind."""
    with atomic_file(destination) as out, urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {destination.name}",
                       file=sys.stderr, leave=False)
        head = b""
        try:
            for block in iter(lambda: response.read(1 << 16), b""):
                head = head or block[:8]
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
        if not has_model_signature(head, kind):
            raise ModelUnavailable(f"the file downloaded from {url} is not {KIND_NAMES[kind]}")


def ensure_model(spec: ModelSpec, explicit: Optional[Path] = None, show_progress: bool = False) -> Path:
    """Return a usable model file for spec, downloading it if allowed.

    Raises ModelUnavailable with a message that names every way to provide it.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise ModelUnavailable(f"model file {explicit} does not exist")
        if not _usable(explicit, spec.kind):
            raise ModelUnavailable(f"{explicit} is not {KIND_NAMES[spec.kind]} file")
        return explicit
    found = find_model(spec)
    if found is not None:
        return found
    how = (f"put {spec.filename} in the folder named by ${ENV_MODEL_DIR} or in {cache_dir()}, "
           f"or pass {spec.option or 'its path'} PATH (it is downloaded from {spec.url})")
    if offline():
        raise ModelUnavailable(f"{spec.what} not found and ${ENV_OFFLINE} is set: {how}")
    destination = cache_dir() / spec.filename
    try:
        download(spec.url, destination, show_progress, spec.kind)
    except ModelUnavailable:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelUnavailable(f"{spec.what} could not be downloaded ({reason}): {how}") from None
    return destination


@dataclass(frozen=True)
class ModelPlan:
    """An optional model that every worker opens: found (or downloaded) once,
    in the parent, before any worker starts."""

    model_path: Optional[str] = None     # None: the stage is not used
    signature: str = "none"              # identifies the model bytes, for resume fingerprints
    note: Optional[str] = None           # a warning to show once (the stage is skipped)


def plan_optional_model(spec: ModelSpec, enabled: bool, explicit: Optional[Path], without: str,
                        show_progress: bool = False) -> ModelPlan:
    """Find spec's file for an optional stage.  An explicit path that does not
    work is an error (ModelUnavailable): the user asked for it.  A missing
    default model is a note saying what the build does `without` it."""
    if not enabled:
        return ModelPlan()
    try:
        path = ensure_model(spec, explicit, show_progress=show_progress)
    except ModelUnavailable as exc:
        if explicit is not None:
            raise
        return ModelPlan(note=f"{exc}; continuing without it ({without})")
    return ModelPlan(str(path), f"{spec.key}:{model_digest(path)[:16]}")
