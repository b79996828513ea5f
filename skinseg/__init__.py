"""skinseg: turn skin classification image datasets into skin segmentation datasets."""

__version__ = "0.1.0"
