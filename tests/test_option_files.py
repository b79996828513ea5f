"""Options people repeat (issue 21): a build reads them from a TOML file
(--config) or repeats a previous build's (--like build.json); options given
on the command line win; unknown keys and bad values are usage errors
naming the key.  And --help is in sections, with examples and the
environment variables."""

import json
import re
import sys

import pytest

from conftest import REPO, make_dataset, read_manifest, run_cli, skin_image
from skinseg.cli import main
from skinseg.config import ConfigError
from skinseg.options import options_like, read_option_file

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11) and __import__("importlib").util.find_spec("tomli") is None,
                                reason="Python 3.10 reads TOML with tomli (a dependency there: pip install -e .)")


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "valid/B/2.png": skin_image(seed_offset=5)})


def parameters(dst):
    return json.loads((dst / "build.json").read_text())["parameters"]


def fingerprints(dst):
    return [(r["source"], r["split"], r["fingerprint"]) for r in read_manifest(dst)]


def test_a_config_file_gives_the_options_and_the_command_line_wins(src, tmp_path):
    config = tmp_path / "skinseg.toml"
    config.write_text(f'src = "{src}"\nworkers = 1\nface = false\nkernel-size = 3\nhsv-min = [0, 30, 60]\n'
                      'ycrcb-max = "255,175,135"\nsplit-names = "as-is"\nlayout = "train-ready"\nquiet = true\n')
    result = run_cli("--config", config, "--dst", tmp_path / "file", "--kernel-size", "7")
    assert result.output == ""                                           # quiet = true
    given = parameters(tmp_path / "file")
    assert given["face"]["enabled"] is False and given["cleanup"]["kernel_size"] == 7       # the flag wins
    assert given["skin"]["hsv_min"] == [0, 30, 60] and given["skin"]["ycrcb_max"] == [255, 175, 135]
    assert given["output"]["layout"] == "train-ready" and given["input"]["split_names"] == "as-is"
    run_cli("--src", src, "--dst", tmp_path / "flags", "--workers", "1", "--no-face", "--kernel-size", "7",
            "--hsv-min", "0,30,60", "--ycrcb-max", "255,175,135", "--split-names", "as-is", "--layout",
            "train-ready", "--quiet")
    assert parameters(tmp_path / "flags") == given
    assert fingerprints(tmp_path / "flags") == fingerprints(tmp_path / "file")


@pytest.mark.parametrize("text, words", [
    ("kernel-sise = 3\n", "'kernel-sise' is not an option (did you mean 'kernel-size'?)"),
    ("dst-folder = 'x'\n", "'dst-folder' is not an option"),
    ("kernel-size = 3\nkernel-size = 4\n", "is not TOML"),
])
def test_an_unknown_key_or_bad_toml_is_a_usage_error_naming_it(src, tmp_path, text, words):
    config = tmp_path / "skinseg.toml"
    config.write_text(text)
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--config", config, expect=2)
    assert "Invalid value for '--config'" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "dst").exists()


@pytest.mark.parametrize("text, words", [
    ("kernel-size = -3\n", "for 'kernel-size': -3 is not a whole number from 0 to 101"),
    ("hsv-min = [0, 40]\n", "for 'hsv-min': 0,40 has 2 values; give three"),
    ("hsv-min = 'a,b,c'\n", "for 'hsv-min': 'a,b,c' is not three integers"),
    ("method = 'magic'\n", "for 'method': 'magic' is not one of adaptive, rules"),
    ("split-ratio = {train = 0.5}\n", "for 'split-ratio': the shares add up to 0.5, not 1"),
])
def test_a_bad_value_in_the_file_is_a_usage_error_naming_the_key(src, tmp_path, text, words):
    config = tmp_path / "skinseg.toml"
    config.write_text(text)
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--config", config, expect=2)
    assert f"Invalid value in {config} {words}" in result.output, result.output
    assert not (tmp_path / "dst").exists()
    # The same value given on the command line is the flag's error, not the file's.
    fixed = run_cli("--src", src, "--dst", tmp_path / "dst", "--config", config, "--kernel-size", "5", "--hsv-min",
                    "0,40,60", "--method", "adaptive", "--workers", "1", "--no-face", "--quiet", expect=None)
    assert ("Invalid value in" in fixed.output) == ("split-ratio" in text)


