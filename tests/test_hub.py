"""Hugging Face: load_dataset(dst) on a real build, with the real `datasets` library, offline."""

import json

import cv2
import numpy as np
import pytest

from conftest import make_dataset, read_manifest, run_cli, skin_image
from skinseg.hub import CARD_MARK

datasets = pytest.importorskip("datasets", reason="the datasets library is not installed (requirements-dev.txt)")


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image(160, 120),
                                           "train/Normal Skin/2.png": skin_image(120, 100),
                                           "Validation/Acne/3.png": skin_image(100, 100),
                                           "train/Acne/blue.png": np.full((60, 60, 3), (200, 60, 20), np.uint8)})


def load(dst):
    return datasets.load_dataset(str(dst), cache_dir=str(dst.parent / "hf-cache"))


@pytest.mark.parametrize("layout", ["original", "train-ready"])
def test_load_dataset_pairs_image_mask_and_class(src, tmp_path, layout):
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--layout", layout)
    loaded = load(dst)
    assert sorted(loaded) == ["train", "validation"]
    train = loaded["train"]
    written = {r["source"]: r for r in read_manifest(dst) if r["status"] == "written" and r["split"] == "train"}
    assert train.num_rows == len(written) == 2                           # the skipped blue image is not there
    expected = {"image", "mask", "class_id", "class_name", "source"}
    assert set(train.features) == expected | ({"skin_mask"} if layout == "train-ready" else set())
    for row in train:
        record = written[row["source"]]
        mask = cv2.imread(str(dst / record["mask"]), cv2.IMREAD_UNCHANGED)
        assert (np.array(row["mask"]) == mask).all()
        assert row["image"].size == (mask.shape[1], mask.shape[0])
        assert row["class_id"] == record["class_id"] and row["class_name"] == record["class_name"]
    card = (dst / "README.md").read_text()
    meta = card.split("---\n")[1]
    assert CARD_MARK in card and "task_ids: [\"semantic-segmentation\"]" in meta
    assert json.loads(meta.split("id2label: ")[1].splitlines()[0])["2"] == "Normal Skin"
    assert f'"layout": "{layout}"' in meta and '"version"' in meta


def test_a_foreign_readme_is_left_alone_and_stale_metadata_removed(src, tmp_path):
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    assert (dst / "metadata-validation.jsonl").is_file()
    (src / "Validation/Acne/3.png").unlink()
    (src / "Validation/Acne").rmdir()
    (src / "Validation").rmdir()
    (dst / "README.md").write_text("# my notes\n")
    result = run_cli("--src", src, "--dst", dst, "--workers", "1", "--no-face", check_src=False)
    assert (dst / "README.md").read_text() == "# my notes\n"
    assert "not a skinseg dataset card" in result.output
    assert not (dst / "metadata-validation.jsonl").exists() and (dst / "metadata-train.jsonl").is_file()


def test_the_class_is_a_class_label_and_the_label_maps_are_written(src, tmp_path):
    """Issue 21: class_id was a plain int64 (the card's features alone are not
    applied to a folder with metadata files), and id2label sat only in the card."""
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    train = load(dst)["train"]
    class_id = train.features["class_id"]
    assert isinstance(class_id, datasets.ClassLabel)
    assert class_id.names == (dst / "classes.txt").read_text().splitlines() == ["background", "Acne", "Normal Skin"]
    for row in train:
        assert class_id.int2str(row["class_id"]) == row["class_name"]
    assert json.loads((dst / "id2label.json").read_text()) == {"0": "background", "1": "Acne", "2": "Normal Skin"}
    assert json.loads((dst / "label2id.json").read_text()) == {"background": 0, "Acne": 1, "Normal Skin": 2}
    card = (dst / "README.md").read_text()
    assert "Splits: `train`, `validation`, named as Hugging Face expects" in card
    assert "Validation/ is" not in card                  # Validation/ is validation: nothing renamed


def test_the_card_says_which_folders_became_which_split(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "valid/A/2.png": skin_image(),
                                          "Testing/A/3.png": skin_image()})
    run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--quiet", "--no-face")
    card = (tmp_path / "dst" / "README.md").read_text()
    assert "valid/ is `validation`" in card and "Testing/ is `test`" in card
    assert sorted(load(tmp_path / "dst")) == ["test", "train", "validation"]
    run_cli("--src", src, "--dst", tmp_path / "as-is", "--workers", "1", "--quiet", "--no-face",
            "--split-names", "as-is")
    assert "named as the source's split folders (`--split-names as-is`)" in (tmp_path / "as-is/README.md").read_text()
    assert sorted(load(tmp_path / "as-is")) == ["testing", "train", "valid"]


def test_another_tools_label_map_is_never_replaced(src, tmp_path):
    """id2label.json and label2id.json follow the rules of classes.txt: a
    first build into a folder holding another tool's is refused, also with
    --overwrite; a build's own are rewritten."""
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "label2id.json").write_text('{"cat": 0}\n')
    result = run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--overwrite", expect=2)
    assert "label2id.json" in result.output and "which skinseg did not write" in result.output
    assert (dst / "label2id.json").read_text() == '{"cat": 0}\n'
