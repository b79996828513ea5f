"""How a build ends when it does not finish: the three exceptions of `build.build`."""


class BuildError(Exception):
    """The build cannot start: bad paths or options.  Nothing was written."""


class BuildAborted(Exception):
    """The build started but had to stop (e.g. the destination became
    unwritable).  Finished images are journaled; re-running resumes."""


class BuildInterrupted(Exception):
    """Stopped by the user (Ctrl-C).  Re-running resumes."""