def test_like_repeats_a_previous_build_and_the_command_line_wins(src, tmp_path):
    first = tmp_path / "first"
    run_cli("--src", src, "--dst", first, "--workers", "1", "--quiet", "--no-face", "--method", "rules",
            "--kernel-size", "3", "--layout", "train-ready", "--split-names", "as-is", "--sample", "1")
    run_cli("--like", first / "build.json", "--dst", tmp_path / "again", "--workers", "1", "--quiet")
    again = parameters(tmp_path / "again")
    assert again == {**parameters(first), "sample_per_class": None}      # --sample is not repeated
    run_cli("--like", first, "--dst", tmp_path / "adaptive", "--workers", "1", "--quiet", "--method", "adaptive")
    adaptive = parameters(tmp_path / "adaptive")
    # Another method takes its own presets (the first build's were the rules method's), the rest is repeated.
    assert adaptive["face"]["crop_faces"] == "all" and adaptive["cleanup"]["keep"] == "all"
    assert adaptive["cleanup"]["kernel_size"] == 3 and adaptive["face"]["enabled"] is False
    assert adaptive["output"]["layout"] == "train-ready" and adaptive["src"] == str(src)


def test_like_refuses_what_is_not_a_build_json(tmp_path, src):
    (tmp_path / "notes.json").write_text("[]")
    for like, words in ((tmp_path / "notes.json", "not a skinseg build.json"), (tmp_path / "none", "does not exist")):
        result = run_cli("--src", src, "--dst", tmp_path / "dst", "--like", like, expect=2)
        assert "Invalid value for '--like'" in result.output and words in result.output, result.output


def test_the_readers_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        read_option_file(tmp_path / "missing.toml", ["--kernel-size"])
    (tmp_path / "a.toml").write_text("kernel-size = 3\nsplit-ratio = {train = 1}\n")
    assert read_option_file(tmp_path / "a.toml", ["--kernel-size", "--split-ratio"]) == {
        "--kernel-size": 3, "--split-ratio": (("train", 1),)}
    with pytest.raises(ConfigError, match="does not exist"):
        options_like(tmp_path / "nothing" / "build.json")


# ------------------------------------------------------------------ --help

def help_text(*command):
    return run_cli(*command, "--help").output


def test_help_is_in_sections_with_examples_and_the_environment():
    text = help_text("build")
    headings = re.findall(r"^(\w[\w -]*):$", text, re.M)
    assert headings == ["Input options", "Faces options", "Skin options", "Clean-up options", "Output options",
                        "Run options", "Examples", "Environment"]
    sections = dict(zip(headings, re.split(r"^\w[\w -]*:$", text, flags=re.M)[1:]))
    assert "--face-margin" in sections["Faces options"] and "--kernel-size" in sections["Clean-up options"]
    assert "--dst" in sections["Output options"] and "--config" in sections["Run options"]
    assert sections["Examples"].count("skinseg build") == 3
    # --face said "crop to the best one", which --crop-faces all (the default) contradicts.
    assert "best one" not in sections["Faces options"].split("--face-detector")[0]
    segment = help_text("segment")
    assert "--out" in segment and "--kernel-size" in segment and "--dst" not in segment


def test_the_help_names_every_environment_variable_the_library_reads():
    code = "".join(p.read_text() for p in (REPO / "skinseg").glob("*.py"))
    read = set(re.findall(r"SKINSEG_[A-Z_]+", code)) - {"SKINSEG_TEST_FAULTS"}
    environment = help_text("build").split("Environment:")[1]
    assert read == set(re.findall(r"SKINSEG_[A-Z_]+", environment))
    assert main.get_command(None, "build") is not None
