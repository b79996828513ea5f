"""How a build shows its progress on stderr.

On a terminal, a bar (tqdm).  When stderr is not a terminal (a SLURM or CI
log, ``nohup``), a bar's redraws cannot be shown, and a build of hours
would print nothing until its summary: there a line is printed every
`interval` seconds instead, from a thread of its own, so that a build stuck
on a slow image still says so::

    building: 1200/100000 images (1.2 %), 34.5 images/s, about 48 min left

Imports nothing heavy (tqdm only for a bar).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Optional


def is_terminal(stream: Optional[IO] = None) -> bool:
    """Whether stream (default: sys.stderr) is a terminal, where a bar can be drawn."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):      # closed, or not a real stream
        return False


def duration_text(seconds: float) -> str:
    """A duration for people: '45 s', '12 min', '3 h 05 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_line(desc: str, done: int, total: int, new: int, elapsed: float) -> str:
    """One line of progress: `done` of `total` images, `new` of them done
    in `elapsed` seconds by this run (the rate and the time left)."""
    share = f" ({100 * done / total:.1f} %)" if total else ""
    if new and elapsed > 0:
        rate = new / elapsed
        pace = f", {rate:.3g} images/s, about {duration_text((total - done) / rate)} left"
    else:
        pace = f", none finished yet ({duration_text(elapsed)} in)"
    return f"{desc}: {done}/{total} images{share}{pace}"


class Progress:
    """Progress of `total` images, `initial` of them done before (reused).

    Parameters
    ----------
    total, initial : int
        Images in all, and those already done when the run starts.
    desc : str
        What is progressing ("building", "shard 2").
    enabled : bool
        False: nothing is shown (--quiet).
    interval : float
        Seconds between lines when stderr is not a terminal (above 0).
    stream : file, optional
        Where to write (default: sys.stderr as it is now).
    """

    def __init__(self, total: int, initial: int, desc: str, enabled: bool, interval: float,
                 stream: Optional[IO] = None):
        self.total, self.done, self.desc, self.interval = total, initial, desc, interval
        self.new = 0
        self.stream = sys.stderr if stream is None else stream
        self.started = time.monotonic()
        self.bar = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        if not enabled:
            return
        if is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="img", file=self.stream, dynamic_ncols=True,
                            desc=desc)
        else:
            self._thread = threading.Thread(target=self._lines, name="skinseg-progress", daemon=True)
            self._thread.start()

    def _lines(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.stream.write(self.line() + "\n")
                self.stream.flush()
            except (OSError, ValueError):       # the log went away: the build goes on
                return

    def line(self) -> str:
        """The progress as one line, as printed every `interval` seconds."""
        return progress_line(self.desc, self.done, self.total, self.new, time.monotonic() - self.started)

    def update(self, count: int = 1) -> None:
        """`count` more images are done."""
        self.done += count
        self.new += count
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        """Stop showing progress (the bar is closed, the lines stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None
