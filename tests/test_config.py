"""config.py decides: the command line and the Python API accept and refuse
the same values, with the same words, and build the same dataset from the
same choices (issue 20, rows 1-6)."""

import json
import math

import pytest

import skinseg
from conftest import make_dataset, read_manifest, run_cli, skin_image
from skinseg.config import (
    BuildConfig,
    CleanupParams,
    ConfigError,
    FaceParams,
    OutputParams,
    PipelineConfig,
    SkinParams,
)
from skinseg.options import option_fields
from skinseg.splits import InputParams

# (command-line options, the same value through the API, the field named, words of the message).
# Every validation of the command line has its twin through the API here.
REFUSED = [
    (["--kernel-size", "-3"], lambda: CleanupParams(kernel_size=-3), "CleanupParams.kernel_size",
     "-3 is not a whole number from 0 to 101"),
    (["--kernel-size", "102"], lambda: CleanupParams(kernel_size=102), "CleanupParams.kernel_size", "0 to 101"),
    (["--morph-iterations", "1000000"], lambda: CleanupParams(iterations=10**6), "CleanupParams.iterations",
     "1000000 is not a whole number from 0 to 20"),
    (["--components", "some"], lambda: CleanupParams(keep="some"), "CleanupParams.keep", "largest, all"),
    (["--min-component-area", "-inf"], lambda: CleanupParams(min_component_area=-math.inf),
     "CleanupParams.min_component_area", "-inf is not a finite number from 0 to 1"),
    (["--min-skin-fraction", "nan"], lambda: CleanupParams(min_skin_fraction=math.nan),
     "CleanupParams.min_skin_fraction", "nan is not a finite number from 0 to 1"),
    (["--min-face-score", "inf"], lambda: FaceParams(min_score=math.inf), "FaceParams.min_score",
     "inf is not a finite number from 0 to 1"),
    (["--face-margin", "-1"], lambda: FaceParams(margin=-1), "FaceParams.margin", "from 0 to 5"),
    (["--face-detector", "dlib"], lambda: FaceParams(detector="dlib"), "FaceParams.detector",
     "'dlib' is not one of auto, mediapipe, opencv"),
    (["--crop-faces", "most"], lambda: FaceParams(crop_faces="most"), "FaceParams.crop_faces", "all, best"),
    (["--min-crop-side", "-1"], lambda: FaceParams(min_crop_side=-1), "FaceParams.min_crop_side",
     "-1 is not a whole number of at least 0"),
    (["--method", "magic"], lambda: SkinParams(method="magic"), "SkinParams.method", "adaptive, rules"),
    (["--hsv-min", "200,0,0"], lambda: SkinParams(hsv_min=(200, 0, 0)), "SkinParams.hsv_min",
     "H=200 is outside 0..179"),
    (["--hsv-max", "180,255,255"], lambda: SkinParams(hsv_max=(180, 255, 255)), "SkinParams.hsv_max",
     "H=180 is outside 0..179"),
    (["--ycrcb-max", "1,2"], lambda: SkinParams(ycrcb_max=(1, 2)), "SkinParams.ycrcb_max",
     "1,2 has 2 values; give three"),
    # Row 3: a minimum above its maximum took every image as skin-free.
    (["--ycrcb-min", "0,200,0"], lambda: SkinParams(ycrcb_min=(0, 200, 0)), "SkinParams.ycrcb_min",
     "0,200,0 is above --ycrcb-max 255,180,135 in channel 2 (Cr 200 > 180)"),
    (["--hsv-max", "25,30,255", "--hsv-min", "0,40,60"], lambda: SkinParams(hsv_max=(25, 30, 255)),
     "SkinParams.hsv_min", "in channel 2 (S 40 > 30)"),
    (["--layout", "bogus"], lambda: OutputParams(layout="bogus"), "OutputParams.layout",
     "'bogus' is not one of original, train-ready"),
    (["--image-format", "gif"], lambda: OutputParams(image_format="gif"), "OutputParams.image_format", "jpg, png"),
    (["--ignore-band", "101"], lambda: OutputParams(ignore_band=101), "OutputParams.ignore_band", "0 to 100"),
    (["--background", "gray"], lambda: OutputParams(background="gray"), "OutputParams.background",
     "black, transparent, original"),
    # Row 5: the train-ready layout writes the real image.
    (["--layout", "train-ready", "--background", "black"],
     lambda: OutputParams(layout="train-ready", background="black"), "OutputParams.background",
     "the train-ready layout writes the real image"),
    (["--max-pixels", "0"], lambda: PipelineConfig(max_pixels=0), "PipelineConfig.max_pixels",
     "0 is not a whole number of at least 1"),
    # Row 2: split ratios the discovery could not use (a KeyError, or images/foo/).
    (["--split-ratio", "train=0.5"], lambda: InputParams(split_ratio=(("train", 0.5),)), "InputParams.split_ratio",
     "the shares add up to 0.5, not 1"),
    (["--split-ratio", "foo=1"], lambda: InputParams(split_ratio=(("foo", 1.0),)), "InputParams.split_ratio",
     "'foo' is not a split name"),
    (["--split-ratio", "train=0.5,train=0.5"], lambda: InputParams(split_ratio=(("train", 0.5), ("train", 0.5))),
     "InputParams.split_ratio", "train is given twice"),
    (["--split-ratio", "train=0,test=1"], lambda: InputParams(split_ratio=(("train", 0), ("test", 1))),
     "InputParams.split_ratio", "the share of train must be above 0 and at most 1"),
    # Issue 21: the split names, and two names of --split-ratio that the standard names make one split.
    (["--split-names", "raw"], lambda: InputParams(split_names="raw"), "InputParams.split_names",
     "'raw' is not one of standard, as-is"),
    (["--split-ratio", "train=0.5,val=0.25,valid=0.25"],
     lambda: InputParams(split_ratio=(("train", 0.5), ("val", 0.25), ("valid", 0.25))), "InputParams.split_ratio",
     "val and valid are both the split validation (--split-names standard)"),
    (["--progress-interval", "0"], lambda: BuildConfig("s", "d", progress_interval=0), "BuildConfig.progress_interval",
     "0 is not a finite number of seconds above 0 and at most 3600"),
    (["--workers", "0"], lambda: BuildConfig("s", "d", workers=0), "BuildConfig.workers",
     "0 is not a whole number of at least 1"),
    (["--sample", "-1"], lambda: BuildConfig("s", "d", sample=-1), "BuildConfig.sample",
     "-1 is not a whole number of at least 1"),
    (["--shard", "3/2"], lambda: BuildConfig("s", "d", shard=(3, 2)), "BuildConfig.shard",
     "3/2: K must be between 1 and N"),
    (["--image-timeout", "-1"], lambda: BuildConfig("s", "d", image_timeout=-1), "BuildConfig.image_timeout",
     "-1 is not a finite number of seconds above 0 and at most 86400"),
]


