"""Re-runs cost what changed: nothing to do ends at once (no worker, no model,
no MediaPipe), an output option re-renders from the stored masks without
looking for faces or skin, and either way the dataset is the one a fresh
build with the same options writes."""

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from test_hardening import dataset_files

import skinseg
from conftest import (
    BLUE_BGR,
    REPO,
    made_build_info,
    make_dataset,
    read_manifest,
    run_cli,
    skin_image,
    with_exif_orientation,
)
from skinseg import models
from skinseg.buildinfo import IgnoredFile
from skinseg.config import CleanupParams, FaceParams, OutputParams, PipelineConfig
from skinseg.discover import divide
from skinseg.engines import plan_models
from skinseg.report import write_report
from skinseg.report_html import FILES_SHOWN
from skinseg.sampling import CLASSES_SHOWN
from skinseg.state import expected_work


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {
        "train/Acne/1.png": skin_image(160, 120),
        "train/Acne/2.jpg": skin_image(150, 110, seed_offset=6),
        "train/Acne/blue.png": np.full((100, 100, 3), BLUE_BGR, np.uint8),     # skipped: no skin
        "valid/Eczema/3.png": skin_image(140, 120, seed_offset=3),
        "test/Eczema/broken.jpg": b"not an image",                             # failed
    })


def build(src, dst, *extra, expect=1):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *extra, expect=expect)


def run_info(dst) -> dict:
    return json.loads((dst / "build.json").read_text())["run"]


@pytest.mark.parametrize("first, then", [
    ((), ("--background", "original")),
    ((), ("--image-format", "png")),
    ((), ("--layout", "train-ready")),
    (("--layout", "train-ready"), ("--layout", "train-ready", "--ignore-band", "1")),
    (("--layout", "train-ready"), ()),         # the original layout again: skin from the kept masks
])
def test_an_output_option_rerenders_without_segmenting_and_equals_a_fresh_build(src, tmp_path, first, then):
    dst = tmp_path / "dst"
    build(src, dst, *first)
    build(src, dst, *then)
    # The written images are re-rendered; only the file that failed is tried
    # again (it always is after a change) and the skipped one stays skipped.
    run = run_info(dst)
    assert run["segmented"] == 1 and run["processed"] == 4 and run["reused"] == 1
    build(src, tmp_path / "fresh", *then)
    assert run_info(tmp_path / "fresh")["segmented"] == 5
    assert dataset_files(dst) == dataset_files(tmp_path / "fresh")


def test_only_the_files_an_option_changes_are_written(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst)
    records = [r for r in read_manifest(dst) if r["status"] == "written"]
    stamps = {kind: {r[kind]: os.stat(dst / r[kind]).st_mtime_ns for r in records} for kind in ("image", "mask")}
    build(src, dst, "--background", "original")
    assert {r: os.stat(dst / r).st_mtime_ns for r in stamps["mask"]} == stamps["mask"]      # not touched
    for record in records:
        image = cv2.imread(str(dst / record["image"]))
        assert (image != 0).all(axis=2).mean() > 0.99                 # the background is back
    build(src, dst, "--background", "original", "--classes", str(write_classes(tmp_path, "Eczema", "Acne")))
    assert run_info(dst)["segmented"] == 1          # the file that failed
    for record in read_manifest(dst):
        if record["status"] == "written":
            mask = cv2.imread(str(dst / record["mask"]), cv2.IMREAD_UNCHANGED)
            assert set(np.unique(mask)) == {0, {"Eczema": 1, "Acne": 2}[record["class_name"]]}
        if record["status"] == "skipped":                              # skipped again, for the same reason
            assert record["class_id"] == 2 and "too little skin" in record["reason"]


def write_classes(tmp_path, *names):
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(("background",) + names) + "\n")
    return path


def test_a_stored_mask_that_cannot_be_used_means_the_image_is_processed(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst)
    victim = next(r for r in read_manifest(dst) if r["status"] == "written")
    (dst / victim["mask"]).write_bytes(b"not a png any more")
    build(src, dst, "--background", "transparent")
    assert run_info(dst)["segmented"] == 2 and run_info(dst)["processed"] == 4     # it and the failed file
    build(src, tmp_path / "fresh", "--background", "transparent")
    assert dataset_files(dst) == dataset_files(tmp_path / "fresh")


