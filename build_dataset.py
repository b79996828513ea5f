#!/usr/bin/env python3
"""Build a skin segmentation dataset: python build_dataset.py --src dataset_original --dst dataset"""

# Ctrl-C waits (blocked: builtin module, nothing imported yet) until skinseg's handler is in place;
# skinseg._interrupt imports nothing heavy: Ctrl-C is clean before click and the image libraries load.
import _signal

_signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT, _signal.SIGTERM})

from skinseg._interrupt import build_main  # noqa: E402

if __name__ == "__main__":
    build_main()