@pytest.fixture(scope="module")
def one_image(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("src"), {"train/A/1.png": skin_image()})


@pytest.mark.parametrize("args, api, field, words", REFUSED, ids=[" ".join(r[0]) for r in REFUSED])
def test_the_cli_and_the_api_refuse_the_same_values_with_the_same_words(one_image, tmp_path, args, api, field,
                                                                         words):
    with pytest.raises(ConfigError) as refused:
        api()
    error = refused.value
    assert isinstance(error, ValueError) and error.field == field and words in error.problem
    assert error.option == args[-2] and str(error).startswith(f"{field} ({error.option}): ")
    result = run_cli("--src", one_image, "--dst", tmp_path / "dst", *args, expect=2)
    # The message the API raises is the message the command line shows, under the option's name.
    assert f"Invalid value for '{error.option}': {error.problem}" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "dst").exists()


def test_every_checked_option_has_a_twin_above():
    """An option whose values config checks (a range, choices, a format)
    cannot be added without its two tests."""
    tested = {args[-2] for args, *_ in REFUSED}
    from skinseg.checks import Flag, Optional_, PathValue, Whole

    def checked(part, name):
        """Whether a value the command line parses can be refused."""
        check = next(f.metadata["check"] for f in part.__dataclass_fields__.values() if f.name == name)
        check = check.inner if isinstance(check, Optional_) else check
        return not isinstance(check, (Flag, PathValue)) and check != Whole()

    assert {option for option, (part, name) in option_fields().items() if checked(part, name)} - tested == set()


# ------------------------------------------------------------------ values that are taken

def test_the_api_takes_what_the_command_line_gives_it_in_other_types(tmp_path):
    """Row 4: strings for paths ended in AttributeError; lists and numpy
    numbers are what a script has at hand."""
    np = pytest.importorskip("numpy")
    config = BuildConfig(str(tmp_path / "src"), str(tmp_path / "dst"), classes_file=str(tmp_path / "c.txt"),
                         shard=[1, 2], pipeline=PipelineConfig(
                             skin=SkinParams(hsv_min=[0, np.int64(40), 60]),
                             cleanup=CleanupParams(kernel_size=np.int32(3), min_skin_fraction=np.float32(0.25)),
                             face=FaceParams(min_score=1, model_path=tmp_path / "m.tflite")),
                         input=InputParams(split_ratio=[["TRAIN", 1]]))
    assert config.src == tmp_path / "src" and config.classes_file == tmp_path / "c.txt" and config.shard == (1, 2)
    pipeline = config.pipeline
    assert pipeline.skin.hsv_min == (0, 40, 60) and type(pipeline.cleanup.kernel_size) is int
    assert type(pipeline.cleanup.min_skin_fraction) is float and pipeline.face.min_score == 1.0
    assert type(pipeline.face.min_score) is float and pipeline.face.model_path == str(tmp_path / "m.tflite")
    assert config.input.split_ratio == (("train", 1.0),)
    json.dumps(pipeline.to_dict())          # what build.json holds: numpy numbers would not serialise
    with pytest.raises(ConfigError, match="BuildConfig.src .*not a path"):
        BuildConfig(b"src", "dst")
    with pytest.raises(ConfigError, match="BuildConfig.image_timeout .*'120'"):
        BuildConfig("src", "dst", image_timeout="120")
    with pytest.raises(ConfigError, match="FaceParams.enabled .*'no' is not True or False"):
        FaceParams(enabled="no")


