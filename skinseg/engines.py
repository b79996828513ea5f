"""The models of a build, decided once and opened once.

`plan_models` runs in the parent process, before any worker starts: it
finds (or downloads) every model file the configuration uses and decides
each stage's fallback (`ModelPlans`, whose signature enters every image's
fingerprint and whose `uses` build.json records).  `open_engines` runs in
each worker (and in `api.Segmenter`): it opens the planned models
(`Engines`), which the pipeline's stages then use for every image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import PipelineConfig
from .face import DetectorPlan, FaceDetector, open_detector, plan_detector
from .mesh import FaceMesher, open_mesher, plan_mesher
from .models import ModelPlan
from .modeluse import ModelUses
from .person import PersonSegmenter, open_segmenter, plan_segmenter


@dataclass(frozen=True)
class ModelPlans:
    """Which model files every worker opens, decided once in the parent."""

    detector: DetectorPlan
    segmenter: ModelPlan = ModelPlan()
    mesher: ModelPlan = ModelPlan()

    @property
    def signature(self) -> str:
        """Identifies every model's bytes: part of each image's fingerprint."""
        return f"{self.detector.signature}|{self.segmenter.signature}|{self.mesher.signature}"

    @property
    def notes(self) -> list[str]:
        """The warnings to show once: the stages that run without their model."""
        return [plan.note for plan in (self.detector, self.segmenter, self.mesher) if plan.note]

    @property
    def uses(self) -> ModelUses:
        """What each stage runs with, as build.json records it."""
        return ModelUses(self.detector.use, self.mesher.use, self.segmenter.use)


@dataclass
class Engines:
    """Models opened once per worker."""

    detector: FaceDetector
    segmenter: Optional[PersonSegmenter] = None
    mesher: Optional[FaceMesher] = None

    def close(self) -> None:
        for engine in (self.detector, self.segmenter, self.mesher):
            if engine is not None:
                engine.close()


def plan_models(config: PipelineConfig, show_progress: bool = False) -> ModelPlans:
    """Find (or download) every model the config uses; raises ModelUnavailable.
    Warnings about fallbacks are in the plans' notes."""
    face, skin = config.face, config.skin

    def explicit(path: Optional[str]) -> Optional[Path]:
        return Path(path) if path else None

    return ModelPlans(
        plan_detector(face.enabled, face.detector, explicit(face.model_path), face.min_score,
                      show_progress=show_progress),
        plan_segmenter(config.uses_person_segmentation, explicit(skin.person_model_path), show_progress=show_progress),
        plan_mesher(config.uses_face_mesh, explicit(skin.mesh_model_path), show_progress=show_progress))


def open_engines(models: ModelPlans) -> Engines:
    return Engines(open_detector(models.detector), open_segmenter(models.segmenter), open_mesher(models.mesher))
