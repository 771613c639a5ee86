"""Fixtures of the trajectory tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The training data, as a stage sees it: a path relative to the repository root."""
    monkeypatch.chdir(tmp_path)
    path = Path("data.bin")
    path.write_bytes(b"twenty items of training data")
    return path
