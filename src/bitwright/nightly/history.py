"""The append-only history of nights: JSON lines, one :class:`~.night.Night` record each.

CI keeps the file between runs (an artifact or a branch), so it is read as untrusted input:
a regular file only (never a FIFO or a symlink), bounded in size, each line bounded in depth.
A line that is not a record (a crash mid-write, a hand edit) is skipped and counted, never
fatal: the history explains, it does not decide. Appending writes one whole line with
``O_APPEND`` and syncs it; a file left without a final newline gets one first.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.errors import BitwrightError, OperationalError
from bitwright.fileio import NotRegularFile, load_json, read_regular
from bitwright.nightly.night import Night

__all__ = [
    "MAX_HISTORY_BYTES",
    "HistoryFile",
    "Since",
    "append_night",
    "first_different",
    "read_history",
]

MAX_HISTORY_BYTES = 256 << 20
"""The largest history read (years of nights of a large pipeline)."""

_MAX_DEPTH = 16
"""A record nests 6 deep; anything much deeper is not one."""


@dataclass(frozen=True)
class HistoryFile:
    """The nights of a history file, oldest first, and how many lines were not records."""

    nights: tuple[Night, ...]
    skipped_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class Since:
    """Since when a stage has not reproduced: the first night of the current streak."""

    stage: str
    night: str
    commit: str
    nights: int

    def describe(self) -> str:
        """``stage train: first different on 2026-03-02 at 1a2b3c4d5e6f (3 nights)``."""
        plural = "night" if self.nights == 1 else "nights"
        return (
            f"stage {self.stage}: first different on {self.night[:10]} at {self.commit[:12]} "
            f"({self.nights} {plural})"
        )


def read_history(path: Path) -> HistoryFile:
    """Read the history at ``path``; a missing file is an empty history.

    Raises:
        NotRegularFile: ``path`` is a FIFO, a device, a directory or a symlink.
        OperationalError: it cannot be read or is larger than :data:`MAX_HISTORY_BYTES`.
    """
    if not os.path.lexists(path):
        return HistoryFile(())
    data = read_regular(path, limit=MAX_HISTORY_BYTES)
    nights: list[Night] = []
    skipped: list[int] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = load_json(
                line, source=f"{path}:{number}", hint="", what="a record", max_depth=_MAX_DEPTH
            )
            if not isinstance(record, dict):
                raise ValueError("not an object")
            nights.append(Night.from_record(record))
        except (BitwrightError, ValueError, TypeError):
            skipped.append(number)
    return HistoryFile(tuple(nights), tuple(skipped))


def append_night(path: Path, night: Night) -> None:
    """Append ``night`` to the history at ``path`` as one line (creating the file).

    Raises:
        NotRegularFile: ``path`` exists and is not a regular file (or is a symlink).
        OperationalError: it cannot be written.
    """
    line = json.dumps(night.to_record(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise NotRegularFile(
                f"history {path} is not a regular file (a symlink, FIFO or device)",
                hint="point --history at a regular file",
            ) from None
        raise OperationalError(
            f"cannot append to the history {path}: {exc.strerror or exc}",
            hint="check the directory's permissions",
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(
                f"history {path} is not a regular file", hint="point --history at a regular file"
            )
        if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    except OSError as exc:
        raise OperationalError(
            f"cannot append to the history {path}: {exc.strerror or exc}",
            hint="check the disk and the file's permissions",
        ) from None
    finally:
        os.close(fd)


def first_different(nights: Sequence[Night]) -> tuple[Since, ...]:
    """For every stage that did not reproduce on the last night, since when that is so.

    Walks back from the last night while the stage's worst result is not reproduced (a
    stage absent from a night ends the streak: the pipeline was another one then).
    """
    if not nights:
        return ()
    last = nights[-1]
    found: list[Since] = []
    for stage in last.stages:
        if last.stage_result(stage).reproduced:
            continue
        first = len(nights) - 1
        while first > 0:
            before = nights[first - 1]
            if stage not in before.stages or before.stage_result(stage).reproduced:
                break
            first -= 1
        start = nights[first]
        found.append(Since(stage, start.night, start.commit, len(nights) - first))
    return tuple(found)