def test_names_that_move_onto_each_other_are_processed_in_full(tmp_path):
    # a.jpg and a.png have the same output name, apart when in different splits:
    # find two seeds that swap their splits.
    items = [("A/a.jpg", "A"), ("A/a.png", "A")]
    ratio = (("train", 0.5), ("val", 0.5))
    seeds = {tuple(divide(items, ratio, seed)[s] for s, _ in items): seed for seed in range(50)}
    first, then = seeds[("train", "val")], seeds[("val", "train")]
    src = make_dataset(tmp_path / "src", {"A/a.jpg": skin_image(), "A/a.png": skin_image(seed_offset=9)})
    dst = tmp_path / "dst"
    options = ("--split-ratio", "train=0.5,val=0.5", "--split-seed")
    build(src, dst, *options, str(first), expect=0)
    build(src, dst, *options, str(then), expect=0)
    assert run_info(dst)["segmented"] == 2
    build(src, tmp_path / "fresh", *options, str(then), expect=0)
    assert dataset_files(dst) == dataset_files(tmp_path / "fresh")


def fake_mediapipe(tmp_path) -> dict:
    """An environment where importing mediapipe leaves a mark and fails."""
    package = tmp_path / "fake" / "mediapipe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import os\n"
                                         "with open(os.environ['MEDIAPIPE_MARK'], 'a') as f:\n"
                                         "    f.write(str(os.getpid()) + '\\n')\n"
                                         "raise ImportError('mediapipe is not importable in this test')\n")
    return dict(os.environ, PYTHONPATH=str(tmp_path / "fake"), MEDIAPIPE_MARK=str(tmp_path / "imported"))


def test_nothing_to_do_and_rerendering_import_no_mediapipe(tmp_path, no_models):
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image(seed_offset=i) for i in range(3)})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "2", "--quiet")
    manifest = (dst / "manifest.jsonl").read_bytes()
    env = fake_mediapipe(tmp_path)

    def tool(*extra):
        proc = subprocess.run([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst", str(dst),
                               "--workers", "2", *extra], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc

    proc = tool()                                        # nothing changed: no process imports MediaPipe
    assert "0 processed now, 3 already done" in proc.stdout
    assert run_info(dst) | {"started_at": 0, "elapsed_seconds": 0} == {
        "started_at": 0, "elapsed_seconds": 0, "workers": 0, "processed": 0, "segmented": 0, "reused": 3, "shard": None}
    assert (dst / "manifest.jsonl").read_bytes() == manifest
    proc = tool("--background", "original")             # re-rendered: the workers open no model either
    assert "3 processed now (3 only re-rendered: output options changed)" in proc.stdout
    assert run_info(dst)["processed"] == 3 and run_info(dst)["segmented"] == 0
    assert not (tmp_path / "imported").exists()
    (src / "train/A/new.png").write_bytes((src / "train/A/0.png").read_bytes())
    tool("--background", "original")                     # the check works: a new image needs the models
    assert run_info(dst)["segmented"] == 1 and (tmp_path / "imported").exists()


def test_the_command_line_knows_early_whether_a_build_will_have_work(src, tmp_path):
    # (It then starts the workers' fork server at once, with MediaPipe only if masks are to be made.)
    dst = tmp_path / "dst"
    config = PipelineConfig(face=FaceParams(enabled=False))
    assert expected_work(dst, config) is True                      # nothing built yet
    build(src, dst)
    assert expected_work(dst, config) is None                      # maybe nothing to do
    assert expected_work(dst, dataclasses.replace(config, output=OutputParams(background="original"))) is False
    assert expected_work(dst, dataclasses.replace(config, cleanup=CleanupParams(kernel_size=3))) is True
    (dst / ".skinseg" / "final.json").unlink()                     # an unfinished build
    assert expected_work(dst, config) is True


def test_nothing_to_do_still_notices_what_went_missing_or_changed(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst)
    files = dataset_files(dst)
    for victim in ("report.html", "metadata-train.jsonl", "masks_preview/legend.png", "README.md"):
        (dst / victim).unlink()
        build(src, dst)
        assert dataset_files(dst) == files and run_info(dst)["processed"] == 0, victim
    with open(dst / "manifest.jsonl", "a") as handle:
        handle.write('{"source": "edited by hand"}\n')
    build(src, dst)
    assert dataset_files(dst) == files
    (dst / "classes.txt").write_text("background\nedited by hand\n")
    info = json.loads((dst / "build.json").read_text())
    (dst / "build.json").write_text(json.dumps({**info, "classes": ["edited by hand"]}))
    build(src, dst)
    assert dataset_files(dst) == files and run_info(dst)["processed"] == 0
    thumbnail = next((dst / "report" / "thumbs").iterdir())
    thumbnail.unlink()
    build(src, dst)
    assert thumbnail.is_file()
    build(src, dst, "--retry-failed")
    assert run_info(dst)["processed"] == 1                                   # the broken file, tried again


def test_a_build_with_nothing_to_do_reads_its_records_only_when_asked(src, tmp_path):
    config = skinseg.BuildConfig(src, tmp_path / "dst", progress=False)
    first = skinseg.build_dataset(config)
    again = skinseg.build_dataset(config)
    assert again.processed == 0 and again.loaded_records is None
    assert again.counts() == first.counts() == {"written": 3, "skipped": 1, "failed": 1}
    assert again.by_split == first.by_split and again.failed == first.failed == [
        ("test/Eczema/broken.jpg", first.records[0].reason)]
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in first.records]


