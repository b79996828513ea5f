"""skinseg: turn skin classification image datasets into skin segmentation datasets.

The public API (skinseg/api.py) is re-exported here: ``from skinseg import
build_dataset, BuildConfig, Segmenter, SkinDataset``.  It is imported on first use,
so that ``import skinseg`` stays cheap (the command line starts its worker
processes before the image libraries load).
"""

__version__ = "0.1.0"

_API = frozenset({
    "BuildAborted", "BuildConfig", "BuildError", "BuildInterrupted", "BuildResult", "CleanupParams", "Face",
    "FaceParams", "InputParams", "ModelUnavailable", "OutputParams", "PipelineConfig", "SegmentResult", "Segmenter",
    "SkinDataset", "SkinParams", "build_dataset", "collate",
})
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'skinseg' has no attribute {name!r}")
