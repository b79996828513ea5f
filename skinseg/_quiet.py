"""Keep native-library log noise (MediaPipe, TFLite/LiteRT, absl, libjpeg,
libpng) away from the user.

Those libraries print from C++ straight to file descriptor 2, below Python's
sys.stderr, so the only reliable switch is to point fd 2 at /dev/null while
they run.  Environment variables cover what reads them before the first
import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

# Read by glog/absl/TFLite when mediapipe is first imported.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send everything written to fd 2 inside the block to /dev/null.

    Python-level writes to sys.stderr are flushed first so nothing of ours is
    lost or reordered.  Set SKINSEG_DEBUG_NATIVE_LOGS=1 to see the noise.
    """
    if os.environ.get("SKINSEG_DEBUG_NATIVE_LOGS"):
        yield
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:       # no fd 2 at all (some service managers): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
