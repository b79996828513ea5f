"""Where a build keeps its own state in the destination (``dst/.skinseg``),
and what a glance at it says about the next build.

This module imports nothing heavy: the command line asks `expected_work`
before the image libraries load, to start the workers' fork server at once
when a build will have work (see cli.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .buildinfo import BUILD_JSON as BUILD_JSON  # re-exported: the dataset-level files' names are here
from .buildinfo import BuildInfoError, read_build_info
from .config import PipelineConfig

# The dataset-level files of dst (build.py writes them; loader.py reads them;
# build.json's name belongs to buildinfo.py, which reads and writes it).
MANIFEST = "manifest.jsonl"
CLASSES_TXT = "classes.txt"

STATE_DIR = ".skinseg"
FINAL_STATE = "final.json"                # what the last finished build left (build._unchanged reads it)
STORED_SKIN_DIR = f"{STATE_DIR}/skin"     # the train-ready layout's skin masks, kept to re-render from


def expected_work(dst: Path, pipeline: PipelineConfig) -> Optional[bool]:
    """What a build with these parameters will do in dst, judged from the
    last finished build's parameters only (nothing is listed): True when it
    will look for faces and skin (no finished build, or other parameters
    that decide masks), False when it will re-render (other output options
    only), None when the parameters are the same (maybe nothing to do)."""
    try:
        if not (dst / STATE_DIR / FINAL_STATE).is_file():
            return True
        last = read_build_info(dst).parameters
    except (OSError, BuildInfoError):
        return True
    now = json.loads(json.dumps(pipeline.to_dict()))          # as build.json holds it: lists, not tuples
    if any(last.get(key) != value for key, value in now.items() if key != "output"):
        return True
    return None if last.get("output") == now["output"] else False
