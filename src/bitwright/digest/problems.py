"""The errors of reading files, phrased for a user: what failed, for which file, what to do."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bitwright.errors import OperationalError

__all__ = ["not_regular_file", "os_failure"]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def not_regular_file(path: Path | str, mode: int) -> OperationalError:
    """Return the error for a path that is a directory, fifo, socket or device."""
    hint = (
        "digest a directory as a tree (bitwright digest DIR)"
        if stat.S_ISDIR(mode)
        else "only regular files can be digested; remove it or exclude it"
    )
    return OperationalError(f"{path}: is {_kind(mode)}, not a regular file", hint=hint)


def os_failure(path: Path | str, exc: OSError, action: str) -> OperationalError:
    """Return the error for an ``OSError`` raised while trying to ``action`` ``path``."""
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return OperationalError(
                f"{path}: broken symlink (its target does not exist)",
                hint="fix or remove the symlink",
            )
        return OperationalError(
            f"{path}: no such file", hint="check the path, or produce the file first"
        )
    if isinstance(exc, PermissionError):
        return OperationalError(
            f"{path}: cannot {action}: permission denied",
            hint="make it readable by this user (chmod u+r) or exclude it",
        )
    return OperationalError(
        f"{path}: cannot {action}: {exc.strerror or exc}",
        hint="check the file and the filesystem it is on",
    )
