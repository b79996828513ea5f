"""The README's promises under attack (issue 13): links, concurrent builds,
files skinseg did not write, poison images, odd names, hostile options.

Each test reproduces one way a promise broke and runs the real tool.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
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
