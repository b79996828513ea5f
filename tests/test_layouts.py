"""--layout original|train-ready: what each writes, end to end through the CLI."""

import json

import cv2
import numpy as np
import pytest

from conftest import make_dataset, read_manifest, run_cli, skin_image
from skinseg.labels import IGNORE_COLOR, IGNORE_UINT16, legend_rows
from skinseg.outputs import edge_band, label_mask, skin_mask


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image(160, 120),
                                           "test/Eczema/2.png": skin_image(140, 120, seed_offset=8)})


def build(src, dst, *extra, expect=0):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *extra, expect=expect)


def test_train_ready_writes_real_images_a_learnable_background_and_an_ignore_band(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst, "--layout", "train-ready", "--ignore-band", "2", "--image-format", "png")
    info = json.loads((dst / "build.json").read_text())
    assert info["layout"] == "train-ready" and info["ignore_index"] == 255
    for r in read_manifest(dst):
        image = cv2.imread(str(dst / r["image"]))
        assert (image == cv2.imread(str(src / r["source"]))).all()          # the real photo, background kept
        mask = cv2.imread(str(dst / r["mask"]), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(mask)) == {0, r["class_id"], 255}
        skin = cv2.imread(str(dst / r["skin_mask"]), cv2.IMREAD_UNCHANGED)
        assert r["skin_mask"] == f"skin_masks/{r['split']}/{r['image'].rsplit('/', 1)[1][:-4]}.png"
        assert ((skin == 1) == (mask == r["class_id"])).all() and ((skin == 255) == (mask == 255)).all()
        # The band: 2 px on each side of the disc's edge, so a row through the
        # centre crosses it twice, 4-5 px wide each time.
        row = mask[60]
        assert 8 <= int((row == 255).sum()) <= 10
        assert (mask[0] == 0).all()                                          # far from the edge: not skin, a class
        preview = cv2.imread(str(dst / r["preview"]))
        band = np.argwhere(mask == 255)[0]
        assert tuple(preview[tuple(band)]) == IGNORE_COLOR
    assert "ignore: edge band" in (dst / "report.html").read_text()


def test_switching_layouts_rewrites_and_removes_what_the_other_wrote(src, tmp_path):
    dst = tmp_path / "dst"
    build(src, dst, "--layout", "train-ready")
    assert len(list((dst / "skin_masks").rglob("*.png"))) == 2
    build(src, dst)                                        # back to the original layout
    assert not list((dst / "skin_masks").rglob("*.png"))
    records = read_manifest(dst)
    assert all(r["skin_mask"] is None for r in records)
    mask = cv2.imread(str(dst / records[0]["mask"]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, records[0]["class_id"]}
    assert json.loads((dst / "build.json").read_text())["ignore_index"] == 0


def test_train_ready_refuses_a_blacked_out_background(src, tmp_path):
    result = build(src, tmp_path / "dst", "--layout", "train-ready", "--background", "black", expect=2)
    assert "only for --layout original" in result.output


def test_edge_band_is_the_given_width_on_each_side():
    skin = np.zeros((40, 40), np.uint8)
    skin[10:30, 10:30] = 255
    band = edge_band(skin, 3) > 0
    assert band[20, 7:13].all() and not band[20, 6] and not band[20, 13]       # 3 px out, 3 px in
    assert not band[20, 20] and not band[0, 0]
    assert not edge_band(np.full((20, 20), 255, np.uint8), 3).any()            # the photo's border is no edge
    assert not edge_band(skin, 0).any()


def test_sixteen_bit_masks_ignore_65535_and_keep_255_a_class():
    skin = np.zeros((20, 20), np.uint8)
    skin[5:15, 5:15] = 255
    band = edge_band(skin, 1)
    labels = label_mask(skin, 255, "uint16", band)
    assert labels.dtype == np.uint16 and set(np.unique(labels)) == {0, 255, IGNORE_UINT16}
    assert set(np.unique(skin_mask(skin, band))) == {0, 1, 255}
    assert legend_rows(["a"], "train-ready", "uint16")[-1][0] == "65535"
    assert legend_rows(["a"], "original", "uint8")[0][1] == "background / not skin (ignored)"
