"""Command line: translate the options given into a BuildConfig, call
build(), summarise; print what `skinseg models` finds.

`skinseg` is a group of commands (`build`, `models` from cli_models.py);
without a command it builds, as it did before it had commands, and
`build_dataset.py` runs the build command itself.  Nothing here decides:
the options not given are left to the library (options.from_options: the
defaults, presets and checks of config.py, whose ConfigError becomes a
usage error naming the option), images are processed by the pipeline, and
models come from models.py and modelstore.py.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from . import __version__, _interrupt, forkserver, state
from .checks import Check, Choice, ConfigError, Real, Whole
from .cli_models import CONTEXT, models_command
from .config import MAX_IMAGE_TIMEOUT
from .names import message_text, printable
from .options import from_options, option_check, option_default
from .report_checks import summary_lines

if TYPE_CHECKING:
    from .build import BuildResult


# ------------------------------------------------------------------ option types
# They parse text into values; config.py checks the values (ConfigError),
# whether they come from here or from Python.  The range and choice types
# only show config's ranges and choices in --help.

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
        if isinstance(value, tuple):
            return value
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
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(p) for p in str(value).replace(" ", "").split(","))
        except ValueError:
            self.fail(f"{value!r} is not three integers like 0,40,60 ({self.channels})", param, ctx)


class SplitRatioType(click.ParamType):
    """'train=0.8,val=0.2' -> (('train', 0.8), ('val', 0.2))."""

    name = "SPLIT=SHARE,..."

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
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


@click.command("build", context_settings=CONTEXT, short_help="Build a segmentation dataset (the default command).")
@click.option("--src", type=click.Path(path_type=Path), default=default("--src"), show_default=True,
              help="Classification dataset: <src>/<split>/<class>/<images>.")
@click.option("--dst", type=click.Path(path_type=Path), default=default("--dst"), show_default=True,
              help="Where the segmentation dataset is written.")
@click.option("--skip-unknown-folders", is_flag=True,
              help="A top-level folder of --src that is not a split folder is skipped (listed in build.json) "
                   "instead of stopping the build.")
@click.option("--split-ratio", type=SplitRatioType(), default=None,
              help="For a source without split folders (<src>/<class>/<images>): divide each class's images into "
                   "these splits, e.g. train=0.8,val=0.1,test=0.1 (train=1: one split).")
@click.option("--split-seed", type=int, default=default("--split-seed"), show_default=True,
              help="With --split-ratio: which images go where (the same seed gives the same splits).")
@click.option("--layout", type=shown("--layout"), default=default("--layout"), show_default=True,
              help="original: skin-only images, 0 = not skin (ignored). train-ready: real images, 0 = not skin (a "
                   "class), 255 = ignore along mask edges, plus a 0/1 skin mask per image.")
@click.option("--ignore-band", type=shown("--ignore-band"), default=default("--ignore-band"), show_default=True,
              metavar="PIXELS", help="train-ready: pixels on each side of every mask edge marked 255 (ignore).")
@click.option("--classes", "classes_file", type=click.Path(path_type=Path, dir_okay=False),
              help="An existing classes.txt whose ids are kept (new classes are appended).")
@click.option("--method", type=shown("--method"), default=default("--method"), show_default=True,
              help="Skin detection: 'adaptive' = a colour model learnt from each photo's face (colour box "
                   "without a face); 'rules' = the original tool's fixed HSV AND YCrCb box, unchanged.")
@click.option("--hsv-min", type=HSV, default=_fmt(default("--hsv-min")), show_default=True,
              help="Lower HSV bound (H 0-179; H min > H max wraps around red).")
@click.option("--hsv-max", type=HSV, default=_fmt(default("--hsv-max")), show_default=True,
              help="Upper HSV bound.")
@click.option("--ycrcb-min", type=YCRCB, default=_fmt(default("--ycrcb-min")), show_default=True,
              help="Lower YCrCb bound.")
@click.option("--ycrcb-max", type=YCRCB, default=_fmt(default("--ycrcb-max")), show_default=True,
              help="Upper YCrCb bound.")
@click.option("--face/--no-face", "face_enabled", default=default("--face"), show_default=True,
              help="Detect faces (and crop to the best one).")
@click.option("--face-detector", type=shown("--face-detector"), default=default("--face-detector"),
              show_default=True, help="auto = MediaPipe when its model is available, else OpenCV's Haar cascade.")
@click.option("--face-model", type=click.Path(path_type=Path), default=None,
              help="Path to a MediaPipe face detector .tflite (default: downloaded to the cache).")
@click.option("--min-face-score", type=shown("--min-face-score"), default=default("--min-face-score"),
              show_default=True, help="MediaPipe detections below this confidence are ignored.")
@click.option("--face-margin", type=shown("--face-margin"), default=default("--face-margin"), show_default=True,
              help="Crop margin on each side, as a fraction of the face box size.")
@click.option("--crop/--no-crop", default=default("--crop"), show_default=True,
              help="Crop outputs around the faces (--no-crop keeps detection but writes the whole image).")
@click.option("--crop-faces", type=shown("--crop-faces"), default=None,
              help="Crop around every face found, or the best one only [default: all; best with --method rules, "
                   "as the original].")
@click.option("--crop-to-skin/--no-crop-to-skin", default=None,
              help="The crop also covers every skin region found (arms, hands, other people) [default: on; off "
                   "with --method rules, which finds skin inside the crop].")
@click.option("--min-crop-side", type=shown("--min-crop-side"), default=default("--min-crop-side"),
              show_default=True, metavar="PIXELS",
              help="A crop is grown around its centre to at least this many pixels a side [--method rules: 0].")
@click.option("--person-segmentation/--no-person-segmentation", default=default("--person-segmentation"),
              show_default=True,
              help="adaptive: drop skin-coloured background around people found by MediaPipe's selfie "
                   "segmenter (without a face: skin regions it does not see as part of a person; without its "
                   "model: a recorded fallback, not used).")
@click.option("--person-model", type=click.Path(path_type=Path), default=None,
              help="Path to a MediaPipe selfie segmenter .tflite (default: downloaded to the cache).")
@click.option("--face-mesh/--no-face-mesh", default=default("--face-mesh"), show_default=True,
              help="adaptive: outline every face with MediaPipe's 478-point face mesh (eyes, brows, lips, "
                   "nostrils cut out, hair kept out; without its model: a recorded fallback, keypoints).")
@click.option("--mesh-model", type=click.Path(path_type=Path), default=None,
              help="Path to a MediaPipe face_landmarker.task (default: downloaded to the cache).")
@click.option("--fill-lesions/--no-fill-lesions", default=default("--fill-lesions"), show_default=True,
              help="adaptive: put back as skin the lesions the colour model leaves out (moles, wounds, rashes: "
                   "non-skin regions surrounded by skin that do not look like the photo's background; on "
                   "dermoscopy photos, the lens's field of view).")
@click.option("--kernel-size", type=shown("--kernel-size"), default=default("--kernel-size"), show_default=True,
              help="Elliptical kernel of the open/close clean-up, pixels (0 or 1 = none).")
@click.option("--morph-iterations", type=shown("--morph-iterations"), default=default("--morph-iterations"),
              show_default=True, help="Iterations of the open and of the close.")
@click.option("--components", type=shown("--components"), default=None,
              help="Keep the largest skin region, or all regions above --min-component-area "
                   "[default: all; largest with --method rules, as the original].")
@click.option("--min-component-area", type=shown("--min-component-area"), default=default("--min-component-area"),
              show_default=True, help="With --components all: smallest region kept, as a fraction of the image.")
@click.option("--min-skin-fraction", type=shown("--min-skin-fraction"), default=default("--min-skin-fraction"),
              show_default=True, help="Images with less skin than this fraction are skipped (and recorded).")
@click.option("--background", type=shown("--background"), default=None,
              help="Non-skin pixels of the skin-only image: black, transparent (RGBA PNG) or kept "
                   "[default: black; the train-ready layout keeps them].")
@click.option("--image-format", type=shown("--image-format"), default=default("--image-format"),
              show_default=True, help="Format of the skin-only image (masks are always PNG).")
@click.option("--max-pixels", type=shown("--max-pixels"), default=default("--max-pixels"), show_default=True,
              help="Larger images are refused (recorded as failed) before decoding.")
@click.option("--workers", type=shown("--workers"), default=None,
              help="Worker processes [default: all cores; at most the cores available].")
@click.option("--image-timeout", type=shown("--image-timeout"), default=default("--image-timeout"),
              show_default=True, metavar="SECONDS",
              help=f"An image still being processed after this long is failed and its worker stopped "
                   f"(at most {MAX_IMAGE_TIMEOUT:g}: a day).")
@click.option("--retry-failed", is_flag=True,
              help="Process again images that failed in an earlier run although nothing changed since.")
@click.option("--shard", type=ShardType(), default=None,
              help="Do only part K of N of the work (N machines, one shared --dst); the last to finish writes "
                   "manifest.jsonl and build.json.")
@click.option("--sample", type=shown("--sample"), default=None,
              help="Only N images per class (a fixed choice): a quick look before the full build.")
@click.option("--overwrite", is_flag=True, help="Rebuild every image; allow a non-empty dst that is not a build.")
@click.option("--allow-fallback", is_flag=True,
              help="Build even where a missing model makes a stage fall back although the last build in --dst "
                   "used it (its outputs are replaced by worse ones), or in a shard (see README, Models).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; warnings and errors only.")
@click.version_option(__version__, prog_name="skinseg")
def build_command(quiet: bool, **options) -> None:
    """Turn a skin classification dataset into a skin segmentation dataset.

    For every image: find the face (optional) and crop to it, find the skin
    pixels, clean the mask up, and write the skin-only image, an integer mask
    (0 = not skin, k = class id) and a colour preview.
    """
    config = _config(click.get_current_context(), options, quiet)
    dst = config.dst
    _setup_logging()
    _last_signal[0] = signal.SIGINT
    previous_handler = signal.getsignal(signal.SIGTERM)
    try:
        _interrupt.hand_over()          # Ctrl-C now raises KeyboardInterrupt, handled below
        # SLURM and Kubernetes stop jobs with SIGTERM: stop as cleanly as on Ctrl-C.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        expected = state.expected_work(dst, config.pipeline)
        if expected is not None:
            # Work is certain (no finished build, or other parameters): the
            # workers' fork server imports OpenCV (and MediaPipe, unless the
            # change only re-renders) while this process imports its own
            # modules (below), rather than after.  Otherwise the build starts
            # it once it finds work: a re-run with nothing to do starts no
            # process and imports no MediaPipe.
            forkserver.start(expected and config.pipeline.may_use_mediapipe)
        from .api import BuildAborted, BuildError, BuildInterrupted, build_dataset

        try:
            result = build_dataset(config)
        except BuildError as exc:
            raise click.UsageError(message_text(exc.args[0] if exc.args else exc)) from None
        except BuildAborted as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            sys.exit(1)
        except BuildInterrupted as exc:
            _interrupt.take_back()
            click.echo(f"\n{exc}", err=True)
            sys.exit(128 + _last_signal[0])
    except KeyboardInterrupt:
        # Outside the image loop (imports, listing the source, writing the
        # dataset files): every file written so far is complete.
        _interrupt.take_back()
        click.echo(f"\n{_interrupt.RESUME}", err=True)
        sys.exit(128 + _last_signal[0])
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        _interrupt.take_back()          # the summary and the exit: an interrupt ends at once
    if not quiet:
        click.echo(summary(result))
    sys.exit(result.exit_code)


def _config(ctx: click.Context, options: dict, quiet: bool):
    """The BuildConfig of the options given (the others are the library's
    defaults and the method's presets: config.from_options); a value the
    library refuses is a usage error naming its option."""
    given = {param.opts[0]: options[param.name] for param in ctx.command.params
             if param.name in options and ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT}
    try:
        return from_options(given, progress=not quiet and sys.stderr.isatty())
    except ConfigError as exc:
        raise click.BadParameter(printable(exc.problem), ctx=ctx,
                                 param_hint=f"'{exc.option}'" if exc.option else None) from None


_last_signal = [signal.SIGINT]


class _BuildWithoutCommand(click.Group):
    """`skinseg [OPTIONS]` with no command is `skinseg build [OPTIONS]`, as
    it was before skinseg had commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in (*ctx.help_option_names, "--version")):
            args = ["build", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_BuildWithoutCommand, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="skinseg")
