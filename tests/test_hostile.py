"""The README's promises under attack (issue 13): links, concurrent builds,
files skinseg did not write, poison images, odd names, hostile options.

Each test reproduces one way a promise broke and runs the real tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_hardening import dataset_files, in_private_mount, tool
from test_process import _group_alive

from conftest import journal_lines, make_dataset, read_manifest, run_cli, skin_image, tool_env, tree_digest, wait_until


def run_tool(*args, timeout=120, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(tool(*args), capture_output=True, text=True, timeout=timeout, env=env)


def records_of(dst: Path) -> dict[str, dict]:
    return {r["source"]: r for r in read_manifest(dst)}


def jpeg_with_stray_byte(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header claims width x height, with one
    stray byte before the SOF marker (decoders skip it; a strict parser gives up)."""
    data = bytearray(cv2.imencode(".jpg", skin_image(64, 48))[1].tobytes())
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[:sof]) + b"\x00" + bytes(data[sof:])


# ------------------------------------------------------------ poison images

def test_stray_byte_before_sof_does_not_bypass_max_pixels(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/ok.png": skin_image(),
                                          "train/A/bomb.jpg": jpeg_with_stray_byte(5000, 4000)})
    run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--quiet", "--no-face",
            "--max-pixels", "1000000", expect=1)
    bomb = records_of(tmp_path / "dst")["train/A/bomb.jpg"]
    assert bomb["status"] == "failed" and "5000x4000" in bomb["reason"] and "not decoded" in bomb["reason"]


def test_very_elongated_image_is_refused_with_a_reason(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/ok.png": skin_image(),
                                          "train/A/strip.png": np.full((100000, 16, 3), (120, 150, 210), np.uint8)})
    # --progress-interval: stderr is not a terminal, and a slow run would print its progress there.
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face", "--progress-interval",
                    "3600")
    assert proc.returncode == 1, proc.stderr
    strip = records_of(tmp_path / "dst")["train/A/strip.png"]
    assert strip["status"] == "failed" and "16x100000" in strip["reason"] and "65500" in strip["reason"]
    assert "internal error" not in strip["reason"]
    assert proc.stderr == "", proc.stderr                       # no OpenCV error lines
    assert records_of(tmp_path / "dst")["train/A/ok.png"]["status"] == "written"


def test_fifo_and_device_named_like_images_are_refused(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/ok.png": skin_image()})
    os.mkfifo(src / "train/A/pipe.jpg")
    os.symlink("/dev/zero", src / "train/A/zero.jpg")
    before = tree_digest(src)
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face", timeout=90)
    assert proc.returncode == 1, proc.stderr
    records = records_of(tmp_path / "dst")
    assert "named pipe" in records["train/A/pipe.jpg"]["reason"]
    assert "character device" in records["train/A/zero.jpg"]["reason"]
    assert records["train/A/ok.png"]["status"] == "written"
    assert tree_digest(src) == before


def test_poison_image_with_one_worker_fails_only_itself_and_is_not_retried(tmp_path):
    """A worker crash on one image with --workers 1, then re-runs where it is
    the only image pending: the build goes on each time, and a re-run does
    not trip over it again unless asked to (--retry-failed)."""
    src = make_dataset(tmp_path / "src", {f"train/A/{n}.png": skin_image() for n in ("a", "poison", "z")})
    dst = tmp_path / "dst"
    crash = {"SKINSEG_TEST_FAULTS": "crash:poison.png"}
    proc = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", env_extra=crash)
    assert proc.returncode == 1, proc.stderr
    records = records_of(dst)
    assert "crashed" in records["train/A/poison.png"]["reason"]
    assert records["train/A/a.png"]["status"] == records["train/A/z.png"]["status"] == "written"

    again = run_tool("--src", src, "--dst", dst, "--workers", "2", "--no-face", env_extra=crash)
    assert again.returncode == 1, again.stderr
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 0
    assert "--retry-failed" in again.stdout
    retried = run_tool("--src", src, "--dst", dst, "--workers", "2", "--no-face", "--retry-failed", env_extra=crash)
    assert retried.returncode == 1, retried.stderr                 # the lone pending image crashes again: isolated
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 1
    assert "crashed" in records_of(dst)["train/A/poison.png"]["reason"]


def test_every_image_has_a_time_limit(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{n}.png": skin_image() for n in ("a", "stuck", "z")})
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--workers", "2", "--no-face", "--image-timeout", "3",
                    env_extra={"SKINSEG_TEST_FAULTS": "hang:stuck.png"}, timeout=90)
    assert proc.returncode == 1, proc.stderr
    records = records_of(tmp_path / "dst")
    assert "longer than the limit of 3 s" in records["train/A/stuck.png"]["reason"]
    assert records["train/A/a.png"]["status"] == records["train/A/z.png"]["status"] == "written"


def test_workers_are_capped_to_the_cpus_available(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image() for i in range(4)})
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1000", "--no-face")
    cpus = len(os.sched_getaffinity(0))
    assert f"--workers 1000 is more than the {cpus} CPU" in result.output
    assert json.loads((tmp_path / "dst/build.json").read_text())["run"]["workers"] == min(cpus, 4)


