"""`skinseg models fetch|check|where`: print what modelstore.py finds.

The group is added to the `skinseg` command group in cli.py; nothing here
decides where models come from or whether they are right (models.py,
modelstore.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from .cli_options import CONTEXT


@click.group("models", context_settings=CONTEXT, short_help="Fetch, check and show the model files.")
def models_command() -> None:
    """Fetch, check and show the MediaPipe model files (pinned by sha256).

    On a cluster whose nodes have no network: `skinseg models fetch --dir
    DIR` on a login node, then SKINSEG_MODEL_DIR=DIR for the builds.
    """


_FOLDER = click.Path(path_type=Path, file_okay=False)


@models_command.command("fetch", context_settings=CONTEXT)
@click.option("--dir", "folder", type=_FOLDER, default=None,
              help="Download into this folder instead of the cache (then point SKINSEG_MODEL_DIR at it).")
def models_fetch(folder: Optional[Path]) -> None:
    """Download the models that are missing or wrong.

    Each file's sha256 is checked against the pin; exit status 1 if one cannot be had.
    """
    from . import modelstore

    _print_statuses(modelstore.fetch(folder, show_progress=sys.stderr.isatty()))


@models_command.command("check", context_settings=CONTEXT)
@click.option("--dir", "folder", type=_FOLDER, default=None,
              help="Check this folder instead of where a build looks (SKINSEG_MODEL_DIR, then the cache).")
def models_check(folder: Optional[Path]) -> None:
    """Check the model files a build would use.

    Every file is read and its sha256 compared with the pin; exit status 1 if one is missing or wrong.
    """
    from . import modelstore

    _print_statuses(modelstore.survey(folder))


@models_command.command("where", context_settings=CONTEXT)
def models_where() -> None:
    """Where a build looks for each model, and what it finds there."""
    from . import modelstore

    click.echo("\n".join(modelstore.lookup_order()))
    for status in modelstore.survey():
        click.echo(status.line())


def _print_statuses(statuses) -> None:
    for status in statuses:
        click.echo(status.line())
    problems = [s for s in statuses if not s.ok]
    if problems:
        click.echo(f"{len(problems)} model file{'s' if len(problems) > 1 else ''} missing or wrong: "
                   "`skinseg models fetch` downloads them (see the README's Models section)", err=True)
        sys.exit(1)
