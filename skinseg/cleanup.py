"""Mask clean-up: morphology, then a filter on connected components."""

from __future__ import annotations

import cv2
import numpy as np

from .config import CleanupParams


def disk(radius: int) -> np.ndarray:
    """The elliptic structuring element of the given radius (2 r + 1 pixels across)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def morphology(mask: np.ndarray, kernel_size: int, iterations: int, zero_border: bool = False) -> np.ndarray:
    """Elliptical open (drops speckles) then close (fills pinholes) of a
    (H, W) uint8 0/255 mask, `iterations` times each with a kernel of
    `kernel_size` pixels (under 2, or no iteration: the mask as it is).

    zero_border treats everything outside the image as not skin, so the
    close shaves skin that touches the edge; the original tool measured like
    this (it is what reproduces its numbers), so --method rules keeps it.
    """
    if kernel_size < 2 or iterations < 1:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    border = {"borderType": cv2.BORDER_CONSTANT, "borderValue": 0} if zero_border else {}
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel, iterations=iterations, **border)
    return cv2.morphologyEx(opened, cv2.MORPH_CLOSE, kernel, iterations=iterations, **border)


def keep_components(mask: np.ndarray, keep: str, min_area_fraction: float) -> np.ndarray:
    """The skin regions (8-connected) to keep.

    Parameters
    ----------
    mask : (H, W) uint8 ndarray
        0/255 skin.
    keep : {'largest', 'all'}
        Only the biggest region, or every region of at least
        `min_area_fraction` of the image.
    min_area_fraction : float
        With 'all': the smallest region kept, as a fraction (0-1) of H x W.

    Returns
    -------
    (H, W) uint8 ndarray
        0/255: the regions kept (mask itself when it has no region).
    """
    # 16-bit labels are faster; an opened mask has far fewer than 65535 regions,
    # and the 32-bit fallback covers any other mask.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_16U)
    if count >= 65535:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    if count <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    if keep == "largest":
        return cv2.compare(labels, 1 + int(np.argmax(areas)), cv2.CMP_EQ)
    # Erase the small regions inside their bounding boxes only: they are
    # usually specks, so this touches a tiny part of the image.
    out = mask.copy()
    for label in np.nonzero(areas < min_area_fraction * mask.size)[0] + 1:
        x, y, w, h = stats[label, :4]
        box = out[y:y + h, x:x + w]
        box[labels[y:y + h, x:x + w] == label] = 0
    return out


def clean_mask(mask: np.ndarray, params: CleanupParams, zero_border: bool = False) -> np.ndarray:
    """The clean-up of a skin mask: open then close, then the regions kept.

    Parameters
    ----------
    mask : (H, W) uint8 ndarray
        0/255 skin, as a skin method gives it.
    params : CleanupParams
        Kernel size and iterations of the morphology, which regions to keep
        (`keep` None: the default method's preset).
    zero_border : bool
        Treat everything outside the image as not skin (the rules method:
        the original tool's measurements, see `morphology`).

    Returns
    -------
    (H, W) uint8 ndarray
        0/255 cleaned mask.
    """
    params = params.resolved()       # a PipelineConfig's are; alone, `keep` None is the default method's
    return keep_components(morphology(mask, params.kernel_size, params.iterations, zero_border),
                           params.keep, params.min_component_area)


def skin_fraction(mask: np.ndarray) -> float:
    """The share of a mask's pixels that are skin (non-zero).

    Parameters
    ----------
    mask : (H, W) uint8 ndarray
        Any mask; non-zero is skin.

    Returns
    -------
    float
        From 0 to 1; 0 for an empty mask.
    """
    return float(cv2.countNonZero(mask)) / mask.size if mask.size else 0.0
