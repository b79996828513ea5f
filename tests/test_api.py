"""The public Python API: build() and Segmenter, and the loader that reads a build back."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import skinseg
from conftest import REPO, made_build_info, make_dataset, read_manifest, skin_image
from skinseg import BuildConfig, FaceParams, OutputParams, PipelineConfig, Segmenter, SkinDataset, collate


def test_import_is_cheap_and_the_api_is_exported():
    code = ("import sys, skinseg; assert 'cv2' not in sys.modules and 'numpy' not in sys.modules; "
            "from skinseg import build_dataset, Segmenter, SkinDataset, collate, BuildConfig; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "ok"
    assert set(skinseg.__all__) >= {"build_dataset", "Segmenter", "SkinDataset", "collate", "BuildConfig"}
    assert not hasattr(skinseg, "no_such_thing")


def test_build_from_python(tmp_path, no_models):
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image(), "valid/B/2.jpg": skin_image()})
    result = skinseg.build_dataset(BuildConfig(src, tmp_path / "dst", progress=False))
    assert result.counts() == {"written": 2, "skipped": 0, "failed": 0}
    # Issue 21: one class list, index = class id (0 = background): the result's, classes.txt's, the loader's.
    assert result.class_names == ["background", "A", "B"] == (tmp_path / "dst/classes.txt").read_text().split("\n")[:-1]
    assert SkinDataset(tmp_path / "dst", "train").classes == result.class_names
    with pytest.raises(skinseg.BuildError, match="not an existing folder"):
        skinseg.build_dataset(BuildConfig(tmp_path / "nope", tmp_path / "d", progress=False))


def test_segmenter_gives_the_mask_a_build_writes(tmp_path, no_models):
    image = skin_image(160, 120)
    src = make_dataset(tmp_path / "src", {"train/A/1.png": image})
    config = PipelineConfig(output=OutputParams(image_format="png"))
    skinseg.build_dataset(BuildConfig(src, tmp_path / "dst", pipeline=config, progress=False))
    record = read_manifest(tmp_path / "dst")[0]
    written = cv2.imread(str(tmp_path / "dst" / record["mask"]), cv2.IMREAD_UNCHANGED)

    with Segmenter(config) as segmenter:
        result = segmenter.segment(image)
        rgb = segmenter.segment(np.ascontiguousarray(image[:, :, ::-1]), channels="rgb")
        rgba = segmenter.segment(np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 255, np.uint8)]),
                                 channels="rgb")
        grey = segmenter.segment(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        with pytest.raises(TypeError, match="uint8"):
            segmenter.segment(image.astype(np.float32))
        with pytest.raises(ValueError, match="channels"):
            segmenter.segment(image, channels="hsv")
    assert ((result.mask > 0) == (written > 0)).all()
    assert list(result.crop) == record["crop"] and result.image_size == (160, 120)
    assert result.skin_fraction == pytest.approx(record["skin_fraction"], abs=1e-6)
    assert (rgb.mask == result.mask).all() and (rgba.mask == result.mask).all()
    assert grey.mask.shape == result.mask.shape
    assert result.full_mask().shape == (120, 160)
    with pytest.raises(RuntimeError, match="closed"):
        segmenter.segment(image)


def test_segmenter_with_the_real_models(model_dir, tmp_path):
    photo = cv2.imread(str(REPO / "examples" / "dataset_original" / "train" / "Normal Skin" / "1.jpg"))
    with Segmenter(PipelineConfig(face=FaceParams(min_crop_side=0))) as segmenter:
        result = segmenter.segment(photo)
    assert result.face is not None and result.face in result.faces
    x0, y0, x1, y1 = result.crop
    fx0, fy0, fx1, fy1 = result.face.box
    assert x0 <= fx0 and y0 <= fy0 and x1 >= fx1 and y1 >= fy1
    assert result.mask.shape == (y1 - y0, x1 - x0) and 0 < result.skin_fraction < 1


# ------------------------------------------------------------------ loader

@pytest.fixture
def built(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image(160, 120),
                                          "train/Eczema/2.png": skin_image(100, 140),
                                          "test/Acne/3.png": skin_image(120, 120)})
    dst = tmp_path / "dst"
    skinseg.build_dataset(BuildConfig(src, dst, pipeline=PipelineConfig(
        face=FaceParams(enabled=False), output=OutputParams(layout="train-ready")), progress=False))
    return dst


def test_loader_pairs_images_and_masks_from_the_manifest(built):
    data = SkinDataset(built, "train")
    assert len(data) == 2 and data.classes == ["background", "Acne", "Eczema"] and data.num_classes == 3
    assert data.ignore_index == 255 and SkinDataset.splits(built) == ["test", "train"]
    item = data[0]
    assert item["image"].shape == (120, 160, 3) and item["mask"].shape == (120, 160)
    assert item["image"].flags.c_contiguous and item["mask"].dtype == np.uint8
    assert set(np.unique(item["mask"])) == {0, 1, 255} and set(np.unique(item["skin_mask"])) == {0, 1, 255}
    assert item["class_id"] == 1 and item["source"] == "train/Acne/1.png" and item["name"] == "Acne__1"
    centre = item["image"][60, 80]
    assert centre[0] > centre[2]                          # RGB: the skin colour's red comes first
    assert (SkinDataset(built, "train", channels="bgr")[0]["image"] == item["image"][:, :, ::-1]).all()
    with pytest.raises(ValueError, match="splits: test, train"):
        SkinDataset(built, "valid")


def test_loader_resizes_masks_with_nearest_neighbour_and_collates(built):
    data = SkinDataset(built, "train", size=(64, 96))
    item = data[1]
    assert item["image"].shape == (64, 96, 3) and item["mask"].shape == (64, 96)
    assert set(np.unique(item["mask"])) <= {0, 2, 255}                # no id that is not a class
    batch = collate([SkinDataset(built, "train")[i] for i in range(2)])          # 120x160 and 140x100
    assert batch["image"].shape == (2, 140, 160, 3) and batch["mask"].shape == (2, 140, 160)
    assert batch["class_id"].tolist() == [1, 2] and batch["source"] == ["train/Acne/1.png", "train/Eczema/2.png"]
    fixed = collate([data[0], data[1]], size=32)
    assert fixed["skin_mask"].shape == (2, 32, 32)
    seen = SkinDataset(built, "test", transform=lambda item: {**item, "seen": True})[0]
    assert seen["seen"]


def test_loader_reads_sixteen_bit_masks(tmp_path):
    dst = tmp_path / "dst"
    (dst / "images/train").mkdir(parents=True)
    (dst / "masks/train").mkdir(parents=True)
    cv2.imwrite(str(dst / "images/train/x.jpg"), np.zeros((8, 8, 3), np.uint8))
    mask = np.full((8, 8), 300, np.uint16)
    cv2.imwrite(str(dst / "masks/train/x.png"), mask)
    (dst / "classes.txt").write_text("background\n" + "".join(f"c{i}\n" for i in range(300)))
    (dst / "build.json").write_text(json.dumps(made_build_info([f"c{i}" for i in range(300)], "uint16").to_json()))
    (dst / "manifest.jsonl").write_text(json.dumps({"source": "train/c299/x.jpg", "split": "train", "class_id": 300,
                                                    "class_name": "c299", "status": "written",
                                                    "image": "images/train/x.jpg", "mask": "masks/train/x.png",
                                                    "fingerprint": "0123456789abcdef"}) + "\n")
    item = SkinDataset(dst, "train")[0]
    assert item["mask"].dtype == np.uint16 and int(item["mask"][0, 0]) == 300


def test_the_package_re_exports_exactly_the_api():
    import skinseg
    import skinseg.api

    assert sorted(skinseg._API) == sorted(skinseg.api.__all__)
