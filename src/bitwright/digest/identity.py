"""File identity: what tells, without reading a file, that its content cannot have changed.

A file's identity is its device, inode, size, ``st_mtime_ns`` and ``st_ctime_ns``, packed into
40 bytes and compared byte for byte. ``ctime`` is the field that makes a stale digest
impossible: the kernel moves it on every write, ``utime`` and rename and no user can set it,
so a same-size rewrite with ``mtime`` restored still changes the identity. A replaced file has
a new inode and ``ctime``; a renamed one another path (which the cache keys on) and ``ctime``.

Timestamps have a granularity, so a file rewritten within the same tick as the hash could keep
its identity; :func:`identity_is_settled` tells which identities are safe to cache.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "FileIdentity",
    "encode_path",
    "identity_is_settled",
    "identity_key",
    "identity_keys",
    "tree_fingerprint",
]

_IDENTITY = struct.Struct("<QQqqq")  # dev, ino, size, mtime_ns, ctime_ns
_FS_ENCODING = sys.getfilesystemencoding()  # what os.fsencode uses
_FINE_MARGIN_NS = 50_000_000  # > one kernel tick (<= 10 ms) + sub-ms timestamp granularity
_COARSE_MARGIN_NS = 3_000_000_000  # filesystems with 1 s or 2 s (FAT) timestamps
_SECOND_NS = 1_000_000_000


class FileIdentity(NamedTuple):
    """What identifies the content of a file without reading it.

    Attributes:
        path: Absolute path, as bytes (file names need not be UTF-8).
        key: Device, inode, size, mtime and ctime (ns) packed into bytes; equal keys mean
            an unchanged file.
        mtime_ns: Modification time in nanoseconds.
        ctime_ns: Status change time in nanoseconds (moves on every write, utime and rename).
    """

    path: bytes
    key: bytes
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> FileIdentity:
        """Return the identity of the file at absolute ``path`` with stat result ``st``."""
        return cls(encode_path(path), identity_key(st), st.st_mtime_ns, st.st_ctime_ns)


def encode_path(path: str) -> bytes:
    """Return an absolute path as the cache stores it (``os.fsencode``, without its overhead)."""
    return path.encode(_FS_ENCODING, "surrogateescape")


def identity_key(st: os.stat_result) -> bytes:
    """Return device, inode, size, mtime and ctime of ``st`` packed as the cache compares them."""
    return _IDENTITY.pack(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def identity_keys(files: Iterable[tuple[str, os.stat_result]]) -> dict[bytes, bytes]:
    """Return ``{encode_path(path): identity_key(st)}`` for many files (the lookup argument)."""
    pack, enc = _IDENTITY.pack, _FS_ENCODING
    return {
        path.encode(enc, "surrogateescape"): pack(
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
        )
        for path, st in files
    }


def identity_is_settled(identity: FileIdentity, hashing_started_ns: int) -> bool:
    """Return whether a digest of this file may be cached (it is not "racy").

    A write that lands after hashing started gets a ``ctime`` of at least the start time, minus
    one tick of the kernel's coarse clock and the filesystem's timestamp granularity. If the
    file's ``ctime`` and ``mtime`` are older than that margin, any later change is guaranteed to
    show in its identity; otherwise the digest is not stored. Filesystems with whole-second
    timestamps are recognised and get a margin of a few seconds.

    Args:
        identity: The identity of the file, taken before it was read.
        hashing_started_ns: ``time.time_ns()`` taken before the file was opened.
    """
    coarse = identity.ctime_ns % _SECOND_NS == 0 or identity.mtime_ns % _SECOND_NS == 0
    margin = _COARSE_MARGIN_NS if coarse else _FINE_MARGIN_NS
    return max(identity.ctime_ns, identity.mtime_ns) < hashing_started_ns - margin


def tree_fingerprint(relpaths: Sequence[str], stats: Sequence[os.stat_result]) -> bytes:
    """Return a sha256 over the files' relative paths and identity keys, in the order given.

    Equal fingerprints mean the same files under the same names with unchanged identities,
    so a tree snapshot with this fingerprint still holds every digest. (Names cannot
    contain NUL, and identity keys have a fixed size, so the encoding is unambiguous.)
    """
    pack = _IDENTITY.pack
    hasher = hashlib.sha256(b"%d\0" % len(relpaths))
    hasher.update("\0".join(relpaths).encode("utf-8"))
    hasher.update(
        b"".join(
            [pack(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in stats]
        )
    )
    return hasher.digest()
