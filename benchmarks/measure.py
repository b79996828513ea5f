"""How the benchmarks measure a run: wall time and every process's peak memory.

Peak memory is VmHWM (the high-water mark of resident memory) of every
process of the run: read from /proc every 0.1 s for the processes a run
starts, and by skinseg's main process itself at exit (`run_skinseg`).  Not
getrusage or wait4: Linux starts a process's figure there from its parent's
peak at exec, so they report the larger of the two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs build_dataset.py in this process with the build's phases timed, and
# at exit reports what cannot be seen from outside: the main process's own
# peak memory, whether it imported MediaPipe, the phases.
WRAPPER = """
import atexit, json, runpy, sys, time
probe, script = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
import skinseg.build as build
seconds = {}
def timed(name):
    inner = getattr(build, name)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
    setattr(build, name, wrapper)
for name in ("build", "discover", "run", "_finalize"):
    timed(name)
def report():
    # VmHWM, not getrusage: the latter starts from the parent's peak at exec.
    with open("/proc/self/status") as status:
        peak = int(status.read().split("VmHWM:")[1].split()[0])
    with open(probe, "w") as out:
        json.dump({"rss_mb": peak / 1024,
                   "mediapipe": "mediapipe" in sys.modules, "seconds": seconds}, out)
atexit.register(report)
runpy.run_path(script, run_name="__main__")
"""


class Watch(threading.Thread):
    """Polls the descendants of a process: peak RSS (VmHWM) by role, and
    whether any of them mapped MediaPipe's libraries."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.peaks: dict[int, tuple[str, int]] = {}
        self.mediapipe = False

    def tree(self) -> dict[int, int]:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, grew = {self.pid: 0}, True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in found and pid not in found:
                    found[pid] = found[parent] + 1
                    grew = True
        return found

    def run(self) -> None:
        while not self.stop.is_set():
            for pid, depth in self.tree().items():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if not self.mediapipe:
                        self.mediapipe = "mediapipe" in Path(f"/proc/{pid}/maps").read_text()
                except OSError:
                    continue
                if "VmHWM:" not in status:      # exited, not yet reaped
                    continue
                role = ("main" if depth == 0 else "worker" if depth >= 2
                        else "fork server" if b"forkserver" in command else "other")
                peak = int(status.split("VmHWM:")[1].split()[0]) // 1024
                self.peaks[pid] = (role, max(peak, self.peaks.get(pid, (role, 0))[1]))
            self.stop.wait(0.1)

    def peak(self, role: str) -> int:
        return max((mb for r, mb in self.peaks.values() if r == role), default=0)


def watched(command: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, Watch]:
    """Run a command: (wall seconds until it exits, the Watch of its processes)."""
    # stderr goes to a file: a pipe nobody reads while waiting would fill and block the run.
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        watch = Watch(proc.pid)
        watch.start()
        code = proc.wait()
        wall = time.perf_counter() - started
        watch.stop.set()
        watch.join()
        if code not in (0, 1):
            errors.seek(0)
            raise RuntimeError(f"{command} failed ({code}): {errors.read().decode()[-3000:]}")
    return wall, watch


def timed(command: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds until the command exits, peak RSS MB of the largest process of the run)."""
    wall, watch = watched(command, cwd, env)
    return wall, max((mb for _, mb in watch.peaks.values()), default=0)


def run_skinseg(src: Path, dst: Path, workers: int, extra: list[str]) -> dict:
    """One build_dataset.py run (--quiet), measured: wall, main_mb, worker_mb,
    server_mb, mediapipe (loaded by any process), run (build.json's), phases
    (the main process's seconds), report_kb."""
    with tempfile.NamedTemporaryFile(suffix=".json") as probe:
        wall, watch = watched([sys.executable, "-c", WRAPPER, probe.name, str(REPO / "build_dataset.py"),
                               "--src", str(src), "--dst", str(dst), "--workers", str(workers), "--quiet", *extra],
                              cwd=REPO)
        inside = json.loads(Path(probe.name).read_text())
    info = json.loads((dst / "build.json").read_text())
    seconds = inside["seconds"]
    phases = {"discovery": seconds.get("discover", 0.0), "images": seconds.get("run", 0.0),
              "final files": seconds.get("_finalize", 0.0)}
    phases = {"planning": seconds.get("build", 0.0) - sum(phases.values()), **phases}
    return {"wall": wall, "main_mb": inside["rss_mb"], "worker_mb": watch.peak("worker"),
            "server_mb": watch.peak("fork server"), "mediapipe": inside["mediapipe"] or watch.mediapipe,
            "run": info["run"], "phases": phases, "report_kb": (dst / "report.html").stat().st_size / 1024}


