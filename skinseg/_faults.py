"""Fault injection for tests: simulate failures that cannot be produced on
demand otherwise (a worker killed by a native crash, an exception deep in the
pipeline, an image that never finishes).  Inactive unless SKINSEG_TEST_FAULTS is set, e.g.
``SKINSEG_TEST_FAULTS="crash:bad_one.jpg,raise:other.png"``: each entry is
``<action>:<substring of the source path>``.
"""

from __future__ import annotations

import os
import time

ENV = "SKINSEG_TEST_FAULTS"


def before_image(source: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for entry in spec.split(","):
        action, _, needle = entry.partition(":")
        if needle and needle in source:
            if action == "crash":
                os._exit(139)      # the process vanishes, as after a segfault
            if action == "raise":
                raise RuntimeError(f"injected fault for {source}")
            if action == "hang":
                time.sleep(3600)   # a decoder stuck in a loop
