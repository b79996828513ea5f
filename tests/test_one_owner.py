"""Each decision has one owner, so the build, the command line's glance and
the Python API cannot disagree (issue 20, rows 7-12), and Segmenter takes
what users have."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import skinseg
from conftest import BLUE_BGR, REPO, FixedFaces, make_dataset, read_manifest, run_cli, skin_image
from skinseg.config import FaceParams, PipelineConfig
from skinseg.engines import Engines
from skinseg.face import Face
from skinseg.state import expected_work


def build(src, dst, *extra, expect=0):
    return run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", *extra, expect=expect)


@pytest.fixture
def src(tmp_path):
    return make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "train/A/2.png": skin_image(seed_offset=4),
                                           "train/B/3.png": skin_image(seed_offset=8)})


def run_info(dst):
    return json.loads((dst / "build.json").read_text())["run"]


# ------------------------------------------------------------------ row 7: is there work to do?

def test_the_glance_and_the_build_agree_after_an_unfinished_run(src, tmp_path):
    """The command line's glance said "maybe nothing" while a killed run's
    pending list was there, which the build itself counts as work."""
    dst = tmp_path / "dst"
    config = PipelineConfig(face=FaceParams(enabled=False))
    build(src, dst)
    assert expected_work(dst, config) is None
    (dst / ".skinseg" / "pending.jsonl").write_text(json.dumps({"pending": "train/A/1.png", "outputs": [],
                                                                "journal_at": 0}) + "\n")
    assert expected_work(dst, config) is True
    build(src, dst)
    assert expected_work(dst, config) is None and not (dst / ".skinseg" / "pending.jsonl").exists()


def test_a_tampered_final_state_is_work_not_a_crash(src, tmp_path):
    """final.json with statuses of the right length but unknown letters:
    the build's own check raised a KeyError; the glance said "maybe nothing"."""
    dst = tmp_path / "dst"
    config = PipelineConfig(face=FaceParams(enabled=False))
    build(src, dst)
    final = dst / ".skinseg" / "final.json"
    state = json.loads(final.read_text())
    final.write_text(json.dumps({**state, "statuses": "xyz"}))
    assert expected_work(dst, config) is True
    manifest = (dst / "manifest.jsonl").read_bytes()
    build(src, dst)
    assert (dst / "manifest.jsonl").read_bytes() == manifest and run_info(dst)["processed"] == 0
    assert json.loads(final.read_text())["statuses"] == "www"


# ------------------------------------------------------------------ row 8: the skip rule

def test_segment_says_when_a_build_would_skip_the_image(tmp_path, no_models):
    """Segmenter.segment never applied --min-skin-fraction, though its mask
    is 'exactly what a build writes'."""
    little = np.full((100, 100, 3), BLUE_BGR, np.uint8)
    cv2.circle(little, (50, 50), 8, (120, 150, 210), -1)          # about 2 % skin
    src = make_dataset(tmp_path / "src", {"train/A/little.png": little, "train/A/skin.png": skin_image()})
    config = PipelineConfig(face=FaceParams(enabled=False))
    skinseg.build_dataset(skinseg.BuildConfig(src, tmp_path / "dst", pipeline=config, progress=False))
    records = {r["source"]: r for r in read_manifest(tmp_path / "dst")}
    with skinseg.Segmenter(config) as segmenter:
        skipped = segmenter.segment(little)
        kept = segmenter.segment(skin_image())
    assert records["train/A/little.png"]["status"] == "skipped"
    assert skipped.skipped and skipped.skip_reason == records["train/A/little.png"]["reason"]
    assert records["train/A/skin.png"]["status"] == "written" and not kept.skipped and kept.skip_reason is None


# ------------------------------------------------------------------ rows 9, 10: face score, working size

def test_a_face_score_below_one_half_is_the_users_choice():
    """--min-face-score reached MediaPipe, but the adaptive method dropped
    every face below a hard-coded 0.5: lower values had no effect."""
    from test_adaptive import synthetic_portrait

    image, face = synthetic_portrait()
    unsure = Face(face.box, 0.4, face.keypoints, "mediapipe")     # what MediaPipe gives at min_score 0.3
    result = skinseg.pipeline.segment(image, PipelineConfig(face=FaceParams(min_score=0.3)),
                                      Engines(FixedFaces([unsure])))
    assert result.faces == [unsure]                                # it seeded the skin model


def test_one_working_size_for_detection_and_the_masks(monkeypatch):
    """pipeline.WORK_SIZE and face.DETECTION_MAX_SIDE were two constants of 640."""
    from skinseg import config, face, pipeline

    sizes = []
    real = face.downscaled

    def spy(bgr, max_side):
        sizes.append(max_side)
        return real(bgr, max_side)

    monkeypatch.setattr(config, "WORK_SIZE", 320)
    monkeypatch.setattr(face, "downscaled", spy)
    photo = np.zeros((900, 1200, 3), np.uint8)
    small, scale = pipeline.working_copy(photo)
    face.OpenCVFaceDetector().detect(photo)
    assert max(small.shape[:2]) == 320 and scale == pytest.approx(320 / 1200) and sizes == [320]


# ------------------------------------------------------------------ row 11: the report's sample

@dataclasses.dataclass(frozen=True)
class Task:
    source: str
    class_name: str
    thumbnails: bool = False


