"""Streaming sha256 of regular files, in parallel across files and cores, through the cache.

Each file is read in 1 MiB chunks into a buffer reused for the whole run (``os.readv``), so
memory stays flat whatever the file size. ``hashlib`` and ``read`` release the GIL for large
chunks, so threads scale across cores for large files; small files, which are mostly Python
and syscalls, run on one extra thread of their own (see :class:`_Run`). A single file runs on
the calling thread at the speed of one core's ``hashlib``.

Only regular files are hashed. A fifo, socket or device is refused from its ``stat`` before it
is opened (opening a fifo would block, opening a device can have effects), and files are
opened non-blocking. After reading, one ``fstat`` must match the ``stat`` taken before: a file
that was replaced, written, truncated or touched in between is an error (a digest of a moving
file proves nothing), and so is a file that yields more or fewer bytes than its size
(``/proc``).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import queue
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from bitwright.digest.cache import DigestCache
from bitwright.digest.identity import (
    FileIdentity,
    identity_is_settled,
    identity_key,
    identity_keys,
)
from bitwright.digest.problems import not_regular_file, os_failure
from bitwright.errors import OperationalError
from bitwright.model.digests import Sha256

__all__ = [
    "CHUNK_SIZE",
    "ByteCallback",
    "StatDigests",
    "default_workers",
    "digest_stat_files",
    "sha256_file",
    "sha256_files",
    "stat_regular",
]

CHUNK_SIZE = 1 << 20
"""Bytes read per ``readinto`` call (measured: 128 KiB to 4 MiB are all equally fast here)."""

ByteCallback = Callable[[int], None]
"""Progress callback: receives a number of bytes done; may be called from worker threads."""

_LARGE_FILE = 1 << 20  # from this size on a file is hashed alone, in parallel with others
_BATCH_FILES = 64  # small files are grouped into batches of this many files (or _LARGE_FILE)
_STORE_EVERY = 4096  # digests buffered before they are written to the cache ...
_STORE_AFTER_S = 2.0  # ... or after this long, so an interrupted run keeps its work
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class _Cancelled(Exception):
    """Another worker failed (or the caller was interrupted): stop reading."""


def default_workers() -> int:
    """Return the number of CPUs this process may run on (its affinity, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def stat_regular(path: Path | str) -> os.stat_result:
    """Return ``os.stat(path)`` (following symlinks) of a regular file.

    Raises:
        OperationalError: The path is missing, a broken symlink, unreadable or not a regular
            file (directory, fifo, socket, device).
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise os_failure(path, exc, "stat") from exc
    if not stat.S_ISREG(st.st_mode):
        raise not_regular_file(path, st.st_mode)
    return st


def _chunk_buffer() -> mmap.mmap:
    """A reusable read buffer of :data:`CHUNK_SIZE` bytes, page-aligned.

    Anonymous memory from ``mmap`` rather than a ``bytearray`` from the heap: reading into
    a heap buffer made a fresh process's first 2 GiB of hashing on two threads ~100 ms
    slower here (the same afterwards), a page-aligned mapping did not.
    """
    return mmap.mmap(-1, CHUNK_SIZE)


def _hash_open_file(
    fd: int,
    size: int,
    shown: str,
    buf: mmap.mmap,
    on_bytes: ByteCallback | None,
    stop: threading.Event,
) -> tuple[Sha256, int]:
    """Hash an open file of ``fstat`` size ``size``; return the digest and the bytes read.

    Reading stops at ``size`` (the caller's second ``fstat`` catches a file that grew since)
    and never goes more than one chunk past it, so a file that keeps growing, or a virtual
    file claiming size 0, cannot keep it reading.
    """
    if size > CHUNK_SIZE:
        with contextlib.suppress(AttributeError, OSError):  # larger read-ahead when cold
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    hasher = hashlib.sha256()
    view = memoryview(buf)
    chunks = [view]
    full = len(buf)
    total = 0
    while True:
        try:
            n = os.readv(fd, chunks)
        except OSError as exc:
            raise os_failure(shown, exc, "read") from exc
        if not n:
            break
        hasher.update(view if n == full else view[:n])
        total += n
        if on_bytes is not None:
            on_bytes(n)
        if total >= size or stop.is_set():
            break
    if stop.is_set():
        raise _Cancelled
    return Sha256(hasher.hexdigest()), total


def _hash_path(
    path: str,
    expected: os.stat_result,
    buf: mmap.mmap,
    on_bytes: ByteCallback | None,
    stop: threading.Event,
) -> tuple[Sha256, FileIdentity, int]:
    """Hash the file that ``expected`` (the caller's ``stat``) describes.

    One ``fstat`` after reading, compared with ``expected``, proves the bytes read are the
    file as it was stat'ed: any write, truncation, ``utime`` or replacement since moves its
    ctime, inode or size. (A check before reading too would cost a syscall per file, a fifth
    of the work for small files.)

    Returns:
        The digest, the file's identity and when hashing started (for the racy check).
    """
    started_ns = time.time_ns()
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise os_failure(path, exc, "open") from exc
    try:
        digest, total = _hash_open_file(fd, expected.st_size, path, buf, on_bytes, stop)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(after.st_mode):
        raise not_regular_file(path, after.st_mode)
    identity = FileIdentity.of(path, after)
    if identity.key != identity_key(expected):
        raise OperationalError(
            f"{path}: changed while it was being hashed",
            hint="make sure no process writes the file, then run again",
        )
    if total != expected.st_size:
        raise OperationalError(
            f"{path}: claims {expected.st_size} bytes but {total} were read",
            hint="virtual files (/proc, /sys) have no stable content; copy what you need",
        )
    return digest, identity, started_ns


class _Task(NamedTuple):
    paths: list[str]


def _plan(todo: list[tuple[str, int]]) -> tuple[deque[_Task], deque[_Task]]:
    """Split files into large tasks (largest first) and batches of small files."""
    large: deque[_Task] = deque()
    small: deque[_Task] = deque()
    batch: list[str] = []
    batch_bytes = 0
    for path, size in sorted(todo, key=lambda item: item[1], reverse=True):
        if size >= _LARGE_FILE:
            large.append(_Task([path]))
            continue
        batch.append(path)
        batch_bytes += size
        if batch_bytes >= _LARGE_FILE or len(batch) >= _BATCH_FILES:
            small.append(_Task(batch))
            batch, batch_bytes = [], 0
    if batch:
        small.append(_Task(batch))
    return large, small


_Result = tuple[str, Sha256, FileIdentity, int]


class _Run:
    """One hashing run: worker threads, their results, cache writes.

    Large files are hashed in parallel, one thread per CPU: ``hashlib`` and ``read`` release
    the GIL for long stretches. Small files are the opposite: a few microseconds of Python
    around each of several syscalls, and every syscall hands the GIL over. Two threads hashing
    small files fight for the GIL and run slower than one (measured: 2000 small files took
    twice as long with two threads), so small files go through one extra thread of their own,
    which runs beside the large-file threads and needs little CPU.
    """

    def __init__(
        self,
        cache: DigestCache | None,
        on_bytes: ByteCallback | None,
        stats: dict[str, os.stat_result],
    ) -> None:
        self.cache = cache
        self.on_bytes = on_bytes
        self.stats = stats
        self.settled = True
        self.stop = threading.Event()
        self.digests: dict[str, Sha256] = {}
        self.pending: list[tuple[FileIdentity, Sha256]] = []
        self.flushed_at = time.monotonic()
        self.results: queue.SimpleQueue[list[_Result] | BaseException] = queue.SimpleQueue()

    def hash_task(self, task: _Task, buf: mmap.mmap) -> list[_Result]:
        results: list[_Result] = []
        for path in task.paths:
            if self.stop.is_set():
                raise _Cancelled
            digest, identity, started = _hash_path(
                path, self.stats[path], buf, self.on_bytes, self.stop
            )
            results.append((path, digest, identity, started))
        return results

    def work(self, tasks: deque[_Task]) -> None:
        """Take tasks from ``tasks`` (shared with other threads) until none is left."""
        buf = _chunk_buffer()
        while not self.stop.is_set():
            try:
                task = tasks.popleft()  # atomic: deques are safe across threads
            except IndexError:
                return
            try:
                self.results.put(self.hash_task(task, buf))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                self.results.put(exc)
                return

    def collect(self, results: list[_Result]) -> None:
        for path, digest, identity, started in results:
            self.digests[path] = digest
            if self.cache is None:
                continue
            if identity_is_settled(identity, started):
                self.pending.append((identity, digest))
            else:
                self.settled = False
        if len(self.pending) >= _STORE_EVERY or (
            self.pending and time.monotonic() - self.flushed_at > _STORE_AFTER_S
        ):
            self.flush()

    def flush(self) -> None:
        if self.cache is not None and self.pending:
            self.cache.store(self.pending)
        self.pending = []
        self.flushed_at = time.monotonic()

    def run(self, todo: list[tuple[str, int]], workers: int) -> None:
        large, small = _plan(todo)
        try:
            if workers <= 1 or len(large) + min(1, len(small)) <= 1:
                buf = _chunk_buffer()  # one lane: the calling thread does it all
                for task in (*large, *small):
                    self.collect(self.hash_task(task, buf))
                return
            lanes = [large] * min(workers, len(large)) + [small] * min(1, len(small))
            self._run_threads(lanes, len(large) + len(small))
        finally:
            self.flush()  # keep what was hashed, even when a later file failed

    def _run_threads(self, lanes: list[deque[_Task]], tasks: int) -> None:
        threads = [
            threading.Thread(target=self.work, args=(lane,), name="bitwright-digest", daemon=True)
            for lane in lanes
        ]
        try:
            for thread in threads:
                thread.start()
            for _ in range(tasks):
                outcome = self.results.get()
                if isinstance(outcome, BaseException):
                    raise outcome
                self.collect(outcome)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()


class StatDigests(NamedTuple):
    """Digests of files whose ``stat`` the caller took.

    Attributes:
        digests: Absolute path -> sha256, in the order given.
        settled: Every file is old enough for its digest to be cached
            (:func:`~bitwright.digest.identity.identity_is_settled`); only then may the caller
            cache something built from these ``stat`` results (a tree snapshot).
    """

    digests: dict[str, Sha256]
    settled: bool


def digest_stat_files(
    files: Sequence[tuple[str, os.stat_result]],
    cache: DigestCache | None = None,
    *,
    workers: int | None = None,
    on_bytes: ByteCallback | None = None,
) -> StatDigests:
    """Digest files whose ``stat`` the caller already took (the tree walker does).

    Args:
        files: ``(absolute normalized path, stat result)`` of regular files.
        cache: Where unchanged files are answered from and new digests are stored.
        workers: Threads to hash with; default: the CPUs this process may use.
        on_bytes: Progress callback; files answered from the cache count with their size.

    Returns:
        The digests, and whether they are settled.

    Raises:
        OperationalError: A file is missing, unreadable, special, or changed since its
            ``stat`` was taken.
    """
    unique = dict(files)
    run = _Run(cache, on_bytes, unique)
    todo: list[tuple[str, int]] = []
    if cache is not None:
        keys = identity_keys(unique.items())
        hits = cache.lookup(keys)
        for (path, st), name in zip(unique.items(), keys, strict=True):
            digest = hits.get(name)
            if digest is None:
                todo.append((path, st.st_size))
                continue
            run.digests[path] = digest
            if on_bytes is not None:
                on_bytes(st.st_size)
    else:
        todo = [(path, st.st_size) for path, st in unique.items()]
    run.run(todo, workers if workers is not None else default_workers())
    return StatDigests({path: run.digests[path] for path in unique}, run.settled)


def sha256_files(
    paths: Sequence[Path],
    cache: DigestCache | None = None,
    *,
    workers: int | None = None,
    on_bytes: ByteCallback | None = None,
) -> dict[Path, Sha256]:
    """Return the sha256 of each file, hashing in parallel and skipping unchanged files.

    Args:
        paths: Regular files (symlinks to them are followed).
        cache: Digest cache to consult and fill; ``None`` reads every file.
        workers: Threads to hash with; default: the CPUs this process may use.
        on_bytes: Progress callback with bytes done (files from the cache count with their
            size); it may be called from worker threads, so it must be thread-safe.

    Returns:
        ``{path: sha256}`` in the order given (duplicates once).

    Raises:
        OperationalError: A file is missing, unreadable, not a regular file, or changed while
            it was read; the message names the file.
    """
    absolute = {Path(path): os.path.abspath(path) for path in paths}
    stated = [(abspath, stat_regular(path)) for path, abspath in absolute.items()]
    digests = digest_stat_files(stated, cache, workers=workers, on_bytes=on_bytes).digests
    return {path: digests[abspath] for path, abspath in absolute.items()}


def sha256_file(path: Path, cache: DigestCache | None = None) -> Sha256:
    """Return the sha256 of one regular file (streamed, constant memory, cached).

    Raises:
        OperationalError: The file is missing, unreadable, not a regular file, or changed
            while it was read.
    """
    path = Path(path)
    return sha256_files([path], cache, workers=1)[path]
