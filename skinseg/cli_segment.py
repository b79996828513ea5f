"""`skinseg segment PHOTO_OR_FOLDER... --out DIR`: photos without a dataset.

Translates a build's pipeline options (declared once, cli_options.PIPELINE)
into a PipelineConfig (options.pipeline_from_options: config.py decides),
calls photos.py for every photo and prints one line per photo and a
summary.  Nothing here decides what is written or how.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from . import _interrupt
from .checks import ConfigError
from .cli_options import CONTEXT, PIPELINE, SectionedCommand, given_options, option, setup_logging, with_options
from .names import printable
from .options import pipeline_from_options

SEGMENT_EXAMPLES = [
    ("Two photos, into ./segmented:", "skinseg segment face.jpg arm.png --out segmented"),
    ("Every photo directly in a folder, the skin on a transparent background:",
     "skinseg segment photos/ --out segmented --background transparent"),
]

OUT = option("Output", "--out", required=True, type=click.Path(path_type=Path),
             help="Folder the files are written into: images/, masks/, masks_preview/ (and skin_masks/ with "
                  "--layout train-ready), one file each per photo, named after it. Never a folder of the photos.")
QUIET = option("Run", "-q", "--quiet", is_flag=True, help="Print only the photos that failed.")


@click.command("segment", cls=SectionedCommand, context_settings=CONTEXT, examples=SEGMENT_EXAMPLES,
               short_help="Segment single photos or plain folders of photos, without a dataset.")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@with_options(OUT, *PIPELINE, QUIET)
def segment_command(photos: tuple[Path, ...], out: Path, quiet: bool, **options) -> None:
    """Segment single photos, or the photos directly in folders (PHOTOS:
    files and folders), without a dataset.

    Each photo gets the files a build writes for an image, with the same
    options: the skin-only image (images/), the mask (masks/: 0 = not skin,
    1 = skin, as a one-class build's), the colour preview (masks_preview/).
    A photo a build would skip (too little skin) gets none. One line per
    photo, then a summary; exit status 1 if a photo failed. Photos are done
    one after the other in this one process, the models opened once (for
    many thousands, build a dataset: its workers use every core).
    """
    ctx = click.get_current_context()
    try:
        config = pipeline_from_options(given_options(ctx, options))
    except ConfigError as exc:
        raise click.BadParameter(printable(exc.problem), ctx=ctx,
                                 param_hint=f"'{exc.option}'" if exc.option else None) from None
    setup_logging()
    from .api import ModelUnavailable, Segmenter
    from .photos import OutputFolderError, check_out, list_photos, segment_photos
    from .progress import is_terminal

    try:
        check_out(out, photos)
    except OutputFolderError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from None
    listing = list_photos(photos)
    try:
        segmenter = Segmenter(config, show_progress=is_terminal())
    except ModelUnavailable as exc:
        raise click.UsageError(printable(str(exc)), ctx=ctx) from None

    def say(result) -> None:
        shown = printable(result.path)
        if result.status == "failed":
            click.echo(f"failed   {shown}: {printable(result.reason or '')}", err=True)
        elif quiet:
            return
        elif result.status == "skipped":
            click.echo(f"skipped  {shown}: {printable(result.reason or '')}")
        else:
            faces = f", {result.faces} face{'s' if result.faces != 1 else ''}" if config.face.enabled else ""
            click.echo(f"written  {shown} -> {printable(str(out / result.files['mask']))} "
                       f"({result.skin_fraction:.0%} skin{faces})")

    results = []
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _interrupt.hand_over()          # Ctrl-C: the photo being written is left whole (atomic writes)
        with segmenter:
            results = segment_photos(listing, out, segmenter, lambda r: (results.append(r), say(r)))
    except KeyboardInterrupt:
        _interrupt.take_back()
        click.echo(f"\ninterrupted after {len(results)} of {len(listing.photos) + len(listing.problems)} photos; "
                   "every file written is complete", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _interrupt.take_back()
    failed = sum(r.status == "failed" for r in results)
    if not quiet:
        for line in summary(results, listing.ignored, out, segmenter.models.fallbacks()):
            click.echo(line)
    sys.exit(1 if failed else 0)


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt


def summary(results, ignored, out: Path, fallbacks) -> list[str]:
    """The summary's lines: counts, where the files are, what was not read,
    every stage that ran without its model."""
    count = {status: sum(r.status == status for r in results) for status in ("written", "skipped", "failed")}
    lines = [f"skinseg segment: {len(results)} photo{'s' if len(results) != 1 else ''}: {count['written']} written, "
             f"{count['skipped']} skipped, {count['failed']} failed; files in {printable(str(out))}"]
    if ignored:
        lines.append(f"  ignored: {len(ignored)} file{'s' if len(ignored) > 1 else ''} or sub-folder"
                     f"{'s' if len(ignored) > 1 else ''} of the folders given that "
                     f"{'are' if len(ignored) > 1 else 'is'} not a photo (e.g. {printable(ignored[0][0])}: "
                     f"{ignored[0][1]})")
    lines += [f"  fallback: {use.warning(stage)}" for stage, use in fallbacks]
    return lines