def test_workers_and_servers_exit_when_the_main_process_is_killed(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(400, 300, seed_offset=i % 7)
                                          for i in range(40)})
    dst = tmp_path / "dst"
    # One image never finishes, so the build is still running whenever the kill comes.
    proc = subprocess.Popen(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face", "--image-timeout", "3600"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=tool_env(SKINSEG_TEST_FAULTS="hang:A/039.png"))
    try:
        wait_until(lambda: journal_lines(dst) >= 2, "the build's first journal lines")
        assert proc.poll() is None, "the build ended though one of its images never finishes"
        os.kill(proc.pid, signal.SIGKILL)                # the main process only, as the OOM killer does
        proc.wait()
        wait_until(lambda: not _group_alive(proc.pid), "the fork server, resource tracker and workers to exit "
                   "after the main process was killed", timeout=30)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


# ------------------------------------------------------------ names

def test_names_that_are_not_utf8_are_recorded_not_fatal(tmp_path):
    """File and class folder names from a zip made on Windows (Latin-1 bytes)."""
    src = make_dataset(tmp_path / "src", {"train/Acne/ok.png": skin_image()})
    raw = os.fsencode(src)
    os.makedirs(raw + b"/train/Ecz\xe9ma")
    image = cv2.imencode(".png", skin_image())[1].tobytes()
    for name in (b"/train/Acne/caf\xe9.png", b"/train/Ecz\xe9ma/1.png"):
        with open(raw + name, "wb") as handle:
            handle.write(image)
    dst = tmp_path / "dst"
    result = run_cli("--src", src, "--dst", dst, "--workers", "1")
    manifest = (dst / "manifest.jsonl").read_bytes().decode("utf-8")        # valid UTF-8
    records = {os.fsencode(r["source"]): r for r in map(json.loads, manifest.splitlines())}
    assert set(records) == {b"train/Acne/ok.png", b"train/Acne/caf\xe9.png", b"train/Ecz\xe9ma/1.png"}
    assert all(r["status"] == "written" and (dst / r["image"]).is_file() for r in records.values())
    assert records[b"train/Ecz\xe9ma/1.png"]["class_name"] == "Ecz\\xe9ma"
    assert (dst / "classes.txt").read_bytes().decode("utf-8") == "background\nAcne\nEcz\\xe9ma\n"
    (dst / "report.html").read_bytes().decode("utf-8")
    json.loads((dst / "build.json").read_bytes().decode("utf-8"))
    assert "3 written" in result.output
    # The tool's own classes.txt keeps the ids.
    run_cli("--src", src, "--dst", tmp_path / "again", "--workers", "1", "--quiet", "--classes", dst / "classes.txt")
    assert (tmp_path / "again/classes.txt").read_bytes() == (dst / "classes.txt").read_bytes()


def test_long_flattened_names_fit_the_file_system(tmp_path):
    deep = "/".join(["a_rather_long_folder_name"] * 9)
    long_file = "x" * 247 + ".png"                                 # 251 bytes, the limit is 255
    src = make_dataset(tmp_path / "src", {f"train/Acne/{deep}/1.png": skin_image(),
                                          f"train/Acne/{long_file}": skin_image(),
                                          f"train/Acne/{long_file[:-5]}y.png": skin_image(),
                                          "train/Acne/short.png": skin_image()})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    records = read_manifest(dst)
    assert len(records) == 4 and all(r["status"] == "written" for r in records)
    names = [os.path.basename(r[k]) for r in records for k in ("image", "mask", "preview")]
    temporary = len(".") + len(".skinseg-tmp-") + 8                 # written first as .<name>.skinseg-tmp-XXXXXXXX
    assert all(len(os.fsencode(n)) + temporary <= 255 for n in names)
    assert len({r["image"] for r in records}) == 4
    assert next(r for r in records if r["source"] == "train/Acne/short.png")["image"] == "images/train/Acne__short.jpg"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 0


def test_class_names_round_trip_through_classes_txt(tmp_path):
    """classes.txt names the classes exactly as the next build reads them:
    stray white space, NFC and NFD spellings of one name, its own file."""
    nfc, nfd = "Ecz\u00e9ma", "Ecze\u0301ma"
    src = make_dataset(tmp_path / "src", {"train/Acne /1.png": skin_image(), f"train/{nfc}/1.png": skin_image(),
                                          f"test/{nfd}/1.png": skin_image(), "test/Acne/2.png": skin_image()})
    pinned = tmp_path / "classes.txt"
    pinned.write_text(f"background\n{nfc}\nAcne\n")
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--classes", pinned)
    assert (dst / "classes.txt").read_text() == f"background\n{nfc}\nAcne\n"          # no phantom, no new id
    ids = {(r["source"].split("/")[1], r["class_id"]) for r in read_manifest(dst)}
    assert ids == {("Acne ", 2), ("Acne", 2), (nfc, 1), (nfd, 1)}
    # The tool's own classes.txt (with a BOM and CRLF, as a Windows editor saves it) keeps every id.
    edited = tmp_path / "edited.txt"
    edited.write_bytes(b"\xef\xbb\xbf" + (dst / "classes.txt").read_bytes().replace(b"\n", b"\r\n"))
    run_cli("--src", src, "--dst", tmp_path / "again", "--workers", "1", "--quiet", "--no-face", "--classes", edited)
    assert (tmp_path / "again/classes.txt").read_bytes() == (dst / "classes.txt").read_bytes()


@pytest.mark.parametrize("folder, message", [
    (" ", "is empty or only white space"),
    ("two\nlines", "line break"),
    ("background", "id 0"),
])
def test_class_folder_names_that_cannot_be_a_class_are_usage_errors(tmp_path, folder, message):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image(), f"train/{folder}/1.png": skin_image()})
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face", expect=2)
    assert message in result.output and "rename" in result.output
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("content, message", [
    (b"background\nAcne\nAcne\n", "listed twice"),
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b"background\nCaf\xe9\n", "not UTF-8"),
    (b"background\n \nAcne\n", "line 1 is empty"),
    (b"background\nbackground\n", "id 0"),
])
def test_bad_classes_file_is_a_usage_error(tmp_path, content, message):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image()})
    (tmp_path / "classes.txt").write_bytes(content)
    result = run_cli("--src", src, "--dst", tmp_path / "dst", "--classes", tmp_path / "classes.txt", expect=2)
    assert message in result.output and "Traceback" not in result.output