def test_the_build_renders_the_thumbnails_the_report_shows():
    """build._mark_report_sample and report._sample chose the contact
    sheets' images by two copies of one rule."""
    from skinseg.plan import mark_report_sample
    from skinseg.sampling import CLASSES_SHOWN, contact_sheet

    class_names = [f"c{i:02d}" for i in range(CLASSES_SHOWN + 5)]      # more classes than the report details
    tasks = [Task(f"train/{c}/{i}.png", c) for c in class_names for i in range(9)]
    marked = {t.source for t in mark_report_sample(tasks, class_names) if t.thumbnails}
    shown = {t.source for group in contact_sheet(tasks, class_names).values() for t in group}
    assert shown and shown <= marked                     # every image the report shows, and a few spare
    assert {t.split("/")[1] for t in marked} == set(class_names[:CLASSES_SHOWN])


# ------------------------------------------------------------------ row 12: build.json as a type

def test_only_buildinfo_parses_build_json_and_only_records_parses_records():
    """report, state and the loader read build.json as dictionaries (a
    renamed key silently gave a default); the loader read the manifest too."""
    import ast

    owners = {"buildinfo.py": "build.json", "records.py": "record files", "state.py": "final.json",
              "models.py": "the model digests"}
    for path in sorted((REPO / "skinseg").glob("*.py")):
        tree = ast.parse(path.read_text())
        loads = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr in ("load", "loads")
                 and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"]
        # plan.py and state.py round-trip their own dictionaries through JSON (tuples become lists).
        allowed = path.name in owners or path.name in ("plan.py",)
        assert allowed or not loads, f"{path.name} parses JSON (line {loads}): read it through its owner"


def test_the_card_and_the_loader_read_the_typed_build_info(tmp_path, no_models, src):
    dst = tmp_path / "dst"
    skinseg.build_dataset(skinseg.BuildConfig(src, dst, progress=False, pipeline=PipelineConfig(
        face=FaceParams(enabled=False), output=skinseg.OutputParams(layout="train-ready"))))
    card = (dst / "README.md").read_text()
    assert "ignore_index: 255" in card and "(`ignore_index=255`)" in card
    data = skinseg.SkinDataset(dst, "train")
    assert data.ignore_index == 255 and len(data) == 3 and data[0]["skin_mask"].shape == data[0]["mask"].shape


# ------------------------------------------------------------------ Segmenter takes what users have

def test_segment_takes_arrays_pil_images_bytes_and_paths(tmp_path, no_models):
    from PIL import Image

    image = skin_image(160, 120)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), image)
    config = PipelineConfig(face=FaceParams(enabled=False))
    with skinseg.Segmenter(config) as segmenter:
        expected = segmenter.segment(image).mask
        rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        for given in (path, str(path), path.read_bytes(), bytearray(path.read_bytes()), rgb,
                      rgb.convert("RGBA"), np.ascontiguousarray(image[:, :, ::-1])):
            result = segmenter.segment(given, channels="rgb") if isinstance(given, np.ndarray) else \
                segmenter.segment(given)
            assert result.image_size == (160, 120) and (result.mask == expected).all(), type(given)
        for mode in ("L", "P", "LA", "CMYK", "I;16"):                  # converted as a file of the mode is read
            assert segmenter.segment(rgb.convert(mode)).mask.shape == expected.shape, mode
        with pytest.raises(ValueError, match="HTML page"):
            segmenter.segment(b"<html><body>Not found</body></html>")
        with pytest.raises(ValueError, match="above the limit"):
            skinseg.Segmenter(PipelineConfig(face=FaceParams(enabled=False), max_pixels=1000)).segment(path)
        with pytest.raises(FileNotFoundError):
            segmenter.segment(tmp_path / "nope.jpg")
        with pytest.raises(ValueError, match="mode F"):
            segmenter.segment(Image.new("F", (40, 40)))


def test_segment_reads_a_file_upright_as_a_build_does(tmp_path, no_models):
    from conftest import with_exif_orientation

    image = skin_image(160, 120, seed_offset=20)
    rotated = with_exif_orientation(cv2.imencode(".jpg", image)[1].tobytes(), 6)    # 90 degrees clockwise
    with skinseg.Segmenter(PipelineConfig(face=FaceParams(enabled=False))) as segmenter:
        assert segmenter.segment(rotated).image_size == (120, 160)


def test_a_segmenter_never_closed_leaves_no_traceback_at_exit(model_dir):
    """Every script that forgot close() printed MediaPipe's "Exception
    ignored in ... __del__ ... TypeError: 'NoneType' object is not callable"
    for each of its models when the interpreter exited."""
    script = textwrap.dedent("""
        import cv2
        from skinseg import Segmenter

        segmenter = Segmenter()
        result = segmenter.segment(cv2.imread("examples/dataset_original/train/Normal Skin/1.jpg"))
        assert result.face is not None and set(m.status for _, m in segmenter.models.items()) == {"model"}
        other = Segmenter()          # two, never closed
        print("segmented")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "segmented", proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


# ------------------------------------------------------------------ the fault points

def test_every_fault_point_is_listed_and_matched_by_whole_names(monkeypatch):
    """_faults.py lists every point the code calls, and a name matches whole
    path components (a substring matched 'report.html' inside 'my-report.html')."""
    import ast

    from skinseg import _faults

    called = set()
    for path in (REPO / "skinseg").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "_faults":
                called.add(node.attr)
    assert called == set(_faults.POINTS)
    monkeypatch.setenv(_faults.ENV, "full:report.html,hang:A/stuck.png")
    _faults.before_write("/data/dst/report/thumbs/x.jpg")
    _faults.before_write("/data/dst/my-report.html")
    with pytest.raises(OSError, match="No space"):
        _faults.before_write("/data/dst/report.html")
    assert _faults._actions("before_image", "train/A/stuck.png") == ["hang"]
    assert _faults._actions("before_image", "train/AA/stuck.png") == []
    monkeypatch.setenv(_faults.ENV, "explode:x.png")
    with pytest.raises(ValueError, match="explode"):
        _faults.before_image("train/A/x.png")
