"""Typed configuration of a build: every default, preset and check.

The command line only translates its options into these dataclasses
(options.py); the Python API builds them directly.  Either way each field's
check runs (checks.py): a value that cannot be used raises `ConfigError` (a
ValueError) naming the field and its option, so the API accepts and refuses
exactly what the command line does, and values are normalised (floats,
tuples, Paths) so that both record the same parameters and fingerprints.
A method's presets live with the method (`METHOD_PRESETS`): the fields left
None take them when a `PipelineConfig` is made.  `segmentation_fingerprint`
covers everything that decides an image's mask and crop; `OutputParams`
only how its files are rendered from them (a change re-renders from the
stored masks).  `InputParams` (how the source is read) lives with the split
names it takes, in splits.py.  Imports nothing but the standard library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional, get_args

from .checks import (
    Choice,
    ColourBound,
    Flag,
    Optional_,
    PathValue,
    Real,
    Shard,
    Whole,
    bounds_problem,
    check_fields,
    checked,
    fail,
    option_metadata,
    part,
)
from .checks import ConfigError as ConfigError  # what every configuration class raises (re-exported)
from .splits import InputParams

Triple = tuple[int, int, int]

# The original tool's colour box (OpenCV scales: H 0-179, everything else 0-255).
DEFAULT_HSV_MIN: Triple = (0, 40, 60)
DEFAULT_HSV_MAX: Triple = (25, 255, 255)
DEFAULT_YCRCB_MIN: Triple = (0, 135, 85)
DEFAULT_YCRCB_MAX: Triple = (255, 180, 135)
HSV_LIMITS, HSV_CHANNELS = (179, 255, 255), "H,S,V"
YCRCB_LIMITS, YCRCB_CHANNELS = (255, 255, 255), "Y,Cr,Cb"

# The choices of each option: the types say them, the checks take them from here.
DetectorName = Literal["auto", "mediapipe", "opencv"]
MethodName = Literal["adaptive", "rules"]
KeepMode = Literal["largest", "all"]
Background = Literal["black", "transparent", "original"]
ImageFormat = Literal["jpg", "png"]
Layout = Literal["original", "train-ready"]
CropFaces = Literal["all", "best"]
DETECTORS, METHODS, KEEP_MODES = get_args(DetectorName), get_args(MethodName), get_args(KeepMode)
BACKGROUNDS, IMAGE_FORMATS, LAYOUTS, CROP_FACES = (get_args(Background), get_args(ImageFormat), get_args(Layout),
                                                   get_args(CropFaces))
DEFAULT_METHOD: MethodName = "adaptive"

# The long side of the working copy of every image: face detection
# (BlazeFace looks at 128-192 px anyway), the face mesh's crops, person
# segmentation (256 px) and the adaptive method all use this one copy; only
# the final mask is brought back to full resolution.  Not an option: masks
# are tuned at this size (docs/quality.md).
WORK_SIZE = 640

# The longest --image-timeout: a day.  A 100-megapixel photo takes seconds;
# the operating system's waits cannot take much more than 24 days anyway.
MAX_IMAGE_TIMEOUT = 86_400.0

# The command line's --src and --dst when they are not given (options.py).
DEFAULT_SOURCE = Path("dataset_original")
DEFAULT_DESTINATION = Path("dataset")


# ------------------------------------------------------------------ presets

@dataclass(frozen=True)
class MethodPreset:
    """What a method decides unless told otherwise (the fields left None)."""

    crop_faces: CropFaces
    crop_to_skin: bool
    min_crop_side: int
    keep: KeepMode


METHOD_PRESETS: dict[str, MethodPreset] = {
    # Every face, every skin region found, no sliver of a crop; every region.
    "adaptive": MethodPreset(crop_faces="all", crop_to_skin=True, min_crop_side=160, keep="all"),
    # The original tool: the best face's crop, whatever its size, and the
    # largest skin region in it (it finds skin inside the crop).
    "rules": MethodPreset(crop_faces="best", crop_to_skin=False, min_crop_side=0, keep="largest"),
}


# ------------------------------------------------------------------ the configuration

@dataclass(frozen=True)
class FaceParams:
    """Face detection and the crop policy (crop.py).

    Parameters
    ----------
    enabled : bool
        Detect faces (``--face/--no-face``).
    detector : {'auto', 'mediapipe', 'opencv'}
        'auto': MediaPipe's BlazeFace when its model can be had, else
        OpenCV's Haar cascade (a recorded fallback).
    model_path : str or os.PathLike, optional
        A face detector ``.tflite`` to use instead of the pinned one.
    min_score : float
        Detections below this confidence (0-1) are ignored: by the detector,
        and so by every stage after it.
    crop : bool
        Crop the outputs around the faces (False: the whole image).
    margin : float
        Crop margin on each side, as a fraction (0-5) of the face box.
    crop_faces : {'all', 'best'}, optional
        Crop around every face, or the best one only.  None: the method's
        preset (`METHOD_PRESETS`: all; best with the rules method).
    crop_to_skin : bool, optional
        The crop also covers every skin region found.  None: the method's
        preset (on; off with the rules method).
    min_crop_side : int, optional
        A crop is grown around its centre to at least this many pixels a
        side.  None: the method's preset (160; 0 with the rules method).

    Raises
    ------
    ConfigError
        A value out of its range or of the wrong type, naming the field.
    """

    enabled: bool = checked(True, "--face", Flag())
    detector: DetectorName = checked("auto", "--face-detector", Choice(DETECTORS))
    model_path: Optional[str] = checked(None, "--face-model", Optional_(PathValue(text=True)))
    min_score: float = checked(0.5, "--min-face-score", Real(0, 1))
    crop: bool = checked(True, "--crop", Flag())
    margin: float = checked(0.35, "--face-margin", Real(0, 5))    # fraction of the box added on each side
    crop_faces: Optional[CropFaces] = checked(None, "--crop-faces", Optional_(Choice(CROP_FACES)))
    crop_to_skin: Optional[bool] = checked(None, "--crop-to-skin", Optional_(Flag()))
    min_crop_side: Optional[int] = checked(None, "--min-crop-side", Optional_(Whole(0)))

    def __post_init__(self) -> None:
        check_fields(self)

    def resolved(self, method: MethodName = DEFAULT_METHOD) -> "FaceParams":
        """These parameters with the fields left None set by `method`'s preset."""
        preset = METHOD_PRESETS[method]
        unset = {name: getattr(preset, name) for name in ("crop_faces", "crop_to_skin", "min_crop_side")
                 if getattr(self, name) is None}
        return dataclasses.replace(self, **unset) if unset else self