def test_a_build_from_python_with_string_paths(tmp_path, no_models):
    """Row 4: the README promises BuildError for a bad --src, not AttributeError."""
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image()})
    result = skinseg.build_dataset(BuildConfig(str(src), str(tmp_path / "dst"), progress=False))
    assert result.counts()["written"] == 1
    with pytest.raises(skinseg.BuildError, match="not an existing folder"):
        skinseg.build_dataset(BuildConfig(str(tmp_path / "nope"), str(tmp_path / "d"), progress=False))


# ------------------------------------------------------------------ presets and one default for each

def test_the_rules_presets_live_with_the_method():
    """Row 1: SkinParams(method="rules") through the API ran the adaptive
    crop and clean-up (4 fields differ, another fingerprint)."""
    rules = PipelineConfig(skin=SkinParams(method="rules"))
    assert (rules.face.crop_faces, rules.face.crop_to_skin, rules.face.min_crop_side, rules.cleanup.keep) == \
        ("best", False, 0, "largest")
    adaptive = PipelineConfig()
    assert (adaptive.face.crop_faces, adaptive.face.crop_to_skin, adaptive.face.min_crop_side,
            adaptive.cleanup.keep) == ("all", True, 160, "all")
    mixed = PipelineConfig(face=FaceParams(crop_faces="all", min_crop_side=96), skin=SkinParams(method="rules"),
                           cleanup=CleanupParams(keep="all"))
    assert (mixed.face.crop_faces, mixed.face.crop_to_skin, mixed.face.min_crop_side, mixed.cleanup.keep) == \
        ("all", False, 96, "all")          # what is given is kept; only what is not takes the preset


def _parameters(dst):
    parameters = json.loads((dst / "build.json").read_text())["parameters"]
    return {key: value for key, value in parameters.items() if key != "src"}


def _fingerprints(dst):
    return [(r["source"], r["segmentation"], r["rendering"]) for r in read_manifest(dst)]


@pytest.mark.parametrize("args, pipeline", [
    (["--method", "rules"], PipelineConfig(skin=SkinParams(method="rules"))),
    (["--method", "rules", "--crop-faces", "all", "--min-crop-side", "50"],
     PipelineConfig(face=FaceParams(crop_faces="all", min_crop_side=50), skin=SkinParams(method="rules"))),
    # Row 5: the API recorded "jpg" for the PNG it wrote.
    (["--background", "transparent"], PipelineConfig(output=OutputParams(background="transparent"))),
    (["--min-face-score", "1"], PipelineConfig(face=FaceParams(min_score=1))),
])
def test_the_cli_and_the_api_build_the_same_dataset(tmp_path, no_models, args, pipeline):
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "train/B/2.jpg": skin_image(120, 90)})
    run_cli("--src", src, "--dst", tmp_path / "cli", "--quiet", *args)
    skinseg.build_dataset(BuildConfig(src, tmp_path / "api", pipeline=pipeline, progress=False))
    assert _parameters(tmp_path / "api") == _parameters(tmp_path / "cli")
    assert _fingerprints(tmp_path / "api") == _fingerprints(tmp_path / "cli")
    written = {r["image"] for r in read_manifest(tmp_path / "api")}
    extension = "." + _parameters(tmp_path / "api")["output"]["image_format"]
    assert all(image.endswith(extension) for image in written)
    assert all((tmp_path / "api" / image).is_file() for image in written)


def test_one_default_for_the_workers(tmp_path, no_models):
    """Row 6: the CLI used every core, BuildConfig one worker."""
    from skinseg.forkserver import available_cpus

    assert BuildConfig("src", "dst").workers is None          # all the CPUs this process may use
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image(seed_offset=i) for i in range(3)})
    run_cli("--src", src, "--dst", tmp_path / "cli", "--quiet", "--no-face")
    skinseg.build_dataset(BuildConfig(src, tmp_path / "api", pipeline=PipelineConfig(face=FaceParams(enabled=False)),
                                      progress=False))
    expected = min(available_cpus(), 3)
    for dst in ("cli", "api"):
        assert json.loads((tmp_path / dst / "build.json").read_text())["run"]["workers"] == expected
