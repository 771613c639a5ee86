"""Atomic writes: a reader sees the old file or the new one; a failed write leaves no trace."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bitwright.errors import OperationalError
from bitwright.fileio import open_atomic, write_atomic, write_text_atomic


def test_write_atomic_replaces_the_file_with_the_given_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "key.pem"
    write_atomic(target, b"old")
    write_atomic(target, b"secret", mode=0o600)
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["key.pem"]


def test_an_exception_in_the_block_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.md"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), open_atomic(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_an_unwritable_directory_is_one_operational_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OperationalError, match="cannot write"):
        write_atomic(blocker / "inside", b"x")
