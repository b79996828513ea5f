"""Typed configuration of a build: every default, preset and check.

The command line only parses its options into these dataclasses
(`from_options`); the Python API builds them directly.  Either way the
checks below run: a value that cannot be used raises `ConfigError` (a
`ValueError`) naming the field and its command-line option, and the CLI
turns it into a usage error, so the API accepts and refuses exactly what the
command line does.  Values are normalised on the way in (a float field holds
a float, a triple a tuple, a path field a `Path`), so a build from Python
records the same parameters, and fingerprints, as the same build from the
command line.

A method's presets live with the method (`METHOD_PRESETS`): a field left
None takes them when the `PipelineConfig` is made (`--method rules` crops to
the best face, at any size, and keeps the largest skin region, as the
original tool did).  Every field that changes what is written for an image
is part of `PipelineConfig`: `segmentation_fingerprint` covers everything
that decides an image's mask and crop (faces, skin, clean-up, crop,
max_pixels); `OutputParams` only how files are rendered from them, so
changing it re-renders from the stored masks without finding faces or skin
again.

Imports nothing but the standard library: the command line reads it before
the image libraries load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

Triple = tuple[int, int, int]

# The original tool's colour box (OpenCV scales: H 0-179, everything else 0-255).
DEFAULT_HSV_MIN: Triple = (0, 40, 60)
DEFAULT_HSV_MAX: Triple = (25, 255, 255)
DEFAULT_YCRCB_MIN: Triple = (0, 135, 85)
DEFAULT_YCRCB_MAX: Triple = (255, 180, 135)
HSV_LIMITS, HSV_CHANNELS = (179, 255, 255), "H,S,V"
YCRCB_LIMITS, YCRCB_CHANNELS = (255, 255, 255), "Y,Cr,Cb"

DetectorName = Literal["auto", "mediapipe", "opencv"]
MethodName = Literal["rules", "adaptive"]
KeepMode = Literal["largest", "all"]
Background = Literal["black", "transparent", "original"]
ImageFormat = Literal["jpg", "png"]
Layout = Literal["original", "train-ready"]
CropFaces = Literal["all", "best"]

DETECTORS = ("auto", "mediapipe", "opencv")
METHODS = ("adaptive", "rules")
DEFAULT_METHOD: MethodName = "adaptive"
KEEP_MODES = ("largest", "all")
BACKGROUNDS = ("black", "transparent", "original")
IMAGE_FORMATS = ("jpg", "png")
LAYOUTS = ("original", "train-ready")
CROP_FACES = ("all", "best")

# Folder names read as splits, in any case; the split is the name in lower
# case (discover.py), and --split-ratio names these.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")

# The long side of the working copy of every image: face detection
# (BlazeFace looks at 128-192 px anyway), the face mesh's crops, person
# segmentation (256 px) and the adaptive method all use this one copy; only
# the final mask is brought back to full resolution.  Not an option: masks
# are tuned at this size (docs/quality.md).
WORK_SIZE = 640

# The longest --image-timeout: a day.  A 100-megapixel photo takes seconds;
# the operating system's waits cannot take much more than 24 days anyway.
MAX_IMAGE_TIMEOUT = 86_400.0

# The command line's --src and --dst when they are not given.
DEFAULT_SOURCE = Path("dataset_original")
DEFAULT_DESTINATION = Path("dataset")


class ConfigError(ValueError):
    """A configuration value that cannot be used.

    Attributes
    ----------
    field : str
        The value's name in the API, e.g. ``"CleanupParams.kernel_size"``.
    option : str or None
        Its command-line option, e.g. ``"--kernel-size"`` (None: the API's only).
    problem : str
        What is wrong with it, e.g. ``"-3 is not a whole number from 0 to 101"``.
    """

    def __init__(self, field: str, option: Optional[str], problem: str):
        self.field, self.option, self.problem = field, option, problem
        super().__init__(f"{field} ({option}): {problem}" if option else f"{field}: {problem}")


# ------------------------------------------------------------------ checks
# Each check takes a value and returns it normalised, or raises _Invalid
# with what is wrong; the dataclass turns that into a ConfigError naming the
# field.  The command line shows the ranges and choices in its --help
# (cli.py reads them here).

class _Invalid(Exception):
    """A value a check refuses; str(exc) says why (without the field's name)."""


class Check:
    def __call__(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Flag(Check):
    def __call__(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"{value!r} is not True or False")
        return value


@dataclass(frozen=True)
class Choice(Check):
    values: tuple[str, ...]

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise _Invalid(f"{value!r} is not one of {', '.join(self.values)}")
        return value


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole(Check):
    """A whole number from `low` to `high` (None: no bound); numpy integers are taken."""

    low: Optional[int] = None
    high: Optional[int] = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a whole number from {self.low} to {self.high}"
        if self.low is not None:
            return f"a whole number of at least {self.low}"
        return "a whole number"

    def __call__(self, value: Any) -> int:
        if not _is_integer(value) or (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            raise _Invalid(f"{value!r} is not {self.describe()}")
        return int(value)


@dataclass(frozen=True)
class Real(Check):
    """A finite number from `low` to `high` (`low_open`: above `low`); kept as a float."""

    low: float
    high: float
    low_open: bool = False
    unit: str = ""            # "seconds": "a number of seconds ..."
    note: str = ""            # said after the range: "(a day)"

    def describe(self) -> str:
        low = f"above {self.low:g}" if self.low_open else f"from {self.low:g}"
        high = f"and at most {self.high:g}" if self.low_open else f"to {self.high:g}"
        return f"a finite number{' of ' + self.unit if self.unit else ''} {low} {high}{self.note}"

    def __call__(self, value: Any) -> float:
        shown = f"{value:g}" if isinstance(value, numbers.Real) and not isinstance(value, bool) else repr(value)
        # A range check lets nan through (every comparison with it is false),
        # and build.json could not hold it (JSON has no nan).
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or \
                not (self.low < value if self.low_open else self.low <= value) or value > self.high:
            raise _Invalid(f"{shown} is not {self.describe()}")
        return float(value)


@dataclass(frozen=True)
class Optional_(Check):
    """None, or a value the inner check takes."""

    inner: Check

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.inner(value)


@dataclass(frozen=True)
class PathValue(Check):
    """A path: a str or an os.PathLike, kept as a Path (`text`: as a str)."""

    text: bool = False

    def __call__(self, value: Any) -> Any:
        path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
        if not isinstance(path, str) or not path:
            raise _Invalid(f"{value!r} is not a path (a non-empty str or os.PathLike)")
        return path if self.text else Path(path)


@dataclass(frozen=True)
class ColourBound(Check):
    """Three whole numbers, each from 0 to its channel's limit (OpenCV scales)."""

    limits: tuple[int, int, int]
    channels: str

    def __call__(self, value: Any) -> Triple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise _Invalid(f"{value!r} is not three whole numbers ({self.channels})")
        if len(value) != 3:
            raise _Invalid(f"{_triple_text(value)} has {len(value)} values; give three ({self.channels})")
        for number, limit, channel in zip(value, self.limits, self.channels.split(",")):
            if not _is_integer(number) or not 0 <= number <= limit:
                raise _Invalid(f"{channel}={number!r} is outside 0..{limit} (OpenCV scale)")
        return tuple(int(n) for n in value)


def _triple_text(value: Sequence) -> str:
    return ",".join(map(str, value))


@dataclass(frozen=True)
class SplitRatio(Check):
    """(split, share) pairs: split names of SPLIT_NAMES (any case), shares
    above 0 and at most 1 that add up to 1, each split once."""

    def __call__(self, value: Any) -> tuple[tuple[str, float], ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise _Invalid(f"{value!r} is not a list of (split, share) pairs, e.g. (('train', 0.8), ('val', 0.2))")
        pairs: list[tuple[str, float]] = []
        for pair in value:
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2 or \
                    not isinstance(pair[0], str):
                raise _Invalid(f"{pair!r} is not a (split, share) pair, e.g. ('train', 0.8)")
            name, share = pair[0].lower(), pair[1]
            if name not in SPLIT_NAMES:
                raise _Invalid(f"{name!r} is not a split name ({', '.join(SPLIT_NAMES)})")
            if not isinstance(share, numbers.Real) or isinstance(share, bool) or not math.isfinite(share) or \
                    not 0 < share <= 1:
                raise _Invalid(f"the share of {name} must be above 0 and at most 1, not {share!r}")
            if name in dict(pairs):
                raise _Invalid(f"{name} is given twice")
            pairs.append((name, float(share)))
        total = sum(share for _, share in pairs)
        if abs(total - 1) > 1e-6:
            raise _Invalid(f"the shares add up to {total:g}, not 1")
        return tuple(pairs)


@dataclass(frozen=True)
class Shard(Check):
    """(k, n): part k of n, 1 <= k <= n."""

    def __call__(self, value: Any) -> tuple[int, int]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2 or \
                not all(_is_integer(v) for v in value):
            raise _Invalid(f"{value!r} is not (K, N), e.g. (2, 8) for the second of eight shards")
        k, n = int(value[0]), int(value[1])
        if not 1 <= k <= n:
            raise _Invalid(f"{k}/{n}: K must be between 1 and N")
        return (k, n)


@dataclass(frozen=True)
class Part(Check):
    """A nested dataclass of the configuration."""

    kind: type

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, self.kind):
            raise _Invalid(f"{value!r} is not a {self.kind.__name__}")
        return value


def _option(option: Optional[str], check: Check) -> dict:
    """A field's metadata: its command-line option and its check."""
    return {"option": option, "check": check}


def _checked(default: Any, option: Optional[str], check: Check, **kwargs) -> Any:
    return field(default=default, metadata=_option(option, check), **kwargs)


def _check_fields(instance: Any) -> None:
    """Check and normalise every field of a frozen dataclass instance."""
    for f in fields(instance):
        check = f.metadata.get("check")
        if check is None:
            continue
        try:
            value = check(getattr(instance, f.name))
        except _Invalid as exc:
            raise ConfigError(f"{type(instance).__name__}.{f.name}", f.metadata.get("option"), str(exc)) from None
        object.__setattr__(instance, f.name, value)


def _fail(instance: Any, name: str, problem: str) -> ConfigError:
    """A ConfigError about field `name` of instance."""
    option = next(f.metadata.get("option") for f in fields(instance) if f.name == name)
    return ConfigError(f"{type(instance).__name__}.{name}", option, problem)


# ------------------------------------------------------------------ presets

@dataclass(frozen=True)
class MethodPreset:
    """What a method decides unless told otherwise: the fields of
    FaceParams and CleanupParams that are None by default."""

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

    enabled: bool = _checked(True, "--face", Flag())
    detector: DetectorName = _checked("auto", "--face-detector", Choice(DETECTORS))
    model_path: Optional[str] = _checked(None, "--face-model", Optional_(PathValue(text=True)))
    min_score: float = _checked(0.5, "--min-face-score", Real(0, 1))
    crop: bool = _checked(True, "--crop", Flag())
    margin: float = _checked(0.35, "--face-margin", Real(0, 5))    # fraction of the box added on each side
    crop_faces: Optional[CropFaces] = _checked(None, "--crop-faces", Optional_(Choice(CROP_FACES)))
    crop_to_skin: Optional[bool] = _checked(None, "--crop-to-skin", Optional_(Flag()))
    min_crop_side: Optional[int] = _checked(None, "--min-crop-side", Optional_(Whole(0)))

    def __post_init__(self) -> None:
        _check_fields(self)

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

    method: MethodName = _checked(DEFAULT_METHOD, "--method", Choice(METHODS))
    person_segmentation: bool = _checked(True, "--person-segmentation", Flag())
    person_model_path: Optional[str] = _checked(None, "--person-model", Optional_(PathValue(text=True)))
    face_mesh: bool = _checked(True, "--face-mesh", Flag())
    mesh_model_path: Optional[str] = _checked(None, "--mesh-model", Optional_(PathValue(text=True)))
    fill_lesions: bool = _checked(True, "--fill-lesions", Flag())
    hsv_min: Triple = _checked(DEFAULT_HSV_MIN, "--hsv-min", ColourBound(HSV_LIMITS, HSV_CHANNELS))
    hsv_max: Triple = _checked(DEFAULT_HSV_MAX, "--hsv-max", ColourBound(HSV_LIMITS, HSV_CHANNELS))
    ycrcb_min: Triple = _checked(DEFAULT_YCRCB_MIN, "--ycrcb-min", ColourBound(YCRCB_LIMITS, YCRCB_CHANNELS))
    ycrcb_max: Triple = _checked(DEFAULT_YCRCB_MAX, "--ycrcb-max", ColourBound(YCRCB_LIMITS, YCRCB_CHANNELS))

    def __post_init__(self) -> None:
        _check_fields(self)
        for low, high, channels, wraps in (("hsv_min", "hsv_max", HSV_CHANNELS, True),
                                           ("ycrcb_min", "ycrcb_max", YCRCB_CHANNELS, False)):
            for index, (a, b, channel) in enumerate(zip(getattr(self, low), getattr(self, high),
                                                        channels.split(","))):
                if index == 0 and wraps:
                    continue      # hue min > max wraps around red
                if a > b:
                    raise _fail(self, low, f"{_triple_text(getattr(self, low))} is above --{high.replace('_', '-')} "
                                           f"{_triple_text(getattr(self, high))} in channel {index + 1} "
                                           f"({channel} {a} > {b}): no pixel would be skin")


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

    kernel_size: int = _checked(5, "--kernel-size", Whole(0, 101))
    iterations: int = _checked(1, "--morph-iterations", Whole(0, 20))
    keep: Optional[KeepMode] = _checked(None, "--components", Optional_(Choice(KEEP_MODES)))
    min_component_area: float = _checked(0.001, "--min-component-area", Real(0, 1))
    min_skin_fraction: float = _checked(0.05, "--min-skin-fraction", Real(0, 1))

    def __post_init__(self) -> None:
        _check_fields(self)

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
        A value out of its range, or a background the train-ready layout
        does not take.
    """

    layout: Layout = _checked("original", "--layout", Choice(LAYOUTS))
    ignore_band: int = _checked(3, "--ignore-band", Whole(0, 100))
    background: Optional[Background] = _checked(None, "--background", Optional_(Choice(BACKGROUNDS)))
    image_format: ImageFormat = _checked("jpg", "--image-format", Choice(IMAGE_FORMATS))
    jpeg_quality: int = _checked(95, None, Whole(0, 100))

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.layout == "train-ready" and self.background not in (None, "original"):
            # Blacked-out inputs leak the label and look nothing like photos at inference.
            raise _fail(self, "background", "the train-ready layout writes the real image; --background black or "
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

    face: FaceParams = field(default_factory=FaceParams, metadata=_option(None, Part(FaceParams)))
    skin: SkinParams = field(default_factory=SkinParams, metadata=_option(None, Part(SkinParams)))
    cleanup: CleanupParams = field(default_factory=CleanupParams, metadata=_option(None, Part(CleanupParams)))
    output: OutputParams = field(default_factory=OutputParams, metadata=_option(None, Part(OutputParams)))
    max_pixels: int = _checked(100_000_000, "--max-pixels", Whole(1))

    def __post_init__(self) -> None:
        _check_fields(self)
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
class InputParams:
    """How the source folder is read (discover.py).

    Parameters
    ----------
    skip_unknown_folders : bool
        A top-level folder that is not a split folder is skipped (recorded)
        instead of stopping the build.
    split_ratio : sequence of (str, float), optional
        For a source of class folders without split folders: (split, share)
        pairs, split names of `SPLIT_NAMES` (any case; kept in lower case),
        shares above 0 that add up to 1.
    split_seed : int
        With split_ratio: which images go to which split.

    Raises
    ------
    ConfigError
        An unknown split name, a share out of range, shares that do not add
        up to 1, a split given twice.
    """

    skip_unknown_folders: bool = _checked(False, "--skip-unknown-folders", Flag())
    split_ratio: Optional[tuple[tuple[str, float], ...]] = _checked(None, "--split-ratio", Optional_(SplitRatio()))
    split_seed: int = _checked(0, "--split-seed", Whole())

    def __post_init__(self) -> None:
        _check_fields(self)


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
        Show a progress bar on stderr.
    shard : (int, int), optional
        (k, n): do part k of n of the work (1 <= k <= n).
    sample : int, optional
        Only this many images per class (at least 1).
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

    src: Path = field(metadata=_option("--src", PathValue()))
    dst: Path = field(metadata=_option("--dst", PathValue()))
    pipeline: PipelineConfig = field(default_factory=PipelineConfig, metadata=_option(None, Part(PipelineConfig)))
    input: InputParams = field(default_factory=InputParams, metadata=_option(None, Part(InputParams)))
    classes_file: Optional[Path] = _checked(None, "--classes", Optional_(PathValue()))
    workers: Optional[int] = _checked(None, "--workers", Optional_(Whole(1)))
    overwrite: bool = _checked(False, "--overwrite", Flag())
    progress: bool = _checked(True, None, Flag())      # tqdm bar (the CLI turns it off when not a TTY)
    shard: Optional[tuple[int, int]] = _checked(None, "--shard", Optional_(Shard()))
    sample: Optional[int] = _checked(None, "--sample", Optional_(Whole(1)))
    # A 100-megapixel photo takes about 4 s on the team's machine: an image
    # still running after this is stuck, and its worker is stopped.
    image_timeout: float = _checked(120.0, "--image-timeout",
                                    Real(0, MAX_IMAGE_TIMEOUT, low_open=True, unit="seconds", note=" (a day)"))
    retry_failed: bool = _checked(False, "--retry-failed", Flag())
    # A stage whose model is missing may replace outputs made with it (or, in
    # a shard, run at all): see fallback.py.  Without it such a build stops.
    allow_fallback: bool = _checked(False, "--allow-fallback", Flag())

    def __post_init__(self) -> None:
        _check_fields(self)


# ------------------------------------------------------------------ the command line's options

_PARTS = (FaceParams, SkinParams, CleanupParams, OutputParams, PipelineConfig, InputParams, BuildConfig)


# The options of fields the API requires: the command line's defaults.
_UNSET_DEFAULTS = {"--src": DEFAULT_SOURCE, "--dst": DEFAULT_DESTINATION}


def option_fields() -> dict[str, tuple[type, str]]:
    """Every command-line option of a build -> (the dataclass, its field)."""
    return {f.metadata["option"]: (part, f.name) for part in _PARTS for f in fields(part)
            if f.metadata.get("option")}


def option_check(option: str) -> Check:
    """The check of an option's field (the CLI shows its range or choices)."""
    part, name = option_fields()[option]
    check = next(f.metadata["check"] for f in fields(part) if f.name == name)
    return check.inner if isinstance(check, Optional_) else check


def option_default(option: str) -> Any:
    """What an option is when it is not given, for the CLI's --help: the
    field's default, or the default method's preset."""
    if option in _UNSET_DEFAULTS:
        return _UNSET_DEFAULTS[option]
    part, name = option_fields()[option]
    value = next(f.default for f in fields(part) if f.name == name)
    if value is None and hasattr(METHOD_PRESETS[DEFAULT_METHOD], name):
        return getattr(METHOD_PRESETS[DEFAULT_METHOD], name)
    return value


def from_options(options: Mapping[str, Any], **settings: Any) -> BuildConfig:
    """The BuildConfig of command-line options, by name (``{"--kernel-size":
    3}``); options not given take their defaults and the method's presets,
    as in the API.  `settings`: BuildConfig fields without an option
    (``progress``).  Raises ConfigError for a value that cannot be used, and
    KeyError for an unknown option."""
    known = option_fields()
    values: dict[type, dict[str, Any]] = {part: {} for part in _PARTS}
    for option, value in options.items():
        part, name = known[option]
        values[part][name] = value
    build = values[BuildConfig]
    for option, value in _UNSET_DEFAULTS.items():
        build.setdefault(known[option][1], value)
    pipeline = PipelineConfig(face=FaceParams(**values[FaceParams]), skin=SkinParams(**values[SkinParams]),
                              cleanup=CleanupParams(**values[CleanupParams]),
                              output=OutputParams(**values[OutputParams]), **values[PipelineConfig])
    return BuildConfig(pipeline=pipeline, input=InputParams(**values[InputParams]), **build, **settings)

