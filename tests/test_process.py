"""The tool as a user runs it: a separate process, real signals, real stderr."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    REPO,
    finish,
    journal_lines,
    make_dataset,
    read_manifest,
    skin_image,
    tool_env,
    tree_digest,
    wait_until,
)


def run_tool(*args, env_extra=None, **kwargs):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, str(REPO / "build_dataset.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_no_native_log_noise_reaches_the_user(model_dir, tmp_path):
    src = REPO / "examples" / "dataset_original"
    proc = run_tool("--src", src, "--dst", tmp_path / "dst", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    for noise in ("INFO:", "W0000", "I0000", "TensorFlow Lite", "XNNPACK", "Exception ignored", "Traceback",
                  "InitGoogle"):
        assert noise not in proc.stderr, proc.stderr
    assert "11 written" in proc.stdout
    # stderr is not a terminal: a slow run (a busy machine) would print its progress lines there.
    proc = run_tool("--src", src, "--dst", tmp_path / "dst1", "--workers", "1", "--progress-interval", "3600")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_sigint_stops_cleanly_and_a_rerun_completes(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(400, 300, seed_offset=i % 7)
                                          for i in range(60)})
    before = tree_digest(src)
    dst = tmp_path / "dst"
    # The last image never finishes in this run: the SIGINT always lands mid-build.
    proc = subprocess.Popen([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst", str(dst),
                             "--workers", "2", "--no-face"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=tool_env(SKINSEG_TEST_FAULTS="hang:A/059.png"))
    wait_until(lambda: proc.poll() is not None or journal_lines(dst) >= 5, "the build's first 5 journal lines")
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    leftovers = [p for p in dst.rglob("*") if ".skinseg-tmp-" in p.name]
    assert leftovers == []
    assert not (dst / "manifest.jsonl").exists()

    proc = run_tool("--src", src, "--dst", dst, "--workers", "2", "--no-face")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((dst / "build.json").read_text())
    assert info["run"]["reused"] >= 5 and info["run"]["processed"] < 60
    assert len(read_manifest(dst)) == 60
    assert tree_digest(src) == before


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue                  # exited meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("moment", ["fork server started", "workers started", "first image done"])
def test_ctrl_c_while_workers_start_is_clean(model_dir, tmp_path, moment):
    """Ctrl-C reaches the whole foreground process group (the fork server and
    workers too), at any moment: while workers start, after the first images.
    Each time: exit 130, one line, no traceback, and no process left behind.
    Each moment is an event the test waits for; one image never finishes, so
    the build is never done before the Ctrl-C."""
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(400, 300, seed_offset=i % 7)
                                          for i in range(30)})
    dst = tmp_path / "dst"
    proc = subprocess.Popen([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src),
                             "--dst", str(dst), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=tool_env(SKINSEG_TEST_FAULTS="hang:A/029.png"))
    try:
        reached = {
            "fork server started": lambda: _children(proc.pid),
            # the workers are the fork server's children
            "workers started": lambda: any(_children(child) for child in _children(proc.pid)),
            "first image done": lambda: journal_lines(dst) >= 1,
        }[moment]
        wait_until(lambda: proc.poll() is not None or reached(), moment)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = finish(proc)
        assert proc.returncode == 130, (moment, err)
        assert "Traceback" not in err and "Error" not in err, (moment, err)
        assert err.strip().endswith("run the same command again to resume"), (moment, err)
        wait_until(lambda: not _group_alive(proc.pid), f"every process to exit after Ctrl-C ({moment})", timeout=60)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_library_use_without_main_guard_fails_fast_with_advice(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from pathlib import Path\n"
        "from skinseg.build import build\n"
        "from skinseg.config import BuildConfig\n"
        f"build(BuildConfig(Path({str(REPO / 'examples' / 'dataset_original')!r}), Path({str(tmp_path / 'dst')!r}),"
        " workers=2, progress=False))\n")
    # Fails fast: without the check, workers would be restarted for ever (the run's timeout is the deadline).
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=tmp_path)
    assert proc.returncode != 0 and "__main__" in proc.stderr
