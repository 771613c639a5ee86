"""Hashing in the background: the same digests as digest_tree, errors carried over, no orphan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bitwright.digest import BackgroundTreeDigest, digest_tree
from bitwright.errors import OperationalError


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(40 << 20))  # past the child's progress step
    (root / "sub" / "small.txt").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    return root


@pytest.mark.parametrize("child", [True, False])
def test_same_digests_as_digest_tree_and_progress_adds_up(tmp_path: Path, child: bool) -> None:
    root = _tree(tmp_path / "tree")
    seen: list[int] = []

    with BackgroundTreeDigest(root, seen.append, child=child) as background:
        files = background.result()

    assert files == digest_tree(root).files
    assert sum(seen) == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("child", [True, False])
def test_a_file_that_cannot_be_hashed_is_the_same_error(tmp_path: Path, child: bool) -> None:
    root = _tree(tmp_path / "tree")
    os.mkfifo(root / "sub" / "pipe")
    with pytest.raises(OperationalError) as direct:
        digest_tree(root)

    with (
        BackgroundTreeDigest(root, child=child) as background,
        pytest.raises(OperationalError) as failure,
    ):
        background.result()

    assert failure.value.message == direct.value.message
    assert failure.value.hint == direct.value.hint


def test_a_missing_root_is_an_operational_error(tmp_path: Path) -> None:
    with (
        BackgroundTreeDigest(tmp_path / "nowhere") as background,
        pytest.raises(OperationalError, match="nowhere"),
    ):
        background.result()


def test_closing_early_stops_the_child(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    background = BackgroundTreeDigest(root)
    child = background._child
    assert child is not None

    background.close()

    assert child.returncode is not None
