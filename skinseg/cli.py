"""Command line: parse options into a BuildConfig, call build(), summarise;
print what `skinseg models` finds.

`skinseg` is a group of commands (`build`, `models` from cli_models.py);
without a command it builds, as it did before it had commands, and
`build_dataset.py` runs the build command itself.  Nothing here decides how
images are processed (see build.py and pipeline.py) nor where models come
from (models.py, modelstore.py).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click
from click.core import ParameterSource

from . import __version__, _interrupt, forkserver, state
from .cli_models import CONTEXT, models_command
from .config import (
    MAX_IMAGE_TIMEOUT,
    BuildConfig,
    CleanupParams,
    FaceParams,
    InputParams,
    OutputParams,
    PipelineConfig,
    SkinParams,
)
from .names import message_text, printable
from .report_checks import summary_lines

if TYPE_CHECKING:
    from .build import BuildResult

_DEFAULTS = PipelineConfig()


class ShardType(click.ParamType):
    """'K/N' -> (k, n) with 1 <= k <= n."""

    name = "K/N"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            k, n = (int(part) for part in str(value).split("/"))
        except ValueError:
            self.fail(f"{value!r} is not K/N, e.g. 2/8 for the second of eight shards", param, ctx)
        if not 1 <= k <= n:
            self.fail(f"{value!r}: K must be between 1 and N", param, ctx)
        return (k, n)


class FiniteFloatRange(click.FloatRange):
    """A float range that refuses nan and inf: a range check lets nan
    through (every comparison with it is false), and build.json could not
    hold it (JSON has no nan)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class TripleType(click.ParamType):
    """'A,B,C' -> (a, b, c) with per-channel upper limits."""

    name = "A,B,C"

    def __init__(self, limits: tuple[int, int, int], channels: str):
        self.limits = limits
        self.channels = channels

    def get_metavar(self, param, ctx=None):
        return self.channels

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = str(value).replace(" ", "").split(",")
        try:
            numbers = tuple(int(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not three integers like 0,40,60 ({self.channels})", param, ctx)
        if len(numbers) != 3:
            self.fail(f"{value!r} has {len(numbers)} values; give three ({self.channels})", param, ctx)
        for number, limit, channel in zip(numbers, self.limits, self.channels.split(",")):
            if not 0 <= number <= limit:
                self.fail(f"{channel}={number} is outside 0..{limit} (OpenCV scale)", param, ctx)
        return numbers


class SplitRatioType(click.ParamType):
    """'train=0.8,val=0.2' -> (('train', 0.8), ('val', 0.2)); shares add up to 1."""

    name = "SPLIT=SHARE,..."

    def convert(self, value, param, ctx):
        from .discover import SPLIT_NAMES

        if isinstance(value, tuple):
            return value
        pairs = []
        for part in str(value).replace(" ", "").split(","):
            name, _, share = part.partition("=")
            name = name.lower()
            try:
                number = float(share)
            except ValueError:
                self.fail(f"{part!r} is not SPLIT=SHARE, e.g. train=0.8", param, ctx)
            if name not in SPLIT_NAMES:
                self.fail(f"{name!r} is not a split name ({', '.join(SPLIT_NAMES)})", param, ctx)
            if not (math.isfinite(number) and 0 < number <= 1):
                self.fail(f"the share of {name} must be above 0 and at most 1, not {share}", param, ctx)
            if name in dict(pairs):
                self.fail(f"{name} is given twice", param, ctx)
            pairs.append((name, number))
        if abs(sum(n for _, n in pairs) - 1) > 1e-6:
            self.fail(f"the shares add up to {sum(n for _, n in pairs):g}, not 1", param, ctx)
        return tuple(pairs)


HSV = TripleType((179, 255, 255), "H,S,V")
YCRCB = TripleType((255, 255, 255), "Y,Cr,Cb")


def _fmt(t: tuple[int, int, int]) -> str:
    return ",".join(map(str, t))


def _check_order(name_min: str, low, name_max: str, high, wrap_first: bool) -> None:
    for index, (a, b) in enumerate(zip(low, high)):
        if index == 0 and wrap_first:
            continue      # hue min > max wraps around red
        if a > b:
            raise click.BadParameter(f"{name_min} is above {name_max} in channel {index + 1} ({a} > {b})")


@click.command("build", context_settings=CONTEXT, short_help="Build a segmentation dataset (the default command).")
@click.option("--src", type=click.Path(path_type=Path), default=Path("dataset_original"), show_default=True,
              help="Classification dataset: <src>/<split>/<class>/<images>.")
@click.option("--dst", type=click.Path(path_type=Path), default=Path("dataset"), show_default=True,
              help="Where the segmentation dataset is written.")
@click.option("--skip-unknown-folders", is_flag=True,
              help="A top-level folder of --src that is not a split folder is skipped (listed in build.json) "
                   "instead of stopping the build.")
@click.option("--split-ratio", type=SplitRatioType(), default=None,
              help="For a source without split folders (<src>/<class>/<images>): divide each class's images into "
                   "these splits, e.g. train=0.8,val=0.1,test=0.1 (train=1: one split).")
@click.option("--split-seed", type=int, default=InputParams.split_seed, show_default=True,
              help="With --split-ratio: which images go where (the same seed gives the same splits).")
@click.option("--layout", type=click.Choice(["original", "train-ready"]), default=_DEFAULTS.output.layout,
              show_default=True,
              help="original: skin-only images, 0 = not skin (ignored). train-ready: real images, 0 = not skin (a "
                   "class), 255 = ignore along mask edges, plus a 0/1 skin mask per image.")
@click.option("--ignore-band", type=click.IntRange(0, 100), default=_DEFAULTS.output.ignore_band, show_default=True,
              metavar="PIXELS", help="train-ready: pixels on each side of every mask edge marked 255 (ignore).")
@click.option("--classes", "classes_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="An existing classes.txt whose ids are kept (new classes are appended).")
@click.option("--method", type=click.Choice(["adaptive", "rules"]), default=_DEFAULTS.skin.method,
              show_default=True,
              help="Skin detection: 'adaptive' = a colour model learnt from each photo's face (colour box "
                   "without a face); 'rules' = the original tool's fixed HSV AND YCrCb box, unchanged.")
@click.option("--hsv-min", type=HSV, default=_fmt(_DEFAULTS.skin.hsv_min), show_default=True,
              help="Lower HSV bound (H 0-179; H min > H max wraps around red).")
@click.option("--hsv-max", type=HSV, default=_fmt(_DEFAULTS.skin.hsv_max), show_default=True,
              help="Upper HSV bound.")
@click.option("--ycrcb-min", type=YCRCB, default=_fmt(_DEFAULTS.skin.ycrcb_min), show_default=True,
              help="Lower YCrCb bound.")
@click.option("--ycrcb-max", type=YCRCB, default=_fmt(_DEFAULTS.skin.ycrcb_max), show_default=True,
              help="Upper YCrCb bound.")
@click.option("--face/--no-face", "face_enabled", default=True, show_default=True,
              help="Detect faces (and crop to the best one).")
@click.option("--face-detector", type=click.Choice(["auto", "mediapipe", "opencv"]), default="auto",
              show_default=True, help="auto = MediaPipe when its model is available, else OpenCV's Haar cascade.")
@click.option("--face-model", type=click.Path(path_type=Path), default=None,
              help="Path to a MediaPipe face detector .tflite (default: downloaded to the cache).")
@click.option("--min-face-score", type=FiniteFloatRange(0, 1), default=_DEFAULTS.face.min_score, show_default=True,
              help="MediaPipe detections below this confidence are ignored.")
@click.option("--face-margin", type=FiniteFloatRange(0, 5), default=_DEFAULTS.face.margin, show_default=True,
              help="Crop margin on each side, as a fraction of the face box size.")
@click.option("--crop/--no-crop", default=True, show_default=True,
              help="Crop outputs around the faces (--no-crop keeps detection but writes the whole image).")
@click.option("--crop-faces", type=click.Choice(["all", "best"]), default=None,
              help="Crop around every face found, or the best one only [default: all; best with --method rules, "
                   "as the original].")
@click.option("--crop-to-skin/--no-crop-to-skin", default=None,
              help="The crop also covers every skin region found (arms, hands, other people) [default: on; off "
                   "with --method rules, which finds skin inside the crop].")
@click.option("--min-crop-side", type=click.IntRange(0), default=_DEFAULTS.face.min_crop_side, show_default=True,
              metavar="PIXELS", help="A crop is grown around its centre to at least this many pixels a side "
                                     "[--method rules: 0].")
@click.option("--person-segmentation/--no-person-segmentation", default=True, show_default=True,
              help="adaptive: drop skin-coloured background around people found by MediaPipe's selfie "
                   "segmenter (without a face: skin regions it does not see as part of a person; without its "
                   "model: a recorded fallback, not used).")
@click.option("--person-model", type=click.Path(path_type=Path), default=None,
              help="Path to a MediaPipe selfie segmenter .tflite (default: downloaded to the cache).")
@click.option("--face-mesh/--no-face-mesh", default=True, show_default=True,
              help="adaptive: outline every face with MediaPipe's 478-point face mesh (eyes, brows, lips, "
                   "nostrils cut out, hair kept out; without its model: a recorded fallback, keypoints).")
@click.option("--mesh-model", type=click.Path(path_type=Path), default=None,
              help="Path to a MediaPipe face_landmarker.task (default: downloaded to the cache).")
@click.option("--fill-lesions/--no-fill-lesions", default=True, show_default=True,
              help="adaptive: put back as skin the lesions the colour model leaves out (moles, wounds, rashes: "
                   "non-skin regions surrounded by skin that do not look like the photo's background; on "
                   "dermoscopy photos, the lens's field of view).")
@click.option("--kernel-size", type=click.IntRange(0, 101), default=_DEFAULTS.cleanup.kernel_size, show_default=True,
              help="Elliptical kernel of the open/close clean-up, pixels (0 or 1 = none).")
@click.option("--morph-iterations", type=click.IntRange(0, 20), default=_DEFAULTS.cleanup.iterations,
              show_default=True, help="Iterations of the open and of the close.")
@click.option("--components", type=click.Choice(["largest", "all"]), default=None,
              help="Keep the largest skin region, or all regions above --min-component-area "
                   "[default: all; largest with --method rules, as the original].")
@click.option("--min-component-area", type=FiniteFloatRange(0, 1), default=_DEFAULTS.cleanup.min_component_area,
              show_default=True, help="With --components all: smallest region kept, as a fraction of the image.")
@click.option("--min-skin-fraction", type=FiniteFloatRange(0, 1), default=_DEFAULTS.cleanup.min_skin_fraction,
              show_default=True, help="Images with less skin than this fraction are skipped (and recorded).")
@click.option("--background", type=click.Choice(["black", "transparent", "original"]), default=None,
              help="Non-skin pixels of the skin-only image: black, transparent (RGBA PNG) or kept "
                   "[default: black; the train-ready layout keeps them].")
@click.option("--image-format", type=click.Choice(["jpg", "png"]), default=_DEFAULTS.output.image_format,
              show_default=True, help="Format of the skin-only image (masks are always PNG).")
@click.option("--max-pixels", type=click.IntRange(1), default=_DEFAULTS.max_pixels, show_default=True,
              help="Larger images are refused (recorded as failed) before decoding.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes [default: all cores; at most the cores available].")
@click.option("--image-timeout", type=FiniteFloatRange(0, MAX_IMAGE_TIMEOUT, min_open=True),
              default=BuildConfig.image_timeout, show_default=True, metavar="SECONDS",
              help=f"An image still being processed after this long is failed and its worker stopped "
                   f"(at most {MAX_IMAGE_TIMEOUT:g}: a day).")
@click.option("--retry-failed", is_flag=True,
              help="Process again images that failed in an earlier run although nothing changed since.")
@click.option("--shard", type=ShardType(), default=None,
              help="Do only part K of N of the work (N machines, one shared --dst); the last to finish writes "
                   "manifest.jsonl and build.json.")
@click.option("--sample", type=click.IntRange(1), default=None,
              help="Only N images per class (a fixed choice): a quick look before the full build.")
@click.option("--overwrite", is_flag=True, help="Rebuild every image; allow a non-empty dst that is not a build.")
@click.option("--allow-fallback", is_flag=True,
              help="Build even where a missing model makes a stage fall back although the last build in --dst "
                   "used it (its outputs are replaced by worse ones), or in a shard (see README, Models).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; warnings and errors only.")
@click.version_option(__version__, prog_name="skinseg")
def build_command(src: Path, dst: Path, skip_unknown_folders: bool, split_ratio, split_seed: int, layout: str,
         ignore_band: int, classes_file: Optional[Path], method: str, hsv_min, hsv_max, ycrcb_min, ycrcb_max,
         face_enabled: bool, face_detector: str, face_model: Optional[Path], min_face_score: float,
         face_margin: float, crop: bool, crop_faces: Optional[str], crop_to_skin: Optional[bool], min_crop_side: int,
         person_segmentation: bool, person_model: Optional[Path],
         face_mesh: bool, mesh_model: Optional[Path], fill_lesions: bool,
         kernel_size: int, morph_iterations: int, components: Optional[str],
         min_component_area: float, min_skin_fraction: float, background: Optional[str], image_format: str,
         max_pixels: int, workers: Optional[int], image_timeout: float, retry_failed: bool,
         shard: Optional[tuple[int, int]], sample: Optional[int],
         overwrite: bool, allow_fallback: bool, quiet: bool) -> None:
    """Turn a skin classification dataset into a skin segmentation dataset.

    For every image: find the face (optional) and crop to it, find the skin
    pixels, clean the mask up, and write the skin-only image, an integer mask
    (0 = not skin, k = class id) and a colour preview.
    """
    _check_order("--hsv-min", hsv_min, "--hsv-max", hsv_max, wrap_first=True)
    _check_order("--ycrcb-min", ycrcb_min, "--ycrcb-max", ycrcb_max, wrap_first=False)
    if image_format == "jpg" and background == "transparent":
        image_format = "png"    # JPEG has no alpha channel
    if layout == "train-ready" and background not in (None, "original"):
        raise click.BadParameter("the train-ready layout writes the real image; --background black or transparent "
                                 "is only for --layout original", param_hint="--background")
    rules = method == "rules"
    if rules and click.get_current_context().get_parameter_source("min_crop_side") is ParameterSource.DEFAULT:
        min_crop_side = 0      # the original tool cropped to the best face, whatever its size
    pipeline = PipelineConfig(
        face=FaceParams(enabled=face_enabled, detector=face_detector,
                        model_path=str(face_model) if face_model else None, min_score=min_face_score,
                        crop=crop, margin=face_margin, crop_faces=crop_faces or ("best" if rules else "all"),
                        crop_to_skin=not rules if crop_to_skin is None else crop_to_skin,
                        min_crop_side=min_crop_side),
        skin=SkinParams(method=method, person_segmentation=person_segmentation,
                        person_model_path=str(person_model) if person_model else None,
                        face_mesh=face_mesh, mesh_model_path=str(mesh_model) if mesh_model else None,
                        fill_lesions=fill_lesions,
                        hsv_min=hsv_min, hsv_max=hsv_max, ycrcb_min=ycrcb_min, ycrcb_max=ycrcb_max),
        cleanup=CleanupParams(kernel_size=kernel_size, iterations=morph_iterations,
                              keep=components or ("largest" if rules else "all"),
                              min_component_area=min_component_area, min_skin_fraction=min_skin_fraction),
        output=OutputParams(layout=layout, ignore_band=ignore_band, background=background,
                            image_format=image_format),
        max_pixels=max_pixels,
    )
    config = BuildConfig(src=src, dst=dst, pipeline=pipeline, classes_file=classes_file,
                         input=InputParams(skip_unknown_folders=skip_unknown_folders, split_ratio=split_ratio,
                                           split_seed=split_seed),
                         workers=workers or forkserver.available_cpus(), overwrite=overwrite,
                         shard=shard, sample=sample, image_timeout=image_timeout, retry_failed=retry_failed,
                         allow_fallback=allow_fallback, progress=not quiet and sys.stderr.isatty())
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
