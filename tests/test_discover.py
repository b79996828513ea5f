import os

import pytest

from conftest import make_dataset, skin_image
from skinseg.discover import DatasetError, assign_class_ids, discover, read_class_file, safe_name
from skinseg.labels import mask_dtype
from skinseg.splits import InputParams


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


def test_unknown_top_level_folder_is_an_error_unless_skipped(tmp_path):
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image(), "extra/A/2.jpg": skin_image(),
                            "__MACOSX/train/._1.jpg": b"resource fork"})
    with pytest.raises(DatasetError, match="'extra' .* is not a split folder.*--skip-unknown-folders"):
        discover(tmp_path)
    found = discover(tmp_path, params=InputParams(skip_unknown_folders=True))
    assert [i.source for i in found.images] == ["train/A/1.jpg"]
    assert dict(found.ignored)["extra"].endswith("(--skip-unknown-folders)")
    assert "macOS" in dict(found.ignored)["__MACOSX"]


def test_split_folders_in_any_case_and_aliases(tmp_path):
    """Issue 21: the aliases are the splits Hugging Face and training code
    expect (train / validation / test); --split-names as-is keeps the names."""
    img = skin_image()
    make_dataset(tmp_path, {"Train/A/1.jpg": img, "Dev/B/3.jpg": img, "testing/B/4.jpg": img})
    found = discover(tmp_path)
    assert {(i.source, i.split) for i in found.images} == {
        ("Train/A/1.jpg", "train"), ("Dev/B/3.jpg", "validation"), ("testing/B/4.jpg", "test")}
    assert found.class_names == ["A", "B"] and not found.warnings
    make_dataset(tmp_path, {"VALIDATION/A/2.jpg": img})
    kept = discover(tmp_path, params=InputParams(split_names="as-is"))
    assert {(i.source, i.split) for i in kept.images} == {
        ("Train/A/1.jpg", "train"), ("VALIDATION/A/2.jpg", "validation"), ("Dev/B/3.jpg", "dev"),
        ("testing/B/4.jpg", "testing")}


def test_two_aliases_of_one_split_stop_the_build_naming_both(tmp_path):
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image(), "val/A/2.jpg": skin_image(),
                            "valid/A/3.jpg": skin_image()})
    with pytest.raises(DatasetError, match=r"the folders 'val' and 'valid' in .* are both split 'validation': merge "
                                           r"them or rename one \(or pass --split-names as-is"):
        discover(tmp_path)


def test_as_is_keeps_two_validation_folders_apart_and_names_them(tmp_path):
    """The warning named `validation`, a folder that did not exist."""
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image(), "val/A/2.jpg": skin_image(),
                            "valid/A/3.jpg": skin_image()})
    found = discover(tmp_path, params=InputParams(split_names="as-is"))
    assert {i.split for i in found.images} == {"train", "val", "valid"}
    assert found.warnings == ["the folders 'val' and 'valid' are both validation folders; they are kept as separate "
                              "splits (--split-names as-is)"]


def test_two_folders_for_one_split_are_an_error(tmp_path):
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image(), "Train/A/2.jpg": skin_image()})
    with pytest.raises(DatasetError, match="are both split 'train'"):
        discover(tmp_path)


def test_no_split_folder_is_an_error_that_says_what_to_do(tmp_path):
    make_dataset(tmp_path, {"Acne/1.jpg": skin_image()})
    with pytest.raises(DatasetError, match="no split folders.*'Acne' look like class folders.*--split-ratio train=1"):
        discover(tmp_path)


def test_src_pointing_at_a_split_folder_gets_the_hint(tmp_path):
    make_dataset(tmp_path, {"train/Acne/1.jpg": skin_image(), "test/Acne/2.jpg": skin_image()})
    with pytest.raises(DatasetError, match=f"is itself a split folder .*point --src at .*{tmp_path}$"):
        discover(tmp_path / "train")


def test_images_directly_in_a_split_folder_are_named(tmp_path):
    make_dataset(tmp_path, {"train/A/1.jpg": skin_image(), "train/stray.jpg": skin_image(),
                            "train/notes.txt": b"x"})
    found = discover(tmp_path)
    assert found.outside_classes == ["train/stray.jpg"]
    assert "outside any class folder" in dict(found.ignored)["train/stray.jpg"]
    assert "outside any class folder" in dict(found.ignored)["train/notes.txt"]
    assert any("1 image outside any class folder (e.g. train/stray.jpg)" in w for w in found.warnings)
    make_dataset(tmp_path / "flat", {"train/1.jpg": skin_image()})
    with pytest.raises(DatasetError, match="not in class folders"):
        discover(tmp_path / "flat")


def test_class_folders_without_splits_are_divided_by_a_seeded_ratio(tmp_path):
    img = skin_image(16, 16)
    make_dataset(tmp_path, {**{f"Acne/{i:02d}.jpg": img for i in range(10)},
                            **{f"Eczema/{i}.jpg": img for i in range(3)}})
    ratio = (("train", 0.7), ("val", 0.2), ("test", 0.1))
    found = discover(tmp_path, params=InputParams(split_ratio=ratio, split_seed=1))
    counts = {(i.class_name, i.split): 0 for i in found.images}
    for i in found.images:
        counts[(i.class_name, i.split)] += 1
    assert counts == {("Acne", "train"): 7, ("Acne", "validation"): 2, ("Acne", "test"): 1,
                      ("Eczema", "train"): 2, ("Eczema", "validation"): 1}
    assert {i.stem for i in found.images if i.class_name == "Eczema"} == {"Eczema__0", "Eczema__1", "Eczema__2"}
    again = discover(tmp_path, params=InputParams(split_ratio=ratio, split_seed=1))
    other = discover(tmp_path, params=InputParams(split_ratio=ratio, split_seed=2))
    assert again.images == found.images and other.images != found.images
    one = discover(tmp_path, params=InputParams(split_ratio=(("train", 1.0),)))
    assert {i.split for i in one.images} == {"train"} and len(one.images) == 13
    make_dataset(tmp_path / "split", {"train/A/1.jpg": img})
    with pytest.raises(DatasetError, match="--split-ratio is for sources without split folders"):
        discover(tmp_path / "split", params=InputParams(split_ratio=(("train", 1.0),)))


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
    assert mask_dtype(255, "original") == "uint8"
    assert mask_dtype(256, "original") == "uint16"
    # The train-ready layout keeps 255 for its ignore band.
    assert mask_dtype(254, "train-ready") == "uint8"
    assert mask_dtype(255, "train-ready") == "uint16"