def test_classes_file_that_is_a_fifo_is_refused(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image()})
    os.mkfifo(tmp_path / "classes.txt")
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--classes", tmp_path / "classes.txt", timeout=60)
    assert proc.returncode == 2 and "named pipe" in proc.stderr, proc.stderr


# ------------------------------------------------------------ options

@pytest.mark.parametrize("option", ["--min-face-score", "--face-margin", "--min-component-area",
                                    "--min-skin-fraction", "--image-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_float_options_must_be_finite(tmp_path, option, value):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image()})
    result = run_cli("--src", src, "--dst", tmp_path / "dst", option, value, expect=2)
    assert option in result.output
    assert not (tmp_path / "dst").exists()


# ------------------------------------------------------------ concurrent builds

def _start_stuck_build(src: Path, dst: Path, *extra: str) -> subprocess.Popen:
    """A build that stays busy (one image hangs) until killed; returns once it has started its images."""
    env = dict(os.environ, SKINSEG_TEST_FAULTS="hang:stuck.png")
    proc = subprocess.Popen(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face", "--quiet", *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    journals = dst / ".skinseg"
    wait_until(lambda: proc.poll() is not None or any(p.stat().st_size for p in journals.glob("journal*.jsonl")),
               "the build's first journal line")
    assert proc.poll() is None, proc.communicate()
    return proc


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


@pytest.fixture
def busy_src(tmp_path):
    layout = {f"train/{c}/{i:02d}.png": skin_image(seed_offset=i % 5) for c in ("A", "B") for i in range(12)}
    layout["train/A/stuck.png"] = skin_image()
    return make_dataset(tmp_path / "src", layout)


def test_one_build_per_destination(busy_src, tmp_path):
    dst = tmp_path / "dst"
    first = _start_stuck_build(busy_src, dst)
    try:
        second = run_tool("--src", busy_src, "--dst", dst, "--workers", "1", "--no-face", "--kernel-size", "3")
        assert second.returncode == 2 and "another skinseg build is writing" in second.stderr, second.stderr
        other_src = make_dataset(tmp_path / "other", {"train/C/1.png": skin_image()})
        third = run_tool("--src", other_src, "--dst", dst, "--workers", "1", "--no-face")
        assert third.returncode == 2, third.stderr
    finally:
        _kill(first)                                   # killed: its lock goes with it
    again = run_tool("--src", busy_src, "--dst", dst, "--workers", "2", "--no-face", "--kernel-size", "3")
    assert again.returncode == 0, again.stderr
    fingerprints = {r["fingerprint"] for r in read_manifest(dst)}
    info = json.loads((dst / "build.json").read_text())
    assert info["parameters"]["cleanup"]["kernel_size"] == 3 and len(fingerprints) == len(read_manifest(dst))
    produced = {p.relative_to(dst).as_posix() for p in (dst / "images").rglob("*") if p.is_file()}
    assert produced == {r["image"] for r in read_manifest(dst)}        # nothing from the killed build's run


def test_shards_of_one_build_run_together_and_nothing_else(busy_src, tmp_path):
    dst = tmp_path / "dst"
    from skinseg.build import in_shard

    stuck_shard = 1 if in_shard("train/A/stuck.png", (1, 2)) else 2
    other = 3 - stuck_shard
    first = _start_stuck_build(busy_src, dst, "--shard", f"{stuck_shard}/2")
    try:
        plain = run_tool("--src", busy_src, "--dst", dst, "--workers", "1", "--no-face")
        assert plain.returncode == 2 and "another skinseg build" in plain.stderr, plain.stderr
        foreign = run_tool("--src", busy_src, "--dst", dst, "--workers", "1", "--no-face", "--shard", f"{other}/2",
                           "--kernel-size", "3")
        assert foreign.returncode == 2 and "shards of another build" in foreign.stderr, foreign.stderr
        sibling = run_tool("--src", busy_src, "--dst", dst, "--workers", "1", "--no-face", "--shard", f"{other}/2")
        assert sibling.returncode == 0 and f"shard {other}/2 done" in sibling.stdout, sibling.stderr
    finally:
        _kill(first)


def test_shards_with_different_class_ids_are_refused(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/{c}/{i}.png": skin_image() for c in ("A", "B") for i in range(6)})
    pinned = tmp_path / "classes.txt"
    pinned.write_text("background\nB\nA\n")
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--shard", "1/2",
            "--classes", pinned)
    result = run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--shard", "2/2", expect=2)
    assert "other parameters" in result.output and "class" in result.output
    assert not (dst / "manifest.jsonl").exists()


# ------------------------------------------------------------ deleting only what skinseg wrote

def test_files_in_report_that_skinseg_did_not_write_stay(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image(seed_offset=i) for i in range(3)})
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    (dst / "report/notes.md").write_text("image 2 looks wrong")
    (dst / "report/thumbs/annotated.jpg").write_bytes(b"mine")
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--kernel-size", "3")
    assert (dst / "report/notes.md").read_text() == "image 2 looks wrong"
    assert (dst / "report/thumbs/annotated.jpg").read_bytes() == b"mine"


def test_only_paths_skinseg_wrote_inside_dst_are_ever_deleted(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image()})
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    # Another tool's dataset, with its own manifest.jsonl, built over with --overwrite.
    foreign = tmp_path / "foreign"
    (foreign / "images/train").mkdir(parents=True)
    (foreign / "images/train/A__9.jpg").write_bytes(b"theirs")
    rows = [{"source": "x.jpg", "image": "images/train/A__9.jpg"}, {"source": "y.jpg", "image": str(outside)},
            {"source": "z.jpg", "image": "../outside.txt", "mask": "images/train/../../../outside.txt"}]
    (foreign / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = tree_digest(foreign)
    refused = run_cli("--src", src, "--dst", foreign, "--workers", "1", "--quiet", "--no-face", "--overwrite",
                      expect=2)
    assert "manifest.jsonl, which skinseg did not write" in refused.output     # never replaced (issue 18, L13)
    assert tree_digest(foreign) == before
    (foreign / "manifest.jsonl").rename(tmp_path / "their-manifest.jsonl")
    run_cli("--src", src, "--dst", foreign, "--workers", "1", "--quiet", "--no-face", "--overwrite")
    assert outside.read_text() == "precious" and (foreign / "images/train/A__9.jpg").read_bytes() == b"theirs"
    # A skinseg build whose manifest was edited to name other files.
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    (dst / "notes.png").write_bytes(b"mine")
    bogus = {**read_manifest(dst)[0], "source": "train/A/gone.png", "image": "../outside.txt", "mask": "notes.png",
             "preview": str(outside)}
    with open(dst / "manifest.jsonl", "a") as handle:
        handle.write(json.dumps(bogus) + "\n")
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", "--overwrite")
    assert outside.read_text() == "precious" and (dst / "notes.png").read_bytes() == b"mine"


def test_outputs_in_flight_at_a_kill_are_removed_when_an_option_changes(tmp_path):
    """kill -9 with --image-format png, then a build with jpg: the png outputs
    of the images that were being written when the build died go too."""
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(320, 240, seed_offset=i % 7)
                                          for i in range(40)})
    dst = tmp_path / "dst"
    # A020's files are written, then its worker stops before the record is sent:
    # the state a kill leaves when it lands between an image's writes and its journal line.
    proc = subprocess.Popen(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face", "--image-format", "png",
                                 "--image-timeout", "3600"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=tool_env(SKINSEG_TEST_FAULTS="hang_after_write:A/020.png"))
    in_flight = dst / "images/train/A__020.png"
    try:
        wait_until(lambda: (dst / "masks_preview/train/A__020.png").exists() and in_flight.exists(),
                   "the held image's files")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    journal = dst / ".skinseg/journal.jsonl"
    journaled = {json.loads(line)["image"] for line in journal.read_text().splitlines()
                 if line.endswith("}")} if journal.exists() else set()
    assert in_flight.relative_to(dst).as_posix() not in journaled
    run_cli("--src", src, "--dst", dst, "--workers", "2", "--quiet", "--no-face")
    assert not in_flight.exists()
    claimed = {p for r in read_manifest(dst) for p in (r["image"], r["mask"], r["preview"]) if p}
    for folder in ("images", "masks", "masks_preview"):
        on_disk = {p.relative_to(dst).as_posix() for p in (dst / folder).rglob("*") if p.is_file()}
        assert on_disk - {"masks_preview/legend.png"} <= claimed, folder


