"""Where the time of one image goes: per-stage milliseconds, one thread.

    python benchmarks/stages.py --eval-dir ../shared/eval [--images 150] [--size 1280] [--repeat 3]
                                [--mix sets|even] [--sets a,b]

Runs the stages of `pipeline.process_image` one after the other on photos
made like throughput.py's (JPEG, long side --size) with cv2.setNumThreads(1),
--repeat times over all the photos, and prints per stage the median over the
passes of its mean time per image: CPU time (time.process_time: this
process's threads, what another load on the machine disturbs least) and wall
time.  The load average is printed with it.  Needs the MediaPipe models
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

from throughput import MIX, MIXES, eval_photos, make_dataset  # noqa: E402

from skinseg import outputs  # noqa: E402
from skinseg.adaptive import adaptive_mask, candidate_faces, whole_faces  # noqa: E402
from skinseg.atomic import atomic_write_bytes  # noqa: E402
from skinseg.cleanup import clean_mask  # noqa: E402
from skinseg.config import PipelineConfig  # noqa: E402
from skinseg.dataquality import measure  # noqa: E402
from skinseg.dermoscopy import within_field_of_view  # noqa: E402
from skinseg.encoding import encode_image  # noqa: E402
from skinseg.engines import open_engines, plan_models  # noqa: E402
from skinseg.imageio import decode_image  # noqa: E402
from skinseg.lesions import fill_lesions  # noqa: E402
from skinseg.mesh import with_meshes  # noqa: E402
from skinseg.partface import part_of_a_face  # noqa: E402
from skinseg.pipeline import MESHED_FACES, full_size_mask, working_copy  # noqa: E402
from skinseg.reading import read_source  # noqa: E402


def one_pass(paths: list[Path], out: Path, config: PipelineConfig, engines) -> dict[str, tuple[float, float]]:
    """Per stage, (CPU seconds, wall seconds) summed over the photos."""
    detector, segmenter, mesher = engines.detector, engines.segmenter, engines.mesher
    totals: dict[str, tuple[float, float]] = {}
    clock = [time.process_time(), time.perf_counter()]

    def lap(stage: str) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        spent = totals.get(stage, (0.0, 0.0))
        totals[stage] = (spent[0] + cpu - clock[0], spent[1] + wall - clock[1])
        clock[:] = [cpu, wall]

    for path in paths:
        clock[:] = [time.process_time(), time.perf_counter()]
        # The stages of pipeline.process_image, segment and working_mask, one by one (keep them in step).
        source = read_source(path, config.max_pixels)
        lap("read")
        bgr = decode_image(source, config.max_pixels)
        lap("decode")
        small, scale = working_copy(bgr)
        lap("working copy (640 px)")
        measure(bgr, small)
        lap("data checks (pixel digest, hash, focus, exposure)")
        faces = detector.detect(small)
        lap("face detection")
        faces = with_meshes(mesher, small, faces, MESHED_FACES)
        lap("face mesh (faces only)")
        if not candidate_faces(faces):
            part = part_of_a_face(small, mesher)
            faces = faces + [part] if part is not None else faces
        lap("part of a face (photos without one)")
        # As pipeline.segment: without a face, only if the adaptive method asks (then timed inside it).
        person = None if not segmenter else segmenter.probability(small) if whole_faces(faces) else \
            (lambda: segmenter.probability(small))
        lap("person segmentation (faces; others inside the adaptive model)")
        estimate = adaptive_mask(small, faces, person, config.skin, find_mouths=mesher is None)
        lap("adaptive skin model")
        mask = clean_mask(estimate.mask, config.cleanup)
        lap("clean-up")
        mask = fill_lesions(mask, small, estimate.keep_out, estimate.close_up,
                            estimate.face_area, estimate.hair_like, bins=estimate.bins)
        lap("lesions")
        if estimate.close_up:
            mask = within_field_of_view(mask, small, estimate.keep_out)
        lap("dermoscope's field of view (close-ups)")
        if scale != 1.0:
            mask = full_size_mask(mask, bgr.shape[1], bgr.shape[0])
        lap("mask to full size")
        skin_jpg = encode_image(outputs.skin_only_image(bgr, mask, "black"), ".jpg")
        lap("skin-only image, JPEG")
        mask_png = encode_image(outputs.label_mask(mask, 1, "uint8"), ".png")
        lap("mask PNG")
        preview = outputs.preview_png(mask, 1, mask_png)
        lap("preview PNG")
        for name, data in (("a.jpg", skin_jpg), ("a.png", mask_png), ("p.png", preview)):
            atomic_write_bytes(out / path.stem / name, data)
        lap("atomic writes")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("SKINSEG_EVAL_DIR", "../shared/eval")))
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--size", type=int, default=1280)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the photos; medians are reported")
    parser.add_argument("--mix", choices=MIXES, default="sets", help="as throughput.py's --mix")
    parser.add_argument("--sets", default=",".join(MIX),
                        help="eval sets the photos come from (throughput.py's by default)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    config = PipelineConfig()
    engines = open_engines(plan_models(config))
    load_before = os.getloadavg()
    passes = []
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        make_dataset(src, args.images, args.size, eval_photos(args.eval_dir, tuple(args.sets.split(",")), args.mix))
        paths = sorted(src.rglob("*.jpg"))
        for _ in range(args.repeat):
            passes.append(one_pass(paths, out, config, engines))
    engines.close()
    load_after = os.getloadavg()

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    print(f"{len(paths)} photos ({args.mix} mix of {args.sets}), long side {args.size} px, one thread; "
          f"median of {args.repeat} passes; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}\n")
    print("| stage | CPU ms per image | wall ms per image |\n| --- | ---: | ---: |")
    for stage in passes[0]:
        cpu = median([one[stage][0] for one in passes]) / len(paths) * 1000
        wall = median([one[stage][1] for one in passes]) / len(paths) * 1000
        print(f"| {stage} | {cpu:.1f} | {wall:.1f} |")
    cpu = median([sum(c for c, _ in one.values()) for one in passes]) / len(paths) * 1000
    wall = median([sum(w for _, w in one.values()) for one in passes]) / len(paths) * 1000
    print(f"| **total** | **{cpu:.1f}** | **{wall:.1f}** |")


if __name__ == "__main__":
    main()
