"""report.html on real builds of small datasets (no browser; see test_report_browser.py)."""

import hashlib
import html
import json
import shutil
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import unquote, urlparse

import cv2
import numpy as np
import pytest

from conftest import BLUE_BGR, REPO, SKIN_BGR, make_dataset, read_manifest, run_cli, skin_image, tree_digest
from skinseg.buildinfo import read_build_info
from skinseg.labels import class_color
from skinseg.layout import THUMB_KINDS
from skinseg.records import Record
from skinseg.report import _rank_suspects, write_report
from skinseg.report_checks import THUMBNAILS

# A class and a file name that need escaping in HTML and percent-encoding in URLs.
ODD_CLASS = 'A<b>&"c" ü'
ODD_SOURCE = f"train/{ODD_CLASS}/pic #1?.jpg"
BLUE = np.full((80, 80, 3), BLUE_BGR, np.uint8)


def report(src, dst, **options) -> str:
    """Write the report of the build in dst from its manifest and build.json; return the page."""
    records = [Record(**row) for row in read_manifest(dst)]
    files = write_report(dst, src, records, read_build_info(dst), **options)
    assert files[0] == "report.html" and all((dst / name).is_file() for name in files)
    return (dst / "report.html").read_text(encoding="utf-8")


def build_and_report(src, dst, *extra, **options) -> str:
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *extra, expect=None)
    return report(src, dst, **options)