# ------------------------------------------------------------ full disk

def test_full_disk_leaves_no_write_probe(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image()})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = " ".join(f"'{a}'" for a in tool("--src", src, "--dst", mnt / "dst", "--workers", "1", "--no-face"))
    script = f"""
        mount -t tmpfs -o size=64k tmpfs '{mnt}'
        mkdir '{mnt}/dst' && (cat /dev/zero > '{mnt}/filler' 2>/dev/null; true)
        {cmd} > /dev/null 2> '{tmp_path}/full.err'; echo $? > '{tmp_path}/full.rc'
        find '{mnt}/dst' > '{tmp_path}/full.ls'
    """
    proc = in_private_mount(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "full.rc").read_text().strip() == "2"
    assert "No space left on device" in (tmp_path / "full.err").read_text()
    assert ".write-probe-" not in (tmp_path / "full.ls").read_text()


def test_full_disk_while_writing_the_final_files_presents_nothing_as_done(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i}.png": skin_image(seed_offset=i) for i in range(5)})
    run_cli("--src", src, "--dst", tmp_path / "reference", "--workers", "1", "--quiet", "--no-face",
            "--kernel-size", "3")
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face")
    failing = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--kernel-size", "3",
                       env_extra={"SKINSEG_TEST_FAULTS": "full:report.html"})
    assert failing.returncode == 1 and "No space left on device" in failing.stderr, failing.stderr
    assert "Traceback" not in failing.stderr
    assert not (dst / "manifest.jsonl").exists()        # no new manifest next to the old report
    again = run_tool("--src", src, "--dst", dst, "--workers", "1", "--no-face", "--kernel-size", "3")
    assert again.returncode == 0, again.stderr
    assert json.loads((dst / "build.json").read_text())["run"]["processed"] == 0     # the images were kept
    assert dataset_files(dst) == dataset_files(tmp_path / "reference")


