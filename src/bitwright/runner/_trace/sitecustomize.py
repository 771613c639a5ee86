"""Warn-only read tracing for a sealed stage: records the repository files Python opens.

bitwright's runner puts this directory first on the stage's ``PYTHONPATH``, so every Python
process of the stage (subprocesses and workers too) imports it at start-up. It installs an
audit hook (PEP 578) that appends each path opened for reading under ``$BITWRIGHT_TRACE_ROOT``
to ``$BITWRIGHT_TRACE``, NUL-terminated, except under the directories listed (``:``-separated)
in ``$BITWRIGHT_TRACE_SKIP`` (the toolchain: a virtual environment inside the repository).
The hook runs before the open, so an open that then fails (a file hidden by strict mode) is
recorded too. Opens made by native code that bypasses Python (a Rust or C library opening
files itself) are not seen; strict mode hides those files.

Only the standard library is used, and the hook never raises into the stage.
"""

from __future__ import annotations

import os
import sys

__all__: list[str] = []


def _reads(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return "r" in mode or "+" in mode
    if isinstance(flags, int):
        return flags & os.O_ACCMODE != os.O_WRONLY
    return True


def _install() -> None:
    trace = os.environ.get("BITWRIGHT_TRACE")
    root = os.environ.get("BITWRIGHT_TRACE_ROOT")
    if not trace or not root:
        return
    try:
        fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    prefix = root.rstrip("/") + "/"
    skip = tuple(
        d.rstrip("/") + "/" for d in os.environ.get("BITWRIGHT_TRACE_SKIP", "").split(":") if d
    )
    seen: set[str] = set()

    def record(path: str) -> None:
        if path not in seen:
            seen.add(path)
            os.write(fd, os.fsencode(path) + b"\0")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event != "open":
            return
        try:
            target = args[0]
            if not isinstance(target, str | bytes | os.PathLike):
                return
            if not _reads(args[1], args[2]):
                return
            text = os.fsdecode(os.fspath(target))
            full = os.path.abspath(text)
            if not full.startswith(prefix) or full.startswith(skip):
                return
            record(full)
            real = os.path.realpath(full)
            if real != full and real.startswith(prefix):
                record(real)
        except Exception:  # a trace must never break the stage
            pass

    sys.addaudithook(hook)


_install()
