"""Fault injection for tests: failures that cannot be produced on demand
otherwise (a worker killed by a native crash, an exception deep in the
pipeline, an image that never finishes, a disk that fills up while one file
is written).

The faults must reach the worker processes, so they are given in the
environment: ``SKINSEG_TEST_FAULTS="<action>:<name>,..."``.  Inactive
without it.  A name matches a path that is the name or ends with "/" and
the name, whole components only: a path relative to the destination
("report.html", ".skinseg/final.json", "masks/train/A__1.png") or its tail
("final.json") for the files written; a source path relative to --src
("train/A/stuck.png") or its tail ("A/stuck.png", "stuck.png") for the
images.  An action no point takes is an error, not a fault silently
never raised.

Every fault point, where it is called and the actions it takes (`POINTS`):

- ``before_write(path)``: atomic.atomic_file, before every file it writes;
  ``full`` raises ENOSPC (the disk is full).
- ``before_image(source)``: runner.process_safely, before an image is read;
  ``crash`` ends the worker as a native fault would, ``raise`` raises inside
  the pipeline, ``hang`` never finishes.
- ``after_image(source)``: runner.process_safely, once an image's files are
  written, before its record reaches the main process;
  ``hang_after_write`` never returns, so a test can catch a build with an
  image's files on disk and no journal line for it, by waiting for the
  file rather than racing the build.
"""

from __future__ import annotations

import errno
import os
import time

ENV = "SKINSEG_TEST_FAULTS"

# Fault point -> the actions it takes.
POINTS: dict[str, tuple[str, ...]] = {
    "before_write": ("full",),
    "before_image": ("crash", "raise", "hang"),
    "after_image": ("hang_after_write",),
}


def matches(path: str, name: str) -> bool:
    """Whether `path` is `name`, or ends with "/" + name (whole components)."""
    return bool(name) and (path == name or path.endswith("/" + name))


def _actions(point: str, path: str) -> list[str]:
    """The actions of the entries for this point whose name matches path."""
    spec = os.environ.get(ENV)
    if not spec:
        return []
    found = []
    for entry in spec.split(","):
        action, _, name = entry.partition(":")
        if not any(action in actions for actions in POINTS.values()):
            raise ValueError(f"{ENV}: no fault point takes the action {action!r} ({entry!r})")
        if action in POINTS[point] and matches(path, name):
            found.append(action)
    return found


def before_write(path: str) -> None:
    if "full" in _actions("before_write", path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def before_image(source: str) -> None:
    for action in _actions("before_image", source):
        if action == "crash":
            os._exit(139)      # the process vanishes, as after a segfault
        if action == "raise":
            raise RuntimeError(f"injected fault for {source}")
        if action == "hang":
            time.sleep(3600)   # a decoder stuck in a loop


def after_image(source: str) -> None:
    if "hang_after_write" in _actions("after_image", source):
        time.sleep(3600)   # the files are written; the record never arrives