@dataclass(frozen=True)
class SkinParams:
    """How skin is found.

    Parameters
    ----------
    method : {'adaptive', 'rules'}
        'adaptive': a colour model learnt from each photo's face (the colour
        box where there is none); 'rules': the original tool's colour box.
        Its presets (`METHOD_PRESETS`) fill the crop and clean-up fields
        left None.
    person_segmentation, face_mesh, fill_lesions : bool
        Adaptive: drop skin-coloured background outside the people; outline
        faces with the 478-point mesh; put back the lesions the colour model
        leaves out.
    person_model_path, mesh_model_path : str or os.PathLike, optional
        Model files to use instead of the pinned ones.
    hsv_min, hsv_max : tuple of 3 int
        HSV box (H 0-179, S and V 0-255); a hue minimum above the maximum
        wraps around red.  S and V minima must not be above their maxima.
    ycrcb_min, ycrcb_max : tuple of 3 int
        YCrCb box (0-255 each); each minimum at most its maximum.

    Raises
    ------
    ConfigError
        A value out of its range, or a minimum above its maximum.
    """

    method: MethodName = checked(DEFAULT_METHOD, "--method", Choice(METHODS))
    person_segmentation: bool = checked(True, "--person-segmentation", Flag())
    person_model_path: Optional[str] = checked(None, "--person-model", Optional_(PathValue(text=True)))
    face_mesh: bool = checked(True, "--face-mesh", Flag())
    mesh_model_path: Optional[str] = checked(None, "--mesh-model", Optional_(PathValue(text=True)))
    fill_lesions: bool = checked(True, "--fill-lesions", Flag())
    hsv_min: Triple = checked(DEFAULT_HSV_MIN, "--hsv-min", ColourBound(HSV_LIMITS, HSV_CHANNELS))
    hsv_max: Triple = checked(DEFAULT_HSV_MAX, "--hsv-max", ColourBound(HSV_LIMITS, HSV_CHANNELS))
    ycrcb_min: Triple = checked(DEFAULT_YCRCB_MIN, "--ycrcb-min", ColourBound(YCRCB_LIMITS, YCRCB_CHANNELS))
    ycrcb_max: Triple = checked(DEFAULT_YCRCB_MAX, "--ycrcb-max", ColourBound(YCRCB_LIMITS, YCRCB_CHANNELS))

    def __post_init__(self) -> None:
        check_fields(self)
        for low, high, channels, wraps in (("hsv_min", "hsv_max", HSV_CHANNELS, True),     # hue wraps around red
                                           ("ycrcb_min", "ycrcb_max", YCRCB_CHANNELS, False)):
            problem = bounds_problem(getattr(self, low), getattr(self, high), f"--{high.replace('_', '-')}",
                                     channels, wraps)
            if problem:
                raise fail(self, low, problem)


