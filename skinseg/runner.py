"""Run `process_image` over many tasks: in this process, or in a pool of
worker processes that each open their models once.

A worker that dies (segfault in a native library, out-of-memory kill) breaks
a process pool.  The runner then starts a new pool and replays the images
that were in flight one at a time, so the one that kills its worker again is
identified and recorded as failed while every other image is processed.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import signal
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, Optional

from . import _faults
from .forkserver import worker_context
from .pipeline import Engines, ImageTask, OutputWriteError, Record, Runtime, open_engines, process_image

OnRecord = Callable[[Record], None]


def process_safely(task: ImageTask, runtime: Runtime, engines: Engines) -> Record:
    """process_image, with any unexpected exception turned into a failed
    record for that image (a bug must not abort a 100 000-image build)."""
    try:
        _faults.before_image(task.source)
        return process_image(task, runtime, engines)
    except OutputWriteError:
        raise
    except Exception as exc:   # noqa: BLE001 - reported per image, with its type
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Record(task.source, task.split, task.class_name, task.class_id, "failed",
                      reason=f"internal error while processing this image: {type(exc).__name__}: {exc} "
                             f"(at {os.path.basename(where.filename)}:{where.lineno}; please report it)",
                      fingerprint=task.fingerprint)


def crashed_record(task: ImageTask) -> Record:
    return Record(task.source, task.split, task.class_name, task.class_id, "failed",
                  reason="the worker process crashed while processing this image (native library fault or "
                         "out of memory); the rest of the build went on",
                  fingerprint=task.fingerprint)


# ------------------------------------------------------------ worker side

_worker_runtime: Optional[Runtime] = None
_worker_engines: Optional[Engines] = None
_worker_start_error: Optional[str] = None


class WorkerStartError(Exception):
    """Workers cannot open their models; the build cannot go on."""


def _worker_init(runtime: Runtime, limit_threads: bool, environ: dict[str, str]) -> None:
    global _worker_runtime, _worker_engines
    # The fork server lives as long as the parent and was started by its
    # first pool: take the parent's environment as it is now, as a spawned
    # process would (multiprocessing already passes the current directory).
    os.environ.clear()
    os.environ.update(environ)
    # The parent decides when to stop; a Ctrl-C must not kill a worker
    # half-way through writing an image.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if limit_threads:
        import cv2

        cv2.setNumThreads(1)      # one process per core already
    _worker_runtime = runtime
    try:
        _worker_engines = open_engines(runtime)
    except Exception as exc:  # noqa: BLE001 - reported by the first task, see below
        global _worker_start_error
        _worker_start_error = f"{type(exc).__name__}: {exc}"
        return
    # MediaPipe closes through its own thread pool, which Python shuts down
    # before plain atexit handlers run; close ahead of it.
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_worker_engines.close)


def _ping() -> bool:
    return True


def _worker_process(task: ImageTask) -> Record:
    if _worker_start_error is not None:
        # An exception (not a dead process) so the parent can stop the build
        # with the real cause instead of blaming every image.
        raise WorkerStartError(f"a worker could not open its models: {_worker_start_error}")
    assert _worker_runtime is not None and _worker_engines is not None
    return process_safely(task, _worker_runtime, _worker_engines)


# ------------------------------------------------------------ parent side

@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a pool starts, then deliver them.

    Interrupted half-way through creating its processes, a pool cannot be shut
    down cleanly: workers forked after the parent gave up fail to start and
    print tracebacks.  Once the pool is up (about a second), the interrupt
    takes effect and the pool is shut down as usual.
    """
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


def run_in_process(tasks: Iterable[ImageTask], runtime: Runtime, on_record: OnRecord) -> None:
    engines = open_engines(runtime)
    try:
        for task in tasks:
            on_record(process_safely(task, runtime, engines))
    finally:
        engines.close()


def run_in_pool(tasks: list[ImageTask], runtime: Runtime, workers: int, on_record: OnRecord) -> None:
    """Process tasks on `workers` processes; records arrive in completion order."""
    queue = collections.deque(tasks)
    suspects: collections.deque[ImageTask] = collections.deque()   # in flight when a worker died
    isolated: Optional[ImageTask] = None                            # a suspect running alone
    context = worker_context(runtime.config.may_use_mediapipe)

    def new_pool() -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                                   initargs=(runtime, True, dict(os.environ)))
        # A pool whose workers die as they start would otherwise look like
        # every image crashing its worker, one at a time.  One ping per
        # worker also starts them all at once: the pool starts a process only
        # for a task that finds no idle one, and the first task would take
        # the first worker, idle as soon as it has answered.
        try:
            with _interrupts_held():
                for ping in [pool.submit(_ping) for _ in range(workers)]:
                    ping.result()
        except BrokenProcessPool:
            pool.shutdown(wait=True, cancel_futures=True)
            raise WorkerStartError(
                "worker processes exit as soon as they start (when calling skinseg from a script, "
                "call build() under `if __name__ == \"__main__\":`; or use --workers 1)") from None
        except BaseException:           # the held Ctrl-C, now the workers are up
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        return pool

    pool = new_pool()
    in_flight: dict[Future, ImageTask] = {}
    try:
        while queue or suspects or in_flight:
            if suspects:
                # Replay suspects one at a time so that a second crash names its image.
                if not in_flight:
                    isolated = suspects.popleft()
                    in_flight[pool.submit(_worker_process, isolated)] = isolated
            else:
                while queue and len(in_flight) < 2 * workers:   # bounded: memory stays flat
                    task = queue.popleft()
                    in_flight[pool.submit(_worker_process, task)] = task
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = in_flight.pop(future)
                try:
                    record = future.result()
                except BrokenProcessPool:
                    broken = True
                    if task is isolated:
                        on_record(crashed_record(task))
                    else:
                        suspects.append(task)
                    continue
                on_record(record)
            if broken:
                suspects.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run(tasks: list[ImageTask], runtime: Runtime, workers: int, on_record: OnRecord) -> None:
    if workers <= 1 or len(tasks) <= 1:
        run_in_process(tasks, runtime, on_record)
    else:
        run_in_pool(tasks, runtime, min(workers, len(tasks)), on_record)
