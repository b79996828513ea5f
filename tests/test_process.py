"""The tool as a user runs it: a separate process, real signals, real stderr."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, make_dataset, read_manifest, skin_image, tree_digest


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
    proc = run_tool("--src", src, "--dst", tmp_path / "dst1", "--workers", "1")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_sigint_stops_cleanly_and_a_rerun_completes(tmp_path):
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(400, 300, seed_offset=i % 7)
                                          for i in range(120)})
    before = tree_digest(src)
    dst = tmp_path / "dst"
    proc = subprocess.Popen([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src), "--dst", str(dst),
                             "--workers", "2", "--no-face"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    journal = dst / ".skinseg" / "journal.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not journal.exists() or journal.stat().st_size < 2000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    leftovers = [p for p in dst.rglob("*") if ".skinseg-tmp-" in p.name]
    assert leftovers == []
    assert not (dst / "manifest.jsonl").exists()

    proc = run_tool("--src", src, "--dst", dst, "--workers", "2", "--no-face")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((dst / "build.json").read_text())
    assert info["run"]["reused"] > 0 and info["run"]["processed"] < 120
    assert len(read_manifest(dst)) == 120
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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_while_workers_start_is_clean(model_dir, tmp_path):
    """Ctrl-C reaches the whole foreground process group (the fork server and
    workers too), at any moment: while modules import, while workers start,
    after the first images.  Each time: exit 130, one line, no traceback,
    and no process left behind."""
    src = make_dataset(tmp_path / "src", {f"train/A/{i:03d}.png": skin_image(400, 300, seed_offset=i % 7)
                                          for i in range(300)})   # about 3 s of work: never done first
    for k, delay in enumerate((0.0, 0.4, 0.8, 1.3)):
        proc = subprocess.Popen([sys.executable, str(REPO / "build_dataset.py"), "--src", str(src),
                                 "--dst", str(tmp_path / f"dst{k}"), "--workers", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        # Counted from the moment the CLI has started its fork server (before
        # that, the interpreter itself is starting up).
        deadline = time.time() + 30
        while not _children(proc.pid) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (delay, err)
        assert "Traceback" not in err and "Error" not in err, (delay, err)
        assert err.strip().endswith("run the same command again to resume"), (delay, err)
        deadline = time.time() + 15
        while _group_alive(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), f"processes left behind after Ctrl-C at {delay} s"


def test_library_use_without_main_guard_fails_fast_with_advice(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from pathlib import Path\n"
        "from skinseg.build import build\n"
        "from skinseg.config import BuildConfig\n"
        f"build(BuildConfig(Path({str(REPO / 'examples' / 'dataset_original')!r}), Path({str(tmp_path / 'dst')!r}),"
        " workers=2, progress=False))\n")
    started = time.time()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=tmp_path)
    assert proc.returncode != 0 and "__main__" in proc.stderr
    assert time.time() - started < 60
