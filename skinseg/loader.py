"""Read a built dataset back for training, without torch.

`SkinDataset(dst, split)` pairs each written image with its mask through
``manifest.jsonl`` (its records, read as records.read_records reads them)
and gives the class list (``classes.txt``) and the value a loss must ignore
(the typed ``build.json``, buildinfo.read_build_info).  Items are dicts of numpy arrays; the
class has ``__len__`` and ``__getitem__``, so a torch DataLoader takes it as
it is.  Crops come in many sizes: `size=` resizes every item, `collate`
resizes a batch to one size; masks always with nearest-neighbour, so no
pixel gets an id that is not a class.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence, Union

import cv2
import numpy as np

from .buildinfo import read_build_info
from .discover import BACKGROUND_NAME, read_class_file
from .imageio import on_black
from .layout import CLASSES_TXT, MANIFEST
from .records import Record, read_records

Size = Union[int, tuple[int, int]]      # side of a square, or (height, width)
MASK_KEYS = ("mask", "skin_mask")


def _read(path: Path, flags: int) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, np.uint8), flags)
    if image is None:
        raise OSError(f"cannot read {path}")
    return image


CHANNELS = ("rgb", "bgr")


def _side(value: object) -> Optional[int]:
    """value as a side in pixels, if it is a whole number of at least 1."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    return None


def _hw(size: Size) -> tuple[int, int]:
    """(height, width) from size: a side (a square) or (height, width), in
    whole pixels, at least 1.  Raises ValueError for anything else ("256",
    0, 1.5, True), rather than resizing to something unexpected."""
    if (side := _side(size)) is not None:
        return side, side
    if isinstance(size, (tuple, list)) and len(size) == 2 and None not in (sides := tuple(map(_side, size))):
        return sides
    raise ValueError(f"size must be a whole number of pixels of at least 1 (a square) or (height, width), "
                     f"not {size!r}")


def _channels(channels: str) -> str:
    """'rgb' or 'bgr', from either in any case; ValueError for anything else."""
    if isinstance(channels, str) and channels.lower() in CHANNELS:
        return channels.lower()
    raise ValueError(f"channels must be 'rgb' or 'bgr' (in any case), not {channels!r}")


def resize_item(item: dict, size: Size) -> dict:
    """The item with its image and masks resized to size (height, width):
    the image by area (shrinking) or bilinear, the masks by nearest neighbour."""
    height, width = _hw(size)
    out = dict(item)
    image = item["image"]
    if image.shape[:2] != (height, width):
        shrink = image.shape[0] * image.shape[1] > height * width
        out["image"] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        for key in MASK_KEYS:
            if key in item:
                out[key] = cv2.resize(item[key], (width, height), interpolation=cv2.INTER_NEAREST)
    return out


def collate(items: Sequence[dict], size: Optional[Size] = None) -> dict:
    """A batch of SkinDataset items.  For a torch DataLoader:
    collate_fn=collate, or functools.partial(collate, size=(512, 512)).

    Parameters
    ----------
    items : sequence of dict
        SkinDataset items ('image' (H, W, 3) uint8, 'mask' (H, W), ...).
    size : int or (int, int), optional
        Items of other sizes are resized to it (a side, or (height,
        width)): images by area or bilinear, masks by nearest neighbour.
        Default: the largest height and width in the batch.

    Returns
    -------
    dict
        Arrays stacked along a first axis ('image' (N, H, W, 3) uint8,
        'mask' (N, H, W), 'skin_mask' ...), 'class_id' an (N,) int64 array,
        other fields lists.

    Raises
    ------
    ValueError
        An empty batch, or a size that is not whole pixels of at least 1.
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    if size is None:
        size = (max(i["image"].shape[0] for i in items), max(i["image"].shape[1] for i in items))
    size = _hw(size)
    resized = [resize_item(i, size) for i in items]
    batch: dict = {}
    for key in resized[0]:
        values = [i[key] for i in resized]
        if isinstance(values[0], np.ndarray):
            batch[key] = np.stack(values)
        elif key == "class_id":
            batch[key] = np.asarray(values, np.int64)
        else:
            batch[key] = values
    return batch


class SkinDataset:
    """The written images of one split of a skinseg dataset.

    Parameters
    ----------
    root : str or os.PathLike
        The dataset (a build's --dst).
    split : str
        Which split's written images.
    size : int or (int, int), optional
        Resize every item to it (a side, or (height, width)).
    channels : {'rgb', 'bgr'}
        The image's channel order (in any case).
    transform : callable, optional
        Applied to every item (a dict) last.

    Each item is a dict: 'image' (H, W, 3) uint8 in `channels` order,
    'mask' (H, W) uint8 or uint16 class ids, 'skin_mask' (train-ready
    layout: 0/1, 255 = ignore), 'class_id', 'source' (path in the original
    dataset) and 'name' (the output file name without extension).  Arrays
    are contiguous, so torch.from_numpy takes them.  `classes` (id ->
    name), `ignore_index` and `num_classes` say how to train on them.

    Raises
    ------
    BuildInfoError
        build.json is missing, damaged or not skinseg's (a ValueError).
    ValueError
        A size or channels it cannot use, or a split with no written image.
    """

    def __init__(self, root: Union[str, Path], split: str = "train", *, size: Optional[Size] = None,
                 channels: Literal["rgb", "bgr"] = "rgb", transform: Optional[Callable[[dict], dict]] = None):
        self.root = Path(root)
        self.size = None if size is None else _hw(size)
        self.channels = _channels(channels)
        info = read_build_info(self.root)       # BuildInfoError (a ValueError) says what is wrong with it
        self.layout: str = info.layout
        self.ignore_index: int = info.ignore_index
        self.mask_dtype: str = info.mask_dtype
        self.classes: list[str] = [BACKGROUND_NAME] + read_class_file(self.root / CLASSES_TXT)
        self.split = split
        self.transform = transform
        self.records = [r for r in self._manifest(self.root) if r.status == "written" and r.split == split]
        if not self.records:
            raise ValueError(f"no written images in split {split!r} of {self.root}; "
                             f"its splits: {', '.join(self.splits(self.root)) or 'none'}")

    @staticmethod
    def _manifest(root: Path) -> list[Record]:
        path = Path(root) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: not a finished skinseg build")
        return list(read_records(path))

    @classmethod
    def splits(cls, root: Union[str, Path]) -> list[str]:
        """The splits of a dataset that have written images, sorted."""
        return sorted({r.split for r in cls._manifest(Path(root)) if r.status == "written"})

    @property
    def num_classes(self) -> int:
        """Mask ids 0..num_classes-1 (id 0 = not skin); the ignore value is not one."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        image = _read(self.root / record.image, cv2.IMREAD_UNCHANGED)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:                     # --background transparent: transparent is black
            image = on_black(image[:, :, :3], image[:, :, 3])
        if self.channels == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        item = {"image": image, "mask": _read(self.root / record.mask, cv2.IMREAD_UNCHANGED)}
        if record.skin_mask:
            item["skin_mask"] = _read(self.root / record.skin_mask, cv2.IMREAD_UNCHANGED)
        item.update(class_id=record.class_id, source=record.source, name=Path(record.mask).stem)
        if self.size is not None:
            item = resize_item(item, self.size)
        return self.transform(item) if self.transform else item
