"""The command line's options, declared once, and its --help.

Each option of config.py's fields is declared here once (its click type,
which parses the text; its help; the section of --help it is shown in) and
given to every command that takes it: `skinseg build` takes them all,
`skinseg segment` those that decide an image's files.  The types only parse
text into values: config.py checks them (ConfigError), whether they come
from here or from Python; the range and choice types only show config's
ranges and choices in --help (`shown`), and `default` shows the library's
defaults.  `SectionedCommand` prints --help in sections (input, faces,
skin, clean-up, output, run), then examples and the environment variables.
Also every command's context settings and its logging (`setup_logging`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import click
from click.core import ParameterSource

from .checks import Check, Choice, Real, Whole
from .config import MAX_IMAGE_TIMEOUT
from .names import printable
from .options import option_check, option_default

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}     # every command's



class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (not the one at set-up)."""

    def emit(self, record: logging.LogRecord) -> None:
        # One line each, whatever names it holds (a file name with a line break).
        click.echo(f"{record.levelname.lower()}: {printable(record.getMessage())}", err=True)


def setup_logging() -> None:
    """The library's warnings, one line each on stderr (every command's)."""
    logger = logging.getLogger("skinseg")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)


# ------------------------------------------------------------------ option types


class ShownIntRange(click.IntRange):
    """An integer; --help shows the range config.py checks."""

    def convert(self, value, param, ctx):
        return click.INT.convert(value, param, ctx)


class ShownFloatRange(click.FloatRange):
    """A number; --help shows the range config.py checks."""

    def convert(self, value, param, ctx):
        return click.FLOAT.convert(value, param, ctx)


class ShownChoice(click.Choice):
    """A word; --help shows the choices config.py checks."""

    def convert(self, value, param, ctx):
        return str(value)


def shown(option: str) -> click.ParamType:
    """The click type of an option: config's range or choices, shown in --help."""
    check: Check = option_check(option)
    if isinstance(check, Choice):
        return ShownChoice(check.values)
    if isinstance(check, Whole):
        return ShownIntRange(check.low, check.high)
    if isinstance(check, Real):
        return ShownFloatRange(check.low, check.high, min_open=check.low_open)
    raise TypeError(f"{option} has no range or choices")


class ShardType(click.ParamType):
    """'K/N' -> (k, n)."""

    name = "K/N"

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            return tuple(value)
        try:
            k, n = (int(part) for part in str(value).split("/"))
        except ValueError:
            self.fail(f"{value!r} is not K/N, e.g. 2/8 for the second of eight shards", param, ctx)
        return (k, n)


class TripleType(click.ParamType):
    """'A,B,C' -> (a, b, c)."""

    name = "A,B,C"

    def __init__(self, channels: str):
        self.channels = channels

    def get_metavar(self, param, ctx=None):
        return self.channels

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            return tuple(value)
        try:
            return tuple(int(p) for p in str(value).replace(" ", "").split(","))
        except ValueError:
            self.fail(f"{value!r} is not three integers like 0,40,60 ({self.channels})", param, ctx)


class SplitRatioType(click.ParamType):
    """'train=0.8,val=0.2' -> (('train', 0.8), ('val', 0.2))."""

    name = "SPLIT=SHARE,..."

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            return tuple(value)
        pairs = []
        for part in str(value).replace(" ", "").split(","):
            name, _, share = part.partition("=")
            try:
                pairs.append((name, float(share)))
            except ValueError:
                self.fail(f"{part!r} is not SPLIT=SHARE, e.g. train=0.8", param, ctx)
        return tuple(pairs)


HSV = TripleType("H,S,V")
YCRCB = TripleType("Y,Cr,Cb")


def _fmt(t: tuple[int, int, int]) -> str:
    return ",".join(map(str, t))


def default(option: str):
    """An option's default for --help (what the library takes when it is not given)."""
    return option_default(option)


# ------------------------------------------------------------------ sections of --help

SECTIONS = ("Input", "Faces", "Skin", "Clean-up", "Output", "Run")

