"""Fixtures of the digest tests: a cache in tmp_path, never the user's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bitwright.digest import DigestCache


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[DigestCache]:
    with DigestCache.open(tmp_path / "cache" / "digests.sqlite") as opened:
        yield opened


@pytest.fixture(autouse=True)
def _no_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the user's real cache (~/.cache/bitwright)."""
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(tmp_path / "env-cache.sqlite"))
