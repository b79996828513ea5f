"""Run `process_image` (or `rerender`) over many tasks, each image in a worker process.

Images are never processed in the main process, whatever --workers says: a
file that crashes a native library, exhausts memory or never finishes costs
its own image, not the build.  Workers open their models at start only when
some task needs them (a build that only re-renders opens none and does not
import MediaPipe).  Each worker holds one task at a time, so the
runner knows which image every worker is on and since when:

- a worker that dies (segfault in a native library, out-of-memory kill) fails
  exactly its image, and a new worker takes its place;
- an image still running after the time limit (--image-timeout) has its
  worker killed and is recorded as failed;
- workers exit as soon as the main process is gone, even after a SIGKILL:
  each watches a pipe that only the main process holds open.  The fork
  server and multiprocessing's resource tracker then exit too (they stay
  up only while a process that uses them is alive).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import _faults, forkserver
from .config import PipelineConfig
from .engines import Engines, ModelPlans, open_engines
from .errors import OutputWriteError
from .pipeline import failed_record, process_image, rerender
from .records import ImageTask, Record


@dataclass(frozen=True)
class Runtime:
    """What a worker needs to process any image of this build."""

    src: Path
    dst: Path
    config: PipelineConfig
    models: ModelPlans
    mask_dtype: str


# Called with each image's record and whether its faces and skin were looked
# for (False: its files were rendered again from its stored mask).
OnRecord = Callable[[Record, bool], None]
# Called with each task just before a worker gets it (nothing of it is written yet).
OnDispatch = Callable[[ImageTask], None]

CRASHED = ("the worker process crashed while processing this image (native library fault or out of memory); "
           "the rest of the build went on")
START_FAILED = ("worker processes exit as soon as they start (when calling skinseg from a script, call build() "
                "under `if __name__ == \"__main__\":`)")


def timed_out_reason(seconds: float) -> str:
    return (f"processing took longer than the limit of {seconds:g} s (--image-timeout); "
            "the worker was stopped and the rest of the build went on")


def process_safely(task: ImageTask, runtime: Runtime, engines: Callable[[], Engines]) -> tuple[Record, bool]:
    """The task's record and whether the image was segmented: re-rendered
    from its stored mask when it has one that can be used, else processed in
    full (`engines()` gives the models, opened on first use).  Any
    unexpected exception becomes a failed record for that image (a bug must
    not abort a 100 000-image build)."""
    segmented = task.previous is None
    try:
        _faults.before_image(task.source)
        record = rerender(task, runtime) if task.previous is not None else None
        if record is None:
            segmented = True
            record = process_image(task, runtime, engines())
        _faults.after_image(task.source)
        return record, segmented
    except OutputWriteError:
        raise
    except Exception as exc:   # noqa: BLE001 - reported per image, with its type
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = (f"internal error while processing this image: {type(exc).__name__}: {exc} "
                  f"(at {os.path.basename(where.filename)}:{where.lineno}; please report it)")
        return failed_record(task, reason), segmented


class WorkerStartError(Exception):
    """Workers cannot start or open their models; the build cannot go on."""


# ------------------------------------------------------------ worker side

def _exit_with_parent(alive: Connection) -> None:
    """Exit the moment the main process is gone: nothing is ever sent on
    `alive`, whose other end only the main process holds, so the read ends
    (EOF) exactly when it exits or is killed."""
    def watch() -> None:
        try:
            alive.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="skinseg-parent-watch", daemon=True).start()


def _worker_main(conn: Connection, alive: Connection, runtime: Runtime, limit_threads: bool,
                 environ: dict[str, str], open_models: bool) -> None:
    # The fork server was started by the parent's first build: take the
    # parent's environment as it is now, as a spawned process would.
    os.environ.clear()
    os.environ.update(environ)
    # The parent decides when to stop; a Ctrl-C must not kill a worker
    # half-way through writing an image.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(alive)
    if limit_threads:
        import cv2

        cv2.setNumThreads(1)      # one process per core already
    opened: list[Engines] = []

    def engines() -> Engines:
        if not opened:
            opened.append(open_engines(runtime.models))
        return opened[0]

    if open_models:
        try:
            engines()
        except Exception as exc:  # noqa: BLE001 - the parent stops the build with the real cause
            with contextlib.suppress(OSError):
                conn.send(("start-error", f"{type(exc).__name__}: {exc}"))
            return
    try:
        conn.send(("ready", None))
        while (task := conn.recv()) is not None:
            try:
                conn.send(("record", process_safely(task, runtime, engines)))
            except OutputWriteError as exc:
                conn.send(("write-error", str(exc)))
    except (EOFError, OSError):
        pass                      # the parent went away
    finally:
        for opened_engines in opened:
            opened_engines.close()


# ------------------------------------------------------------ parent side

@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a worker process is created, then deliver
    them: interrupted half-way, a start leaves a process the runner does not
    know about."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])     # with the caller's own handler back in place


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False             # its models are open
    dead: bool = False
    task: Optional[ImageTask] = None
    deadline: float = math.inf      # when its task runs out of time

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()


STOP_GRACE = 5.0    # seconds an idle worker gets to close its models and exit


class _Pool:
    """Worker processes, each given one task at a time."""

    def __init__(self, runtime: Runtime, size: int, image_timeout: float, open_models: bool):
        self.runtime = runtime
        self.size = size
        self.image_timeout = image_timeout
        self.open_models = open_models
        # Started here, not by the first worker's start: with Ctrl-C held
        # (see forkserver.start), and MediaPipe preloaded only when needed.
        preload = open_models and runtime.config.may_use_mediapipe
        self.context = forkserver.start(preload)
        # Every worker reads `alive_reader`; only this process holds `alive`.
        self.alive_reader, self.alive = self.context.Pipe(duplex=False)
        self.workers: list[_Worker] = []

    def start_worker(self) -> None:
        mine, theirs = self.context.Pipe()
        process = self.context.Process(
            target=_worker_main, name="skinseg-worker", daemon=True,
            args=(theirs, self.alive_reader, self.runtime, self.size > 1, dict(os.environ), self.open_models))
        with _interrupts_held():
            process.start()
            self.workers.append(_Worker(process, mine))
        theirs.close()

    def can_take(self, worker: _Worker) -> bool:
        return worker.ready and not worker.dead and worker.task is None

    def assign(self, worker: _Worker, task: ImageTask) -> None:
        worker.conn.send(task)
        worker.task, worker.deadline = task, time.monotonic() + self.image_timeout

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def events(self) -> Iterator[tuple[_Worker, str, object]]:
        """Wait for what happens next and yield it as (worker, kind, payload):
        its messages ("ready", "record", "start-error", "write-error"), then
        "crashed" (payload: the task it was on), "start-failed" (it died
        before it was ready) or "timeout" (payload: the task; it is killed).
        A worker that died or was killed is removed from the pool."""
        timeout = min((w.deadline for w in self.workers), default=math.inf) - time.monotonic()
        objects = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
        ready = set(wait(objects, None if math.isinf(timeout) else max(0.0, timeout)))
        for worker in list(self.workers):
            worker.dead = worker.process.sentinel in ready
            # Read what it sent first: a record may wait from a worker that has died since.
            while (worker.conn in ready or worker.dead) and worker.conn.poll():
                try:
                    kind, payload = worker.conn.recv()
                except (EOFError, OSError):
                    break
                if kind == "ready":
                    worker.ready = True
                elif kind == "record":
                    worker.task, worker.deadline = None, math.inf
                yield worker, kind, payload
            if worker.dead:
                if not worker.ready:
                    yield worker, "start-failed", None
                elif worker.task is not None:
                    yield worker, "crashed", worker.task
            elif time.monotonic() > worker.deadline:
                worker.kill()
                yield worker, "timeout", worker.task
            else:
                continue
            worker.process.join()
            worker.conn.close()
            self.workers.remove(worker)

    def close(self) -> None:
        """Stop every worker.  Each finishes the image it is on (within its
        time limit), so that no image is left half-written; one still
        opening its models is killed."""
        try:
            for worker in self.workers:
                if worker.ready:
                    with contextlib.suppress(OSError):
                        worker.conn.send(None)      # read once its current image is done
                else:
                    worker.kill()
            for worker in self.workers:
                worker.process.join(max(STOP_GRACE, worker.deadline - time.monotonic())
                                    if worker.task is not None else STOP_GRACE)
        finally:
            for worker in self.workers:
                worker.kill()
                worker.process.join()
                worker.conn.close()
            self.workers.clear()
            self.alive.close()
            self.alive_reader.close()


def run(tasks: list[ImageTask], runtime: Runtime, workers: int, on_record: OnRecord, image_timeout: float,
        on_dispatch: Optional[OnDispatch] = None) -> None:
    """Process tasks on `workers` processes; records arrive in completion
    order.  `on_dispatch` sees each task before a worker gets it.

    If it raises (Ctrl-C, a full disk, workers that cannot start), images in
    progress are finished first and their records dropped: every file is
    complete and the next run does them again.
    """
    if not tasks:
        return
    queue = collections.deque(tasks)
    pool = _Pool(runtime, min(workers, len(tasks)), image_timeout,
                 open_models=any(task.previous is None for task in tasks))
    try:
        while queue or pool.busy():
            while queue and len(pool.workers) < pool.size:
                pool.start_worker()       # at the start, and in place of one that crashed or timed out
            for worker, kind, payload in pool.events():
                if kind == "start-error":
                    raise WorkerStartError(f"a worker could not open its models: {payload}")
                if kind == "start-failed":
                    raise WorkerStartError(START_FAILED)
                if kind == "write-error":
                    raise OutputWriteError(payload)
                if queue and pool.can_take(worker):
                    task = queue.popleft()
                    if on_dispatch is not None:
                        on_dispatch(task)
                    pool.assign(worker, task)    # before the record is handled: no idle gap
                if kind == "record":
                    on_record(*payload)
                elif kind == "crashed":
                    on_record(failed_record(payload, CRASHED), payload.previous is None)
                elif kind == "timeout":
                    on_record(failed_record(payload, timed_out_reason(image_timeout)), payload.previous is None)
    finally:
        pool.close()
