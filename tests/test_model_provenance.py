"""Which model each stage used is recorded and shown, and a missing model
never silently replaces a dataset made with it (issue 18, part 2)."""

import json
import shutil

import pytest

from conftest import make_dataset, run_cli, skin_image, tree_digest
from skinseg import models

# The pins, as mediapipe's own build pins them (and the files in ../shared/models).
PINNED = {"blaze_face_full_range.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
          "blaze_face_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
          "face_landmarker.task": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
          "selfie_segmenter.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"}


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {"train/Acne/1.jpg": skin_image(120, 100),
                                           "train/Eczema/2.jpg": skin_image(120, 100, seed_offset=5)})


def read_build_info(dst):
    """build.json as written, for tests that read it as a user would (BuildInfo's reader is tested elsewhere)."""
    return Info(json.loads((dst / "build.json").read_text()))


class Info:
    """Attribute access to a parsed build.json: info.models.face_mesh.status."""

    def __init__(self, data):
        self._data = data

    def __getattr__(self, name):
        value = self._data[name]
        return Info(value) if isinstance(value, dict) else tuple(value) if isinstance(value, list) else value

    def fallbacks(self):
        return [(stage, Info(use)) for stage, use in self._data.items() if use["status"] == "fallback"]


def build(src, dst, *extra, expect=0):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", *extra, expect=expect)


def test_build_json_records_each_model_file_its_sha256_and_where_it_came_from(src, tmp_path, model_dir):
    build(src, tmp_path / "dst", "--quiet")
    info = read_build_info(tmp_path / "dst")
    for stage, name in (("face_detector", "blaze_face_full_range.tflite"), ("face_mesh", "face_landmarker.task"),
                        ("person_segmenter", "selfie_segmenter.tflite")):
        use = getattr(info.models, stage)
        assert (use.status, use.file, use.sha256, use.source) == ("model", name, PINNED[name], "$SKINSEG_MODEL_DIR")
        assert use.path == str(model_dir / name)
    assert info.warnings == () and info.models.fallbacks() == []

    # An explicit path is the user's choice: recorded with its own sha256, not held to the pin.
    build(src, tmp_path / "own", "--quiet", "--face-model", model_dir / "blaze_face_short_range.tflite")
    detector = read_build_info(tmp_path / "own").models.face_detector
    assert (detector.status, detector.source, detector.sha256) == ("model", "--face-model",
                                                                   PINNED["blaze_face_short_range.tflite"])


def test_a_build_without_models_says_so_in_build_json_the_summary_and_the_top_of_the_report(src, tmp_path,
                                                                                            no_models):
    dst = tmp_path / "dst"
    result = build(src, dst)
    info = read_build_info(dst)
    fallbacks = dict(info.models.fallbacks())
    assert set(fallbacks) == {"face_detector", "face_mesh", "person_segmenter"}
    assert fallbacks["face_detector"].used == "OpenCV's Haar cascade face detector"
    assert fallbacks["face_mesh"].wanted == "face_landmarker.task"
    assert all("SKINSEG_OFFLINE" in use.reason for use in fallbacks.values())
    assert len(info.warnings) == 3 and all("instead of" in w for w in info.warnings)      # was "warnings": []
    summary = [line for line in result.output.splitlines() if line.startswith("  fallback: ")]
    assert len(summary) == 3 and "face mesh: the face detector's keypoints" in "\n".join(summary)
    page = (dst / "report.html").read_text(encoding="utf-8")
    assert page.index('id="fallbacks"') < page.index("<nav>")               # the first thing after the title
    assert "3 stages ran without the model" in page and page.count('class="fallback"') == 3

    # A re-run with nothing to do still names them.
    again = build(src, dst)
    assert read_build_info(dst).run.processed == 0 and again.output.count("  fallback: ") == 3


@pytest.mark.parametrize("first, second", [((), ()), (("--sample", "1"), ()), ((), ("--sample", "1")),
                                           ((), ("--overwrite",))])
def test_a_rerun_without_the_models_stops_before_replacing_a_build_made_with_them(src, tmp_path, model_dir,
                                                                                  monkeypatch, first, second):
    dst = tmp_path / "dst"
    build(src, dst, "--quiet", *first)
    before = tree_digest(dst)
    monkeypatch.delenv(models.ENV_MODEL_DIR)                   # another machine: no models, no network
    result = build(src, dst, *second, expect=2)
    assert tree_digest(dst) == before                          # nothing written, not even build.json's run
    message = result.output
    assert "Traceback" not in message and "stopped before writing anything" in message
    for name in ("blaze_face_full_range.tflite", "face_landmarker.task", "selfie_segmenter.tflite"):
        assert f"put {name} in the folder named by $SKINSEG_MODEL_DIR" in message
    assert str(models.cache_dir()) in message and "--mesh-model PATH" in message
    assert "skinseg models fetch" in message and "--allow-fallback" in message
    # One line per stage and per way to get its model, not one line with escaped breaks.
    assert "\\n" not in message and sum(line.startswith("  - ") for line in message.splitlines()) == 3

    build(src, dst, *second, "--allow-fallback", "--quiet")     # asked for: it runs, and says so
    info = read_build_info(dst)
    assert info.models.face_mesh.status == "fallback" and len(info.warnings) == 3