# Every SKINSEG_ variable the library reads (tests/test_cli_help.py checks the list against the code).
ENVIRONMENT = [
    ("SKINSEG_MODEL_DIR=DIR", "a folder holding the model files (each checked against its pinned sha256)"),
    ("SKINSEG_CACHE_DIR=DIR", "the model cache (default: $XDG_CACHE_HOME/skinseg/models, else "
                              "~/.cache/skinseg/models); the first run downloads the models there"),
    ("SKINSEG_OFFLINE=1", "never download a model (a missing one is a recorded fallback)"),
    ("SKINSEG_MODEL_MIRROR=URL", "download the models from URL/<file> instead (the pins still apply)"),
    ("SKINSEG_DEBUG_NATIVE_LOGS=1", "show MediaPipe's native log output"),
]


class SectionOption(click.Option):
    """An option shown in one section of --help."""

    def __init__(self, *args, section: str = "Run", **kwargs):
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}")
        super().__init__(*args, **kwargs)
        self.section = section


COLUMN = 30         # the widest option column of --help (click's default)


class SectionedCommand(click.Command):
    """A command whose --help lists its options by section, then examples
    (`examples`: (what it does, a command, ...)) and the environment."""

    def __init__(self, *args, examples: Sequence[tuple[str, ...]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.examples = list(examples)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records: dict[str, list[tuple[str, str]]] = {section: [] for section in SECTIONS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and not isinstance(param, click.Argument):
                records[getattr(param, "section", "Run")].append(record)
        # One column width for every section (click sizes each list on its own).
        width = min(COLUMN, max((len(term) for rows in records.values() for term, _ in rows), default=0))
        for section, rows in records.items():
            if rows:
                with formatter.section(f"{section} options"):
                    formatter.write_dl([(rows[0][0].ljust(width), rows[0][1]), *rows[1:]], col_max=COLUMN)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.examples:
            with formatter.section("Examples"):
                for what, *commands in self.examples:
                    formatter.write_text(what)
                    with formatter.indentation():
                        for command in commands:
                            formatter.write(f"{'':>{formatter.current_indent}}{command}\n")
        with formatter.section("Environment"):
            formatter.write_dl(ENVIRONMENT)


def option(section: str, *decls: str, **attrs) -> Callable:
    """A click option shown in `section` of --help."""
    return click.option(*decls, cls=SectionOption, section=section, **attrs)


def with_options(*options: Callable) -> Callable:
    """Apply option decorators in the order given (the order --help shows)."""
    def apply(function: Callable) -> Callable:
        for decorate in reversed(options):
            function = decorate(function)
        return function
    return apply


def given_options(ctx: click.Context, values: dict) -> dict:
    """The options given on the command line (not left to their default),
    by their first name ("--kernel-size"): the library decides the others."""
    return {param.opts[0]: values[param.name] for param in ctx.command.params
            if param.name in values and ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT}


# ------------------------------------------------------------------ the options, declared once

INPUT = [
    option("Input", "--src", type=click.Path(path_type=Path), default=default("--src"), show_default=True,
           help="Classification dataset: <src>/<split>/<class>/<images>."),
    option("Input", "--skip-unknown-folders", is_flag=True,
           help="A top-level folder of --src that is not a split folder is skipped (listed in build.json) "
                "instead of stopping the build."),
    option("Input", "--split-ratio", type=SplitRatioType(), default=None,
           help="For a source without split folders (<src>/<class>/<images>): divide each class's images into "
                "these splits, e.g. train=0.8,val=0.1,test=0.1 (train=1: one split)."),
    option("Input", "--split-seed", type=int, default=default("--split-seed"), show_default=True,
           help="With --split-ratio: which images go where (the same seed gives the same splits)."),
    option("Input", "--split-names", type=shown("--split-names"), default=default("--split-names"),
           show_default=True,
           help="standard: split folders become train, validation, test (val, valid, dev: validation; "
                "training: train; testing: test), as Hugging Face expects; as-is: the folder's name in "
                "lower case."),
    option("Input", "--classes", "classes_file", type=click.Path(path_type=Path, dir_okay=False),
           help="An existing classes.txt whose ids are kept (new classes are appended)."),
]
MAX_PIXELS = option("Input", "--max-pixels", type=shown("--max-pixels"), default=default("--max-pixels"),
                    show_default=True, help="Larger images are refused (recorded as failed) before decoding.")
FACES = [
    option("Faces", "--face/--no-face", "face_enabled", default=default("--face"), show_default=True,
           help="Detect faces: the crop goes around them (--crop-faces: every face or the best) and the "
                "adaptive method learns the skin's colour from them."),
    option("Faces", "--face-detector", type=shown("--face-detector"), default=default("--face-detector"),
           show_default=True, help="auto = MediaPipe when its model is available, else OpenCV's Haar cascade."),
    option("Faces", "--face-model", type=click.Path(path_type=Path), default=None,
           help="Path to a MediaPipe face detector .tflite (default: downloaded to the cache)."),
    option("Faces", "--min-face-score", type=shown("--min-face-score"), default=default("--min-face-score"),
           show_default=True, help="MediaPipe detections below this confidence are ignored."),
    option("Faces", "--face-margin", type=shown("--face-margin"), default=default("--face-margin"),
           show_default=True, help="Crop margin on each side, as a fraction of the face box size."),
    option("Faces", "--crop/--no-crop", default=default("--crop"), show_default=True,
           help="Crop outputs around the faces (--no-crop keeps detection but writes the whole image)."),
    option("Faces", "--crop-faces", type=shown("--crop-faces"), default=None,
           help="Crop around every face found, or the best one only [default: all; best with --method rules, "
                "as the original]."),
    option("Faces", "--crop-to-skin/--no-crop-to-skin", default=None,
           help="The crop also covers every skin region found (arms, hands, other people) [default: on; off "
                "with --method rules, which finds skin inside the crop]."),
    option("Faces", "--min-crop-side", type=shown("--min-crop-side"), default=default("--min-crop-side"),
           show_default=True, metavar="PIXELS",
           help="A crop is grown around its centre to at least this many pixels a side [--method rules: 0]."),
]
SKIN = [
    option("Skin", "--method", type=shown("--method"), default=default("--method"), show_default=True,
           help="Skin detection: 'adaptive' = a colour model learnt from each photo's face (colour box "
                "without a face); 'rules' = the original tool's fixed HSV AND YCrCb box, unchanged."),
    option("Skin", "--hsv-min", type=HSV, default=_fmt(default("--hsv-min")), show_default=True,
           help="Lower HSV bound (H 0-179; H min > H max wraps around red)."),
    option("Skin", "--hsv-max", type=HSV, default=_fmt(default("--hsv-max")), show_default=True,
           help="Upper HSV bound."),
    option("Skin", "--ycrcb-min", type=YCRCB, default=_fmt(default("--ycrcb-min")), show_default=True,
           help="Lower YCrCb bound."),
    option("Skin", "--ycrcb-max", type=YCRCB, default=_fmt(default("--ycrcb-max")), show_default=True,
           help="Upper YCrCb bound."),
    option("Skin", "--person-segmentation/--no-person-segmentation", default=default("--person-segmentation"),
           show_default=True,
           help="adaptive: drop skin-coloured background around people found by MediaPipe's selfie "
                "segmenter (without a face: skin regions it does not see as part of a person; without its "
                "model: a recorded fallback, not used)."),
    option("Skin", "--person-model", type=click.Path(path_type=Path), default=None,
           help="Path to a MediaPipe selfie segmenter .tflite (default: downloaded to the cache)."),
    option("Skin", "--face-mesh/--no-face-mesh", default=default("--face-mesh"), show_default=True,
           help="adaptive: outline every face with MediaPipe's 478-point face mesh (eyes, brows, lips, "
                "nostrils cut out, hair kept out; without its model: a recorded fallback, keypoints)."),
    option("Skin", "--mesh-model", type=click.Path(path_type=Path), default=None,
           help="Path to a MediaPipe face_landmarker.task (default: downloaded to the cache)."),
    option("Skin", "--fill-lesions/--no-fill-lesions", default=default("--fill-lesions"), show_default=True,
           help="adaptive: put back as skin the lesions the colour model leaves out (moles, wounds, rashes: "
                "non-skin regions surrounded by skin that do not look like the photo's background; on "
                "dermoscopy photos, the lens's field of view)."),
]
CLEANUP = [
    option("Clean-up", "--kernel-size", type=shown("--kernel-size"), default=default("--kernel-size"),
           show_default=True, help="Elliptical kernel of the open/close clean-up, pixels (0 or 1 = none)."),
    option("Clean-up", "--morph-iterations", type=shown("--morph-iterations"),
           default=default("--morph-iterations"), show_default=True,
           help="Iterations of the open and of the close."),
    option("Clean-up", "--components", type=shown("--components"), default=None,
           help="Keep the largest skin region, or all regions above --min-component-area "
                "[default: all; largest with --method rules, as the original]."),
    option("Clean-up", "--min-component-area", type=shown("--min-component-area"),
           default=default("--min-component-area"), show_default=True,
           help="With --components all: smallest region kept, as a fraction of the image."),
    option("Clean-up", "--min-skin-fraction", type=shown("--min-skin-fraction"),
           default=default("--min-skin-fraction"), show_default=True,
           help="Images with less skin than this fraction are skipped (and recorded)."),
]
RENDERING = [
    option("Output", "--layout", type=shown("--layout"), default=default("--layout"), show_default=True,
           help="original: skin-only images, 0 = not skin (ignored). train-ready: real images, 0 = not skin (a "
                "class), 255 = ignore along mask edges, plus a 0/1 skin mask per image."),
    option("Output", "--ignore-band", type=shown("--ignore-band"), default=default("--ignore-band"),
           show_default=True, metavar="PIXELS",
           help="train-ready: pixels on each side of every mask edge marked 255 (ignore)."),
    option("Output", "--background", type=shown("--background"), default=None,
           help="Non-skin pixels of the skin-only image: black, transparent (RGBA PNG) or kept "
                "[default: black; the train-ready layout keeps them]."),
    option("Output", "--image-format", type=shown("--image-format"), default=default("--image-format"),
           show_default=True, help="Format of the skin-only image (masks are always PNG)."),
]
# What decides an image's files: a build's and `skinseg segment`'s.
PIPELINE = [MAX_PIXELS, *FACES, *SKIN, *CLEANUP, *RENDERING]

DST = option("Output", "--dst", type=click.Path(path_type=Path), default=default("--dst"), show_default=True,
             help="Where the segmentation dataset is written.")
RUN = [
    option("Run", "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
           help="Read options from this TOML file (keys: option names without '--', e.g. kernel-size = 3); "
                "options given on the command line win."),
    option("Run", "--like", type=click.Path(path_type=Path), default=None,
           help="Repeat the options of the build that wrote this build.json (or folder): source, classes, "
                "every option that decides the images; not --dst, --sample, --workers. Options given win."),
    option("Run", "--workers", type=shown("--workers"), default=None,
           help="Worker processes [default: all cores; at most the cores available]."),
    option("Run", "--image-timeout", type=shown("--image-timeout"), default=default("--image-timeout"),
           show_default=True, metavar="SECONDS",
           help=f"An image still being processed after this long is failed and its worker stopped "
                f"(at most {MAX_IMAGE_TIMEOUT:g}: a day)."),
    option("Run", "--retry-failed", is_flag=True,
           help="Process again images that failed in an earlier run although nothing changed since."),
    option("Run", "--shard", type=ShardType(), default=None,
           help="Do only part K of N of the work (N machines, one shared --dst); the last to finish writes "
                "manifest.jsonl and build.json."),
    option("Run", "--sample", type=shown("--sample"), default=None,
           help="Only N images per class in each split (a fixed choice): a quick look before the full build."),
    option("Run", "--overwrite", is_flag=True, help="Rebuild every image; allow a non-empty dst that is not a build."),
    option("Run", "--allow-fallback", is_flag=True,
           help="Build even where a missing model makes a stage fall back although the last build in --dst "
                "used it (its outputs are replaced by worse ones), or in a shard (see README, Models)."),
    option("Run", "--progress-interval", type=shown("--progress-interval"), default=default("--progress-interval"),
           show_default=True, metavar="SECONDS",
           help="When stderr is not a terminal (a log file): a progress line this often, instead of the bar."),
    option("Run", "-q", "--quiet", is_flag=True, help="No progress and no summary; warnings and errors only."),
]
