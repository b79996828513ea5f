"""Where a build keeps its own state in the destination (``dst/.skinseg``).

This module imports nothing heavy: the command line asks `finished` before
the image libraries load, to start the workers' fork server at once when a
build certainly has work (see cli.py).
"""

from __future__ import annotations

from pathlib import Path

STATE_DIR = ".skinseg"
FINAL_STATE = "final.json"                # what the last finished build left (build._unchanged reads it)
STORED_SKIN_DIR = f"{STATE_DIR}/skin"     # the train-ready layout's skin masks, kept to re-render from


def finished(dst: Path) -> bool:
    """Whether a build finished in dst: a re-run may have nothing to do."""
    return (dst / STATE_DIR / FINAL_STATE).is_file()
