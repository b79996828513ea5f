import _signal

# Ctrl-C waits (blocked, not lost) until _interrupt.main installs the handler.
_signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT, _signal.SIGTERM})

from ._interrupt import main  # noqa: E402

main()
