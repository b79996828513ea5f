"""Where the time of one image goes: per-stage milliseconds, one thread.

    python benchmarks/stages.py --eval-dir ../shared/eval [--images 150] [--size 1280] [--sets a,b]

Runs the default pipeline's stages one after the other on photos made like
throughput.py's (JPEG, long side --size) with cv2.setNumThreads(1), and
prints the mean time of each stage per image.  Needs the MediaPipe models
(SKINSEG_MODEL_DIR or the cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import eval_photos, make_dataset  # noqa: E402

from skinseg import outputs  # noqa: E402
from skinseg.adaptive import adaptive_mask, candidate_faces, whole_faces  # noqa: E402
from skinseg.atomic import atomic_write_bytes  # noqa: E402
from skinseg.cleanup import clean_mask  # noqa: E402
from skinseg.config import PipelineConfig  # noqa: E402
from skinseg.dermoscopy import within_field_of_view  # noqa: E402
from skinseg.encoding import encode_image  # noqa: E402
from skinseg.engines import open_engines, plan_models  # noqa: E402
from skinseg.imageio import read_image  # noqa: E402
from skinseg.lesions import fill_lesions  # noqa: E402
from skinseg.mesh import with_meshes  # noqa: E402
from skinseg.partface import part_of_a_face  # noqa: E402
from skinseg.pipeline import MESHED_FACES, full_size_mask, working_copy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--size", type=int, default=1280)
    parser.add_argument("--sets", default="pratheepan_face,pratheepan_family,abdomen_train",
                        help="eval sets the photos come from (throughput.py's mix by default)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    config = PipelineConfig()
    engines = open_engines(plan_models(config))
    detector, segmenter, mesher = engines.detector, engines.segmenter, engines.mesher
    totals: dict[str, float] = {}

    def lap(stage: str, started: float) -> float:
        now = time.perf_counter()
        totals[stage] = totals.get(stage, 0.0) + now - started
        return now

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        make_dataset(src, args.images, args.size, eval_photos(args.eval_dir, tuple(args.sets.split(","))))
        paths = sorted(src.rglob("*.jpg"))
        cpu_started = time.process_time()
        for path in paths:
            # The stages of pipeline.segment and pipeline.working_mask, one by one (keep them in step).
            t = time.perf_counter()
            bgr = read_image(path, config.max_pixels)
            t = lap("read + decode", t)
            small, scale = working_copy(bgr)
            t = lap("working copy (640 px)", t)
            faces = detector.detect(small)
            t = lap("face detection", t)
            faces = with_meshes(mesher, small, faces, MESHED_FACES)
            t = lap("face mesh (faces only)", t)
            if not candidate_faces(faces):
                part = part_of_a_face(small, mesher)
                faces = faces + [part] if part is not None else faces
            t = lap("part of a face (photos without one)", t)
            # As pipeline.segment: without a face, only if the adaptive method asks (then timed inside it).
            person = None if not segmenter else segmenter.probability(small) if whole_faces(faces) else \
                (lambda: segmenter.probability(small))
            t = lap("person segmentation (faces; others inside the adaptive model)", t)
            estimate = adaptive_mask(small, faces, person, config.skin, find_mouths=mesher is None)
            t = lap("adaptive skin model", t)
            mask = clean_mask(estimate.mask, config.cleanup)
            t = lap("clean-up", t)
            mask = fill_lesions(mask, small, estimate.keep_out, estimate.close_up,
                                 estimate.face_area, estimate.hair_like, bins=estimate.bins)
            t = lap("lesions", t)
            if estimate.close_up:
                mask = within_field_of_view(mask, small, estimate.keep_out)
            t = lap("dermoscope's field of view (close-ups)", t)
            mask = full_size_mask(mask, bgr.shape[1], bgr.shape[0])
            t = lap("mask to full size", t)
            skin_jpg = encode_image(outputs.skin_only_image(bgr, mask, "black"), ".jpg")
            t = lap("skin-only image, JPEG", t)
            mask_png = encode_image(outputs.label_mask(mask, 1, "uint8"), ".png")
            t = lap("mask PNG", t)
            preview = outputs.preview_png(mask, 1, mask_png)
            t = lap("preview PNG", t)
            for name, data in (("a.jpg", skin_jpg), ("a.png", mask_png), ("p.png", preview)):
                atomic_write_bytes(out / path.stem / name, data)
            lap("atomic writes", t)
        cpu = time.process_time() - cpu_started
    engines.close()
    print(f"{len(paths)} photos, long side {args.size} px, one thread\n")
    print("| stage | ms per image |\n| --- | ---: |")
    for stage, seconds in totals.items():
        print(f"| {stage} | {seconds / len(paths) * 1000:.1f} |")
    print(f"| **total** | **{sum(totals.values()) / len(paths) * 1000:.1f}** |")
    # CPU time of the process (every thread), steadier than wall-clock time on a busy machine.
    print(f"\nCPU time: {cpu / len(paths) * 1000:.1f} ms per image")


if __name__ == "__main__":
    main()
