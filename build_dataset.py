#!/usr/bin/env python3
"""Build a skin segmentation dataset: python build_dataset.py --src dataset_original --dst dataset"""

from skinseg.cli import build_command

if __name__ == "__main__":
    build_command()
