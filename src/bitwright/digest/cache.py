"""The persistent digest cache: a file whose identity has not changed is never read again.

An entry maps an absolute path to the sha256 of the file that was there, together with the
file's identity when it was hashed (:mod:`bitwright.digest.identity`: device, inode, size,
mtime, ctime). A lookup answers only when the identity still matches, so a digest can never be
stale for a file that was rewritten, replaced by a rename or renamed; deleted files simply
never match again.

For whole trees a second table keeps a *snapshot* per root: a fingerprint over every file's
relative path and identity, with all the digests. A cached pass over an unchanged tree then
costs one ``stat`` per file and one row, instead of one row per file; any change to any file
(or to the set of files) changes the fingerprint and falls back to the per-file entries.

Timestamps have a granularity, so a file rewritten within the same tick as the hash could keep
its identity. Such *racy* entries are never stored (callers check
:func:`~bitwright.digest.identity.identity_is_settled`), the rule of git's "racy clean" index.

The cache is a SQLite database in WAL mode with a busy timeout, so several processes can
share it. It is an accelerator, never a requirement: after any SQLite error the cache turns
itself off for the rest of the process instead of failing a command.

Who can write the file can make bitwright report any digest for an unchanged file, so the
persistent cache is private: its directory is 0700 and the database 0600 (tightened when
they are this user's), and one owned by another user, writable by others, or a symbolic link
is refused with a line that says so. Nothing that signs or verifies trusts it: a build hashes
everything it attests in its own process, through :func:`memory_cache`, an in-memory cache
no other process can write, and verify and rebuild read every byte.
"""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from bitwright.digest.identity import FileIdentity, encode_path
from bitwright.errors import OperationalError
from bitwright.model.digests import Sha256

__all__ = [
    "CacheStats",
    "DigestCache",
    "TreeSnapshot",
    "default_cache",
    "default_cache_path",
    "memory_cache",
    "open_default_cache",
]

CACHE_ENV = "BITWRIGHT_DIGEST_CACHE"
"""Environment variable naming the cache file; ``off`` disables the cache."""

