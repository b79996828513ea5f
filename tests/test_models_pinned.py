"""Model files are pinned (versioned URL, sha256 checked on download and on
load), `skinseg models fetch|check|where` manages them, and a path that is
not a file is named for what it is (finding L15)."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import REPO, make_dataset, run_cli, skin_image
from skinseg import models
from skinseg.cli import main
from skinseg.config import PipelineConfig
from skinseg.engines import plan_models

# The pins, as mediapipe's own build pins them (and the files in ../shared/models).
PINNED = {"blaze_face_full_range.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
          "blaze_face_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
          "face_landmarker.task": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
          "selfie_segmenter.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"}


def skinseg(*args: str, expect: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_every_model_is_pinned_to_a_versioned_url_and_a_sha256():
    for spec in models.ALL_SPECS:
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec.key
        assert "latest" not in spec.url and re.search(r"\?generation=\d+$|/float16/\d+/", spec.url), spec.url


def test_the_pins_are_the_files_the_tests_run(model_dir):
    for name, sha256 in PINNED.items():
        assert models.file_digest(model_dir / name) == sha256, name


def test_a_wrong_file_where_models_are_looked_for_is_refused_and_an_explicit_one_is_recorded(tmp_path, model_dir,
                                                                                              monkeypatch):
    folder = tmp_path / "models"
    shutil.copytree(model_dir, folder)
    # A valid TFLite model under the full-range detector's name: not the pinned file.
    (folder / "blaze_face_full_range.tflite").unlink()
    shutil.copy(model_dir / "blaze_face_short_range.tflite", folder / "blaze_face_full_range.tflite")
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(folder))
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image()})
    message = run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", expect=2).output
    assert f"{folder / 'blaze_face_full_range.tflite'} (in $SKINSEG_MODEL_DIR) is not the" in message
    assert f"its sha256 is {PINNED['blaze_face_short_range.tflite']}" in message
    assert f"expected {PINNED['blaze_face_full_range.tflite']}" in message
    assert "Delete it so that it is fetched again" in message and "--face-model" in message
    assert not (tmp_path / "dst").exists()
    # The same file given explicitly is the user's choice.
    run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--quiet",
            "--face-model", folder / "blaze_face_full_range.tflite")


def test_files_found_where_models_are_looked_for_are_hashed_once(tmp_path, model_dir, monkeypatch):
    plans = plan_models(PipelineConfig())
    assert plans.uses.face_detector.sha256 == PINNED["blaze_face_full_range.tflite"]

    def no_reading(*_args):
        raise AssertionError("a model file was read again")

    monkeypatch.setattr(models, "file_digest", no_reading)
    monkeypatch.setattr(models, "is_model_file", no_reading)
    assert plan_models(PipelineConfig()) == plans


def test_models_fetch_check_and_where(tmp_path, model_dir, model_server, monkeypatch):
    served, url = model_server
    for name in PINNED:
        shutil.copy(model_dir / name, served / name)
    monkeypatch.setenv(models.ENV_MIRROR, url)
    folder = tmp_path / "fetched"
    result = skinseg("models", "fetch", "--dir", folder)
    assert result.output.count("fetched  ") == 4
    assert {p.name: models.file_digest(p) for p in folder.iterdir()} == PINNED     # nothing else left there
    assert skinseg("models", "fetch", "--dir", folder).output.count("ok       ") == 4     # nothing to do
    assert skinseg("models", "check", "--dir", folder).output.count("ok       ") == 4

    (folder / "selfie_segmenter.tflite").write_bytes(b"<html>captive portal</html>")
    message = skinseg("models", "check", "--dir", folder, expect=1).output
    assert "wrong    selfie_segmenter.tflite" in message and f"expected {PINNED['selfie_segmenter.tflite']}" in message
    assert "1 model file missing or wrong" in message
    assert "replacing a file that was not the pinned model" in skinseg("models", "fetch", "--dir", folder).output
    assert models.file_digest(folder / "selfie_segmenter.tflite") == PINNED["selfie_segmenter.tflite"]

    # A server that hands out another file: refused, nothing kept.
    (folder / "face_landmarker.task").unlink()
    (served / "face_landmarker.task").write_bytes((model_dir / "face_landmarker.task").read_bytes()[:-1])
    message = skinseg("models", "fetch", "--dir", folder, expect=1).output
    assert "failed   face_landmarker.task" in message and "is not the pinned one" in message
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(PINNED) - {"face_landmarker.task"})

    # Where a build looks, and what it finds there.
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(folder))
    lines = skinseg("models", "where").output
    assert f"$SKINSEG_MODEL_DIR: {folder}" in lines and str(models.cache_dir()) in lines
    assert f"ok       blaze_face_full_range.tflite   {folder / 'blaze_face_full_range.tflite'}" in lines
    assert "missing  face_landmarker.task" in lines and "$SKINSEG_OFFLINE is set, so a build runs without" in lines
    assert "missing  face_landmarker.task" in skinseg("models", "check", expect=1).output


def test_without_a_folder_fetch_fills_the_cache_that_builds_read(tmp_path, model_dir, model_server, monkeypatch,
                                                                no_models):
    served, url = model_server
    for name in PINNED:
        shutil.copy(model_dir / name, served / name)
    monkeypatch.setenv(models.ENV_MIRROR, url)
    skinseg("models", "fetch")                  # SKINSEG_OFFLINE stops builds, not this explicit request
    assert skinseg("models", "check").output.count("(from cache)") == 4
    assert plan_models(PipelineConfig()).uses.fallbacks() == []


@pytest.mark.parametrize("option", ["--face-model", "--mesh-model", "--person-model"])
def test_a_model_path_that_is_not_a_file_is_named_for_what_it_is(tmp_path, option):
    """Finding L15: a FIFO, /dev/zero or a folder "does not exist"; a FIFO
    must not be opened (it would wait for a writer forever)."""
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image()})
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    for path, said in ((fifo, "is a named pipe (FIFO), not a model file"), ("/dev/zero", "is a device"),
                       (tmp_path, "is a folder, not a model file"), (tmp_path / "none", "does not exist")):
        run = subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst",
                              str(tmp_path / "dst"), "--workers", "1", option, str(path)],
                             capture_output=True, text=True, timeout=300, cwd=REPO)
        assert run.returncode == 2 and f"{option} {path} {said}" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_a_fifo_where_models_are_looked_for_is_refused_without_being_opened(tmp_path, model_dir):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in PINNED:
        (folder / name).symlink_to(model_dir / name)
    (folder / "face_landmarker.task").unlink()
    os.mkfifo(folder / "face_landmarker.task")
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image()})
    run = subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst",
                          str(tmp_path / "dst"), "--workers", "1"], capture_output=True, text=True, timeout=300,
                         cwd=REPO, env={**os.environ, models.ENV_MODEL_DIR: str(folder)})
    assert run.returncode == 2 and "face_landmarker.task (in $SKINSEG_MODEL_DIR) is a named pipe" in run.stderr


def test_skinseg_is_a_group_that_still_builds_without_a_command(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "skinseg", "--help"], capture_output=True, text=True,
                               timeout=300, cwd=REPO).stdout
    assert re.search(r"^  build\s", help_text, re.M) and re.search(r"^  models\s", help_text, re.M)
    script = subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--help"], capture_output=True,
                            text=True, timeout=300, cwd=REPO).stdout
    assert script.startswith("Usage: build_dataset.py [OPTIONS]") and "--src PATH" in script
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image()})
    for args in (["--src", src, "--dst", tmp_path / "a"], ["build", "--src", src, "--dst", tmp_path / "b"]):
        subprocess.run([sys.executable, "-m", "skinseg", *map(str, args), "--no-face", "--workers", "1", "-q"],
                       check=True, timeout=300, cwd=REPO)
    assert (tmp_path / "a" / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()