def test_a_dataset_built_before_models_were_recorded_is_protected_too(src, tmp_path, model_dir, monkeypatch):
    """build.json written before its "models" key existed named the model files only."""
    dst = tmp_path / "dst"
    build(src, dst, "--quiet")
    info = json.loads((dst / "build.json").read_text())
    del info["models"]
    info["face_detector"] = {"name": "mediapipe", "model": "blaze_face_full_range.tflite", "signature": "x"}
    info["person_segmenter"] = {"model": "selfie_segmenter.tflite", "signature": "y"}
    info["face_mesh"] = {"model": "face_landmarker.task", "signature": "z"}
    (dst / "build.json").write_text(json.dumps(info))
    from skinseg.buildinfo import read_build_info as typed  # reads the old keys

    assert typed(dst).models.face_mesh.file == "face_landmarker.task"
    monkeypatch.delenv(models.ENV_MODEL_DIR)
    assert "stopped before writing anything" in build(src, dst, expect=2).output


def test_the_short_range_detector_is_a_fallback_recorded_and_refused_over_the_full_range_one(
        src, tmp_path, model_dir, monkeypatch):
    dst = tmp_path / "dst"
    build(src, dst, "--quiet")
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for name in PINNED:
        if name != "blaze_face_full_range.tflite":
            (fewer / name).symlink_to(model_dir / name)
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(fewer))
    message = build(src, dst, expect=2).output
    assert "face detector" in message and "put blaze_face_full_range.tflite in" in message
    assert "face mesh" not in message                          # the landmarker is there
    build(src, dst, "--quiet", "--allow-fallback")
    detector = read_build_info(dst).models.face_detector
    assert (detector.status, detector.file, detector.wanted) == ("fallback", "blaze_face_short_range.tflite",
                                                                 "blaze_face_full_range.tflite")
    assert detector.sha256 == PINNED["blaze_face_short_range.tflite"]


def test_a_shard_that_would_fall_back_stops_unless_allowed(src, tmp_path, no_models):
    """The shards of one build run on many machines: one without the models
    would make outputs the others cannot be merged with."""
    dst = tmp_path / "dst"
    message = build(src, dst, "--shard", "1/2", expect=2).output
    assert "shard 1/2 would run without models" in message and "face_landmarker.task" in message
    assert not dst.exists() or not any(dst.rglob("*.jpg"))
    build(src, dst, "--shard", "1/2", "--allow-fallback", "--quiet")
    build(src, dst, "--shard", "2/2", "--allow-fallback", "--quiet")
    assert len(read_build_info(dst).warnings) == 3


def test_a_first_build_and_an_upgrade_need_no_permission(src, tmp_path, model_dir, monkeypatch):
    dst = tmp_path / "dst"
    with monkeypatch.context() as env:
        env.delenv(models.ENV_MODEL_DIR)
        build(src, dst, "--quiet")                             # nothing to protect: runs, loudly
    build(src, dst, "--quiet")                                 # the models are back: everything is redone
    assert read_build_info(dst).models.fallbacks() == [] and read_build_info(dst).run.segmented == 2
    # Turning a stage off is a choice, not a fallback.
    build(src, dst, "--quiet", "--no-face-mesh", "--face-detector", "opencv")
    info = read_build_info(dst)
    assert (info.models.face_mesh.status, info.models.face_detector.status) == ("off", "builtin")


def test_models_downloaded_now_are_recorded_as_such_and_checked(src, tmp_path, model_dir, model_server,
                                                                no_models, monkeypatch):
    served, url = model_server
    for name in PINNED:
        shutil.copy(model_dir / name, served / name)
    (served / "face_landmarker.task").write_bytes((model_dir / "face_landmarker.task").read_bytes()[:-100])
    monkeypatch.setenv(models.ENV_OFFLINE, "0")
    monkeypatch.setenv(models.ENV_MIRROR, url)
    dst = tmp_path / "dst"
    build(src, dst, "--quiet")
    info = read_build_info(dst)
    assert info.models.face_detector.source == "downloaded" and info.models.person_segmenter.source == "downloaded"
    mesh = info.models.face_mesh
    assert mesh.status == "fallback" and "is not the pinned one" in mesh.reason and PINNED[mesh.wanted] in mesh.reason
    assert not (models.cache_dir() / "face_landmarker.task").exists()       # a damaged download is not kept
    build(src, dst, "--quiet")
    assert read_build_info(dst).models.face_detector.source == "cache"


def test_the_api_says_what_each_stage_runs_with(no_models):
    from skinseg import Segmenter

    with Segmenter() as segmenter:
        assert [stage for stage, _ in segmenter.models.fallbacks()] == ["face_detector", "face_mesh",
                                                                         "person_segmenter"]