_SCHEMA_VERSION = 2
_SCHEMA = (
    # one row per file: identity (dev, ino, size, mtime, ctime) -> sha256
    "CREATE TABLE IF NOT EXISTS file_digest (path BLOB PRIMARY KEY, identity BLOB NOT NULL,"
    " sha256 TEXT NOT NULL) WITHOUT ROWID",
    # one row per tree root: the fingerprint of all its files' identities -> all digests
    "CREATE TABLE IF NOT EXISTS tree_digest (root BLOB PRIMARY KEY, fingerprint BLOB NOT NULL,"
    " sha256 TEXT NOT NULL, digests BLOB NOT NULL)",
)
_RANGE_SCAN_MIN = 256  # from this many paths on, one ordered range scan beats IN (...) lists
_RANGE_SCAN_SLACK = 4  # ... unless the range holds more than this many times the rows wanted
_BUSY_TIMEOUT_S = 10.0
_QUERY_BATCH = 500  # stays below SQLite's smallest limit on bound parameters (999)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one :class:`DigestCache` since it was opened.

    Attributes:
        hits: Files answered from the cache without being read.
        misses: Files looked up and not found (or found stale).
        stored: Digests written to the cache.
    """

    hits: int
    misses: int
    stored: int


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Create the schema in a new file, or add what an older bitwright's file lacks."""
    if version > _SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"schema version {version} is newer than this bitwright")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _prepare(conn: sqlite3.Connection) -> None:
    """Set the connection up; retry while another process holds the new file's lock.

    Switching a new database to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once instead of waiting the busy timeout, so concurrent first opens retry.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != _SCHEMA_VERSION:  # new (0) or older: create what is missing
                _migrate(conn, version)
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class TreeSnapshot(NamedTuple):
    """Every digest of a tree, valid while the tree's fingerprint is unchanged.

    Attributes:
        fingerprint: :func:`~bitwright.digest.identity.tree_fingerprint` when it was hashed.
        sha256: The tree digest.
        digests: The files' sha256 digests, 32 raw bytes each, in relative-path order.
    """

    fingerprint: bytes
    sha256: Sha256
    digests: bytes


class DigestCache:
    """A persistent ``file identity -> sha256`` cache shared by concurrent processes.

    Open it with :meth:`open` (or :func:`default_cache`) and close it when done; it is also a
    context manager. One instance may be used from several threads.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        """Wrap an open connection; use :meth:`open` instead."""
        self._conn: sqlite3.Connection | None = connection
        self._lock = threading.Lock()
        self.path = path
        self.disabled_reason: str | None = None
        self._hits = 0
        self._misses = 0
        self._stored = 0

    @classmethod
    def open(cls, path: Path) -> DigestCache:
        """Open (creating if needed) the cache database at ``path``.

        Raises:
            OperationalError: The file cannot be created, is not a bitwright digest cache,
                or is not private to this user (see the module's description).
        """
        path = Path(path).expanduser()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _make_private(path.parent, 0o700, "directory")
            try:  # created private; another process opening it at once is no error
                flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(path, flags, 0o600))
            except OSError as exc:
                if exc.errno != errno.ELOOP:  # a symbolic link: refused just below
                    raise
            _make_private(path, 0o600, "file")
            conn = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise OperationalError(
                f"digest cache {path}: cannot open: {exc}",
                hint=f"set {CACHE_ENV} to a writable file, or to 'off'",
            ) from exc
        try:
            _prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise OperationalError(
                f"digest cache {path}: unusable: {exc}",
                hint=f"delete the file to start a fresh cache, or set {CACHE_ENV}=off",
            ) from exc
        return cls(conn, path)

    @classmethod
    def in_memory(cls) -> DigestCache:
        """A cache in this process's memory: nothing outside the process can write it."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        for statement in _SCHEMA:
            conn.execute(statement)
        return cls(conn, Path(":memory:"))

    def close(self) -> None:
        """Close the database; later lookups miss and stores are dropped."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def stats(self) -> CacheStats:
        """Hits, misses and stores since the cache was opened."""
        with self._lock:
            return CacheStats(self._hits, self._misses, self._stored)

    def clear(self) -> None:
        """Forget every cached digest (the file stays; other processes see it empty too)."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("DELETE FROM file_digest")
                self._conn.execute("DELETE FROM tree_digest")
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._disable(exc)

    def _disable(self, exc: sqlite3.Error) -> None:
        # Called with the lock held. The cache only accelerates; a broken one must not fail
        # the build, so it steps aside and says why to whoever asks.
        self.disabled_reason = f"{type(exc).__name__}: {exc}"
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _rows(
        self, conn: sqlite3.Connection, paths: list[bytes]
    ) -> list[tuple[bytes, bytes, Sha256]]:
        select = "SELECT path, identity, sha256 FROM file_digest"
        if len(paths) >= _RANGE_SCAN_MIN:
            # The files of a tree are neighbours in path order: one range scan reads them
            # all, far faster than IN lists. LIMIT bounds the cost when the range also holds
            # many files that were not asked for; then fall back to IN lists.
            limit = _RANGE_SCAN_SLACK * len(paths)
            rows = conn.execute(
                f"{select} WHERE path BETWEEN ? AND ? LIMIT ?", (min(paths), max(paths), limit)
            ).fetchall()
            if len(rows) < limit:
                return rows
        rows = []
        for start in range(0, len(paths), _QUERY_BATCH):
            batch = paths[start : start + _QUERY_BATCH]
            marks = ",".join("?" * len(batch))
            rows.extend(conn.execute(f"{select} WHERE path IN ({marks})", batch))
        return rows

    def lookup(self, keys: Mapping[bytes, bytes]) -> dict[bytes, Sha256]:
        """Return the cached digests of files whose identity is unchanged.

        Args:
            keys: ``identity_keys()`` of the files (encoded absolute path -> identity key).

        Returns:
            Encoded path -> sha256, for the files the cache can answer.
        """
        found: dict[bytes, Sha256] = {}
        with self._lock:
            if self._conn is not None and keys:
                try:
                    rows = self._rows(self._conn, list(keys))
                except sqlite3.Error as exc:
                    self._disable(exc)
                    rows = []
                get = keys.get
                for path, key, sha in rows:
                    if get(path) == key:
                        found[path] = sha
            self._hits += len(found)
            self._misses += len(keys) - len(found)
        return found

    def lookup_tree(self, root: str, fingerprint: bytes) -> TreeSnapshot | None:
        """Return the snapshot of the tree at absolute ``root`` if its fingerprint still matches."""
        with self._lock:
            if self._conn is None:
                return None
            try:
                row = self._conn.execute(
                    "SELECT fingerprint, sha256, digests FROM tree_digest WHERE root = ?",
                    (encode_path(root),),
                ).fetchone()
            except sqlite3.Error as exc:
                self._disable(exc)
                return None
            if row is None or row[0] != fingerprint:
                return None
            snapshot = TreeSnapshot(*row)
            self._hits += len(snapshot.digests) // 32
            return snapshot

    def store_tree(self, root: str, snapshot: TreeSnapshot) -> None:
        """Record the snapshot of the tree at absolute ``root`` (all its files settled)."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO tree_digest (root, fingerprint, sha256, digests)"
                    " VALUES (?, ?, ?, ?)",
                    (encode_path(root), *snapshot),
                )
            except sqlite3.Error as exc:
                self._disable(exc)

    def store(self, entries: Iterable[tuple[FileIdentity, Sha256]]) -> None:
        """Record digests; the caller has checked :func:`identity_is_settled` for each."""
        rows = [(identity.path, identity.key, sha) for identity, sha in entries]
        if not rows:
            return
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # one transaction, writer lock up front
                try:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO file_digest (path, identity, sha256)"
                        " VALUES (?, ?, ?)",
                        rows,
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._stored += len(rows)
            except sqlite3.Error as exc:
                self._disable(exc)