@dataclass(frozen=True)
class CleanupParams:
    """The mask's clean-up (cleanup.py) and the skip rule.

    Parameters
    ----------
    kernel_size : int
        Elliptical structuring element of the open then close, pixels
        (0-101; 0 or 1: none).
    iterations : int
        Iterations of the open and of the close (0-20).
    keep : {'largest', 'all'}, optional
        Keep only the largest skin region, or every region of at least
        `min_component_area`.  None: the method's preset (all; largest with
        the rules method).
    min_component_area : float
        With keep='all': the smallest region kept, as a fraction (0-1) of
        the image.
    min_skin_fraction : float
        Images with less skin than this fraction (0-1) of their crop are
        skipped, except (adaptive) a photo where a face seeded the skin
        model (`pipeline.skip_reason`).

    Raises
    ------
    ConfigError
        A value out of its range or of the wrong type, naming the field.
    """

    kernel_size: int = checked(5, "--kernel-size", Whole(0, 101))
    iterations: int = checked(1, "--morph-iterations", Whole(0, 20))
    keep: Optional[KeepMode] = checked(None, "--components", Optional_(Choice(KEEP_MODES)))
    min_component_area: float = checked(0.001, "--min-component-area", Real(0, 1))
    min_skin_fraction: float = checked(0.05, "--min-skin-fraction", Real(0, 1))

    def __post_init__(self) -> None:
        check_fields(self)

    def resolved(self, method: MethodName = DEFAULT_METHOD) -> "CleanupParams":
        """These parameters with `keep` set by `method`'s preset if it is None."""
        return self if self.keep is not None else dataclasses.replace(self, keep=METHOD_PRESETS[method].keep)


