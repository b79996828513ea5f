"""build.json has one typed definition, shared by its writer and every reader,
and a damaged or foreign one never ends in a traceback."""

import json

import pytest

from conftest import make_dataset, read_manifest, run_cli, skin_image
from skinseg.buildinfo import BuildInfoError, read_build_info
from skinseg.config import PipelineConfig
from skinseg.loader import SkinDataset
from skinseg.modeluse import STAGES
from skinseg.state import expected_work


@pytest.fixture
def built(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.jpg": skin_image(120, 100),
                                          "train/Eczema/2.jpg": skin_image(120, 100, seed_offset=5)})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    return src, dst


def test_what_a_build_writes_reads_back_to_the_same_json(built):
    """The writer and the readers share the keys: build.json read as a
    BuildInfo and written again is the same JSON, key for key."""
    _, dst = built
    written = json.loads((dst / "build.json").read_text())
    info = read_build_info(dst)
    assert info.to_json() == written
    assert info.classes == ("background", "Acne", "Eczema") and info.layout == "original"
    assert info.run is not None and info.run.processed == 2 and info.written == 2
    assert [stage for stage, _ in info.models.items()] == list(STAGES) == list(written["models"])
    assert all(use.status == "off" for _, use in info.models.items())      # --no-face: no model is used


@pytest.mark.parametrize("change, named", [
    (lambda info: info.pop("layout"), "'layout' is missing"),
    (lambda info: info.update(ignore_index="255"), "'ignore_index' is str, not int"),
    (lambda info: info["parameters"]["face"].pop("enabled"), "enabled"),
    (lambda info: info["models"]["face_mesh"].update(status="maybe"), "models.face_mesh.status"),
    (lambda info: info.update(tool="another tool"), "its tool is 'another tool'"),
])
def test_a_renamed_or_retyped_key_fails_loudly(built, change, named):
    _, dst = built
    info = json.loads((dst / "build.json").read_text())
    change(info)
    (dst / "build.json").write_text(json.dumps(info))
    with pytest.raises(BuildInfoError, match="not a skinseg build.json") as caught:
        read_build_info(dst)
    assert named in str(caught.value) and str(dst / "build.json") in str(caught.value)


@pytest.mark.parametrize("content", ["[]", "7", "null", '"build"', '{"tool": "skinseg", "parameters": []}',
                                     "{not json", "\udcff"])
def test_a_damaged_build_json_is_said_and_rewritten_never_a_traceback(built, content):
    """Finding L7: build.json tampered to [] (or any JSON that is not a
    build.json) stopped the re-run with an AttributeError traceback."""
    src, dst = built
    manifest = read_manifest(dst)
    (dst / "build.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    assert expected_work(dst, PipelineConfig()) is True          # the CLI's glance: "there is work"
    with pytest.raises(BuildInfoError, match="build.json is not a skinseg build.json"):
        SkinDataset(dst, "train")                                 # the loader says what is wrong
    result = run_cli("--src", src, "--dst", dst, "--workers", "1", "--no-face")
    assert "Traceback" not in result.output
    assert f"warning: {dst / 'build.json'} is not a skinseg build.json" in result.output
    assert read_build_info(dst).written == 2 and read_manifest(dst) == manifest
    assert len(SkinDataset(dst, "train")) == 2
    again = run_cli("--src", src, "--dst", dst, "--workers", "1", "--no-face")
    assert "warning" not in again.output                          # repaired: nothing more to say


def test_a_build_json_that_is_a_named_pipe_is_not_waited_on(built):
    import os

    src, dst = built
    (dst / "build.json").unlink()
    os.mkfifo(dst / "build.json")
    with pytest.raises(BuildInfoError, match="not a regular file"):
        read_build_info(dst)
