"""Where model files come from, and that they are the right ones.

A model is an explicit path (``--face-model`` etc.), or a file found in the
folder named by ``$SKINSEG_MODEL_DIR``, then in a per-user cache filled by
downloading the official MediaPipe file on first use.  Downloads are pinned:
a versioned URL and the file's sha256, checked as it arrives and again
whenever a file from the model folder or the cache is used, so every build
runs exactly the bytes the tests run.  A file there under a model's name
that is not that model is refused (`ModelRefused`), never skipped: falling
back to a worse stage because of it would change the dataset.  An explicit
path is the user's choice: its sha256 is recorded, not checked against the pin.

Only the parent process provisions models (once, before workers start), so a
download happens at most once per build and workers just open a path.  A
model's digest (part of every image's fingerprint) is remembered in the cache
folder by path, size and modification time: a re-run does not read the
model files to know they did not change.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import stat
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from .atomic import atomic_file
from .modeluse import FALLBACK, MODEL, OFF, ModelUse

ENV_MODEL_DIR = "SKINSEG_MODEL_DIR"      # a folder holding model files; checked before the cache
ENV_CACHE_DIR = "SKINSEG_CACHE_DIR"      # overrides the download cache location
ENV_OFFLINE = "SKINSEG_OFFLINE"          # "1": a build never downloads
ENV_MIRROR = "SKINSEG_MODEL_MIRROR"      # a base URL holding the files under their names (the pins still apply)
DOWNLOAD_TIMEOUT_S = 15.0

# Where a model file came from (ModelUse.source); an explicit path is named by its option.
FROM_MODEL_DIR, FROM_CACHE, DOWNLOADED = f"${ENV_MODEL_DIR}", "cache", "downloaded"


@dataclass(frozen=True)
class ModelSpec:
    key: str
    filename: str
    url: str
    what: str
    option: str = ""          # the CLI option that takes an explicit path
    kind: str = "tflite"      # "tflite": a TFLite flatbuffer; "task": a MediaPipe task bundle (zip)
    sha256: Optional[str] = None     # the pinned file; None only for tests' own specs
    required: bool = True     # False: used only when another model is missing


# Pinned: versioned URLs and the sha256 of their files.  The mediapipe-assets
# URLs and digests are those mediapipe's own build pins
# (third_party/external_files.bzl); the landmarker is the float16/1 bundle.
# Each digest is also the file the tests run (../shared/models).
FACE_SHORT_RANGE = ModelSpec(
    "face-short-range", "blaze_face_short_range.tflite",
    "https://storage.googleapis.com/mediapipe-assets/face_detection_short_range.tflite?generation=1677044301978921",
    "MediaPipe BlazeFace short-range face detector", "--face-model",
    sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", required=False)
FACE_FULL_RANGE = ModelSpec(
    "face-full-range", "blaze_face_full_range.tflite",
    "https://storage.googleapis.com/mediapipe-assets/face_detection_full_range_sparse.tflite"
    "?generation=1674261618323821",
    "MediaPipe BlazeFace full-range face detector", "--face-model",
    sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1")
FACE_LANDMARKER = ModelSpec(
    "face-landmarker", "face_landmarker.task",
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    "MediaPipe Face Landmarker (478-point face mesh)", "--mesh-model", kind="task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff")
PERSON_SEGMENTER = ModelSpec(
    "person-segmenter", "selfie_segmenter.tflite",
    "https://storage.googleapis.com/mediapipe-assets/selfie_segmentation.tflite?generation=1683332563830600",
    "MediaPipe selfie (person) segmenter", "--person-model",
    sha256="9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c")
ALL_SPECS = (FACE_FULL_RANGE, FACE_SHORT_RANGE, FACE_LANDMARKER, PERSON_SEGMENTER)
# The model each stage wants (build.json's "models" keys).
STAGE_SPECS = {"face_detector": FACE_FULL_RANGE, "face_mesh": FACE_LANDMARKER, "person_segmenter": PERSON_SEGMENTER}


class ModelUnavailable(Exception):
    """The model could not be found or fetched; str(exc) says what to do,
    `cause` why, in a few words (what build.json records)."""

    def __init__(self, message: str, cause: Optional[str] = None):
        super().__init__(message)
        self.cause = cause or message


class ModelRefused(ModelUnavailable):
    """A file is there under the model's name (model folder or cache) but is
    not that model: a build stops rather than fall back; str(exc) says what
    was found, what was expected and how to fix it."""


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skinseg" / "models"


def model_dir() -> Optional[Path]:
    return Path(os.environ[ENV_MODEL_DIR]) if os.environ.get(ENV_MODEL_DIR) else None


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes")


def download_url(spec: ModelSpec) -> str:
    mirror = os.environ.get(ENV_MIRROR, "").strip()
    return f"{mirror.rstrip('/')}/{spec.filename}" if mirror else spec.url


def how_to_get(spec: ModelSpec) -> str:
    """Every way to provide a model, in one sentence."""
    folder = f"(now {model_dir()})" if model_dir() else "(not set)"
    return (f"put {spec.filename} in the folder named by ${ENV_MODEL_DIR} {folder} or in {cache_dir()}, "
            f"pass {spec.option or 'its path'} PATH, or run `skinseg models fetch` (on a machine with network, "
            f"then point ${ENV_MODEL_DIR} at the folder); it is downloaded from {download_url(spec)}")


TFLITE_ID = b"TFL3"          # TFLite flatbuffers carry this identifier at byte 4
ZIP_ID = b"PK\x03\x04"       # a MediaPipe .task bundle is a zip of TFLite files (after 2 padding bytes)
KIND_NAMES = {"tflite": "a TFLite model", "task": "a MediaPipe task bundle"}


def has_model_signature(head: bytes, kind: str) -> bool:
    """Whether a file's first 8 bytes look like a model of this kind (and
    not, say, a captive portal's HTML page saved under the model's name)."""
    return ZIP_ID in head[:8] if kind == "task" else head[4:8] == TFLITE_ID


def not_a_file(path: Path) -> Optional[str]:
    """Why path cannot be a model file ('does not exist', 'is a named pipe
    (FIFO), not a model file', ...), or None for a regular file.  Looks at it
    without opening it: opening a named pipe would wait for a writer."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    return f"is {kind}, not a model file"


def _open_regular(path: Path) -> BinaryIO:
    """path opened for reading, if it is a regular file (OSError otherwise),
    never waiting: a named pipe put there since it was looked at is not read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def is_model_file(path: Path, kind: str = "tflite") -> bool:
    try:
        with _open_regular(path) as handle:
            return has_model_signature(handle.read(8), kind)
    except OSError:
        return False


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# In cache_dir(): {"<path>|<size>|<mtime ns>": sha256} of the model files accepted before (never a refused one).
DIGESTS = "digests.json"


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


def _remember(path: Path, digest: str) -> None:
    """Keep path's digest (a cache that cannot be written only costs reading the file again)."""
    stamp = _stamp(path)
    if stamp is None:
        return
    where = stamp.rsplit("|", 2)[0]
    known = {k: v for k, v in _known_digests().items() if k.rsplit("|", 2)[0] != where}   # its older versions
    known[stamp] = digest
    try:
        with atomic_file(cache_dir() / DIGESTS) as handle:
            handle.write(json.dumps(known, indent=1).encode("utf-8"))
    except OSError:
        pass


def model_digest(path: Path, reread: bool = False) -> str:
    """The sha256 of a model file: the one remembered for its path, size and
    modification time when it was accepted, so that it is read once, not on
    every run; else (or `reread`) read now, not remembered (see `verify`)."""
    stamp = _stamp(path)
    known = _known_digests()
    if not reread and stamp is not None and stamp in known:
        return known[stamp]
    return file_digest(path)


@dataclass(frozen=True)
class ModelFile:
    """A model file checked to be usable: where it is and came from, and its sha256."""

    path: Path
    source: str            # the --*-model option, $SKINSEG_MODEL_DIR, cache or downloaded
    sha256: str

    def use(self, spec: ModelSpec) -> ModelUse:
        return ModelUse(MODEL, spec.what, file=self.path.name, sha256=self.sha256, source=self.source,
                        path=str(self.path))


def verify(spec: ModelSpec, path: Path, source: str, explicit: bool = False, reread: bool = False) -> ModelFile:
    """path as spec's model, found in `source`, or ModelRefused saying why
    not: not a regular file, not a model of its kind, or not the pinned file
    (ModelUnavailable for an `explicit` path, the user's own choice: its
    digest is recorded, not checked against the pin).  `reread`: hash the
    file again rather than trust the remembered digest."""
    where = f"{source} {path}" if explicit else f"{path} (in {source})"
    problem = not_a_file(path)
    if problem is not None:
        if explicit:
            raise ModelUnavailable(f"{where} {problem}")
        raise ModelRefused(f"{where} {problem}: remove it so that {spec.filename} can be fetched there again "
                           f"(`skinseg models fetch`), or pass the model with {spec.option} PATH")
    pinned = spec.sha256 is not None and not explicit
    stamp = _stamp(path)
    if not pinned and not reread and stamp is not None and stamp in _known_digests():
        return ModelFile(path, source, model_digest(path))     # checked before, as it is now
    if not pinned and not is_model_file(path, spec.kind):
        raise (ModelUnavailable if explicit else ModelRefused)(f"{where} is not {KIND_NAMES[spec.kind]} file")
    try:
        digest = model_digest(path, reread)
    except OSError as exc:
        raise ModelUnavailable(f"{where} cannot be read: {exc.strerror or exc}") from None
    if pinned and digest != spec.sha256:
        kind = "" if is_model_file(path, spec.kind) else f"; it is not even {KIND_NAMES[spec.kind]}"
        raise ModelRefused(
            f"{path} (in {source}) is not the {spec.what} skinseg pins: its sha256 is {digest}, expected "
            f"{spec.sha256} ({os.path.getsize(path)} bytes{kind}). Delete it so that it is fetched again "
            f"(`skinseg models fetch`), or pass it explicitly ({spec.option} {path}) to use it as it is")
    if _known_digests().get(stamp) != digest:
        _remember(path, digest)
    return ModelFile(path, source, digest)


def candidates(spec: ModelSpec) -> list[tuple[Path, str]]:
    """Where a build looks for spec's file, in order: (path, source)."""
    folder = model_dir()
    return ([(folder / spec.filename, FROM_MODEL_DIR)] if folder else []) + [(cache_dir() / spec.filename, FROM_CACHE)]


def locate(spec: ModelSpec) -> Optional[ModelFile]:
    """The model file if it is already on disk (model folder, then cache);
    None if neither has it; ModelRefused if the first that has a file under
    its name holds something else."""
    for path, source in candidates(spec):
        if os.path.lexists(path):
            return verify(spec, path, source)
    return None


def find_model(spec: ModelSpec) -> Optional[Path]:
    found = locate(spec)
    return found.path if found else None


def download(url: str, destination: Path, show_progress: bool, kind: str = "tflite",
             timeout: float = DOWNLOAD_TIMEOUT_S, sha256: Optional[str] = None) -> str:
    """Fetch url into destination atomically (temp file + rename), checking
    that it is a model file of the expected kind and, if given, its sha256
    (a file that fails is not kept).  Returns the file's sha256."""
    digest = hashlib.sha256()
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
                digest.update(block)
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
        if not has_model_signature(head, kind):
            raise ModelUnavailable(f"the file downloaded from {url} is not {KIND_NAMES[kind]}")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ModelUnavailable(f"the file downloaded from {url} is not the pinned one: its sha256 is "
                                   f"{digest.hexdigest()}, expected {sha256}; it was not kept")
    _remember(destination, digest.hexdigest())
    return digest.hexdigest()


def fetch_into(spec: ModelSpec, folder: Path, show_progress: bool = False) -> ModelFile:
    """Download spec's file into folder (replacing what is there), verified."""
    url = download_url(spec)
    try:
        digest = download(url, folder / spec.filename, show_progress, spec.kind, sha256=spec.sha256)
    except ModelUnavailable:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:     # URLError is an OSError
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise ModelUnavailable(f"{spec.what} could not be downloaded from {url} ({reason})") from None
    return ModelFile(folder / spec.filename, DOWNLOADED, digest)


def provide(spec: ModelSpec, explicit: Optional[Path] = None, show_progress: bool = False) -> ModelFile:
    """A usable model file for spec: the explicit path, else one found on
    disk, else downloaded into the cache if allowed.  Raises ModelRefused for
    a wrong file, ModelUnavailable (saying every way to provide it) otherwise."""
    if explicit is not None:
        return verify(spec, explicit, spec.option or "explicit path", explicit=True)
    found = locate(spec)
    if found is not None:
        return found
    places = " nor in ".join("the cache" if source == FROM_CACHE else source for _, source in candidates(spec))
    if offline():
        raise ModelUnavailable(f"{spec.what} not found and ${ENV_OFFLINE} is set: {how_to_get(spec)}",
                               f"{spec.filename} is not in {places}, and ${ENV_OFFLINE} forbids downloading it")
    try:
        return fetch_into(spec, cache_dir(), show_progress)
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc}: {how_to_get(spec)}", f"{spec.filename} is not in {places}, and {exc}") from None


