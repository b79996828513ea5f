"""Never lose data, never crash on a bad file.

A corpus of bad and unusual inputs is generated at test time and run through
the real CLI mixed with good images; faults (signals, a full or read-only
disk, parameter changes, removed sources) are injected and the final dataset
is compared byte for byte with an undisturbed build.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (
    REPO,
    copy_eval_photos,
    finish,
    journal_lines,
    make_dataset,
    read_manifest,
    run_cli,
    skin_image,
    tool_env,
    tree_digest,
    wait_until,
    with_exif_orientation,
)
from skinseg.headers import ImageReadError
from skinseg.imageio import read_image

EXIF_INVERSE = {
    2: lambda a: cv2.flip(a, 1), 3: lambda a: cv2.rotate(a, cv2.ROTATE_180), 4: lambda a: cv2.flip(a, 0),
    5: lambda a: cv2.transpose(a), 6: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180), 8: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
}


def encode(image, ext):
    return cv2.imencode(ext, image)[1].tobytes()


def corner_skin(width=160, height=120) -> np.ndarray:
    """Skin in the top-left quarter only: shows whether outputs are upright."""
    image = np.full((height, width, 3), (200, 60, 20), np.uint8)
    image[: height // 2, : width // 2] = (120, 150, 210)
    return image


def bad_png_crc() -> bytes:
    data = bytearray(encode(skin_image(), ".png"))
    i = data.index(b"IDAT")
    length = struct.unpack(">I", data[i - 4:i])[0]
    data[i + 4 + length] ^= 0xFF
    return bytes(data)


def huge_declared_png() -> bytes:
    data = bytearray(encode(skin_image(), ".png"))
    data[16:24] = struct.pack(">II", 30000, 30000)
    return bytes(data)


# source path -> (content, expected status, substring of the reason or None)
def bad_input_corpus() -> dict[str, tuple[object, str, str | None]]:
    good = skin_image(120, 100)
    jpeg, png = encode(good, ".jpg"), encode(good, ".png")
    corpus: dict[str, tuple[object, str, str | None]] = {
        "train/Bad/zero_bytes.jpg": (b"", "failed", "empty (0 bytes)"),
        "train/Bad/truncated.jpg": (jpeg[: len(jpeg) // 2], "failed", "JPEG file is truncated"),
        "train/Bad/truncated.png": (png[: len(png) // 2], "failed", "PNG file is truncated"),
        "train/Bad/random_bytes.jpg": (bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)),
                                       "failed", "matches no supported image format"),
        "train/Bad/text.png": (b"this is a note, not a picture\n", "failed", "plain text"),
        "train/Bad/page.jpg": (b"<!DOCTYPE html>\n<html><body>403 Forbidden</body></html>", "failed", "HTML page"),
        "train/Bad/bad_crc.png": (bad_png_crc(), "failed", "fails the CRC check"),
        "train/Bad/one_pixel.png": (encode(np.full((1, 1, 3), 128, np.uint8), ".png"), "failed", "only 1x1"),
        "train/Bad/two_pixels.png": (encode(np.full((2, 2, 3), 128, np.uint8), ".png"), "failed", "only 2x2"),
        "train/Bad/bomb.png": (huge_declared_png(), "failed", "30000x30000"),
        "train/Kinds/gray.png": (encode(cv2.cvtColor(good, cv2.COLOR_BGR2GRAY), ".png"), None, None),
        "train/Kinds/rgba.png": (encode(np.dstack([good, np.full(good.shape[:2], 255, np.uint8)]), ".png"),
                                 "written", None),
        "train/Kinds/deep16.png": (encode(good.astype(np.uint16) * 257, ".png"), "written", None),
        "train/Kinds/plain.bmp": (encode(good, ".bmp"), "written", None),
        "train/Kinds/plain.webp": (encode(good, ".webp"), "written", None),
        "train/Kinds/plain.tiff": (encode(good, ".tiff"), "written", None),
        "train/Kinds/UPPER.JPG": (jpeg, "written", None),
        # Names with unicode, spaces and shell metacharacters, in files and classes.
        "train/Peau sèche & $(rm -rf x)/ça va; `x` 'y' \"z\" ?.jpg": (jpeg, "written", None),
        "train/Kinds/spaces  and\ttab #1.jpg": (jpeg, "written", None),
        "train/Kinds/日本語.png": (png, "written", None),
        # Identical file names in several classes and splits.
        "train/Kinds/same.jpg": (jpeg, "written", None),
        "train/Bad/same.jpg": (jpeg, "written", None),
        "test/Kinds/same.jpg": (jpeg, "written", None),
        "valid/Kinds/same.jpg": (jpeg, "written", None),
    }
    for orientation, inverse in EXIF_INVERSE.items():
        stored = encode(inverse(corner_skin()), ".jpg")
        corpus[f"valid/Exif/orientation_{orientation}.jpg"] = (with_exif_orientation(stored, orientation),
                                                               "written", None)
    return corpus


def pillow_kinds(root: Path) -> dict[str, str]:
    """Image kinds only Pillow writes here: all must be converted, not failed."""
    Image = pytest.importorskip("PIL.Image")
    base = Image.new("RGB", (120, 100), (30, 60, 200))
    base.paste((210, 150, 120), (20, 15, 100, 85))
    kinds = {"train/Kinds/cmyk.jpg": base.convert("CMYK"), "train/Kinds/palette.png": base.convert("P"),
             "train/Kinds/gray_alpha.png": base.convert("LA"), "train/Kinds/palette.bmp": base.convert("P")}
    for relative, image in kinds.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / relative)
    return {k: "converted" for k in kinds}


def dataset_files(dst: Path) -> dict[str, bytes]:
    """Everything a build leaves, for byte comparison; build.json without its
    "run" section (start time, elapsed seconds: those describe the run), and
    .skinseg/final.json without the sizes and modification times of files."""
    files = {}
    for path in sorted(dst.rglob("*")):
        if path.is_file():
            relative = path.relative_to(dst).as_posix()
            data = path.read_bytes()
            if relative in ("build.json", ".skinseg/final.json"):
                info = json.loads(data)
                info.pop("run" if relative == "build.json" else "files")
                data = json.dumps(info, sort_keys=True).encode()
            files[relative] = data
    return files


def test_bad_input_corpus(tmp_path, eval_dir_optional):
    corpus = bad_input_corpus()
    src = tmp_path / "src"
    for relative, (content, _, _) in corpus.items():
        path = src / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    converted = pillow_kinds(src)
    # Non-image files and a symlink loop next to the images.
    (src / "train/Kinds/notes.txt").write_text("collected from the web")
    (src / "train/Kinds/Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    (src / "train/Kinds/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    os.symlink(src / "train", src / "train/Kinds/loop")
    good_photos = []
    if eval_dir_optional is not None:
        good_photos = copy_eval_photos(eval_dir_optional, "pratheepan_face", 3, src / "train" / "Photos")

    dst = tmp_path / "dst"
    result = run_cli("--src", src, "--dst", dst, "--workers", "2", expect=1)
    records = {r["source"]: r for r in read_manifest(dst)}

    expected_failed = {k for k, (_, status, _) in corpus.items() if status == "failed"}
    for relative, (_, status, reason) in corpus.items():
        record = records[relative]
        if status == "failed":
            assert record["status"] == "failed", relative
            assert reason in record["reason"], (relative, record["reason"])
            assert record["image"] is record["mask"] is record["preview"] is None
        elif status == "written":
            assert record["status"] == "written", (relative, record["reason"])
    for relative in converted:
        assert records[relative]["status"] in ("written", "skipped"), (relative, records[relative]["reason"])
        assert records[relative]["reason"] is None or "too little skin" in records[relative]["reason"]
    assert records["train/Kinds/gray.png"]["status"] in ("written", "skipped")   # grey has no skin colour
    for photo in good_photos:
        assert records[f"train/Photos/{photo.name}"]["status"] == "written"

    # Upright outputs with aligned masks whatever the EXIF orientation.
    for orientation in EXIF_INVERSE:
        record = records[f"valid/Exif/orientation_{orientation}.jpg"]
        assert record["size"] == [160, 120]
        mask = cv2.imread(str(dst / record["mask"]), cv2.IMREAD_UNCHANGED)
        ys, xs = np.nonzero(mask)
        assert ys.mean() < 60 and xs.mean() < 80, orientation
        image = cv2.imread(str(dst / record["image"]))
        assert image.shape[:2] == mask.shape

    # Every written record's files exist; no two records share a file.
    paths = [p for r in records.values() for p in (r["image"], r["mask"], r["preview"]) if p]
    assert len(paths) == len(set(paths)) and all((dst / p).is_file() for p in paths)
    # Non-image files are not images: listed as ignored, not failed.
    info = json.loads((dst / "build.json").read_text())
    ignored = {i["path"] for i in info["ignored_files"]}
    assert {"train/Kinds/notes.txt", "train/Kinds/Thumbs.db"} <= ignored
    assert not any(".DS_Store" in p for p in records) and not any("/loop/" in p for p in records)
    assert info["counts"]["total"]["failed"] == len(expected_failed)
    assert f"{len(expected_failed)} failed" in result.output
    # Issue 21: files and folders are counted apart (the link loop is a folder, not a non-image file).
    assert "ignored: 2 non-image files, 1 folder not read (listed in build.json, with why)" in result.output
    lost = [r for r in records.values() if r["status"] == "failed" and r["source"] not in expected_failed]
    assert lost == []


@pytest.fixture
def eval_dir_optional():
    from conftest import EVAL_DIR

    if EVAL_DIR and (Path(EVAL_DIR) / "pratheepan_face" / "pairs.csv").is_file():
        return Path(EVAL_DIR)
    return None


def test_file_vanishing_or_unreadable_during_the_run(tmp_path, monkeypatch):
    """A file deleted after it was listed (here: between the check and the
    open), or that cannot be opened (as after chmod 000; we may be root, so
    the refusal is simulated), gets its own sentence."""
    src = make_dataset(tmp_path / "src", {f"train/A/{n}.png": skin_image() for n in ("a", "gone", "locked")})
    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if os.path.basename(path) == "gone.png":
            os.unlink(path)
        if os.path.basename(path) == "locked.png":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(ImageReadError, match="disappeared"):
        read_image(src / "train/A/gone.png", 10**8)
    with pytest.raises(ImageReadError, match="permission denied"):
        read_image(src / "train/A/locked.png", 10**8)
    assert read_image(src / "train/A/a.png", 10**8).shape == (80, 96, 3)


# ------------------------------------------------------------------ faults

def tool(*args, **kwargs) -> list[str]:
    return [sys.executable, str(REPO / "build_dataset.py"), *map(str, args)]


@pytest.fixture
def medium_src(tmp_path):
    layout = {f"{split}/{cls}/{i:03d}.png": skin_image(360, 280, seed_offset=i % 9)
              for split, n in (("train", 40), ("valid", 10), ("test", 10))
              for cls in ("Acne", "Normal Skin") for i in range(n)}
    layout["train/Acne/broken.jpg"] = b"<html>oops</html>"
    return make_dataset(tmp_path / "src", layout)


def interrupted_then_resumed(src: Path, dst: Path, how: signal.Signals, after_records: int) -> None:
    # The source's last image never finishes in this run, so the signal always lands mid-build.
    last = max(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    proc = subprocess.Popen(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env=tool_env(SKINSEG_TEST_FAULTS=f"hang:{last}"))
    wait_until(lambda: proc.poll() is not None or journal_lines(dst) >= after_records,
               f"{after_records} journal lines")
    assert proc.poll() is None, proc.communicate()
    if how == signal.SIGKILL:
        os.killpg(proc.pid, signal.SIGKILL)          # the whole job, workers included, with no warning
    else:
        proc.send_signal(how)
    finish(proc)
    assert proc.returncode != 0
    if how != signal.SIGKILL:
        assert not [p for p in dst.rglob("*") if ".skinseg-tmp-" in p.name]
    resumed = subprocess.run(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr          # 1: broken.jpg failed, as in the reference
    assert not [p for p in dst.rglob("*") if ".skinseg-tmp-" in p.name]
    assert not (dst / ".skinseg" / "journal.jsonl").exists()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_build_ends_byte_identical(medium_src, tmp_path, how):
    before = tree_digest(medium_src)
    reference = tmp_path / "reference"
    subprocess.run(tool("--src", medium_src, "--dst", reference, "--workers", "2", "--no-face"),
                   capture_output=True, timeout=300)
    dst = tmp_path / "dst"
    interrupted_then_resumed(medium_src, dst, how, after_records=30)
    info = json.loads((dst / "build.json").read_text())
    assert info["run"]["reused"] >= 25                  # the resumed run did not start over
    assert dataset_files(dst) == dataset_files(reference)
    assert tree_digest(medium_src) == before


def test_identical_runs_identical_bytes(tmp_path, eval_dir_optional):
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image(200, 150, seed_offset=i) for i in range(6)})
    if eval_dir_optional is not None:
        copy_eval_photos(eval_dir_optional, "pratheepan_family", 4, src / "train" / "Family")
        copy_eval_photos(eval_dir_optional, "abdomen_train", 4, src / "test" / "Abdomen")
    run_cli("--src", src, "--dst", tmp_path / "a", "--workers", "2", "--quiet")
    run_cli("--src", src, "--dst", tmp_path / "b", "--workers", "2", "--quiet")
    run_cli("--src", src, "--dst", tmp_path / "c", "--workers", "1", "--quiet")
    assert dataset_files(tmp_path / "a") == dataset_files(tmp_path / "b")
    assert dataset_files(tmp_path / "a") == dataset_files(tmp_path / "c")


def test_parameter_change_updates_exactly_the_affected_outputs(medium_src, tmp_path):
    dst = tmp_path / "dst"
    run_cli("--src", medium_src, "--dst", dst, "--workers", "1", "--no-face", "--quiet", expect=1)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.rglob("*.png") if "masks" in p.parts[-3]}
    images_before = {p: p.read_bytes() for p in (dst / "images").rglob("*.*")}
    # Back-date every file: one the re-run rewrites gets a new time, whatever the clock's resolution.
    for path in before:
        os.utime(path, ns=(10**18, 10**18))
    before = {p: (10**18, data) for p, (_, data) in before.items()}
    run_cli("--src", medium_src, "--dst", dst, "--workers", "1", "--no-face", "--quiet",
            "--background", "original", expect=1)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.rglob("*.png") if "masks" in p.parts[-3]}
    assert after == before                               # masks and previews untouched
    changed = [p for p in (dst / "images").rglob("*.*") if p.read_bytes() != images_before[p]]
    assert len(changed) == len(images_before)            # every skin-only image changed


def test_removed_source_loses_its_outputs(medium_src, tmp_path):
    dst = tmp_path / "dst"
    run_cli("--src", medium_src, "--dst", dst, "--workers", "1", "--no-face", "--quiet", expect=1)
    victim = next(r for r in read_manifest(dst) if r["source"] == "train/Acne/000.png")
    (medium_src / "train/Acne/000.png").unlink()
    run_cli("--src", medium_src, "--dst", dst, "--workers", "1", "--no-face", "--quiet", expect=1)
    assert all(not (dst / victim[k]).exists() for k in ("image", "mask", "preview"))
    assert "train/Acne/000.png" not in {r["source"] for r in read_manifest(dst)}
    # An image that becomes "skipped" loses its old outputs too.
    blue = np.full((280, 360, 3), (200, 60, 20), np.uint8)
    cv2.imwrite(str(medium_src / "train/Acne/001.png"), blue)
    old = next(r for r in read_manifest(dst) if r["source"] == "train/Acne/001.png")
    run_cli("--src", medium_src, "--dst", dst, "--workers", "1", "--no-face", "--quiet", expect=1)
    assert not (dst / old["mask"]).exists()


# ------------------------------------------------- full and read-only disks

def in_private_mount(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a shell script as root of a new user+mount namespace, where it can
    mount a tiny or read-only tmpfs; skip where namespaces are not allowed."""
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.decode().strip()}")
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_full_disk_stops_with_a_clear_error_and_resumes(medium_src, tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(tool("--src", medium_src, "--dst", reference, "--workers", "1", "--no-face"),
                   capture_output=True, timeout=300)
    mnt, copy = tmp_path / "mnt", tmp_path / "copy"
    mnt.mkdir()
    cmd = " ".join(f"'{a}'" for a in tool("--src", medium_src, "--dst", mnt / "dst", "--workers", "2", "--no-face"))
    script = f"""
        mount -t tmpfs -o size=256k tmpfs '{mnt}'
        {cmd} > '{tmp_path}/full.out' 2> '{tmp_path}/full.err'; echo $? > '{tmp_path}/full.rc'
        ls -A '{mnt}/dst' > '{tmp_path}/full.ls'
        mount -o remount,size=64m '{mnt}'
        {cmd} > /dev/null 2>&1; echo $? > '{tmp_path}/again.rc'
        cp -a '{mnt}/dst' '{copy}'
    """
    proc = in_private_mount(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    err = (tmp_path / "full.err").read_text()
    assert (tmp_path / "full.rc").read_text().strip() == "1"
    assert "No space left on device" in err and "re-running the same command resumes" in err
    assert "manifest.jsonl" not in (tmp_path / "full.ls").read_text()      # nothing presented as done
    assert "Traceback" not in err
    assert (tmp_path / "again.rc").read_text().strip() == "1"             # only broken.jpg fails
    assert dataset_files(copy) == dataset_files(reference)


def test_read_only_destination_is_a_clear_error(medium_src, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    build = " ".join(f"'{a}'" for a in tool("--src", medium_src, "--dst", mnt / "dst", "--workers", "1", "--no-face"))
    script = f"""
        mount -t tmpfs -o size=64m tmpfs '{mnt}'
        {build} --quiet > /dev/null 2>&1
        mount -o remount,ro '{mnt}'
        {build} --kernel-size 3 > '{tmp_path}/ro.out' 2> '{tmp_path}/ro.err'; echo $? > '{tmp_path}/ro.rc'
    """
    proc = in_private_mount(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ro.rc").read_text().strip() == "2"
    err = (tmp_path / "ro.err").read_text()
    assert "cannot write to --dst" in err and "Read-only file system" in err and "Traceback" not in err
