"""What a killed build leaves behind, cleared by the next one: DVC's lock, partial files.

Real processes (live and dead pids), real files; the whole build under SIGKILL is in
tests/integration/test_build_crash.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitwright.builder.paths import ProjectPaths
from bitwright.builder.recovery import (
    clear_stale_dvc_lock,
    recovered_build,
    remove_partial_files,
)
from bitwright.errors import OperationalError


@pytest.fixture
def paths(tmp_path: Path) -> ProjectPaths:
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    return ProjectPaths(tmp_path)


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@pytest.fixture
def live_dvc() -> Iterator[int]:
    """A live process whose command line names dvc, as a DVC command's does."""
    script = "import time; print(flush=True); time.sleep(60)"
    holder = subprocess.Popen(
        [sys.executable, "-c", script, "dvc", "repro"], stdout=subprocess.PIPE
    )
    assert holder.stdout is not None
    holder.stdout.readline()  # running, its command line in place
    try:
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def _rwlock(paths: ProjectPaths, pid: int) -> Path:
    path = paths.repo / ".dvc" / "tmp" / "rwlock"
    info = {"pid": pid, "cmd": "dvc repro"}
    path.write_text(json.dumps({"write": {"out/first.json": info}, "read": {"x": [info]}}))
    return path


def test_a_lock_of_a_dead_dvc_is_removed_with_a_line_saying_so(paths: ProjectPaths) -> None:
    lock = _rwlock(paths, _dead_pid())
    lines: list[str] = []

    clear_stale_dvc_lock(paths.repo, lines.append)

    assert not lock.exists()
    assert len(lines) == 1 and "removed DVC's stale lock" in lines[0]
    assert "no longer running" in lines[0]


def test_a_lock_held_by_a_live_dvc_is_an_error_naming_it(
    paths: ProjectPaths, live_dvc: int
) -> None:
    lock = _rwlock(paths, live_dvc)

    with pytest.raises(OperationalError, match=f"held by running process {live_dvc}"):
        clear_stale_dvc_lock(paths.repo, lambda _: None)
    assert lock.exists()


def test_a_pid_reused_by_another_program_does_not_hold_the_lock(paths: ProjectPaths) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _rwlock(paths, other.pid)
        clear_stale_dvc_lock(paths.repo, lambda _: None)
    finally:
        other.kill()
        other.wait()
    assert not lock.exists()


@pytest.mark.parametrize("content", ["", '{"write": {"out": {"pi', "[1, 2]"])
def test_a_damaged_lock_is_removed(paths: ProjectPaths, content: str) -> None:
    lock = paths.repo / ".dvc" / "tmp" / "rwlock"
    lock.write_text(content)
    lines: list[str] = []

    clear_stale_dvc_lock(paths.repo, lines.append)

    assert not lock.exists()
    assert "damaged lock" in lines[0]


def test_an_empty_lock_is_left_alone(paths: ProjectPaths) -> None:
    lock = paths.repo / ".dvc" / "tmp" / "rwlock"
    lock.write_text('{"write": {}, "read": {}}')

    clear_stale_dvc_lock(paths.repo, lambda _: None)

    assert lock.exists()


def test_partial_files_of_a_killed_build_are_removed_and_nothing_else(
    paths: ProjectPaths,
) -> None:
    partial = [
        paths.logs / ".first.log.a1b2c3d4.tmp",
        paths.links / ".first.0123abcd.link.zz_9yy8x.tmp",
        paths.logs / "first.log.partial",
    ]
    kept = [paths.logs / "first.log", paths.links / "first.0123abcd.link", paths.owner_key]
    for path in (*partial, *kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    lines: list[str] = []

    remove_partial_files(paths, lines.append)

    assert [p for p in partial if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert lines == [f"removed 3 partial file(s) of an interrupted build: {_shown(paths, partial)}"]


def _shown(paths: ProjectPaths, files: list[Path]) -> str:
    return ", ".join(sorted(str(p.relative_to(paths.repo)) for p in files))


def test_a_second_build_of_the_same_project_is_refused_while_one_runs(
    paths: ProjectPaths,
) -> None:
    refused = pytest.raises(OperationalError, match="another bitwright build is running")
    with recovered_build(paths, lambda _: None), refused, recovered_build(paths, lambda _: None):
        pass
    with recovered_build(paths, lambda _: None):  # released when the first one ended
        pass