def default_cache_path() -> Path | None:
    """Return where the default cache lives, or ``None`` when it is turned off.

    ``$BITWRIGHT_DIGEST_CACHE`` names the file (``off`` turns the cache off); otherwise it is
    ``$XDG_CACHE_HOME/bitwright/digests.sqlite``, falling back to ``~/.cache``.
    """
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "bitwright" / "digests.sqlite"
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (a sealed sandbox)
        return None
    return home / ".cache" / "bitwright" / "digests.sqlite"


def default_cache() -> DigestCache | None:
    """Open the default cache, or return ``None`` if it is off, unusable or refused.

    Never raises: a command must not fail over its cache (see :func:`open_default_cache`
    for the reason it is not used).
    """
    return open_default_cache()[0]


def open_default_cache() -> tuple[DigestCache | None, str]:
    """Open the default cache; return it (None when not used) and why it is not used ("")."""
    path = default_cache_path()
    if path is None:
        return None, ""
    try:
        return DigestCache.open(path), ""
    except OperationalError as exc:
        return None, f"{exc.message} ({exc.hint})"


@functools.cache
def memory_cache() -> DigestCache:
    """This process's in-memory cache: what a build attests is hashed by the build itself.

    A file hashed once (a data snapshot at preflight, a product) is answered again from here
    while its identity is unchanged, and from nowhere else.
    """
    return DigestCache.in_memory()


def _make_private(path: Path, mode: int, what: str) -> None:
    """Refuse ``path`` unless only this user can write it; tighten its mode to ``mode``.

    Raises:
        OperationalError: it is a symbolic link, owned by another user, or writable by
            others (group or world).
    """
    info = os.lstat(path)
    hint = f"use a cache of your own: set {CACHE_ENV} to a file in a private directory, or 'off'"
    if stat.S_ISLNK(info.st_mode):
        raise OperationalError(f"digest cache {what} {path} is a symbolic link: refused", hint=hint)
    if info.st_uid != os.geteuid():
        raise OperationalError(
            f"digest cache {what} {path} belongs to another user (uid {info.st_uid}): refused",
            hint=hint,
        )
    if info.st_mode & 0o022:
        raise OperationalError(
            f"digest cache {what} {path} is writable by other users "
            f"(mode {stat.S_IMODE(info.st_mode):o}): refused",
            hint=f"chmod {mode:o} {path}; or " + hint,
        )
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