@dataclass(frozen=True)
class OutputParams:
    """How the outputs are rendered from an image and its skin mask.

    Parameters
    ----------
    layout : {'original', 'train-ready'}
        'original': skin-only image, 0 = not skin (ignored in training),
        k = class.  'train-ready': the real image, 0 = not skin (a class),
        k = class, the ignore value in a band along the mask's edges, plus
        a 0/1 skin mask.
    ignore_band : int
        Train-ready: pixels (0-100) on each side of a mask edge that are ignored.
    background : {'black', 'transparent', 'original'}, optional
        Non-skin pixels of the image: None is the layout's (black;
        train-ready: original, the only one it takes).  'transparent'
        writes a PNG (`image_format` becomes 'png': JPEG has no alpha).
    image_format : {'jpg', 'png'}
        Format of the image file (masks are always PNG).
    jpeg_quality : int
        JPEG quality (0-100) of the image file.

    Raises
    ------
    ConfigError
        A value out of its range, or a background the train-ready layout refuses.
    """

    layout: Layout = checked("original", "--layout", Choice(LAYOUTS))
    ignore_band: int = checked(3, "--ignore-band", Whole(0, 100))
    background: Optional[Background] = checked(None, "--background", Optional_(Choice(BACKGROUNDS)))
    image_format: ImageFormat = checked("jpg", "--image-format", Choice(IMAGE_FORMATS))
    jpeg_quality: int = checked(95, None, Whole(0, 100))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.layout == "train-ready" and self.background not in (None, "original"):
            # Blacked-out inputs leak the label and look nothing like photos at inference.
            raise fail(self, "background", "the train-ready layout writes the real image; --background black or "
                                            "transparent is only for --layout original")
        if self.background == "transparent":
            object.__setattr__(self, "image_format", "png")     # transparency needs an alpha channel

    @property
    def image_background(self) -> Background:
        if self.background is not None:
            return self.background
        return "original" if self.layout == "train-ready" else "black"

    @property
    def image_extension(self) -> str:
        return f".{self.image_format}"

    def image_key(self) -> str:
        """Everything that decides the image file's bytes, given the crop and its mask."""
        return f"{self.image_background}|{self.image_extension}|{self.jpeg_quality}"

    def labels_key(self) -> str:
        """Everything that decides the mask files' bytes (mask, preview, skin
        mask), given the crop's mask, the class id and the mask type."""
        return f"{self.layout}|{self.ignore_band if self.layout == 'train-ready' else 0}"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides the bytes written for one image.

    Parameters
    ----------
    face, skin, cleanup, output : FaceParams, SkinParams, CleanupParams, OutputParams
        The stages' parameters.  The fields of `face` and `cleanup` left
        None take `skin.method`'s preset here: a PipelineConfig's are
        always set (``PipelineConfig(skin=SkinParams(method="rules"))`` is
        ``--method rules``).
    max_pixels : int
        Larger images (at least 1) are refused before they are decoded.

    Raises
    ------
    ConfigError
        A part of the wrong type, or max_pixels below 1.
    """

    face: FaceParams = part(FaceParams)
    skin: SkinParams = part(SkinParams)
    cleanup: CleanupParams = part(CleanupParams)
    output: OutputParams = part(OutputParams)
    max_pixels: int = checked(100_000_000, "--max-pixels", Whole(1))

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "face", self.face.resolved(self.skin.method))
        object.__setattr__(self, "cleanup", self.cleanup.resolved(self.skin.method))

    @property
    def uses_person_segmentation(self) -> bool:
        return self.skin.method == "adaptive" and self.skin.person_segmentation and self.face.enabled

    @property
    def uses_face_mesh(self) -> bool:
        return self.skin.method == "adaptive" and self.skin.face_mesh and self.face.enabled

    @property
    def may_use_mediapipe(self) -> bool:
        """MediaPipe's face detector ('auto' prefers it) or person segmenter may run."""
        return (self.face.enabled and self.face.detector != "opencv") or self.uses_person_segmentation

    def to_dict(self) -> dict:
        return asdict(self)

    def segmentation_fingerprint(self) -> str:
        """Identifies every parameter that decides an image's mask and crop
        (all but `output`)."""
        deciding = {key: value for key, value in self.to_dict().items() if key != "output"}
        blob = json.dumps(deciding, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BuildConfig:
    """A whole build (`build.build`).

    Parameters
    ----------
    src, dst : str or os.PathLike
        The classification dataset, and where the segmentation dataset is
        written (kept as Paths).
    pipeline : PipelineConfig
        Everything that decides an image's files.
    input : InputParams
        How the source is read.
    classes_file : str or os.PathLike, optional
        An existing classes.txt whose ids are kept.
    workers : int, optional
        Worker processes, at least 1 (lowered to the CPUs this process may
        use); None: all of them.
    overwrite : bool
        Rebuild every image; allow a non-empty dst that is not a build.
    progress : bool
        Show progress on stderr: a bar on a terminal, else (a log file:
        SLURM, CI, nohup) a line every `progress_interval` seconds.
    progress_interval : float
        Seconds between those lines (above 0, at most 3600).
    shard : (int, int), optional
        (k, n): do part k of n of the work (1 <= k <= n).
    sample : int, optional
        Only this many images per class in each split (at least 1).
    image_timeout : float
        Seconds an image may take (above 0, at most `MAX_IMAGE_TIMEOUT`).
    retry_failed : bool
        Process again images that failed with unchanged inputs.
    allow_fallback : bool
        Build although a missing model makes a stage fall back where the
        last build used it, or in a shard (fallback.py).

    Raises
    ------
    ConfigError
        A value out of its range or of the wrong type, naming the field.
    """

    src: Path = field(metadata=option_metadata("--src", PathValue()))
    dst: Path = field(metadata=option_metadata("--dst", PathValue()))
    pipeline: PipelineConfig = part(PipelineConfig)
    input: InputParams = part(InputParams)
    classes_file: Optional[Path] = checked(None, "--classes", Optional_(PathValue()))
    workers: Optional[int] = checked(None, "--workers", Optional_(Whole(1)))
    overwrite: bool = checked(False, "--overwrite", Flag())
    progress: bool = checked(True, None, Flag())      # the CLI's --quiet turns it off
    progress_interval: float = checked(10.0, "--progress-interval", Real(0, 3600, low_open=True, unit="seconds"))
    shard: Optional[tuple[int, int]] = checked(None, "--shard", Optional_(Shard()))
    sample: Optional[int] = checked(None, "--sample", Optional_(Whole(1)))
    # A 100-megapixel photo takes about 4 s on the team's machine: an image still running after 120 s is stuck.
    image_timeout: float = checked(120.0, "--image-timeout",
                                    Real(0, MAX_IMAGE_TIMEOUT, low_open=True, unit="seconds", note=" (a day)"))
    retry_failed: bool = checked(False, "--retry-failed", Flag())
    allow_fallback: bool = checked(False, "--allow-fallback", Flag())

    def __post_init__(self) -> None:
        check_fields(self)