class Page(HTMLParser):
    """What the tests check in report.html: image and link targets, which image is shown in which
    section (images have alt="<kind> of <source>"), and the rows of tables that have an id."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.shown = [], [], []     # shown: (section, kind, source, src)
        self.tables: dict[str, list[list[str]]] = {}
        self.section = None
        self._rows = self._cells = self._text = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h2", "h3") and "id" in a:
            self.section = a["id"]
        elif tag == "img":
            self.images.append(a["src"])
            kind, source = a["alt"].split(" of ", 1)
            self.shown.append((self.section, kind, source, a["src"]))
        elif tag == "a" and not a["href"].startswith("#"):
            self.links.append(a["href"])
        elif tag == "table" and "id" in a:
            self._rows = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self._rows is not None:
            self._cells = []
            self._rows.append(self._cells)
        elif tag == "td" and self._cells is not None:
            self._text = []

    def handle_endtag(self, tag):
        if tag == "td" and self._text is not None:
            self._cells.append("".join(self._text))
            self._text = None
        elif tag == "table":
            self._rows = self._cells = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def sources(self, section: str) -> list[str]:
        return [source for sec, kind, source, _ in self.shown if sec == section and kind == "crop"]

    def thumbnail(self, kind: str, source: str) -> str:
        return next(src for _, k, s, src in self.shown if k == kind and s == source)


def assert_targets_exist(dst, page: Page) -> None:
    assert page.images
    for target in page.images + page.links:
        assert not urlparse(target).scheme and not target.startswith("/"), target
        assert (dst / unquote(target)).is_file(), target


@pytest.fixture
def odd_src(tmp_path):
    return make_dataset(tmp_path / "src", {
        "train/Acne/1.jpg": skin_image(400, 300),
        "train/Acne/2.jpg": skin_image(400, 300, radius_fraction=0.25),
        ODD_SOURCE: skin_image(200, 300),
        "valid/Acne/blue.jpg": BLUE,                          # skipped: no skin
        "valid/Acne/broken.jpg": b"this is not an image",     # failed
    })


def test_report_shows_counts_reasons_and_thumbnails(odd_src, tmp_path):
    dst = tmp_path / "dst"
    text = build_and_report(odd_src, dst)
    page = Page(text)
    assert_targets_exist(dst, page)
    records = read_manifest(dst)

    expected = Counter((r["split"], r["class_name"], r["status"]) for r in records)
    rows = page.tables["counts-table"][1:]
    assert rows[-1][:2] == ["all", "all"]
    assert {(split, name) for split, name, *_ in rows[:-1]} == {(r["split"], r["class_name"]) for r in records}
    for split, name, *counts in rows[:-1]:
        assert counts == [str(expected[(split, name, s)]) for s in ("written", "skipped", "failed")]
    assert rows[-1][2:] == [str(sum(r["status"] == s for r in records)) for s in ("written", "skipped", "failed")]

    by_source = {r["source"]: r for r in records}
    for status, source in (("skipped", "valid/Acne/blue.jpg"), ("failed", "valid/Acne/broken.jpg")):
        assert by_source[source]["status"] == status
        assert page.tables[f"{status}-files"][1:] == [[source, "validation", "Acne", by_source[source]["reason"]]]

    # The odd name is escaped everywhere, read back intact, and its thumbnails exist.
    assert "<b>&" not in text and html.escape(ODD_CLASS) in text
    assert [ODD_CLASS, "1", "0", "0"] in [row[1:] for row in rows]
    assert ODD_SOURCE in page.sources("class-1")
    for kind in ("crop", "skin", "overlay"):
        assert (dst / unquote(page.thumbnail(kind, ODD_SOURCE))).is_file()


@pytest.mark.parametrize("background", ["black", "transparent"])
def test_thumbnails_are_small_crop_skin_and_overlay(tmp_path, background):
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(400, 300)})
    dst = tmp_path / "dst"
    page = Page(build_and_report(src, dst, "--background", background))
    crop, skin, overlay = (cv2.imread(str(dst / unquote(page.thumbnail(kind, "train/A/1.png"))))
                           for kind in ("crop", "skin", "overlay"))
    assert crop.shape == skin.shape == overlay.shape == (135, 180, 3)

    def near(pixel, colour):
        return np.abs(pixel.astype(int) - np.array(colour)).max() <= 12   # JPEG noise

    middle, corner = (67, 90), (3, 3)
    assert near(crop[middle], SKIN_BGR) and near(crop[corner], BLUE_BGR)
    assert near(skin[middle], SKIN_BGR) and near(skin[corner], (0, 0, 0))   # transparent shows as black
    half = (np.array(SKIN_BGR) + np.array(class_color(1))) / 2
    assert near(overlay[middle], half) and near(overlay[corner], BLUE_BGR)


def test_identical_builds_give_identical_reports(odd_src, tmp_path):
    first = build_and_report(odd_src, tmp_path / "one")
    assert build_and_report(odd_src, tmp_path / "two") == first
    assert tree_digest(tmp_path / "one" / "report") == tree_digest(tmp_path / "two" / "report")
    # A re-run reuses the thumbnails and writes the same page.
    assert build_and_report(odd_src, tmp_path / "one") == first


def test_stale_report_files_are_removed(odd_src, tmp_path):
    dst = tmp_path / "dst"
    build_and_report(odd_src, dst)
    old = set((dst / "report").rglob("*.jpg"))
    (dst / "report" / "thumbs" / "left_over.jpg").write_bytes(b"x")
    (dst / "report" / "extra").mkdir()
    (dst / "report" / "extra" / "notes.txt").write_text("x")
    (dst / "mine.txt").write_text("not the report's")

    page = Page(build_and_report(odd_src, dst, "--kernel-size", "3"))   # new fingerprints, new thumbnails
    files = {p for p in (dst / "report").rglob("*") if p.is_file()}
    # Its own old thumbnails go; files it did not write stay (a user's notes, any name).
    theirs = {dst / "report/thumbs/left_over.jpg", dst / "report/extra/notes.txt"}
    assert files == {dst / unquote(src) for src in page.images} | theirs
    assert not files & old
    assert (dst / "mine.txt").is_file()
    # A write in progress (two shards finishing at once both write the report) is left alone.
    in_progress = dst / "report" / "thumbs" / ".x_crop.jpg.skinseg-tmp-abc"
    in_progress.write_bytes(b"x")
    report(odd_src, dst)
    assert in_progress.is_file()


def test_sample_is_stable_and_the_cost_bounded(tmp_path):
    def smallest_hashes(sources, n):
        return sorted(sorted(sources, key=lambda s: hashlib.sha1(s.encode()).hexdigest())[:n])

    layout = {f"train/A/{i}.jpg": skin_image(120, 100, seed_offset=i % 7) for i in range(12)}
    layout.update({f"train/B/{i}.jpg": skin_image(120, 100) for i in range(2)})
    src = make_dataset(tmp_path / "src", layout)
    dst = tmp_path / "dst"
    options = {"per_class": 4, "suspects": 2}
    page = Page(build_and_report(src, dst, **options))
    sample_a = page.sources("class-1")
    assert sample_a == smallest_hashes([s for s in layout if "/A/" in s], 4)
    assert page.sources("class-2") == ["train/B/0.jpg", "train/B/1.jpg"]
    # Thumbnails only for the sampled and suspect images, and a capped few of the data checks' (the discs
    # shifted by a few pixels are near-duplicates).
    shown = {source for _, _, source, _ in page.shown}
    assert len(list((dst / "report").rglob("*.jpg"))) <= len(THUMB_KINDS) * len(shown)
    assert len(shown) <= 4 * 2 + 2 + THUMBNAILS

    make_dataset(src, {f"train/B/new{i}.jpg": skin_image(120, 100) for i in range(6)})
    page = Page(build_and_report(src, dst, **options))
    assert page.sources("class-1") == sample_a
    assert len(page.sources("class-2")) == 4


def test_most_likely_wrong_comes_first(tmp_path):
    layout = {f"train/A/{i}.jpg": skin_image(120, 100) for i in range(5)}
    layout["train/A/all_skin.jpg"] = np.full((100, 120, 3), SKIN_BGR, np.uint8)
    src = make_dataset(tmp_path / "src", layout)
    text = build_and_report(src, tmp_path / "dst", suspects=3)
    assert Page(text).sources("suspects")[0] == "train/A/all_skin.jpg"      # far from its class median
    assert "class median" in text
    assert "almost all skin" not in text       # a whole photo all skin is a close-up, not a flag


def _record(source: str, fraction: float, face: bool, crop: list[int], size=(100, 100)) -> Record:
    return Record(source, "train", "A", 1, "written", size=list(size), crop=crop, skin_fraction=fraction,
                  face={"box": [40, 40, 60, 60], "score": 0.9, "detector": "mediapipe"} if face else None,
                  fingerprint="0" * 16)


def test_close_ups_all_skin_are_not_flagged_but_face_crops_are():
    whole = [0, 0, 100, 100]
    records = [_record(f"c{i}", 1.0, False, whole) for i in range(6)]           # genuine close-ups
    records += [_record("face_close_up", 1.0, True, whole),                       # a face filling the photo
                _record("hair_counted", 0.99, True, [20, 20, 80, 80]),            # a face crop all "skin"
                _record("little", 0.2, True, [20, 20, 80, 80])]
    ranked = {r.source: (score, reasons) for r, score, reasons in _rank_suspects(records, True, 20)}
    assert ranked["c0"][0] == 0 and ranked["face_close_up"][0] == 0
    assert any("almost all skin around a face" in why for why in ranked["hair_counted"][1])
    assert any("little skin in its crop" in why for why in ranked["little"][1])
    assert [r.source for r, _, _ in _rank_suspects(records, True, 2)] == ["little", "hair_counted"]


def test_a_person_whose_body_is_mostly_skin_comes_first():
    """Clothes called skin: the mask covers most of the person below the face."""
    crop = [20, 20, 80, 80]
    records = [_record(f"dressed{i}", 0.3, True, crop) for i in range(6)]
    records += [_record("coat_called_skin", 0.3, True, crop), _record("portrait", 0.3, True, crop)]
    records[0].body_skin, records[6].body_skin = 0.1, 0.8
    ranked = _rank_suspects(records, {}, 3)
    assert ranked[0][0].source == "coat_called_skin"
    assert any("80% of the person's body is skin" in why for why in ranked[0][2])
    assert all(score == 0 for record, score, _ in ranked[1:])    # no body measured, or one mostly dressed


def test_unreadable_source_is_listed_without_thumbnails(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": skin_image(), "train/A/2.jpg": skin_image()})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    (src / "train/A/2.jpg").unlink()                          # gone after the build
    shutil.rmtree(dst / "report", ignore_errors=True)         # and before its thumbnails were made
    text = report(src, dst)
    page = Page(text)
    assert_targets_exist(dst, page)
    assert "train/A/2.jpg" not in page.sources("class-1") and "thumbnails unavailable" in text


def test_example_dataset_faces_and_histograms(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "examples" / "dataset_original", src)
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet")
    text = report(src, dst)
    records, info = read_manifest(dst), json.loads((dst / "build.json").read_text())
    assert_targets_exist(dst, Page(text))
    assert f"Detector: <b>{html.escape(info['models']['face_detector']['used'], quote=True)}" in text
    for name in info["classes"][1:]:
        mine = [r for r in records if r["class_name"] == name]
        faces = sum(r["face"] is not None for r in mine)
        assert f"<td>{html.escape(name)}</td><td class=\"n\">{len(mine)}</td><td class=\"n\">{faces}</td>" in text
    assert text.count("<svg") == len(info["classes"]) - 1


def test_the_detector_caption_names_the_model_build_json_records(tmp_path, model_dir):
    """The caption read a key build.json never had ("models") and always said
    "(built in)"; it now comes from the typed build.json, like every reader."""
    src = make_dataset(tmp_path / "src", {"train/A/1.jpg": cv2.imread(str(REPO / "examples/dataset_original/train/"
                                                                           "Normal Skin/1.jpg"))})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet")
    text = (dst / "report.html").read_text(encoding="utf-8")
    caption = text[text.index("Detector: "):].split("</p>")[0]
    assert "built in" not in caption and "blaze_face_full_range.tflite" in caption
    assert "sha256 2c3728e6da56" in caption and "$SKINSEG_MODEL_DIR" in caption
    assert 'id="fallbacks"' not in text          # every model was there: nothing flagged
