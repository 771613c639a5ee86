"""Writing files so that a reader sees the old file or the new one, never half of either.

One helper for every file bitwright writes whole (attestations, keys, contexts, caches,
reports, configs): a temporary file in the same directory, fsynced, renamed over the target.
Standard library and :mod:`bitwright.errors` only, so any layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bitwright.errors import OperationalError

__all__ = ["open_atomic", "write_atomic", "write_text_atomic"]


@contextlib.contextmanager
def open_atomic(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` only when the ``with`` block ends normally.

    The file is written in the same directory under a hidden temporary name, created with
    mode 0600 and only then given ``mode`` (a private key is never readable by others, not
    even for a moment). It and its directory are fsynced before and after the rename. An
    exception in the block removes it and leaves ``path`` as it was.

    Args:
        path: the file to create or replace; its parent directories are created.
        mode: the permission bits of the finished file.

    Raises:
        OperationalError: the directory or the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OperationalError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable",
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise OperationalError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check free disk space and permissions of the directory",
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`open_atomic`).

    Raises:
        OperationalError: the directory or the file cannot be written.
    """
    with open_atomic(path, mode=mode) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, text.encode("utf-8"), mode=mode)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some file systems refuse fsync on a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
