"""report.html in a real headless Chromium: it loads with no console error and no missing
image, and a screenshot is taken.

Chromium is driven over its DevTools pipe (--remote-debugging-pipe), offline.  Its
--enable-logging output was not enough: it shows uncaught script errors, but not an <img>
whose file is missing, so a check on it could not fail for the error that matters most.
test_detection_sees_a_broken_page proves that the check used here does fail.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, read_manifest, run_cli
from skinseg.buildinfo import read_build_info
from skinseg.pipeline import Record
from skinseg.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install "
                                                           "chromium; .ci/run installs it when missing)")
# Offline and quiet: without the background-networking flags Chromium keeps trying to reach Google.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]
TIMEOUT = 60.0


class Browser:
    """The smallest DevTools-protocol client: JSON messages ending in NUL, commands written to
    Chromium's fd 3, replies and events read from its fd 4."""

    def __init__(self, profile: Path):
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        # bash moves the pipe ends to the fd numbers Chromium expects (dash takes one-digit fds only).
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}', CHROMIUM, *FLAGS,
             f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_browser, from_browser), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self.deadline = time.monotonic() + TIMEOUT
        self.events: list[dict] = []
        self._buffer = b""
        self._next_id = 0

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], max(0.0, self.deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT:.0f} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe (did it crash?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._commands, json.dumps(command).encode() + b"\0")
        while True:
            message = self._receive()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(m.get("method") == event for m in self.events):
            self.events.append(self._receive())

    def close(self) -> None:
        try:
            self.process.terminate()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def load(url: str, screenshot: Path, profile: Path) -> tuple[list[str], list[str]]:
    """Open url at 1280x2000, wait for its load event (which waits for every image) and save a
    screenshot; return (console errors, images that did not load)."""
    browser = Browser(profile)
    try:
        targets = browser.call("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        session = browser.call("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.call("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        broken = browser.call("Runtime.evaluate", {
            "expression": "Array.from(document.images).filter(i => !i.complete || !i.naturalWidth).map(i => i.src)",
            "returnByValue": True}, session=session)["result"]["value"]
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        screenshot.write_bytes(base64.b64decode(shot))
    finally:
        browser.close()
    errors = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"{details['text']} {details.get('exception', {}).get('description', '')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
    return errors, broken


def test_report_loads_cleanly_in_chromium(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "examples" / "dataset_original", src)
    odd = src / "train" / 'A<b>&"c" ü'                         # needs escaping and URL encoding
    odd.mkdir()
    shutil.copy(src / "train" / "Normal Skin" / "1.jpg", odd / "pic #1?.jpg")
    (src / "valid" / "Close Up" / "broken.jpg").write_bytes(b"not an image")     # a failed row
    dst = tmp_path / "dst"
    run_cli("--src", src, "--dst", dst, "--workers", "1", "--quiet", expect=1)
    records = [Record(**row) for row in read_manifest(dst)]
    report = dst / write_report(dst, src, records, read_build_info(dst))[0]

    screenshot = tmp_path / "report.png"
    errors, broken = load(report.as_uri(), screenshot, tmp_path / "profile")
    assert errors == [] and broken == []
    assert screenshot.stat().st_size > 10_000
    image = cv2.imread(str(screenshot))
    assert image.shape == (2000, 1280, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 100   # a page, not a blank


def test_detection_sees_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><meta charset="utf-8"><title>broken</title><link rel="icon" href="data:,">'
                    '<img src="no%20such%20file.jpg"><script>throw new Error("deliberate")</script>')
    errors, broken = load(page.as_uri(), tmp_path / "broken.png", tmp_path / "profile")
    assert any("Uncaught" in e and "deliberate" in e for e in errors), errors
    assert any("ERR_FILE_NOT_FOUND" in e and "no%20such%20file.jpg" in e for e in errors), errors
    assert broken == [(tmp_path / "no such file.jpg").as_uri()]
