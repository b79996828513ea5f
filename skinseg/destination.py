"""Whether a destination may be built into, before anything is written.

A destination is a skinseg build when it has the tool's state folder or a
build.json of this tool's; a non-empty folder that is neither is refused
unless --overwrite, and another tool's dataset files (a manifest, build.json,
classes.txt, report, metadata that skinseg would replace) are refused even
then.  Neither folder may be inside the other, however it is reached (by
device and inode, folder by folder up to /).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import layout
from .buildinfo import BuildInfoError, read_build_info
from .errors import BuildError
from .folders import identity, identity_chain


def manifest_is_ours(dst: Path) -> bool:
    """Whether dst/manifest.jsonl is this tool's: its build.json says so."""
    try:
        read_build_info(dst)
    except BuildInfoError:
        return False
    return True


def is_skinseg_build(dst: Path) -> bool:
    return (dst / layout.STATE_DIR).is_dir() or manifest_is_ours(dst)


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Raise BuildError if src cannot be read from or dst written to."""
    if not src.is_dir():
        raise BuildError(f"--src {src} is not an existing folder")
    # By device and inode, folder by folder up to /: links and bind mounts
    # cannot hide that one is inside the other.
    src_id, dst_id = identity(src), identity(dst)
    if src_id in identity_chain(dst):
        raise BuildError(f"--dst {dst} is {'the same folder as' if dst_id == src_id else 'inside'} --src {src}: "
                         "the source is never written to; choose a destination outside it")
    if dst_id is not None and dst_id in identity_chain(src):
        raise BuildError(f"--src {src} is inside --dst {dst}: building would overwrite the source; "
                         "choose a destination outside it")
    if dst.exists() and not dst.is_dir():
        raise BuildError(f"--dst {dst} exists and is not a folder")
    if dst.is_dir() and any(dst.iterdir()) and not is_skinseg_build(dst) and not overwrite:
        raise BuildError(f"--dst {dst} is not empty and is not a skinseg build; refusing to write into it "
                         "(pass --overwrite to build there anyway, or choose an empty or new folder)")
    theirs = _foreign_dataset_files(dst) if dst.is_dir() and not is_skinseg_build(dst) else []
    if theirs:
        raise BuildError(f"--dst {dst} holds {', '.join(theirs)}, which skinseg did not write: a build writes files "
                         "of these names and never replaces another tool's, not even with --overwrite; move them "
                         "out of --dst, or choose another folder")


def _foreign_dataset_files(dst: Path) -> list[str]:
    """The files in dst, not a skinseg build yet, that a build would replace:
    manifest, build.json, classes.txt, report, metadata files.  (Another
    tool's README.md is kept, with a warning: the dataset works without
    skinseg's card.)"""
    return sorted(entry.name for entry in os.scandir(dst) if layout.is_dataset_file_name(entry.name))


def check_writable(dst: Path) -> None:
    """Raise BuildError if dst does not take a write; leave nothing behind."""
    probe = dst / layout.write_probe()
    try:
        (dst / layout.STATE_DIR).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
    except OSError as exc:
        raise BuildError(f"cannot write to --dst {dst}: {exc.strerror or exc}") from None
    finally:
        # On a full disk the probe is created but cannot be written to.
        with contextlib.suppress(OSError):
            probe.unlink()
