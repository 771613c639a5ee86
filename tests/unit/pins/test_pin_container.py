"""The image lock: its format round-trips, and a stale, placeholder or hostile lock is refused."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from bitwright.errors import OperationalError
from bitwright.model.digests import Sha256
from bitwright.pins import LOCK_PATH, pin_container
from bitwright.pins.container import (
    DebianPackage,
    ImageLock,
    PythonWheel,
    read_image_lock,
    recipe_sha256,
    render_image_lock,
    write_image_lock,
)

ROOT = Path(__file__).resolve().parents[3]
RECIPE = "containers/image.toml"


def sha(char: str) -> Sha256:
    return Sha256(char * 64)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a recipe and a lock written for it."""
    (tmp_path / "containers").mkdir()
    shutil.copy2(ROOT / RECIPE, tmp_path / RECIPE)
    write_image_lock(tmp_path, lock_entry(recipe_sha256(tmp_path, RECIPE)))
    return tmp_path


def lock_entry(recipe_digest: str, digest: str = "sha256:" + "ab" * 32) -> ImageLock:
    return ImageLock(
        name="localhost/bitwright-build:py3.11-bookworm",
        digest=digest,
        recipe=RECIPE,
        recipe_sha256=Sha256(recipe_digest),
        archive_sha256=sha("c"),
        archive_md5="d" * 32,
        archive_size=1234,
        debian=(DebianPackage("libc6", "2.36-9+deb12u14", "amd64", sha("e")),),
        python=(PythonWheel("torch", "2.13.0+cpu", "torch-2.13.0-cp311-cp311-x.whl", sha("f")),),
    )


def test_this_repositorys_lock_pins_a_real_image_for_its_recipe() -> None:
    pin = pin_container(ROOT)
    assert pin.digest.startswith("sha256:") and len(pin.digest) == 71
    assert pin.digest != "sha256:" + "0" * 64
    assert (pin.enforced, pin.how) == (True, "podman")
    lock = read_image_lock(ROOT)
    assert {p.package for p in lock.debian} >= {"python3", "libc6"}
    assert {w.name for w in lock.python} >= {"torch", "numpy", "safetensors", "pyyaml"}


def test_lock_round_trips_byte_for_byte(repo: Path) -> None:
    text = (repo / LOCK_PATH).read_text()
    entry = read_image_lock(repo)
    assert render_image_lock({"build": entry}) == text
    pin = pin_container(repo)
    assert (pin.digest, pin.archive_md5, pin.archive_size) == (entry.digest, "d" * 32, 1234)


def test_edited_recipe_is_refused_until_rebuilt(repo: Path) -> None:
    (repo / RECIPE).write_text((repo / RECIPE).read_text() + "\n# one more line\n")
    with pytest.raises(OperationalError, match="changed since") as caught:
        pin_container(repo)
    assert "--update" in caught.value.hint


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: t.replace('"sha256:' + "ab" * 32, '"sha256:' + "0" * 64), "all zeros"),
        (lambda t: t.replace("digest = ", "digests = "), "digest is missing"),
        (lambda t: t.replace('"sha256:' + "ab" * 32, '"sha256:abc'), "manifest digest"),
        (lambda t: t.replace("schema = 2", "schema = 1"), "unsupported schema"),
        (lambda t: t.replace(f'recipe = "{RECIPE}"', 'recipe = "../etc/passwd"'), "inside"),
        (lambda t: t.replace("archive_size = 1234", "archive_size = -1"), "positive"),
        (lambda t: t.replace('"libc6"', '"../x"'), "package name"),
        (lambda t: t.replace("[images.build]", "[images.other]"), r"no \[images\.build\]"),
        (lambda t: t + "\nbad = " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
        (lambda t: t.replace("schema", "sch\x00ema"), "unreadable"),
    ],
)
def test_malformed_or_placeholder_lock_is_refused(repo: Path, edit, problem: str) -> None:  # type: ignore[no-untyped-def]
    lock = repo / LOCK_PATH
    lock.write_text(edit(lock.read_text()))
    with pytest.raises(OperationalError, match=problem):
        pin_container(repo)


def test_missing_lock_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="is missing") as caught:
        pin_container(tmp_path)
    assert "bitwright image build" in caught.value.hint


def test_lock_that_is_a_fifo_a_symlink_out_or_huge_is_refused(repo: Path, tmp_path: Path) -> None:
    lock = repo / LOCK_PATH
    outside = tmp_path.parent / f"{tmp_path.name}-outside.lock"
    shutil.copy2(lock, outside)
    lock.unlink()
    lock.symlink_to(outside)
    with pytest.raises(OperationalError, match="symbolic link"):
        pin_container(repo)
    lock.unlink()
    os.mkfifo(lock)
    with pytest.raises(OperationalError, match="FIFO"):
        pin_container(repo)
    lock.unlink()
    lock.write_text("#" * (5 << 20))
    with pytest.raises(OperationalError, match="more than"):
        pin_container(repo)


def test_writing_one_role_keeps_the_others(repo: Path) -> None:
    other = dataclasses.replace(read_image_lock(repo), digest="sha256:" + "cd" * 32)
    write_image_lock(repo, other, role="gpu")
    assert read_image_lock(repo, "gpu").digest == "sha256:" + "cd" * 32
    assert read_image_lock(repo).digest == "sha256:" + "ab" * 32
