"""Progress in a log (issue 21): when stderr is not a terminal (SLURM, CI,
nohup) the bar cannot be shown, and nothing was printed until the summary.
Now a line every --progress-interval seconds says how far the build is."""

import os
import re
import signal
import subprocess
import sys

from conftest import REPO, finish, make_dataset, skin_image, tool_env, wait_until
from skinseg.progress import Progress, duration_text, progress_line

LINE = re.compile(r"building: (\d+)/3 images \([\d.]+ %\), ")


def test_a_build_logging_to_a_file_prints_progress_lines_while_it_runs(tmp_path):
    """The real command line, stderr a file: lines appear while the build
    runs (its last image never finishes), not at its end."""
    src = make_dataset(tmp_path / "src", {"train/A/1.png": skin_image(), "train/A/2.png": skin_image(seed_offset=3),
                                          "train/A/stuck.png": skin_image(seed_offset=6)})
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst",
                                 str(tmp_path / "dst"), "--workers", "1", "--no-face", "--progress-interval", "0.2"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True,
                                env=tool_env(SKINSEG_TEST_FAULTS="hang:A/stuck.png"))

        def two_done():
            return any(m.group(1) == "2" for m in LINE.finditer(log.read_text()))

        try:
            wait_until(lambda: proc.poll() is not None or two_done(), "a progress line saying 2/3 images")
            assert proc.poll() is None, log.read_text()               # still running: stuck on its last image
            text = log.read_text()
            assert "images/s, about" in text and "left" in text
            assert "\r" not in text and "\x1b" not in text            # lines, not a bar's redraws
        finally:
            # Not SIGTERM: the build would first wait for the stuck image (--image-timeout).
            os.killpg(proc.pid, signal.SIGKILL)
            finish(proc)


def test_quiet_prints_no_progress_and_a_terminal_gets_the_bar(tmp_path):
    class Log:
        def __init__(self, tty):
            self.tty, self.text = tty, ""

        def isatty(self):
            return self.tty

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    for enabled, tty in ((False, False), (False, True)):
        log = Log(tty)
        progress = Progress(10, 0, "building", enabled, 0.01, log)
        assert progress.bar is None and progress._thread is None
        progress.update(3)
        progress.close()
        assert log.text == ""
    log = Log(True)
    progress = Progress(10, 2, "building", True, 0.01, log)
    assert progress.bar is not None and progress._thread is None          # a bar on a terminal, no lines
    progress.close()
    log = Log(False)
    progress = Progress(10, 2, "building", True, 0.01, log)
    progress.update(3)
    wait_until(lambda: "building: 5/10 images" in log.text, "a progress line")
    progress.close()


def test_the_line_says_done_total_rate_and_time_left():
    assert progress_line("building", 1200, 100000, 1000, 50.0) == \
        "building: 1200/100000 images (1.2 %), 20 images/s, about 1 h 22 min left"
    assert progress_line("shard 2", 300, 1000, 0, 75.0) == \
        "shard 2: 300/1000 images (30.0 %), none finished yet (1 min in)"
    assert [duration_text(s) for s in (0.4, 59, 60, 3599, 3600, 7325)] == \
        ["0 s", "59 s", "1 min", "59 min", "1 h 00 min", "2 h 02 min"]
