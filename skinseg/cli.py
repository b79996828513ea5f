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

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__, _interrupt, forkserver, state
from .checks import ConfigError
from .cli_models import models_command
from .cli_options import (
    CONTEXT,
    DST,
    INPUT,
    PIPELINE,
    RUN,
    SectionedCommand,
    given_options,
    setup_logging,
    with_options,
)
from .cli_segment import segment_command
from .discover import ignored_counts
from .names import message_text, printable
from .options import from_options, options_like, read_option_file
from .report_checks import summary_lines

if TYPE_CHECKING:
    from .build import BuildResult


BUILD_EXAMPLES = [
    ("The bundled example, into ./dataset:",
     "skinseg build --src examples/dataset_original --dst dataset"),
    ("A look at 20 images per class and split first, then the full build with the same options:",
     "skinseg build --src photos --dst preview --sample 20 --kernel-size 7",
     "skinseg build --like preview/build.json --dst dataset"),
]


@click.command("build", cls=SectionedCommand, context_settings=CONTEXT, examples=BUILD_EXAMPLES,
               short_help="Build a segmentation dataset (the default command).")
@with_options(INPUT[0], DST, *INPUT[1:], *PIPELINE, *RUN)
@click.version_option(__version__, prog_name="skinseg")
def build_command(quiet: bool, **options) -> None:
    """Turn a skin classification dataset into a skin segmentation dataset.

    For every image: find the face (optional) and crop to it, find the skin
    pixels, clean the mask up, and write the skin-only image, an integer mask
    (0 = not skin, k = class id) and a colour preview.
    """
    config = _config(click.get_current_context(), options, quiet)
    dst = config.dst
    setup_logging()
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
    if not config.progress:
        sys.exit(result.exit_code)
    click.echo(summary(result))
    sys.exit(result.exit_code)


def _config(ctx: click.Context, options: dict, quiet: bool):
    """The BuildConfig of the options given (the others are the library's
    defaults and the method's presets: config.from_options), over those of
    --config's file, over those of --like's build.json; a value the library
    refuses is a usage error naming its option (or the file's key)."""
    config_file, like = options.pop("config_file"), options.pop("like")
    given = given_options(ctx, options)
    sources: dict[str, str] = {}          # option -> the file that gave it
    try:
        merged: dict = {}
        if like is not None:
            merged.update(options_like(like))
            sources.update(dict.fromkeys(merged, str(like)))
        if config_file is not None:
            read = read_option_file(config_file, _file_keys(ctx))
            from_file = _converted(ctx, {k: v for k, v in read.items() if k not in given}, config_file)
            quiet = bool(from_file.pop("--quiet", False)) or quiet
            merged.update(from_file)
            sources.update(dict.fromkeys(from_file, str(config_file)))
        merged.update(given)
        for option in given:
            sources.pop(option, None)
        return from_options(merged, progress=not quiet)
    except ConfigError as exc:
        if exc.option in sources:
            raise click.UsageError(printable(f"Invalid value in {sources[exc.option]} for "
                                             f"'{exc.option.removeprefix('--')}': {exc.problem}"), ctx=ctx) from None
        raise click.BadParameter(printable(exc.problem), ctx=ctx,
                                 param_hint=f"'{exc.option}'" if exc.option else None) from None


def _file_keys(ctx: click.Context) -> list[str]:
    """The options a --config file may give: the build's own, but --config and --like."""
    return [option for param in ctx.command.params if isinstance(param, click.Option)
            for option in param.opts[:1] if option.startswith("--") and option not in ("--config", "--like",
                                                                                    "--version", "--help")] + \
        ["--quiet"]


def _converted(ctx: click.Context, values: dict, path: Path) -> dict:
    """A --config file's values parsed as the command line parses text: a
    string by the option's type ("0,40,60", "2/8", "train=0.8,val=0.2")."""
    params = {param.opts[0]: param for param in ctx.command.params}
    params["--quiet"] = next(p for p in ctx.command.params if p.name == "quiet")
    converted = {}
    for option, value in values.items():
        param = params[option]
        try:
            converted[option] = param.type.convert(value, param, ctx) if isinstance(value, str) else value
        except click.BadParameter as exc:
            raise click.UsageError(printable(f"Invalid value in {path} for '{option.removeprefix('--')}': "
                                             f"{exc.message}"), ctx=ctx) from None
    return converted


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
main.add_command(segment_command)
main.add_command(models_command)


def _raise_interrupt(signum, _frame) -> None:
    _last_signal[0] = signum
    raise KeyboardInterrupt


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
    width = max(map(len, result.by_split), default=0)
    for split, c in result.by_split.items():
        lines.append(f"  {split:<{width}}  {c['written']} written, {c['skipped']} skipped, {c['failed']} failed")
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
    files, folders = ignored_counts(result.ignored)
    if files or folders:
        said = [f"{files} non-image file{'s' if files > 1 else ''}"] * bool(files)
        said += [f"{folders} folder{'s' if folders > 1 else ''} not read"] * bool(folders)
        lines.append(f"  ignored: {', '.join(said)} (listed in build.json, with why)")
    lines += summary_lines(result.data_checks)
    lines += fallbacks
    lines.append(f"  classes: {len(result.class_names) - 1} and background -> "
                 f"{printable(str(result.dst / 'classes.txt'))}; "
                 f"every image's record: {printable(str(result.dst / 'manifest.jsonl'))}")
    lines.append(f"  to check it by eye, open {printable(str(result.dst / 'report.html'))}")
    return "\n".join(lines)
