"""Where worker processes come from.

Each worker needs OpenCV, NumPy and (usually) MediaPipe, about a second of
imports.  Workers are therefore forked from a fork server that has imported
them once, instead of being spawned to import them each.  This module itself
imports nothing heavy, so the CLI can start the server first thing and let it
import while the main process imports its own copy (when work is certain);
else the runner starts it when there is work, without MediaPipe when no task
needs a model.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
from multiprocessing.context import BaseContext


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a SLURM
    allocation), or all of them where that cannot be asked."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_context(preload_mediapipe: bool) -> BaseContext:
    """The fork server's context, preloaded with what every worker imports;
    fresh spawned processes where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # The server only imports modules (it opens no model and starts no Python
    # thread), so forking it is safe; each worker opens its models after the
    # fork.  Every worker re-runs the main script (build_dataset.py), which
    # imports skinseg.cli and click: preloaded too.  The list only matters to
    # the call that starts the server, once per process.
    context.set_forkserver_preload(["skinseg.cli", "skinseg.runner"] + (["mediapipe"] if preload_mediapipe else []))
    return context


def start(preload_mediapipe: bool) -> BaseContext:
    """Start the fork server if it is not running (it imports in the
    background: started early, the first pool does not wait for it); the
    context workers come from (worker_context)."""
    context = worker_context(preload_mediapipe)
    if context.get_start_method() != "forkserver":
        return context
    # A Ctrl-C while the server imports would print its KeyboardInterrupt
    # traceback.  A blocked signal stays blocked across fork and exec, so the
    # server starts with SIGINT blocked (it ignores SIGINT once running); here
    # a Ctrl-C meanwhile waits and is delivered after, never lost.  The
    # resource tracker goes first: it blocks and unblocks SIGINT itself.
    multiprocessing.resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return context
