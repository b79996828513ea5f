"""How a build ends when it does not finish: the three exceptions of
`build.build`, and the one a worker raises when the destination fails it."""


class BuildError(Exception):
    """The build cannot start: bad paths or options.  Nothing was written."""


class BuildAborted(Exception):
    """The build started but had to stop (e.g. the destination became
    unwritable).  Finished images are journaled; re-running resumes."""


class BuildInterrupted(Exception):
    """Stopped by the user (Ctrl-C).  Re-running resumes."""


class OutputWriteError(Exception):
    """The destination cannot be written (full disk, read-only, ...): the
    build must stop, because every following image would fail the same way."""
