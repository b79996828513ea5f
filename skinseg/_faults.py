"""Fault injection for tests: simulate failures that cannot be produced on
demand otherwise (a worker killed by a native crash, an exception deep in the
pipeline, an image that never finishes, a disk that fills up while one file
is written).  Inactive unless SKINSEG_TEST_FAULTS is set, e.g.
``SKINSEG_TEST_FAULTS="crash:bad_one.jpg,raise:other.png"``: each entry is
``<action>:<substring of the source path>`` (for ``full``: of the path written).
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