# ------------------------------------------------------------ links and mounts

def _record_count_after_runs(src: Path, dst: Path, runs: int = 3) -> list[int]:
    counts = []
    for _ in range(runs):
        run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", "--no-face", expect=None)
        counts.append(len(read_manifest(dst)))
    return counts


def test_a_link_from_the_source_to_the_destination_is_not_followed(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/Acne/{i}.png": skin_image(seed_offset=i) for i in range(3)})
    dst = tmp_path / "dst"
    os.symlink("../../../dst", src / "train/Acne/out")
    assert _record_count_after_runs(src, dst) == [3, 3, 3]
    assert not any("/out/" in r["source"] for r in read_manifest(dst))
    ignored = {i["path"]: i["reason"] for i in json.loads((dst / "build.json").read_text())["ignored_files"]}
    assert "destination" in ignored["train/Acne/out"]


def test_a_destination_in_a_folder_the_source_reads_through_a_link_is_refused(tmp_path):
    """holder is read as source (class Linked, through a link): a dataset
    written into it would be read back as source by a build into another
    --dst (issue 18, C1), so the build is refused before writing anything."""
    holder = make_dataset(tmp_path / "holder", {f"{i}.png": skin_image(seed_offset=i) for i in range(2)})
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image()})
    os.symlink(holder, src / "train/Linked")
    before = tree_digest(holder)
    result = run_cli("--src", src, "--dst", holder / "dst", "--workers", "1", "--quiet", "--no-face", expect=2)
    assert "is inside --src" in result.output and "train/Linked" in result.output, result.output
    assert tree_digest(holder) == before and not (holder / "dst").exists()


