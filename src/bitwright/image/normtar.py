"""A tar of a directory tree whose bytes depend only on the tree's contents.

Two trees with the same names, contents, modes and link targets give the same bytes, on any
machine and whenever they were made: entries are written depth first with the names of each
directory sorted by their bytes, every owner is numeric 0 (no user or group names), every
mtime is clamped to ``SOURCE_DATE_EPOCH`` (a file a package shipped keeps its older time,
so bytecode compiled against it stays valid; whatever the build wrote gets the epoch), and
no atime, ctime or extended attribute is recorded. The format is POSIX pax, written by the
standard library, so long names take the same pax records everywhere.

Hard links inside the tree are kept as links to the first name in that order. Sockets are
left out (a tar cannot hold them), and so is whatever lies below the directories named in
``empty`` (``dev`` of a root file system: the container runtime provides it).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bitwright.errors import OperationalError
from bitwright.fileio import open_regular

__all__ = ["ByteSink", "HashingWriter", "TarDigest", "write_normalized_tar"]


class ByteSink(Protocol):
    """Where written bytes go: a file, or another writer."""

    def write(self, data: bytes, /) -> int:
        """Take ``data``."""
        ...


class HashingWriter:
    """A write-only stream that hashes (sha256 or ``algorithm``) and counts what goes on."""

    def __init__(self, sink: ByteSink, algorithm: str = "sha256") -> None:
        self.sink = sink
        self.hash = hashlib.new(algorithm, usedforsecurity=algorithm == "sha256")
        self.size = 0

    def write(self, data: bytes) -> int:
        """Hash and forward ``data``."""
        self.hash.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        """Flush the sink, if it can be flushed."""
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()


@dataclass(frozen=True)
class TarDigest:
    """What was written: the tar's sha256 (hex), its size, and how many entries it holds."""

    sha256: str
    size: int
    entries: int


def write_normalized_tar(
    root: Path, sink: ByteSink, *, epoch: int, empty: Sequence[str] = ()
) -> TarDigest:
    """Write the tree under ``root`` to ``sink`` as a normalized tar (see the module doc).

    Args:
        root: the directory whose contents become the tar's entries (names relative to it).
        sink: where the bytes go.
        epoch: ``SOURCE_DATE_EPOCH``: no entry is newer.
        empty: relative directories written as entries whose contents are left out.

    Raises:
        OperationalError: ``root`` is not a directory, or an entry cannot be read.
    """
    if not root.is_dir():
        raise OperationalError(f"{root} is not a directory", hint="build the tree first")
    writer = HashingWriter(sink)
    entries = 0
    links: dict[tuple[int, int], str] = {}
    skip = {name.strip("/") for name in empty}
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for relative, info in _walk(root, "", skip):
            path = root / relative
            entry = _tarinfo(path, relative, info, epoch)
            if entry is None:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                first = links.setdefault((info.st_dev, info.st_ino), relative)
                if first != relative:
                    entry.type = tarfile.LNKTYPE
                    entry.linkname = first
                    entry.size = 0
            if entry.type == tarfile.REGTYPE:
                with open_regular(path) as stream:
                    tar.addfile(entry, stream)
            else:
                tar.addfile(entry)
            entries += 1
    writer.flush()
    return TarDigest(writer.hash.hexdigest(), writer.size, entries)


def _walk(root: Path, directory: str, skip: set[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative name, lstat) of everything below ``directory``, in pre-order.

    Each directory's names are sorted by their bytes and its entries follow it at once, as
    ``tar --sort=name`` writes them.
    """
    try:
        names = sorted(os.listdir(root / directory), key=os.fsencode)
    except OSError as exc:
        raise _unreadable(root / directory, exc) from None
    for name in names:
        relative = f"{directory}/{name}" if directory else name
        try:
            info = os.lstat(root / relative)
        except OSError as exc:
            raise _unreadable(root / relative, exc) from None
        yield relative, info
        if stat.S_ISDIR(info.st_mode) and relative not in skip:
            yield from _walk(root, relative, skip)


def _tarinfo(path: Path, relative: str, info: os.stat_result, epoch: int) -> tarfile.TarInfo | None:
    """The normalized header of one entry; None for what a tar cannot hold (a socket)."""
    entry = tarfile.TarInfo(relative)
    entry.mode = stat.S_IMODE(info.st_mode)
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    entry.mtime = min(int(info.st_mtime), epoch)
    mode = info.st_mode
    if stat.S_ISREG(mode):
        entry.type = tarfile.REGTYPE
        entry.size = info.st_size
    elif stat.S_ISDIR(mode):
        entry.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        entry.type = tarfile.SYMTYPE
        entry.linkname = os.readlink(path)
    elif stat.S_ISFIFO(mode):
        entry.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        entry.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        entry.devmajor = os.major(info.st_rdev)
        entry.devminor = os.minor(info.st_rdev)
    else:
        return None
    return entry


def _unreadable(path: Path, exc: OSError) -> OperationalError:
    return OperationalError(
        f"cannot read {path} for the image: {exc.strerror or exc}",
        hint="build the image as root (the root file system holds files only root may read)",
    )
