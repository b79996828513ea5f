"""Shared fixtures.  Tests never download: SKINSEG_OFFLINE is forced on and
the model cache points into a temp dir.  Real MediaPipe models and real
photos come from folders named by environment variables (set by .ci/run):

- SKINSEG_MODEL_DIR: folder with blaze_face_short_range.tflite etc.
- SKINSEG_EVAL_DIR: folder with pratheepan_face/, abdomen_train/ ... (ground truth)

Tests that need them skip with the reason when they are not set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from skinseg.cli import main

# A shell starts background jobs (`pytest ... &`, nohup in a script) with
# Ctrl-C ignored, and the tool processes the tests start would inherit that:
# the tests that interrupt a build would wait on a build that cannot hear them.
# Python's own handler is not inherited across exec: the processes start as
# from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

MODEL_DIR = os.environ.get("SKINSEG_MODEL_DIR")
EVAL_DIR = os.environ.get("SKINSEG_EVAL_DIR")
REPO = Path(__file__).resolve().parent.parent

# A colour inside the original HSV AND YCrCb skin box, and one far outside.
SKIN_BGR = (120, 150, 210)
BLUE_BGR = (200, 60, 20)


@pytest.fixture(autouse=True)
def _isolated_models(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SKINSEG_OFFLINE", "1")
    monkeypatch.setenv("SKINSEG_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))


@pytest.fixture
def no_models(monkeypatch):
    """As on a machine that has never fetched a model and is offline."""
    monkeypatch.delenv("SKINSEG_MODEL_DIR", raising=False)


@pytest.fixture
def model_dir() -> Path:
    if not MODEL_DIR or not (Path(MODEL_DIR) / "blaze_face_short_range.tflite").is_file():
        pytest.skip("SKINSEG_MODEL_DIR does not name a folder with the MediaPipe models")
    return Path(MODEL_DIR)


@pytest.fixture(scope="module")
def real_engines():
    """The default pipeline's models, open once per test module (skips without them)."""
    if not MODEL_DIR or not (Path(MODEL_DIR) / "face_landmarker.task").is_file():
        pytest.skip("SKINSEG_MODEL_DIR does not name a folder with the MediaPipe models")
    from skinseg.config import PipelineConfig
    from skinseg.engines import open_engines, plan_models

    engines = open_engines(plan_models(PipelineConfig()))
    yield engines
    engines.close()


@pytest.fixture
def model_server(tmp_path):
    """(folder, base URL): an HTTP server on the loopback interface serving
    the files put in folder, standing in for the model storage (tests never
    download from the internet)."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def eval_dir() -> Path:
    if not EVAL_DIR or not (Path(EVAL_DIR) / "pratheepan_face" / "pairs.csv").is_file():
        pytest.skip("SKINSEG_EVAL_DIR does not name the folder of ground-truth photos")
    return Path(EVAL_DIR)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120.0) -> object:
    """Wait for an event (a file appears, a process starts) and return the
    condition's truthy value; fail naming the event if it has not happened
    within `timeout` seconds.  Tests wait for events, never for a number of
    polls or a fixed delay, so a busy machine only makes them slower."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; it did not happen")
        time.sleep(0.02)           # the poll interval, not a delay anything depends on


def finish(proc, timeout: float = 120.0) -> tuple[str, str]:
    """proc.communicate() within a deadline.  A process still running then
    is stuck: it is made to print every thread's Python stack (started with
    PYTHONFAULTHANDLER=1, as `tool_env` does, SIGABRT dumps them), killed,
    and the test fails with what it printed."""
    import subprocess

    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        masks = ""
        with contextlib.suppress(OSError):
            masks = "".join(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines(True)
                            if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State")))
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the process did not end within {timeout:g} s; its signal masks:\n{masks}"
                             f"its stacks:\n{err}") from None


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for running the tool as a process: this one, plus
    `extra`, and Python's fault handler on (see `finish`)."""
    return dict(os.environ, PYTHONFAULTHANDLER="1", **extra)


def journal_lines(dst: Path) -> int:
    """How many images the build at dst has journaled so far (0 before the journal exists)."""
    journal = dst / ".skinseg" / "journal.jsonl"
    try:
        return journal.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


class FixedFaces:
    """A face detector that finds the given faces on every image (tests of
    the stages after detection, without MediaPipe)."""
    name = "fixed"

    def __init__(self, faces):
        self.faces = faces

    def detect(self, bgr):
        return self.faces

    def close(self):
        pass


def noisy(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """image with a little Gaussian texture (sd 3): real skin is not flat."""
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def mask_of(image: np.ndarray, colour) -> np.ndarray:
    """0/255: the pixels within 20 of colour in every channel (a colour model's mask)."""
    return np.where(np.all(np.abs(image.astype(int) - colour) < 20, axis=2), 255, 0).astype(np.uint8)


def skin_image(width: int = 96, height: int = 80, radius_fraction: float = 0.35,
               seed_offset: int = 0) -> np.ndarray:
    """A skin-coloured disc on a blue background, slightly textured."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BLUE_BGR
    center = (width // 2 + seed_offset, height // 2)
    cv2.circle(image, center, int(min(width, height) * radius_fraction), SKIN_BGR, thickness=-1)
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix if path.suffix.lower() != ".jpeg" else ".jpg", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def make_dataset(root: Path, layout: dict[str, np.ndarray | bytes | None]) -> Path:
    """layout: relative path -> image array (encoded by extension) or raw bytes."""
    for relative, content in layout.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (bytes, bytearray)):
            path.write_bytes(content)
        elif content is None:
            path.write_bytes(b"")
        else:
            write_image(path, content)
    return root


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF block holding only the orientation tag."""
    tiff = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
            + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0))
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def tree_digest(root: Path) -> str:
    """Hash of every path, mode and file content below root."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(os.fsencode(path.relative_to(root).as_posix()))     # names need not be UTF-8
        if path.is_symlink():
            digest.update(os.fsencode(os.readlink(path)))
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_cli(*args: str, expect: int | None = 0, check_src: bool = True):
    """Run the CLI in-process; the source tree must come out unchanged
    (check_src=False for tests that change it on purpose mid-run)."""
    args = [str(a) for a in args]
    src = Path(args[args.index("--src") + 1]) if "--src" in args and check_src else None
    before = tree_digest(src) if src is not None and src.is_dir() else None
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if before is not None:
        assert tree_digest(src) == before, "the build modified its source folder"
    if expect is not None:
        assert result.exit_code == expect, f"exit {result.exit_code}\n{result.output}"
    return result


def made_build_info(classes: list[str], mask_dtype: str = "uint8", **fields):
    """A BuildInfo as a build without models would write it, for tests that
    make a dataset by hand (classes without "background")."""
    from skinseg.buildinfo import BuildInfo
    from skinseg.config import PipelineConfig
    from skinseg.modeluse import OFF, ModelUse, ModelUses

    off = ModelUse(OFF, "not used")
    return BuildInfo("0", json.loads(json.dumps({"src": "src", **PipelineConfig().to_dict()})),
                     ModelUses(off, off, off), ("background", *classes), mask_dtype, "original", 0, **fields)


def read_manifest(dst: Path) -> list[dict]:
    return [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]


def copy_eval_photos(eval_root: Path, subset: str, count: int, dst: Path) -> list[Path]:
    lines = (eval_root / subset / "pairs.csv").read_text().splitlines()[1:count + 1]
    copied = []
    for line in lines:
        image = line.split(",")[0]
        target = dst / Path(image).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(eval_root / subset / image, target)
        copied.append(target)
    return copied
