"""`skinseg segment` (issue 21): single photos and plain folders, without a
dataset, as rembg users expect; a photo's files are what a build writes for
it, one bad photo never stops the others, and the photos' folders are never
written to."""

import shutil

import cv2
import numpy as np
import pytest

from conftest import BLUE_BGR, REPO, make_dataset, read_manifest, run_cli, skin_image, tree_digest, write_image

PHOTO = REPO / "examples" / "dataset_original" / "train" / "Normal Skin" / "1.jpg"


def segment(*args, expect=0):
    return run_cli("segment", *args, expect=expect)


def same_files_as_a_build(tmp_path, photo, *options):
    """Build a one-class dataset of the photo and segment it alone: the
    files of each kind, (the build's, segment's)."""
    src = tmp_path / "src"
    (src / "train" / "A").mkdir(parents=True)
    shutil.copy(photo, src / "train" / "A" / photo.name)
    run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--quiet", *options)
    record = read_manifest(tmp_path / "dst")[0]
    assert record["status"] == "written", record
    result = segment(photo, "--out", tmp_path / "out", *options)
    stem = photo.stem
    assert f"written  {photo} -> {tmp_path / 'out' / 'masks' / stem}.png" in result.output
    pairs = {}
    for kind in ("image", "mask", "preview", "skin_mask"):
        if record.get(kind):
            name = record[kind].split("/")[0] + "/" + stem + record[kind][record[kind].rindex("."):]
            pairs[kind] = ((tmp_path / "dst" / record[kind]).read_bytes(), (tmp_path / "out" / name).read_bytes())
    return pairs


@pytest.mark.parametrize("options", [("--no-face",), ("--no-face", "--layout", "train-ready"),
                                     ("--no-face", "--background", "transparent", "--kernel-size", "9")])
def test_a_photo_gets_the_bytes_a_build_writes_for_it(tmp_path, options, no_models):
    photo = write_image(tmp_path / "photos" / "arm.png", skin_image(200, 150))
    pairs = same_files_as_a_build(tmp_path, photo, *options)
    assert set(pairs) >= {"image", "mask", "preview"}
    for kind, (built, segmented) in pairs.items():
        assert built == segmented, kind
    assert set(np.unique(cv2.imdecode(np.frombuffer(pairs["mask"][1], np.uint8), cv2.IMREAD_UNCHANGED))) <= \
        {0, 1, 255}


def test_a_portrait_with_the_models_gets_the_bytes_a_build_writes(tmp_path, model_dir):
    pairs = same_files_as_a_build(tmp_path, PHOTO)
    for kind, (built, segmented) in pairs.items():
        assert built == segmented, kind


def test_one_bad_photo_never_stops_the_others_and_the_input_is_never_written(tmp_path):
    photos = tmp_path / "photos"
    make_dataset(photos, {"a.png": skin_image(), "b.jpg": skin_image(120, 90, seed_offset=3),
                          "broken.jpg": b"this is not an image", "notes.txt": b"mine", "sub/c.png": skin_image(),
                          "blue.png": np.full((80, 80, 3), BLUE_BGR, np.uint8)})
    single = write_image(tmp_path / "one" / "a.png", skin_image(seed_offset=5))    # the same name as photos/a.png
    before = tree_digest(photos), tree_digest(tmp_path / "one")
    out = tmp_path / "out"
    result = segment(photos, single, tmp_path / "missing.jpg", "--out", out, "--no-face", expect=1)
    assert (tree_digest(photos), tree_digest(tmp_path / "one")) == before
    lines = result.output.splitlines()
    assert f"failed   {tmp_path / 'missing.jpg'}: no such file or folder" in lines
    assert any(line.startswith(f"failed   {tmp_path / 'photos' / 'broken.jpg'}: not an image") for line in lines)
    assert any(line.startswith(f"skipped  {tmp_path / 'photos' / 'blue.png'}: too little skin") for line in lines)
    assert sum(line.startswith("written  ") for line in lines) == 3
    assert "skinseg segment: 6 photos: 3 written, 1 skipped, 2 failed" in result.output
    assert "ignored: 2 files or sub-folders" in result.output
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert len(masks) == 3 and "b.png" in masks and all(name.startswith(("a-", "b")) for name in masks)
    assert not (out / "masks" / "blue.png").exists()          # skipped: nothing written
    quiet = segment(tmp_path / "photos", "--out", out, "--no-face", "-q", expect=1)
    assert quiet.output.splitlines() == [line for line in lines if line.startswith("failed") and "photos" in line]


def test_the_photos_folders_are_never_written_to(tmp_path):
    photos = make_dataset(tmp_path / "photos", {"a.png": skin_image()})
    for out, words in ((photos, "would write into the folder"), (photos / "out", "would write into the folder")):
        result = segment(photos, "--out", out, "--no-face", expect=2)
        assert words in result.output and not (photos / "masks").exists() and not (photos / "out").exists()
    result = segment(photos / "a.png", "--out", photos, "--no-face", expect=2)
    assert "would write into the folder of" in result.output
    # A photo given alone may have its files in a new folder beside it (rembg's `rembg i photo.jpg out/...`)...
    segment(photos / "a.png", "--out", photos / "results", "--no-face")
    assert (photos / "results" / "masks" / "a.png").is_file()
    # ... but never in a folder given, nor where a photo given is.
    result = segment(photos / "results" / "images", "--out", photos / "results", "--no-face", expect=2)
    assert "would write into the folder" in result.output
    result = segment(photos / "results" / "images" / "a.jpg", "--out", photos / "results", "--no-face", expect=2)
    assert "would write into the folder of" in result.output


def test_options_are_checked_as_a_builds(tmp_path):
    photo = write_image(tmp_path / "a.png", skin_image())
    result = segment(photo, "--out", tmp_path / "out", "--kernel-size", "-3", expect=2)
    assert "Invalid value for '--kernel-size': -3 is not a whole number from 0 to 101" in result.output
    result = segment(photo, "--out", tmp_path / "out", "--layout", "train-ready", "--background", "black",
                     expect=2)
    assert "the train-ready layout writes the real image" in result.output
    assert not (tmp_path / "out").exists()