def ensure_model(spec: ModelSpec, explicit: Optional[Path] = None, show_progress: bool = False) -> Path:
    """The path of a usable model file for spec (see `provide`)."""
    return provide(spec, explicit, show_progress).path


NOT_USED = ModelUse(OFF, "not used")


@dataclass(frozen=True)
class ModelPlan:
    """An optional model that every worker opens: found (or downloaded) once,
    in the parent, before any worker starts."""

    model_path: Optional[str] = None     # None: the stage is not used
    signature: str = "none"              # identifies the model bytes, for resume fingerprints
    note: Optional[str] = None           # a warning to show once (the stage is skipped)
    use: ModelUse = NOT_USED             # what build.json records


def plan_optional_model(spec: ModelSpec, enabled: bool, explicit: Optional[Path], without: str, instead: str,
                        show_progress: bool = False) -> ModelPlan:
    """Find spec's file for an optional stage.  An explicit path that does not
    work, or a wrong file where models are looked for, is an error
    (ModelUnavailable).  A missing default model is a fallback: the stage
    runs `instead`, and the note says what the build does `without` it."""
    if not enabled:
        return ModelPlan()
    try:
        found = provide(spec, explicit, show_progress=show_progress)
    except ModelRefused:
        raise
    except ModelUnavailable as exc:
        if explicit is not None:
            raise
        return ModelPlan(note=f"{exc}; continuing without it ({without})",
                         use=ModelUse(FALLBACK, instead, wanted=spec.filename, reason=exc.cause))
    return ModelPlan(str(found.path), f"{spec.key}:{found.sha256[:16]}", use=found.use(spec))
