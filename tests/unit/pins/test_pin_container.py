"""pin_container: the build image from containers/images.lock, refused when the lock is stale."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bitwright.errors import OperationalError
from bitwright.pins import LOCK_PATH, UNBUILT_DIGEST, pin_container
from bitwright.pins.container import NO_IMAGE

ROOT = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding a copy of this project's Containerfile, relock.py and lock."""
    (tmp_path / "containers").mkdir()
    for name in ("Containerfile", "relock.py", "images.lock"):
        shutil.copy2(ROOT / "containers" / name, tmp_path / "containers" / name)
    return tmp_path


def relock(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repo / "containers/relock.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_this_repositorys_lock_matches_its_containerfile() -> None:
    pin = pin_container(ROOT, enforced=False, how="host (bubblewrap)")
    assert (pin.enforced, pin.how) == (False, "host (bubblewrap)")
    assert pin.digest.startswith("sha256:") and len(pin.digest) == 71
    assert relock(ROOT, "--check").returncode == 0


def test_relocked_digest_is_pinned_and_can_be_enforced(repo: Path) -> None:
    assert relock(repo, "--digest", DIGEST).returncode == 0
    pin = pin_container(repo, enforced=True, how="podman")
    assert (pin.digest, pin.enforced, pin.how) == (DIGEST, True, "podman")
    assert pin.image == "localhost/bitwright-build:py3.11-bookworm"


def test_edited_containerfile_is_refused_until_relocked(repo: Path) -> None:
    containerfile = repo / "containers/Containerfile"
    containerfile.write_text(containerfile.read_text() + "RUN true\n")
    with pytest.raises(OperationalError, match="Containerfile changed since") as caught:
        pin_container(repo, enforced=False, how="host")
    assert "relock" in caught.value.hint
    assert relock(repo, "--check").returncode == 1
    assert relock(repo, "--unbuilt").returncode == 0
    assert pin_container(repo, enforced=False, how="host").digest == UNBUILT_DIGEST


def test_unbuilt_image_cannot_be_enforced(repo: Path) -> None:
    assert relock(repo, "--unbuilt").returncode == 0
    with pytest.raises(OperationalError, match="never built"):
        pin_container(repo, enforced=True, how="podman")


def test_base_must_be_the_containerfiles_from(repo: Path) -> None:
    lock = repo / LOCK_PATH
    text = lock.read_text()
    other = "docker.io/library/python:3.11-slim-bookworm@sha256:" + "ef" * 32
    lock.write_text(re.sub(r'base = "[^"]*"', f'base = "{other}"', text))
    with pytest.raises(OperationalError, match="not built FROM the locked base"):
        pin_container(repo, enforced=False, how="host")


def test_missing_lock_means_no_image_on_the_host(repo: Path) -> None:
    (repo / LOCK_PATH).unlink()
    pin = pin_container(repo, enforced=False, how="host (bubblewrap)")
    assert (pin.image, pin.digest, pin.enforced) == (NO_IMAGE, UNBUILT_DIGEST, False)
    assert pin.how == "host (bubblewrap)"


def test_missing_lock_cannot_be_enforced(repo: Path) -> None:
    (repo / LOCK_PATH).unlink()
    with pytest.raises(OperationalError, match="no image lock") as caught:
        pin_container(repo, enforced=True, how="podman")
    assert "containers/README.md" in caught.value.hint


def test_dangling_lock_link_is_not_taken_for_no_lock(repo: Path) -> None:
    lock = repo / LOCK_PATH
    lock.unlink()
    lock.symlink_to(repo / "elsewhere.lock")
    with pytest.raises(OperationalError, match="image lock .* is missing"):
        pin_container(repo, enforced=False, how="host")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("schema = 1", "schema = 2"), "unsupported schema 2"),
        (lambda t: t.replace('digest = "sha256:', 'digest = "md5:'), "not a sha256:<64 hex>"),
        (lambda t: t.replace("[images.build]", "[images.gpu]"), r"no \[images.build\] entry"),
        (lambda t: t.replace("containerfile = ", "containerfile_path = "), "containerfile is"),
        (lambda t: t + "[[broken", "unreadable image lock"),
        (lambda t: t.replace('"containers/Containerfile"', '"../Containerfile"'), "inside the"),
    ],
)
def test_malformed_lock_is_an_operational_error(
    repo: Path, edit: Callable[[str], str], message: str
) -> None:
    lock = repo / LOCK_PATH
    lock.write_text(edit(lock.read_text()))
    with pytest.raises(OperationalError, match=message):
        pin_container(repo, enforced=False, how="host")
