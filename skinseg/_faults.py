"""Fault injection for tests: simulate failures that cannot be produced on
demand otherwise (a worker killed by a native crash, an exception deep in the
pipeline, an image that never finishes, a disk that fills up while one file
is written).  Inactive unless SKINSEG_TEST_FAULTS is set, e.g.
``SKINSEG_TEST_FAULTS="crash:bad_one.jpg,raise:other.png"``: each entry is
``<action>:<substring of the source path>`` (for ``full``: of the path written).

Fault points, and the actions each one takes:

- ``before_write(path)`` (imageio, every output file): ``full`` raises ENOSPC.
- ``before_image(source)`` (runner, before an image is read): ``crash`` ends
  the worker as a native fault would, ``raise`` raises inside the pipeline,
  ``hang`` never finishes.
- ``after_image(source)`` (runner, once an image's files are written, before
  its record reaches the main process): ``hang_after_write`` never returns, so
  a test can catch a build with an image's files on disk and no journal line
  for it, by waiting for the file rather than racing the build.
"""

from __future__ import annotations

import errno
import os
import time

ENV = "SKINSEG_TEST_FAULTS"


def _matching(text: str) -> list[str]:
    """The actions of the entries whose substring is in text."""
    spec = os.environ.get(ENV)
    if not spec:
        return []
    entries = (entry.partition(":") for entry in spec.split(","))
    return [action for action, _, needle in entries if needle and needle in text]


def before_write(path: str) -> None:
    if "full" in _matching(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def before_image(source: str) -> None:
    for action in _matching(source):
        if action == "crash":
            os._exit(139)      # the process vanishes, as after a segfault
        if action == "raise":
            raise RuntimeError(f"injected fault for {source}")
        if action == "hang":
            time.sleep(3600)   # a decoder stuck in a loop


def after_image(source: str) -> None:
    if "hang_after_write" in _matching(source):
        time.sleep(3600)   # the files are written; the record never arrives
