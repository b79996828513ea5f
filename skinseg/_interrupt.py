"""Ctrl-C and SIGTERM while the command line starts and ends.

The command line handles an interrupt once its build has begun (cli.main:
exit 128 + the signal, one line saying how to resume).  Before that,
Python's imports of click, NumPy and the rest take a good part of a second,
and an interrupt there would end in a KeyboardInterrupt traceback.  So every
entry point (build_dataset.py, ``python -m skinseg``, the ``skinseg``
command) calls `install` before importing anything else: until the command
line takes over (`hand_over`), and again once its build is over
(`take_back`), an interrupt ends the process at once with the same line and
exit code.  Nothing is written in those moments, so there is nothing to
clean up.  Only the builtin `_signal` module is imported here: ``signal``
itself imports enum first.
"""

from __future__ import annotations

import _signal
import os

RESUME = "interrupted; run the same command again to resume"
_SIGNALS = (_signal.SIGINT, _signal.SIGTERM)
_installed = [False]


def _exit_now(signum: int, _frame: object) -> None:
    try:
        os.write(2, f"\n{RESUME}\n".encode())
    finally:
        os._exit(128 + signum)


def install() -> None:
    """From now on, an interrupt ends the process at once, cleanly.  One that
    arrived while the entry point held it (build_dataset.py and __main__.py
    block SIGINT and SIGTERM first thing, before importing this module) ends
    it now."""
    for signum in _SIGNALS:
        _signal.signal(signum, _exit_now)
    _installed[0] = True
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _SIGNALS)


def hand_over() -> bool:
    """Let Ctrl-C raise KeyboardInterrupt again (the build handles it) if
    `install` was called; say whether it was."""
    if _installed[0]:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    return _installed[0]


def take_back() -> None:
    """After the build (its summary, the interpreter's exit): an interrupt
    ends the process at once again, if `install` was called."""
    if _installed[0]:
        install()


def main() -> None:
    """The ``skinseg`` command and ``python -m skinseg``: the command group (no command: a build)."""
    install()
    from .cli import main as cli_main

    cli_main()


def build_main() -> None:
    """build_dataset.py: the build command itself."""
    install()
    from .cli import build_command

    build_command()
