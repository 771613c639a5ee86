"""What the container tests share: the tools they need, a fresh image lock, an empty storage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.project import BITWRIGHT, sh

from bitwright.errors import OperationalError
from bitwright.image.debian import apt_sources
from bitwright.image.recipe import read_recipe
from bitwright.image.store import ImageStore
from bitwright.runner import podman_command, probe_podman

ROOT = Path(__file__).resolve().parents[2]


def require_container_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the container builder's image is built as root (mmdebstrap's root mode)")
    missing = [t for t in ("podman", "mmdebstrap") if shutil.which(t) is None]
    if missing or probe_podman() is None:
        pytest.skip(f"podman and mmdebstrap must work here ({missing or 'podman'}: make podman)")


def lock_anew(images: Path, base: Path) -> dict[str, Any]:
    """Copy ``images/containers`` to ``base`` and lock it from this machine's apt sources.

    ``image build --update`` resolves the recipe afresh (mmdebstrap reads the sources, pip the
    project's lock), builds and locks the image, whatever lock the copy held. Skipped when
    the machine has no apt source for the recipe's suite, or cannot reach it.
    """
    try:
        apt_sources(read_recipe(images).suite)
    except OperationalError as exc:
        pytest.skip(f"no apt source to lock the image from: {exc.diagnostics()}")
    shutil.copytree(images / "containers", base / "containers")
    done = sh(BITWRIGHT, "image", "build", "--update", "--no-load", "--json", cwd=base, check=False)
    if done.returncode != 0 and "Failed to fetch" in done.stderr:  # apt's words: out of reach
        said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        pytest.skip(f"the apt sources cannot be reached from here: {(said or [done.stderr])[0]}")
    assert done.returncode == 0, done.stderr
    return {**json.loads(done.stdout), "repo": base}


@contextlib.contextmanager
def empty_podman(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageStore]:
    """An empty podman storage and image store under ``directory``, for code and commands.

    Afterwards its images are removed and its mounts undone (podman's overlay storage stays
    mounted on itself), so no test leaves a mount behind in the temporary directories.
    """
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{directory}/graph"\n'
        f'runroot = "{directory}/run"\n'
    )
    with monkeypatch.context() as patch:
        patch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
        patch.setenv("BITWRIGHT_IMAGE_STORE", str(directory / "store"))
        try:
            yield ImageStore(directory / "store")
        finally:
            subprocess.run(
                [*podman_command(), "rmi", "--all", "--force"], capture_output=True, timeout=300
            )
            for mount in mounts_under(directory):
                subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory``, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # octal escapes (\\040)
        if Path(point).is_relative_to(directory):
            found.append(point)
    return sorted(found, key=len, reverse=True)
