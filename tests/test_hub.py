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