def main() -> None:
    """Turn a skin classification dataset into a skin segmentation dataset.

    Without a command, `skinseg [OPTIONS]` is `skinseg build [OPTIONS]`
    (`skinseg build --help` lists them).
    """


main.add_command(build_command)
main.add_command(models_command)


def _raise_interrupt(signum, _frame) -> None:
    _last_signal[0] = signum
    raise KeyboardInterrupt


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (not the one at set-up)."""

    def emit(self, record: logging.LogRecord) -> None:
        # One line each, whatever names it holds (a file name with a line break).
        click.echo(f"{record.levelname.lower()}: {printable(record.getMessage())}", err=True)


def _setup_logging() -> None:
    logger = logging.getLogger("skinseg")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)


def summary(result: BuildResult) -> str:
    """A few lines: totals, per split, what failed and where to look; names
    and paths escaped (printable), so that none can break or fake a line."""
    counts = result.counts()
    images = sum(counts.values())
    # Every stage that ran without its model, one line each, however the run ended.
    fallbacks = [f"  fallback: {use.warning(stage)}" for stage, use in (result.models.fallbacks() if result.models
                                                                          else ())]
    if fallbacks:
        fallbacks.append("  (masks are less precise without these models: `skinseg models where` shows where they "
                         "are looked for, `skinseg models fetch` downloads them)")
    if not result.complete:
        k, n = result.shard
        return "\n".join([f"skinseg: shard {k}/{n} done: {counts['written']} written, {counts['skipped']} skipped, "
                          f"{counts['failed']} failed ({images} images). Other shards are still running; "
                          f"the last to finish writes {printable(str(result.dst / 'manifest.jsonl'))}", *fallbacks])
    rendered = result.processed - result.segmented
    how = f" ({rendered} only re-rendered: output options changed)" if rendered else ""
    lines = [f"skinseg: {counts['written']} written, {counts['skipped']} skipped, {counts['failed']} failed "
             f"({images} images, {result.processed} processed now{how}, {result.reused} already done; "
             f"{result.elapsed_seconds:.1f} s)"]
    for split, c in result.by_split.items():
        lines.append(f"  {split:<6} {c['written']} written, {c['skipped']} skipped, {c['failed']} failed")
    for source, reason in result.failed:
        lines.append(f"  failed: {printable(source)}: {printable(reason)}")
    if counts["failed"] > len(result.failed):
        lines.append(f"  ... and {counts['failed'] - len(result.failed)} more failed")
    if result.failed_reused:
        lines.append(f"  {result.failed_reused} of the failed images failed in an earlier run and were not tried "
                     "again (nothing changed); --retry-failed tries them again")
    if result.outside_classes:
        count = len(result.outside_classes)
        lines.append(f"  {count} image{'s' if count > 1 else ''} outside any class folder not used "
                     f"(e.g. {printable(result.outside_classes[0])}): move them into class folders")
    others = len(result.ignored) - len(result.outside_classes)
    if others:
        lines.append(f"  {others} files and folders ignored: not images, or not read (listed in build.json, "
                     "with why)")
    lines += summary_lines(result.data_checks)
    lines += fallbacks
    lines.append(f"  classes: {len(result.class_names)} -> {printable(str(result.dst / 'classes.txt'))}; "
                 f"every image's record: {printable(str(result.dst / 'manifest.jsonl'))}")
    lines.append(f"  to check it by eye, open {printable(str(result.dst / 'report.html'))}")
    return "\n".join(lines)