def test_model_digests_are_remembered_so_a_rerun_opens_no_model_file(model_dir, tmp_path, monkeypatch):
    own = tmp_path / "face.tflite"
    own.write_bytes((model_dir / models.FACE_FULL_RANGE.filename).read_bytes())
    config = PipelineConfig(face=FaceParams(model_path=str(own)))
    plans = plan_models(config)
    read = []
    digest = models.file_digest

    def reading(path):
        read.append(path)
        return digest(path)

    def no_peeking(*_args):
        raise AssertionError("a model file was opened")

    monkeypatch.setattr(models, "file_digest", reading)
    monkeypatch.setattr(models, "is_model_file", no_peeking)
    assert plan_models(config) == plans and read == []
    # A model file that changed since is checked and read again.
    monkeypatch.undo()
    monkeypatch.setattr(models, "file_digest", reading)
    os.utime(own, ns=(own.stat().st_atime_ns, own.stat().st_mtime_ns + 10**9))
    assert plan_models(config) == plans and read == [own]


def test_the_report_stays_small_whatever_the_number_of_images_and_classes(tmp_path):
    from skinseg.records import Record

    classes = [f"class {i}" for i in range(CLASSES_SHOWN + 20)]
    records = [Record(f"train/{name}/{k}.jpg", "train", name, i + 1, "failed", reason=f"broken {k}",
                      fingerprint="0" * 16)
               for i, name in enumerate(classes) for k in range(2)]
    info = made_build_info(classes, ignored_files=tuple(IgnoredFile(f"x/{k}.txt", "not an image")
                                                        for k in range(3 * FILES_SHOWN)))
    (tmp_path / "dst").mkdir()
    write_report(tmp_path / "dst", tmp_path, records, info)
    page = (tmp_path / "dst" / "report.html").read_text()
    assert f"… and {len(records) - FILES_SHOWN} more" in page and f"… and {2 * FILES_SHOWN} more" in page
    assert "… and 20 more classes" in page
    assert page.count("broken ") <= FILES_SHOWN + 2 and len(page) < 300_000


def test_a_whole_photo_kept_with_its_background_is_the_source_file_unchanged(tmp_path):
    # Compressing a JPEG again only loses detail: the image file is the source
    # file, byte for byte, when it is the whole photo kept as it is; a photo
    # that EXIF turns upright is written upright, re-encoded.
    plain = cv2.imencode(".jpg", skin_image(150, 110))[1].tobytes()
    src = make_dataset(tmp_path / "src", {"train/Acne/plain.jpg": plain,
                                          "train/Acne/turned.jpg": with_exif_orientation(plain, 6)})
    for dst, first in ((tmp_path / "fresh", ()), (tmp_path / "rerendered", ("--background", "black"))):
        if first:
            build(src, dst, "--no-crop", *first, expect=0)
        build(src, dst, "--no-crop", "--background", "original", expect=0)
        images = {record["source"]: dst / record["image"] for record in read_manifest(dst)}
        assert images["train/Acne/plain.jpg"].read_bytes() == plain
        turned = cv2.imread(str(images["train/Acne/turned.jpg"]), cv2.IMREAD_UNCHANGED)
        assert images["train/Acne/turned.jpg"].read_bytes() != with_exif_orientation(plain, 6)
        assert turned.shape[:2] == (150, 110)                  # upright: portrait
    assert run_info(tmp_path / "rerendered")["segmented"] == 0
    assert dataset_files(tmp_path / "fresh") == dataset_files(tmp_path / "rerendered")
