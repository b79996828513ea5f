#!/usr/bin/env python3
"""Build a skin segmentation dataset: python build_dataset.py --src dataset_original --dst dataset"""

# Imports nothing heavy: Ctrl-C is clean before click and the image libraries load.
from skinseg._interrupt import build_main

if __name__ == "__main__":
    build_main()
