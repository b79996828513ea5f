"""Person segmentation (MediaPipe's selfie segmenter), used by the adaptive
method to drop skin-coloured background around people.

Optional: without its model the adaptive method still works (less precise
on photos with busy backgrounds, see docs/quality.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ._quiet import native_stderr_silenced
from .models import PERSON_SEGMENTER, ModelPlan, plan_optional_model


def plan_segmenter(enabled: bool, explicit_model: Optional[Path], show_progress: bool = False) -> ModelPlan:
    return plan_optional_model(PERSON_SEGMENTER, enabled, explicit_model,
                               "less precise on busy backgrounds", "no person segmentation", show_progress)


class PersonSegmenter:
    """Person probability per pixel, from MediaPipe Tasks' ImageSegmenter."""

    def __init__(self, model_path: str):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=model_path),
                                               output_confidence_masks=True, output_category_mask=False)
        with native_stderr_silenced():
            self._segmenter = vision.ImageSegmenter.create_from_options(options)

    def probability(self, bgr: np.ndarray) -> np.ndarray:
        """float32 map in [0, 1], same height and width as bgr."""
        import mediapipe as mp

        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        with native_stderr_silenced():
            result = self._segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        return np.squeeze(result.confidence_masks[0].numpy_view()).astype(np.float32)

    def close(self) -> None:
        with native_stderr_silenced():
            self._segmenter.close()


def open_segmenter(plan: ModelPlan) -> Optional[PersonSegmenter]:
    return PersonSegmenter(plan.model_path) if plan.model_path else None
