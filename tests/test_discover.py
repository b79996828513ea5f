import os

import pytest

from conftest import make_dataset, skin_image
from skinseg.discover import DatasetError, assign_class_ids, discover, mask_dtype_name, read_class_file, safe_name


def test_splits_classes_recursive_and_sorted(tmp_path):
    img = skin_image()
    make_dataset(tmp_path, {
        "train/Acne/b.jpg": img,
        "train/Acne/sub/deeper/a.PNG": img,
        "train/Normal Skin/x.JpEg": img,
        "val/Acne/v.bmp": img,
        "test/Rosacea/t.tif": img,
        "train/.hidden/h.jpg": img,
        "train/Acne/.h.jpg": img,
        "train/Acne/notes.txt": b"hello",
    })
    found = discover(tmp_path)
    assert [i.source for i in found.images] == [
        "test/Rosacea/t.tif", "train/Acne/b.jpg", "train/Acne/sub/deeper/a.PNG",
        "train/Normal Skin/x.JpEg", "val/Acne/v.bmp"]
    # A class that exists only in test still gets an id.
    assert found.class_names == ["Acne", "Normal Skin", "Rosacea"]
    assert [p for p, _ in found.ignored] == ["train/Acne/notes.txt"]
    assert found.images[2].stem == "Acne__sub__deeper__a"


def test_unknown_top_level_folder_is_a_warning(tmp_path):
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image(), "extra/A/2.jpg": skin_image()})
    found = discover(tmp_path)
    assert [i.source for i in found.images] == ["train/A/1.jpg"]
    assert any("'extra'" in w for w in found.warnings)


def test_no_split_folder_is_an_error(tmp_path):
    make_dataset(tmp_path, {"Acne/1.jpg": skin_image()})
    with pytest.raises(DatasetError, match="no split folders"):
        discover(tmp_path)


def test_output_stems_never_collide(tmp_path):
    img = skin_image()
    make_dataset(tmp_path, {
        "train/Acne/1.jpg": img,
        "train/Normal Skin/1.jpg": img,
        "train/Normal_Skin/1.jpg": img,       # sanitises like "Normal Skin"
        "train/Acne/2.jpg": img,
        "train/Acne/2.png": img,              # same stem, other extension
        "test/Acne/1.jpg": img,               # other split: its own folder
    })
    found = discover(tmp_path)
    stems = {(i.split, i.stem) for i in found.images}
    assert len(stems) == len(found.images)
    by_source = {i.source: i.stem for i in found.images}
    assert by_source["train/Acne/1.jpg"] == "Acne__1"
    assert by_source["test/Acne/1.jpg"] == "Acne__1"
    assert by_source["train/Acne/2.jpg"].startswith("Acne__2-")
    assert by_source["train/Normal Skin/1.jpg"].startswith("Normal_Skin__1-")


def test_stems_do_not_depend_on_what_else_is_there(tmp_path):
    make_dataset(tmp_path / "a", {"train/A/1.jpg": skin_image(), "train/A/2.jpg": skin_image()})
    make_dataset(tmp_path / "b", {"train/A/1.jpg": skin_image()})
    assert discover(tmp_path / "a").images[0].stem == discover(tmp_path / "b").images[0].stem


def test_symlink_loop_terminates(tmp_path):
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image()})
    os.symlink(tmp_path / "train" / "A", tmp_path / "train" / "A" / "loop")
    found = discover(tmp_path)
    assert [i.source for i in found.images] == ["train/A/1.jpg"]


def test_safe_name_keeps_unicode_and_drops_shell_characters():
    assert safe_name("Acné rouge") == "Acné_rouge"
    assert safe_name("a;rm -rf $(x)") == "a_rm_-rf_x"
    assert safe_name("...") == "_"


def test_class_file_pins_ids_and_appends_new(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("background\nNormal Skin\nAcne\n")
    pinned = read_class_file(path)
    names, added = assign_class_ids(["Acne", "Eczema", "Normal Skin"], pinned)
    assert names == ["Normal Skin", "Acne", "Eczema"]
    assert added == ["Eczema"]
    assert assign_class_ids(["b", "a"]) == (["a", "b"], [])


@pytest.mark.parametrize("text, message", [
    ("Acne\n", "line 0 must be 'background'"),
    ("background\nA\n\nB\n", "line 2 is empty"),
    ("background\nA\nA\n", "listed twice"),
])
def test_bad_class_file(tmp_path, text, message):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_class_file(path)


def test_mask_dtype_switches_above_255_classes():
    assert mask_dtype_name(255) == "uint8"
    assert mask_dtype_name(256) == "uint16"