def test_a_link_to_the_root_is_not_walked(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image()})
    os.symlink("/", src / "train/Acne/root")
    os.symlink("../..", src / "train/Acne/up")
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [r["source"] for r in read_manifest(tmp_path / "dst")] == ["train/Acne/1.png"]
    ignored = {i["path"]: i["reason"] for i in json.loads((tmp_path / "dst/build.json").read_text())["ignored_files"]}
    assert "contains the source" in ignored["train/Acne/root"] and "contains the source" in ignored["train/Acne/up"]


def test_destination_inside_the_source_through_a_bind_mount_is_refused(tmp_path):
    src = make_dataset(tmp_path / "src", {"train/Acne/1.png": skin_image()})
    before = tree_digest(src)
    view = tmp_path / "view"
    view.mkdir()
    cmd = " ".join(f"'{a}'" for a in tool("--src", src, "--dst", view / "train/Acne/out", "--no-face"))
    script = f"""
        mount --bind '{src}' '{view}'
        {cmd} > /dev/null 2> '{tmp_path}/bind.err'; echo $? > '{tmp_path}/bind.rc'
    """
    proc = in_private_mount(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bind.rc").read_text().strip() == "2", (tmp_path / "bind.err").read_text()
    assert "inside --src" in (tmp_path / "bind.err").read_text()
    assert tree_digest(src) == before
