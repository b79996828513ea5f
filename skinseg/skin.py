"""Skin colour classification: which pixels of a BGR image look like skin.

`rules_mask` is the original tool's fixed colour box (HSV AND YCrCb).  Masks
are uint8 with 0 = not skin and 255 = skin, the same size as the input.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .config import SkinParams, Triple


def in_range_wrapping_hue(hsv: np.ndarray, low: Triple, high: Triple) -> np.ndarray:
    """cv2.inRange on an OpenCV HSV image where a hue minimum above the hue
    maximum means the range wraps around red (e.g. 170..10)."""
    if low[0] <= high[0]:
        return cv2.inRange(hsv, low, high)
    upper_part = cv2.inRange(hsv, (low[0], low[1], low[2]), (179, high[1], high[2]))
    lower_part = cv2.inRange(hsv, (0, low[1], low[2]), (high[0], high[1], high[2]))
    return cv2.bitwise_or(upper_part, lower_part)


def rules_mask(bgr: np.ndarray, params: SkinParams, ycrcb: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels inside both the HSV box and the YCrCb box (ycrcb: the image
    already converted, when the caller has it)."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    if ycrcb is None:
        ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    hsv_mask = in_range_wrapping_hue(hsv, params.hsv_min, params.hsv_max)
    ycrcb_mask = cv2.inRange(ycrcb, params.ycrcb_min, params.ycrcb_max)
    return cv2.bitwise_and(hsv_mask, ycrcb_mask)
