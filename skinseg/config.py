"""Typed configuration of a build.

The CLI only parses options into these dataclasses; everything below the CLI
takes them as its single source of truth.  Every field that changes what is
written for an image is part of `PipelineConfig`.  Its fingerprints decide
what a re-run can keep: `segmentation_fingerprint` covers everything that
decides an image's mask and crop (faces, skin, clean-up, crop, max_pixels);
`OutputParams` only how files are rendered from them, so changing it
re-renders from the stored masks without finding faces or skin again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional

Triple = tuple[int, int, int]

# The original tool's colour box (OpenCV scales: H 0-179, everything else 0-255).
DEFAULT_HSV_MIN: Triple = (0, 40, 60)
DEFAULT_HSV_MAX: Triple = (25, 255, 255)
DEFAULT_YCRCB_MIN: Triple = (0, 135, 85)
DEFAULT_YCRCB_MAX: Triple = (255, 180, 135)

DetectorName = Literal["auto", "mediapipe", "opencv"]
MethodName = Literal["rules", "adaptive"]
KeepMode = Literal["largest", "all"]
Background = Literal["black", "transparent", "original"]
ImageFormat = Literal["jpg", "png"]
Layout = Literal["original", "train-ready"]
CropFaces = Literal["all", "best"]


@dataclass(frozen=True)
class FaceParams:
    enabled: bool = True
    detector: DetectorName = "auto"
    model_path: Optional[str] = None     # explicit --face-model; None = provisioned
    min_score: float = 0.5
    crop: bool = True
    margin: float = 0.35                 # fraction of the box added on each side
    # The crop policy (crop.py): around every face (or the best one), and
    # every skin region found; at least min_crop_side pixels a side.
    crop_faces: CropFaces = "all"
    crop_to_skin: bool = True
    min_crop_side: int = 160


@dataclass(frozen=True)
class SkinParams:
    method: MethodName = "adaptive"
    person_segmentation: bool = True     # adaptive: drop skin-coloured background around people
    person_model_path: Optional[str] = None
    face_mesh: bool = True               # adaptive: outline faces with the 478-point mesh
    mesh_model_path: Optional[str] = None
    fill_lesions: bool = True            # adaptive: put back lesions the colour model leaves out
    hsv_min: Triple = DEFAULT_HSV_MIN
    hsv_max: Triple = DEFAULT_HSV_MAX
    ycrcb_min: Triple = DEFAULT_YCRCB_MIN
    ycrcb_max: Triple = DEFAULT_YCRCB_MAX


@dataclass(frozen=True)
class CleanupParams:
    kernel_size: int = 5                 # elliptical structuring element, pixels
    iterations: int = 1                  # of the open and of the close
    keep: KeepMode = "all"               # --method rules defaults to "largest", as the original
    min_component_area: float = 0.001    # fraction of the image, used by keep="all"
    min_skin_fraction: float = 0.05      # below this the image is skipped


@dataclass(frozen=True)
class OutputParams:
    """How the outputs are rendered from an image and its skin mask."""

    # 'original': skin-only image, 0 = not skin (ignored in training), k = class.
    # 'train-ready': the real image, 0 = not skin (a class), k = class, IGNORE
    # in a band along the mask's edges, plus a 0/1 skin mask.
    layout: Layout = "original"
    ignore_band: int = 3                 # train-ready: pixels on each side of a mask edge that are IGNORE
    background: Optional[Background] = None    # None: the layout's (black; train-ready: original)
    image_format: ImageFormat = "jpg"
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.layout == "train-ready" and self.background not in (None, "original"):
            # Blacked-out inputs leak the label and look nothing like photos at inference.
            raise ValueError(f"the train-ready layout writes the real image; background {self.background!r} "
                             "is only for the original layout")

    @property
    def image_background(self) -> Background:
        if self.background is not None:
            return self.background
        return "original" if self.layout == "train-ready" else "black"

    @property
    def image_extension(self) -> str:
        # Transparency needs an alpha channel, which JPEG lacks.
        return ".png" if self.image_background == "transparent" or self.image_format == "png" else ".jpg"

    def image_key(self) -> str:
        """Everything that decides the image file's bytes, given the crop and its mask."""
        return f"{self.image_background}|{self.image_extension}|{self.jpeg_quality}"

    def labels_key(self) -> str:
        """Everything that decides the mask files' bytes (mask, preview, skin
        mask), given the crop's mask, the class id and the mask type."""
        return f"{self.layout}|{self.ignore_band if self.layout == 'train-ready' else 0}"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides the bytes written for one image."""

    face: FaceParams = field(default_factory=FaceParams)
    skin: SkinParams = field(default_factory=SkinParams)
    cleanup: CleanupParams = field(default_factory=CleanupParams)
    output: OutputParams = field(default_factory=OutputParams)
    max_pixels: int = 100_000_000        # refuse larger images before decoding them

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
    """How the source folder is read (discover.py)."""

    skip_unknown_folders: bool = False   # a top-level folder that is not a split: skipped, not an error
    # Sources without split folders: (split, share) pairs that add up to 1.
    split_ratio: Optional[tuple[tuple[str, float], ...]] = None
    split_seed: int = 0


# The longest --image-timeout: a day.  A 100-megapixel photo takes seconds;
# the operating system's waits cannot take much more than 24 days anyway.
MAX_IMAGE_TIMEOUT = 86_400.0


@dataclass(frozen=True)
class BuildConfig:
    src: Path
    dst: Path
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    input: InputParams = field(default_factory=InputParams)
    classes_file: Optional[Path] = None
    workers: int = 1
    overwrite: bool = False
    progress: bool = True                # tqdm bar (the CLI turns it off when not a TTY)
    shard: Optional[tuple[int, int]] = None   # (k, n): this run does shard k of n, 1-based
    sample: Optional[int] = None         # only this many images per class (quick look)
    # A 100-megapixel photo takes about 4 s on the team's machine: an image
    # still running after this is stuck, and its worker is stopped.
    image_timeout: float = 120.0         # seconds per image, above 0, at most MAX_IMAGE_TIMEOUT
    retry_failed: bool = False           # process again images that failed with unchanged inputs
    # A stage whose model is missing may replace outputs made with it (or, in
    # a shard, run at all): see fallback.py.  Without it such a build stops.
    allow_fallback: bool = False

    def __post_init__(self) -> None:
        timeout = self.image_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
                not 0 < timeout <= MAX_IMAGE_TIMEOUT:      # nan fails the comparison too
            raise ValueError(f"image_timeout (--image-timeout) must be a number of seconds above 0 and at most "
                             f"{MAX_IMAGE_TIMEOUT:g} (a day), not {timeout!r}")
