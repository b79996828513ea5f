"""Split names (issue 21): the recognised aliases become train / validation /
test by default, `--split-names as-is` keeps the folders' names, and a
dataset built before the change moves its files to the new names on a
re-run, exactly as a clean build writes them."""

import json

import numpy as np
import pytest
from test_hardening import dataset_files

from conftest import BLUE_BGR, make_dataset, read_manifest, run_cli, skin_image


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {
        "train/Acne/1.png": skin_image(160, 120),
        "train/Acne/blue.png": np.full((100, 100, 3), BLUE_BGR, np.uint8),     # skipped: no skin
        "valid/Acne/2.png": skin_image(150, 110, seed_offset=6),
        "valid/Eczema/3.png": skin_image(140, 120, seed_offset=3),
        "Testing/Eczema/4.png": skin_image(130, 100, seed_offset=2),
    })


def build(src, dst, *extra, expect=0):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *extra, expect=expect)


def test_aliases_become_the_standard_splits_and_as_is_keeps_them(src, tmp_path):
    build(src, tmp_path / "standard")
    assert {r["split"] for r in read_manifest(tmp_path / "standard")} == {"train", "validation", "test"}
    assert sorted(p.name for p in (tmp_path / "standard/images").iterdir()) == ["test", "train", "validation"]
    build(src, tmp_path / "as-is", "--split-names", "as-is")
    assert {r["split"] for r in read_manifest(tmp_path / "as-is")} == {"train", "valid", "testing"}
    assert (tmp_path / "as-is/metadata-valid.jsonl").is_file()


@pytest.mark.parametrize("layout", ["original", "train-ready"])
def test_a_build_from_before_the_change_moves_its_files_to_the_new_names(src, tmp_path, layout):
    """A dataset built when the folders' names were the splits (`as-is`),
    built again with the new default: images/valid/ becomes
    images/validation/ by re-rendering from the stored masks (no face or skin
    looked for again), and the dataset is byte for byte a clean build's."""
    dst = tmp_path / "dst"
    build(src, dst, "--layout", layout, "--split-names", "as-is")
    assert (dst / "images/valid").is_dir() and (dst / "metadata-valid.jsonl").is_file()
    build(src, dst, "--layout", layout)
    run = json.loads((dst / "build.json").read_text())["run"]
    assert run["segmented"] == 0 and run["processed"] == 3 and run["reused"] == 2     # train/ stays as it was
    for gone in ("images/valid", "masks/valid", "masks_preview/valid", "skin_masks/valid", ".skinseg/skin/valid",
                 "images/testing", "metadata-valid.jsonl", "metadata-testing.jsonl"):
        assert not (dst / gone).exists(), gone
    build(src, tmp_path / "clean", "--layout", layout)
    assert dataset_files(dst) == dataset_files(tmp_path / "clean")


def test_two_folders_of_one_split_stop_the_build_naming_both(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "val/A/2.png": skin_image(),
                                          "Dev/A/3.png": skin_image()})
    result = build(src, tmp_path / "dst", expect=2)
    assert "the folders 'Dev' and 'val'" in result.output and "are both split 'validation'" in result.output
    assert "--split-names as-is" in result.output and not (tmp_path / "dst").exists()
    build(src, tmp_path / "dst", "--split-names", "as-is")
    assert {r["split"] for r in read_manifest(tmp_path / "dst")} == {"train", "val", "dev"}


def test_split_ratio_names_take_the_standard_names(tmp_path):
    src = make_dataset(tmp_path / "src", {f"A/{i}.png": skin_image(seed_offset=i) for i in range(4)})
    build(src, tmp_path / "dst", "--split-ratio", "train=0.5,val=0.5")
    assert {r["split"] for r in read_manifest(tmp_path / "dst")} == {"train", "validation"}
    build(src, tmp_path / "as-is", "--split-ratio", "train=0.5,val=0.25,valid=0.25", "--split-names", "as-is")
    assert {r["split"] for r in read_manifest(tmp_path / "as-is")} == {"train", "val", "valid"}
