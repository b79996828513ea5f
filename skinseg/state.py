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

from .buildinfo import BuildInfoError, read_build_info
from .config import PipelineConfig
from .layout import FINAL_STATE


def expected_work(dst: Path, pipeline: PipelineConfig) -> Optional[bool]:
    """What a build with these parameters will do in dst, judged from the
    last finished build's parameters only (nothing is listed): True when it
    will look for faces and skin (no finished build, or other parameters
    that decide masks), False when it will re-render (other output options
    only), None when the parameters are the same (maybe nothing to do)."""
    try:
        if not (dst / FINAL_STATE).is_file():
            return True
        last = read_build_info(dst).parameters
    except (OSError, BuildInfoError):
        return True
    now = json.loads(json.dumps(pipeline.to_dict()))          # as build.json holds it: lists, not tuples
    if any(last.get(key) != value for key, value in now.items() if key != "output"):
        return True
    return None if last.get("output") == now["output"] else False
