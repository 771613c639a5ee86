"""Recovering from a build that was killed: one build at a time, stale locks and partial files.

A build can die at any point (SIGKILL, a lost machine). Its signed attestations are safe
(a link is written only for a finished stage, every file atomically), but it can leave:

* DVC's ``.dvc/tmp/rwlock`` naming processes that no longer run, or damaged when DVC was
  killed while writing it: the next ``dvc repro`` then refuses to start;
* temporaries of :func:`bitwright.fileio.open_atomic` (``.NAME.XXXXXXXX.tmp``) and older
  ``*.partial`` logs in ``.bitwright/``.

:func:`recovered_build` runs before every build. It takes ``.bitwright/run/build.lock`` (an
advisory lock the kernel releases when its holder dies, so a second build in the same
project is refused while one runs, naming it), then removes a DVC lock whose holders are
all dead (a line says so; a live holder is an error naming it) and the partial files of the
dead build. Nothing that a running process may still write is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from bitwright.builder.paths import ProjectPaths
from bitwright.errors import OperationalError
from bitwright.fileio import read_regular

__all__ = ["clear_stale_dvc_lock", "process_alive", "recovered_build", "remove_partial_files"]

Notify = Callable[[str], None]

_LOCK_FILE = "build.lock"
_RWLOCK = Path(".dvc") / "tmp" / "rwlock"
_PARTIAL = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$|\.partial$")


@contextlib.contextmanager
def recovered_build(paths: ProjectPaths, notify: Notify) -> Iterator[None]:
    """Hold the project's build lock, after clearing what a killed build left behind.

    Raises:
        OperationalError: another build of this project is running, or a live process
            holds DVC's lock (both named).
    """
    paths.run.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.run / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise OperationalError(
                f"another bitwright build is running in {paths.repo} (pid {holder})",
                hint="wait for it to finish, or stop it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        clear_stale_dvc_lock(paths.repo, notify)
        remove_partial_files(paths, notify)
        yield
    finally:
        os.close(fd)  # releases the lock


def clear_stale_dvc_lock(repo: Path, notify: Notify) -> None:
    """Remove DVC's rwlock when every process it names is gone, or it is damaged.

    Raises:
        OperationalError: a process it names still runs DVC (named, with its command).
    """
    path = repo / _RWLOCK
    if not path.is_file():
        return
    try:
        holders = _holders(json.loads(read_regular(path, limit=1 << 20)))
    except (OperationalError, ValueError, TypeError, AttributeError, KeyError):
        running = _dvc_processes_in(repo)
        if running:
            pid, cmd = running[0]
            raise _held(path, pid, cmd) from None
        path.unlink(missing_ok=True)
        notify(f"removed DVC's damaged lock {_RWLOCK} (a DVC process was killed writing it)")
        return
    if not holders:
        return
    for pid, cmd in holders:
        if _runs_dvc(pid):
            raise _held(path, pid, cmd)
    path.unlink(missing_ok=True)
    shown = ", ".join(f"pid {pid} `{cmd}`" for pid, cmd in holders[:3])
    notify(f"removed DVC's stale lock {_RWLOCK} (held by {shown}, no longer running)")


def remove_partial_files(paths: ProjectPaths, notify: Notify) -> None:
    """Remove the temporaries and partial logs a killed build left in ``.bitwright/``."""
    if not paths.state.is_dir():
        return
    removed: list[str] = []
    for root, _dirs, files in os.walk(paths.state):
        for name in files:
            if _PARTIAL.search(name) and name != _LOCK_FILE:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, name))
                    removed.append(os.path.relpath(os.path.join(root, name), paths.repo))
    if removed:
        more = f" and {len(removed) - 3} more" if len(removed) > 3 else ""
        notify(
            f"removed {len(removed)} partial file(s) of an interrupted build: "
            f"{', '.join(sorted(removed)[:3])}{more}"
        )


def _holders(lock: object) -> list[tuple[int, str]]:
    """(pid, command) of every process DVC's rwlock names; raises on a malformed lock."""
    if not isinstance(lock, dict):
        raise ValueError("not an object")
    infos: list[dict[str, object]] = []
    for info in dict(lock.get("write", {})).values():
        infos.append(dict(info))
    for entries in dict(lock.get("read", {})).values():
        infos.extend(dict(info) for info in entries)
    found: dict[int, str] = {}
    for info in infos:
        pid = info["pid"]
        if not isinstance(pid, int):
            raise ValueError("pid is not an integer")
        found[pid] = str(info.get("cmd", ""))
    return sorted(found.items())


def _held(path: Path, pid: int, cmd: str) -> OperationalError:
    return OperationalError(
        f"DVC's lock {path} is held by running process {pid} (`{cmd}`)",
        hint="wait for that DVC command to finish, or stop it, then build again",
    )


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs_dvc(pid: int) -> bool:
    """Whether ``pid`` is a live process whose command line mentions dvc (not a reused pid)."""
    return process_alive(pid) and b"dvc" in _cmdline(pid)


def _dvc_processes_in(repo: Path) -> list[tuple[int, str]]:
    """Live processes running DVC with their working directory inside ``repo``."""
    found: list[tuple[int, str]] = []
    real = os.path.realpath(repo)
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        cmdline = _cmdline(int(entry))
        if b"dvc" not in cmdline:
            continue
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{entry}/cwd")
            if cwd == real or cwd.startswith(real + os.sep):
                found.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read(4096)
    except OSError:
        return b""
