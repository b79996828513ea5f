"""The real CLI on small datasets made in temp folders."""

import json
import os
import re

import cv2
import numpy as np
import pytest

from conftest import BLUE_BGR, copy_eval_photos, make_dataset, read_manifest, run_cli, skin_image, tree_digest
from skinseg.labels import class_color

MANIFEST_KEYS = {"source", "split", "class_name", "class_id", "status", "reason", "image", "mask", "preview",
                 "skin_mask", "size", "crop", "face", "skin_fraction", "body_skin", "fingerprint", "segmentation",
                 "rendering", "checks"}


@pytest.fixture
def small_src(tmp_path):
    img = skin_image(120, 100)
    return make_dataset(tmp_path / "src", {
        "train/Acne/1.jpg": img,
        "train/Normal Skin/1.jpg": skin_image(120, 100, seed_offset=5),
        "train/Normal Skin/2.png": img,
        "valid/Acne/a.jpg": img,
        "test/Rosacea/only_in_test.jpg": img,
    })


def build(src, dst, *extra, expect=0):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", *extra, expect=expect)


def test_full_build_outputs_and_records(small_src, tmp_path):
    dst = tmp_path / "dst"
    before = tree_digest(small_src)
    build(small_src, dst)
    assert tree_digest(small_src) == before                     # source untouched

    assert (dst / "classes.txt").read_text() == "background\nAcne\nNormal Skin\nRosacea\n"
    records = read_manifest(dst)
    assert [r["source"] for r in records] == sorted(r["source"] for r in records)
    assert len(records) == 5 and all(set(r) == MANIFEST_KEYS for r in records)
    by_source = {r["source"]: r for r in records}
    rosacea = by_source["test/Rosacea/only_in_test.jpg"]
    assert rosacea["class_id"] == 3 and rosacea["status"] == "written"

    for r in records:
        assert r["status"] == "written" and r["reason"] is None
        assert r["size"] == [120, 100] and r["crop"] == [0, 0, 120, 100]
        mask = cv2.imread(str(dst / r["mask"]), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.ndim == 2 and mask.shape == (100, 120)
        assert set(np.unique(mask)) == {0, r["class_id"]}
        assert abs((mask > 0).mean() - r["skin_fraction"]) < 1e-4
        image = cv2.imread(str(dst / r["image"]))
        assert image.shape == (100, 120, 3)
        # Non-skin removed (JPEG ringing leaves faint values next to edges).
        assert np.percentile(image[mask == 0], 99) <= 8
        preview = cv2.imread(str(dst / r["preview"]))
        assert tuple(preview[50, 60]) == class_color(r["class_id"])
        assert r["image"].startswith(f"images/{r['split']}/") and r["mask"].endswith(".png")
        stem = os.path.splitext(os.path.basename(r["image"]))[0]
        assert os.path.basename(r["mask"]) == os.path.basename(r["preview"]) == stem + ".png"
    # Same file name in two classes: two different outputs.
    assert by_source["train/Acne/1.jpg"]["mask"] != by_source["train/Normal Skin/1.jpg"]["mask"]
    assert (dst / "masks_preview" / "legend.png").is_file()

    info = json.loads((dst / "build.json").read_text())
    assert info["tool"] == "skinseg" and info["classes"] == ["background", "Acne", "Normal Skin", "Rosacea"]
    assert info["counts"]["total"] == {"written": 5, "skipped": 0, "failed": 0}
    assert info["counts"]["by_split"]["train"]["written"] == 3
    assert info["counts"]["by_split_and_class"]["test"]["Rosacea"]["written"] == 1
    assert info["parameters"]["skin"]["hsv_min"] == [0, 40, 60]
    assert info["run"]["elapsed_seconds"] > 0 and info["mask_dtype"] == "uint8"
    assert not (dst / ".skinseg" / "journal.jsonl").exists()


def test_rerun_reuses_and_changed_parameters_rebuild(small_src, tmp_path):
    dst = tmp_path / "dst"
    build(small_src, dst)
    mtimes = {p: p.stat().st_mtime_ns for p in (dst / "masks").rglob("*.png")}
    manifest = (dst / "manifest.jsonl").read_bytes()
    build(small_src, dst)
    info = json.loads((dst / "build.json").read_text())
    assert info["run"]["processed"] == 0 and info["run"]["reused"] == 5
    assert {p: p.stat().st_mtime_ns for p in (dst / "masks").rglob("*.png")} == mtimes
    assert (dst / "manifest.jsonl").read_bytes() == manifest

    # A new image: only it is processed.
    cv2.imwrite(str(small_src / "train/Acne/new.jpg"), skin_image(120, 100))
    build(small_src, dst)
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 1

    # A changed threshold affects every image.
    build(small_src, dst, "--kernel-size", "3")
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 6

    build(small_src, dst, "--kernel-size", "3", "--overwrite")
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 6


def test_deleted_output_is_rebuilt(small_src, tmp_path):
    dst = tmp_path / "dst"
    build(small_src, dst)
    victim = dst / read_manifest(dst)[0]["preview"]
    victim.unlink()
    build(small_src, dst)
    assert victim.is_file()
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 1


def test_corrupt_file_among_good_ones(small_src, tmp_path):
    good = (small_src / "train/Acne/1.jpg").read_bytes()
    (small_src / "train/Acne/broken.jpg").write_bytes(good[: len(good) // 3])
    (small_src / "train/Acne/page.jpg").write_bytes(b"<html><body>Not found</body></html>")
    dst = tmp_path / "dst"
    result = build(small_src, dst, expect=1)
    records = {r["source"]: r for r in read_manifest(dst)}
    assert records["train/Acne/broken.jpg"]["status"] == "failed"
    assert "truncated" in records["train/Acne/broken.jpg"]["reason"]
    assert "HTML" in records["train/Acne/page.jpg"]["reason"]
    assert records["train/Acne/page.jpg"]["image"] is None
    assert sum(r["status"] == "written" for r in records.values()) == 5
    info = json.loads((dst / "build.json").read_text())
    assert info["counts"]["total"]["failed"] == 2
    assert result.exit_code == 1


def test_summary_names_failures(small_src, tmp_path):
    (small_src / "train/Acne/empty.jpg").write_bytes(b"")
    result = run_cli("--src", small_src, "--dst", tmp_path / "dst", "--workers", "1", expect=1)
    assert "5 written, 0 skipped, 1 failed" in result.output
    assert "train/Acne/empty.jpg: the file is empty" in result.output


def test_too_little_skin_is_skipped_and_recorded(tmp_path):
    blue = np.full((80, 80, 3), BLUE_BGR, np.uint8)
    src = make_dataset(tmp_path / "src", {"train/A/blue.jpg": blue, "train/A/skin.jpg": skin_image()})
    dst = tmp_path / "dst"
    build(src, dst)
    records = {r["source"]: r for r in read_manifest(dst)}
    skipped = records["train/A/blue.jpg"]
    assert skipped["status"] == "skipped" and "too little skin" in skipped["reason"]
    assert skipped["mask"] is None and skipped["skin_fraction"] == 0.0
    assert not list((dst / "masks").rglob("A__blue*"))


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_refuses_dst_overlapping_src(small_src, where):
    dst = {"same": small_src, "inside": small_src / "out", "parent": small_src.parent}[where]
    before = tree_digest(small_src)
    result = build(small_src, dst, expect=2)
    assert "--src" in result.output and "--dst" in result.output
    assert tree_digest(small_src) == before


def test_refuses_foreign_non_empty_dst_unless_overwrite(small_src, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "thesis.docx").write_bytes(b"precious")
    result = build(small_src, dst, expect=2)
    assert "not a skinseg build" in result.output
    build(small_src, dst, "--overwrite")
    assert (dst / "thesis.docx").read_bytes() == b"precious"     # never deleted


def test_usage_errors_exit_2(small_src, tmp_path):
    assert "outside 0..179" in build(small_src, tmp_path / "d", "--hsv-min", "200,0,0", expect=2).output
    assert "three" in build(small_src, tmp_path / "d", "--ycrcb-max", "1,2", expect=2).output
    assert "above" in build(small_src, tmp_path / "d", "--ycrcb-min", "0,200,0", expect=2).output
    assert "not an existing folder" in build(tmp_path / "nope", tmp_path / "d", expect=2).output


def test_hue_wrap_is_accepted(small_src, tmp_path):
    build(small_src, tmp_path / "dst", "--hsv-min", "170,40,60", "--hsv-max", "25,255,255")
    assert all(r["status"] == "written" for r in read_manifest(tmp_path / "dst"))


def test_backgrounds(small_src, tmp_path):
    build(small_src, tmp_path / "t", "--background", "transparent")
    r = read_manifest(tmp_path / "t")[0]
    assert r["image"].endswith(".png")
    rgba = cv2.imread(str(tmp_path / "t" / r["image"]), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(tmp_path / "t" / r["mask"]), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4 and ((rgba[..., 3] > 0) == (mask > 0)).all()

    build(small_src, tmp_path / "p", "--image-format", "png")
    r = read_manifest(tmp_path / "p")[0]
    lossless = cv2.imread(str(tmp_path / "p" / r["image"]))
    mask = cv2.imread(str(tmp_path / "p" / r["mask"]), cv2.IMREAD_UNCHANGED)
    assert lossless[mask == 0].max() == 0 and lossless[mask > 0].min() > 0

    build(small_src, tmp_path / "o", "--background", "original", "--image-format", "png")
    r = read_manifest(tmp_path / "o")[0]
    kept = cv2.imread(str(tmp_path / "o" / r["image"]))
    assert (kept == cv2.imread(str(small_src / r["source"]))).all()


def test_class_file_keeps_ids(small_src, tmp_path):
    pinned = tmp_path / "classes.txt"
    pinned.write_text("background\nRosacea\nAcne\n")
    build(small_src, tmp_path / "dst", "--classes", pinned)
    assert (tmp_path / "dst/classes.txt").read_text() == "background\nRosacea\nAcne\nNormal Skin\n"
    ids = {r["class_name"]: r["class_id"] for r in read_manifest(tmp_path / "dst")}
    assert ids == {"Rosacea": 1, "Acne": 2, "Normal Skin": 3}


def test_more_than_255_classes_gives_uint16_masks(tmp_path):
    tiny = skin_image(24, 24)
    src = make_dataset(tmp_path / "src", {f"train/c{i:03d}/x.png": tiny for i in range(260)})
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face",
                     "--kernel-size", "0")
    assert "uint16" in result.output
    last = read_manifest(tmp_path / "dst")[-1]
    mask = cv2.imread(str(tmp_path / "dst" / last["mask"]), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint16 and set(np.unique(mask)) == {0, 260}


def test_several_workers_give_identical_outputs(small_src, tmp_path):
    build(small_src, tmp_path / "one")
    run_cli("--src", small_src, "--dst", tmp_path / "two", "--workers", "2", "--quiet")
    for sub in ("images", "masks", "masks_preview"):
        assert tree_digest(tmp_path / "one" / sub) == tree_digest(tmp_path / "two" / sub)
    assert (tmp_path / "one/manifest.jsonl").read_bytes() == (tmp_path / "two/manifest.jsonl").read_bytes()


def test_worker_crash_fails_only_that_image(small_src, tmp_path, monkeypatch):
    monkeypatch.setenv("SKINSEG_TEST_FAULTS", "crash:Normal Skin/2.png")
    result = run_cli("--src", small_src, "--dst", tmp_path / "dst", "--workers", "2", "--quiet", expect=1)
    records = {r["source"]: r for r in read_manifest(tmp_path / "dst")}
    assert records["train/Normal Skin/2.png"]["status"] == "failed"
    assert "crashed" in records["train/Normal Skin/2.png"]["reason"]
    assert sum(r["status"] == "written" for r in records.values()) == 4
    assert result.exit_code == 1


def test_unexpected_exception_fails_only_that_image(small_src, tmp_path, monkeypatch):
    monkeypatch.setenv("SKINSEG_TEST_FAULTS", "raise:valid/Acne/a.jpg")
    build(small_src, tmp_path / "dst", expect=1)
    records = {r["source"]: r for r in read_manifest(tmp_path / "dst")}
    assert "internal error" in records["valid/Acne/a.jpg"]["reason"]
    assert sum(r["status"] == "written" for r in records.values()) == 4


def test_opencv_fallback_when_no_model(small_src, tmp_path, no_models):
    result = run_cli("--src", small_src, "--dst", tmp_path / "dst", "--workers", "1")
    assert "using OpenCV's Haar face detector" in result.output
    assert json.loads((tmp_path / "dst/build.json").read_text())["models"]["face_detector"]["status"] == "fallback"
    result = build(small_src, tmp_path / "dst2", "--face-detector", "mediapipe", expect=2)
    assert "face detector not found" in result.output


def test_real_face_photos_are_cropped_to_the_face(eval_dir, model_dir, tmp_path):
    src = tmp_path / "src"
    copy_eval_photos(eval_dir, "pratheepan_face", 4, src / "train" / "Face")
    dst = tmp_path / "dst"
    before = tree_digest(src)
    build(src, dst)
    assert tree_digest(src) == before
    records = read_manifest(dst)
    with_face = [r for r in records if r["face"]]
    assert len(with_face) >= 3
    for r in with_face:
        x0, y0, x1, y1 = r["crop"]
        fx0, fy0, fx1, fy1 = r["face"]["box"]
        assert x0 <= fx0 and y0 <= fy0 and fx1 <= x1 and fy1 <= y1          # margin around the face
        assert (x1 - x0) * (y1 - y0) > (fx1 - fx0) * (fy1 - fy0)
        assert r["face"]["detector"] == "mediapipe" and r["face"]["score"] >= 0.5
        if r["status"] == "written":
            mask = cv2.imread(str(dst / r["mask"]), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (y1 - y0, x1 - x0)

    build(src, tmp_path / "nocrop", "--no-crop")
    for r in read_manifest(tmp_path / "nocrop"):
        assert r["crop"] == [0, 0, *r["size"]]
    assert sum(bool(r["face"]) for r in read_manifest(tmp_path / "nocrop")) == len(with_face)


def test_bundled_example_builds(tmp_path):
    from conftest import REPO

    src = REPO / "examples" / "dataset_original"
    before = tree_digest(src)
    build(src, tmp_path / "dst")
    assert tree_digest(src) == before
    records = read_manifest(tmp_path / "dst")
    assert len(records) == 11 and all(r["status"] == "written" for r in records)
    sideways = next(r for r in records if r["source"] == "valid/Normal Skin/1.jpg")
    assert sideways["size"] == [512, 512]


def test_forgiving_input_through_the_cli(tmp_path):
    img = skin_image(120, 100)
    src = make_dataset(tmp_path / "src", {"Train/Acne/1.jpg": img, "Validation/Acne/2.jpg": img,
                                          "Train/stray.jpg": img, "extra/Acne/3.jpg": img})
    refused = build(src, tmp_path / "dst", expect=2)
    assert "'extra'" in refused.output and "--skip-unknown-folders" in refused.output
    assert not (tmp_path / "dst").exists()
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--skip-unknown-folders")
    assert "1 image outside any class folder not used (e.g. Train/stray.jpg)" in result.output
    assert {r["split"] for r in read_manifest(tmp_path / "dst")} == {"train", "validation"}
    hint = build(src / "Train", tmp_path / "d2", expect=2)
    assert "is itself a split folder" in hint.output


def test_class_folders_only_with_split_ratio(tmp_path):
    src = make_dataset(tmp_path / "src", {f"{c}/{i}.jpg": skin_image(60, 60) for c in ("A", "B") for i in range(5)})
    assert "--split-ratio train=1" in build(src, tmp_path / "dst", expect=2).output
    build(src, tmp_path / "dst", "--split-ratio", "train=0.6,test=0.4", "--split-seed", "3")
    records = read_manifest(tmp_path / "dst")
    assert sorted(r["split"] for r in records) == ["test"] * 4 + ["train"] * 6
    assert all(r["image"].startswith(f"images/{r['split']}/") for r in records)
    for bad in ("train=0.5", "bogus=1", "train=x", "train=0.5,train=0.5"):
        build(src, tmp_path / "d2", "--split-ratio", bad, expect=2)      # run_cli asserts the exit code


def test_the_summary_aligns_its_splits_and_counts_classes_without_background(tmp_path):
    """Issue 21: `test   24 written` under `validation 24 written` (padded to 6)."""
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "validation/A/2.png": skin_image(),
                                          "test/B/3.png": skin_image()})
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face")
    rows = [line for line in result.output.splitlines() if re.match(r"  (train|validation|test) +\d+ written", line)]
    assert len(rows) == 3 and len({row.index(" written") - len(row.split()[1]) for row in rows}) == 1, result.output
    assert "classes: 2 and background -> " in result.output
