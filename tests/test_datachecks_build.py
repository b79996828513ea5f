"""The leakage and data-quality checks through real builds: what build.json,
report.html and the summary say, and that re-runs keep the measures the
workers took (shards: test_shard_sample compares a sharded build's
build.json and report with one run's, duplicates across splits included)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
from test_dataquality import scene
from test_report import Page, assert_targets_exist

from conftest import REPO, make_dataset, read_manifest, run_cli
from skinseg.buildinfo import read_build_info

# --min-skin-fraction 0: the synthetic scenes have little skin, and only written images are checked.
OPTIONS = ("--workers", "1", "--no-face", "--min-skin-fraction", "0")


def jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def leaky_dataset(root):
    photo, other = scene(11), scene(12)
    return make_dataset(root, {
        "train/A/portrait.png": photo,
        "test/A/portrait copy.bmp": photo,                              # the same pixels, in the test split
        "train/A/other.jpg": jpeg(other),
        "train/B/other small.jpg": jpeg(cv2.resize(other, (320, 240), interpolation=cv2.INTER_AREA), 75),
        "train/B/blurred.png": cv2.GaussianBlur(scene(13), (0, 0), 4),
        "valid/A/dark.png": (scene(14) * 0.15).astype(np.uint8),
        "valid/B/fine.png": scene(15),
        "test/B/fine.png": scene(16),
    })


def test_duplicates_and_bad_photos_are_in_build_json_the_report_and_the_summary(tmp_path):
    src = leaky_dataset(tmp_path / "src")
    dst = tmp_path / "dst"
    result = run_cli("--src", src, "--dst", dst, *OPTIONS)
    checks = json.loads((dst / "build.json").read_text())["data_checks"]
    assert (checks["checked"], checks["unchecked"]) == (8, 0)
    groups = [(g["where"], g["kind"], [i["source"] for i in g["images"]]) for g in checks["duplicates"]]
    assert groups == [("across-splits", "exact", ["test/A/portrait copy.bmp", "train/A/portrait.png"]),
                      ("across-classes", "near", ["train/A/other.jpg", "train/B/other small.jpg"])]
    assert checks["duplicates"][0]["splits"] == ["test", "train"]
    assert [f["source"] for f in checks["blurry"]] == ["train/B/blurred.png"]
    assert [f["source"] for f in checks["dark"]] == ["valid/A/dark.png"]
    assert checks["overexposed"] == []
    assert read_build_info(dst).data_checks.groups("across-splits")[0].images[1].split == "train"

    # Never acted on: every image is in the dataset.
    assert all(r["status"] == "written" for r in read_manifest(dst))
    # Each kind of finding is one line of the summary.
    out = result.output
    assert ("  1 photo appears in two splits (test/train): they inflate test scores; listed in build.json and "
            "report.html") in out
    assert "  1 photo appears in two classes (A/B): listed in build.json and report.html" in out
    assert "  1 photo is very blurry: listed in build.json and report.html" in out
    assert "  1 photo is very dark: listed in build.json and report.html" in out
    assert "more than once in one class" not in out and "over-exposed" not in out

    text = (dst / "report.html").read_text()
    page = Page(text)
    assert_targets_exist(dst, page)
    # Near the top (before the models), photos in two splits first.
    assert text.index('id="data-checks"') < text.index('id="models"')
    assert text.index('id="dup-across-splits"') < text.index('id="dup-across-classes"') \
        < text.index('id="dup-within-class"') < text.index('id="flag-blurry"')
    assert "test/A/portrait copy.bmp" in page.tables["duplicates-across-splits"][1][2]
    assert "same pixels" in page.tables["duplicates-across-splits"][1][1]
    assert page.tables["flagged-dark"][1][:3] == ["valid/A/dark.png", "validation", "A"]
    # With their thumbnails: the whole photo.
    assert {s for section, kind, s, _ in page.shown if section == "dup-across-splits" and kind == "photo"} == {
        "train/A/portrait.png", "test/A/portrait copy.bmp"}


def test_rerenders_and_reruns_keep_the_measures_the_workers_took(tmp_path):
    src = leaky_dataset(tmp_path / "src")
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, *OPTIONS, "--quiet")
    measured = {r["source"]: r["checks"] for r in read_manifest(dst)}
    before = json.loads((dst / "build.json").read_text())["data_checks"]
    assert all(measured.values())

    # Nothing to do: the summary still names the findings (from build.json; no record is read).
    result = run_cli("--src", src, "--dst", dst, *OPTIONS)
    assert "0 processed now" in result.output and "1 photo appears in two splits (test/train)" in result.output
    # Output options only: the files are rendered again from the stored masks, the measures kept.
    result = run_cli("--src", src, "--dst", dst, *OPTIONS, "--layout", "train-ready")
    assert "8 only re-rendered" in result.output
    assert {r["source"]: r["checks"] for r in read_manifest(dst)} == measured
    assert json.loads((dst / "build.json").read_text())["data_checks"] == before


def test_records_from_before_the_checks_are_counted_as_unchecked(tmp_path):
    src = leaky_dataset(tmp_path / "src")
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, *OPTIONS, "--quiet")
    # As a build made before the checks existed left it: no "checks" in its records.
    rows = read_manifest(dst)
    (dst / "manifest.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "checks"}) + "\n"
                                                for r in rows))
    result = run_cli("--src", src, "--dst", dst, *OPTIONS)
    assert "8 already done" in result.output
    assert ("8 written images were not checked for duplicates and quality: their records come from a build made "
            "before these checks (--overwrite checks them)") in result.output
    checks = json.loads((dst / "build.json").read_text())["data_checks"]
    assert (checks["checked"], checks["unchecked"], checks["duplicates"]) == (0, 8, [])
    result = run_cli("--src", src, "--dst", dst, *OPTIONS, "--overwrite")
    assert "not checked" not in result.output and "1 photo appears in two splits" in result.output


def test_the_bundled_example_has_no_duplicates_and_no_bad_photos(tmp_path):
    """The example once had the same portrait in train and test (and in train
    and valid): examples/make_examples.py now frames valid and test apart."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "examples" / "dataset_original", src)
    result = run_cli("--src", src, "--dst", tmp_path / "dst", *OPTIONS)
    checks = json.loads((tmp_path / "dst" / "build.json").read_text())["data_checks"]
    assert checks["checked"] == 11
    assert checks["duplicates"] == [] and not any(checks[flag] for flag in ("blurry", "dark", "overexposed"))
    assert "photo appears" not in result.output
