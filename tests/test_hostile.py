"""The README's promises under attack (issue 13): links, concurrent builds,
files skinseg did not write, poison images, odd names, hostile options.

Each test reproduces one way a promise broke and runs the real tool.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from conftest import REPO, make_dataset, read_manifest, run_cli, skin_image, tree_digest


def tool(*args) -> list[str]:
    return [sys.executable, str(REPO / "build_dataset.py"), *map(str, args)]


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
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--workers", "1", "--no-face")
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
    crash = {"SKINSEG_TEST_FAULTS": "crash:poison"}
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
                    env_extra={"SKINSEG_TEST_FAULTS": "hang:stuck"}, timeout=90)
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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_and_servers_exit_when_the_main_process_is_killed(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(400, 300, seed_offset=i % 7)
                                          for i in range(400)})
    dst = tmp_path / "dst"
    proc = subprocess.Popen(tool("--src", src, "--dst", dst, "--workers", "2", "--no-face"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        journal = dst / ".skinseg" / "journal.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and not (journal.exists() and journal.read_bytes().count(b"\n") >= 10):
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)                # the main process only, as the OOM killer does
        proc.wait()
        deadline = time.time() + 20
        while _group_alive(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "fork server, resource tracker or workers outlived the main process"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
