"""Pin the build image from ``containers/images.lock`` and refuse a lock its Containerfile outgrew.

The lock is TOML, one table per image role (``[images.build]`` is the stage image)::

    schema = 1

    [images.build]
    name = "ghcr.io/bitwright/builder:py3.11-bookworm"   # where it is pushed
    digest = "sha256:<64 hex>"                         # manifest digest, what podman runs
    containerfile = "containers/Containerfile"         # repository-relative
    containerfile_sha256 = "<64 hex>"                  # of that file when the image was built
    base = "docker.io/library/python:3.11-slim-bookworm@sha256:<64 hex>"  # FROM, by digest
    created = "2025-01-01T00:00:00Z"                   # SOURCE_DATE_EPOCH of the image

``containers/relock.py`` writes it after a build (see ``containers/README.md``). A digest of
all zeros (:data:`UNBUILT_DIGEST`) says honestly that the image was never built from this
Containerfile: it can be recorded by a host build, never enforced.

Containers are optional: a project without the lock file has no build image. Its pin is
:data:`NO_IMAGE` with the all-zero digest and Containerfile digest, never enforced; the
stages run on the host, which the pin's ``how`` says.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from bitwright.errors import OperationalError
from bitwright.model.digests import Sha256, is_sha256
from bitwright.model.pins import ContainerPin

__all__ = ["LOCK_PATH", "NO_IMAGE", "UNBUILT_DIGEST", "pin_container", "read_lock_entry"]

LOCK_PATH = "containers/images.lock"
UNBUILT_DIGEST = "sha256:" + "0" * 64
"""The lock's digest of an image that was not built yet (no container engine ran)."""

NO_IMAGE = "none"
"""The image name pinned for a project without an image lock: its stages run on the host."""

_SCHEMA = 1
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_RELOCK = "rebuild the image and relock it: see containers/README.md"
_FIELDS = ("name", "digest", "containerfile", "containerfile_sha256", "base", "created")


def _bad_lock(path: Path, why: str) -> OperationalError:
    return OperationalError(f"{path}: {why}", hint=_RELOCK)


def read_lock_entry(repo: Path, role: str = "build") -> dict[str, str]:
    """Return the checked ``[images.ROLE]`` table of the repository's image lock.

    Raises:
        OperationalError: the lock is missing, unreadable, or its entry is incomplete.
    """
    path = repo / LOCK_PATH
    try:
        lock: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OperationalError(
            f"image lock {path} is missing",
            hint="build the image and lock it with containers/relock.py: see containers/README.md",
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _bad_lock(path, f"unreadable image lock ({exc})") from None
    if lock.get("schema") != _SCHEMA:
        raise _bad_lock(path, f"unsupported schema {lock.get('schema')!r} (expected {_SCHEMA})")
    entry = lock.get("images", {}).get(role)
    if not isinstance(entry, dict):
        raise _bad_lock(path, f"no [images.{role}] entry")
    for field in _FIELDS:
        if not isinstance(entry.get(field), str) or not entry[field]:
            raise _bad_lock(path, f"images.{role}.{field} is missing or not a string")
    if not _DIGEST_RE.fullmatch(entry["digest"]):
        raise _bad_lock(path, f"images.{role}.digest is not a sha256:<64 hex> manifest digest")
    if not is_sha256(entry["containerfile_sha256"]):
        raise _bad_lock(path, f"images.{role}.containerfile_sha256 is not a sha256 hex digest")
    if "@sha256:" not in entry["base"]:
        raise _bad_lock(path, f"images.{role}.base is not pinned by digest (name@sha256:...)")
    relative = PurePosixPath(entry["containerfile"])
    if relative.is_absolute() or ".." in relative.parts:
        raise _bad_lock(path, f"images.{role}.containerfile must be a path inside the repository")
    return {field: entry[field] for field in _FIELDS}


def pin_container(repo: Path, *, enforced: bool, how: str, role: str = "build") -> ContainerPin:
    """Pin the build image locked in ``containers/images.lock``.

    Args:
        repo: the repository root.
        enforced: whether the stages really run inside this image by digest.
        how: how they run (``"host"``, ``"podman"``...), recorded as the honest answer.
        role: which ``[images.ROLE]`` entry of the lock to pin.

    Returns:
        The pin; :data:`NO_IMAGE` when the project has no lock (containers are optional).

    Raises:
        OperationalError: the lock is malformed (or missing when ``enforced``); the
            Containerfile is missing,
            differs from the one the image was built from, or does not start ``FROM`` the
            locked base; or ``enforced`` is claimed for an image never built.
    """
    lock_path = repo / LOCK_PATH
    if not lock_path.exists() and not lock_path.is_symlink():
        if enforced:
            raise OperationalError(
                f"no image lock {lock_path}: there is no image to run stages in",
                hint="build the image and lock it: see containers/README.md",
            )
        return ContainerPin(
            image=NO_IMAGE,
            digest=UNBUILT_DIGEST,
            containerfile_sha256=Sha256("0" * 64),
            enforced=False,
            how=how,
        )
    entry = read_lock_entry(repo, role)
    containerfile = repo / entry["containerfile"]
    try:
        data = containerfile.read_bytes()
    except OSError as exc:
        raise OperationalError(
            f"Containerfile {containerfile} named by {lock_path} is unreadable "
            f"({exc.strerror or exc})",
            hint=_RELOCK,
        ) from None
    actual = Sha256(hashlib.sha256(data).hexdigest())
    if actual != entry["containerfile_sha256"]:
        raise OperationalError(
            f"{containerfile} changed since {lock_path} was written "
            f"(sha256 {actual[:12]}..., locked {entry['containerfile_sha256'][:12]}...)",
            hint=_RELOCK,
        )
    if not re.search(
        rf"^FROM\s+{re.escape(entry['base'])}(\s|$)", data.decode(errors="replace"), re.MULTILINE
    ):
        raise OperationalError(
            f"{containerfile} is not built FROM the locked base {entry['base']}", hint=_RELOCK
        )
    if enforced and entry["digest"] == UNBUILT_DIGEST:
        raise OperationalError(
            f"{lock_path}: image {entry['name']} was never built, it cannot be enforced",
            hint=f"run stages on the host, or {_RELOCK}",
        )
    return ContainerPin(
        image=entry["name"],
        digest=entry["digest"],
        containerfile_sha256=actual,
        enforced=enforced,
        how=how,
    )
