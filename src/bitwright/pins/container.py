"""The image lock ``containers/images.lock``: the build image's digest and every input it came from.

``bitwright image build`` writes it; a container build pins the image from it. TOML, one
table per image role (``[images.build]`` is the image stages run in)::

    schema = 2

    [images.build]
    name = "localhost/bitwright-build:py3.11-bookworm"
    digest = "sha256:<64 hex>"            # manifest digest: what podman runs, the pin
    recipe = "containers/image.toml"      # what the image is made of (repository-relative)
    recipe_sha256 = "<64 hex>"            # of that recipe when the image was built
    archive_sha256 = "<64 hex>"           # the OCI archive's bytes
    archive_md5 = "<32 hex>"              # the archive's address in the DVC remote
    archive_size = 123
    debian = [                            # every Debian package in the image
      { package = "apt", version = "2.6.1", architecture = "amd64", sha256 = "<64 hex>" },
    ]
    python = [                            # every wheel installed in the image
      { name = "torch", version = "2.13.0+cpu", file = "torch-...whl", sha256 = "<64 hex>" },
    ]

There is no placeholder: a lock without a digest, or with a digest of zeros, is refused
wherever an image is asked for, and so is a lock whose recipe changed since it was written.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bitwright.errors import OperationalError
from bitwright.fileio import read_regular, write_text_atomic
from bitwright.model.digests import Sha256
from bitwright.model.pins import ContainerPin
from bitwright.pins.dvcconfig import default_remote_url

__all__ = [
    "LOCK_PATH",
    "DebianPackage",
    "ImageLock",
    "PythonWheel",
    "pin_container",
    "read_image_lock",
    "recipe_sha256",
    "render_image_lock",
    "write_image_lock",
]

LOCK_PATH = "containers/images.lock"
"""Where a repository keeps its image lock."""

_SCHEMA = 2
_MAX_LOCK_BYTES = 4 << 20
_MAX_ENTRIES = 4096
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MD5 = re.compile(r"[0-9a-f]{32}")
_ZEROS = "sha256:" + "0" * 64
_BUILD_IT = "build the image and lock it: `bitwright image build` (see containers/README.md)"
_HEADER = """\
# The build image, pinned: written by `bitwright image build`, never by hand.
# `digest` is the OCI manifest digest podman runs the stages by; the Debian packages and Python
# wheels below are every input the image was made of, each with its sha256, so the next build
# of the image takes exactly these or refuses.
"""


@dataclass(frozen=True)
class DebianPackage:
    """One Debian package of the image, as ``dpkg`` names it, and its ``.deb``'s sha256."""

    package: str
    version: str
    architecture: str
    sha256: Sha256

    @property
    def spec(self) -> str:
        """``package=version``, what ``apt-get download`` takes."""
        return f"{self.package}={self.version}"


@dataclass(frozen=True)
class PythonWheel:
    """One wheel installed into the image: its project, version, file name and sha256."""

    name: str
    version: str
    file: str
    sha256: Sha256


@dataclass(frozen=True)
class ImageLock:
    """One ``[images.ROLE]`` table of the lock (see the module doc)."""

    name: str
    digest: str
    recipe: str
    recipe_sha256: Sha256
    archive_sha256: Sha256
    archive_md5: str
    archive_size: int
    debian: tuple[DebianPackage, ...]
    python: tuple[PythonWheel, ...]


def _bad(path: Path, why: str) -> OperationalError:
    return OperationalError(f"{path}: {why}", hint=_BUILD_IT)


def read_image_lock(repo: Path, role: str = "build") -> ImageLock:
    """Return the checked ``[images.ROLE]`` entry of the repository's image lock.

    Raises:
        OperationalError: the lock is missing, unreadable, malformed, has no or an all-zero
            digest, or its recipe is not a path inside the repository.
    """
    path = repo / LOCK_PATH
    if not path.exists() and not path.is_symlink():
        raise OperationalError(f"image lock {path} is missing", hint=_BUILD_IT)
    try:
        lock: dict[str, Any] = tomllib.loads(
            read_regular(path, limit=_MAX_LOCK_BYTES, inside=repo).decode("utf-8")
        )
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _bad(path, f"unreadable image lock ({exc})") from None
    except RecursionError:
        raise _bad(path, "unreadable image lock (nested too deeply)") from None
    if lock.get("schema") != _SCHEMA:
        raise _bad(path, f"unsupported schema {lock.get('schema')!r} (expected {_SCHEMA})")
    images = lock.get("images")
    entry = images.get(role) if isinstance(images, dict) else None
    if not isinstance(entry, dict):
        raise _bad(path, f"no [images.{role}] entry")
    field = _Fields(path, f"images.{role}", entry)
    digest = field.text("digest", _DIGEST, "a sha256:<64 hex> manifest digest")
    if digest == _ZEROS:
        raise _bad(path, f"images.{role}.digest is all zeros: that is no image")
    recipe = field.text("recipe")
    relative = PurePosixPath(recipe)
    if relative.is_absolute() or ".." in relative.parts:
        raise _bad(path, f"images.{role}.recipe must be a path inside the repository")
    return ImageLock(
        name=field.text("name"),
        digest=digest,
        recipe=recipe,
        recipe_sha256=Sha256(field.text("recipe_sha256", _SHA256, "a sha256 hex digest")),
        archive_sha256=Sha256(field.text("archive_sha256", _SHA256, "a sha256 hex digest")),
        archive_md5=field.text("archive_md5", _MD5, "an md5 hex digest"),
        archive_size=field.count("archive_size"),
        debian=tuple(field.items("debian", _debian_package, least=1)),
        python=tuple(field.items("python", _python_wheel, least=0)),
    )


class _Fields:
    """Typed access to one table of the lock; every problem names the field."""

    def __init__(self, path: Path, where: str, table: dict[str, Any]) -> None:
        self.path, self.where, self.table = path, where, table

    def text(self, key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        value = self.table.get(key)
        if not isinstance(value, str) or not value:
            raise _bad(self.path, f"{self.where}.{key} is missing or not a string")
        if pattern is not None and not pattern.fullmatch(value):
            raise _bad(self.path, f"{self.where}.{key} is not {what}")
        return value

    def count(self, key: str) -> int:
        value = self.table.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _bad(self.path, f"{self.where}.{key} is not a positive integer")
        return value

    def items(self, key: str, make: Callable[[_Fields], Any], *, least: int) -> list[Any]:
        values = self.table.get(key)
        if not isinstance(values, list) or not least <= len(values) <= _MAX_ENTRIES:
            raise _bad(
                self.path, f"{self.where}.{key} is not a list of {least} to {_MAX_ENTRIES} entries"
            )
        found = []
        for index, value in enumerate(values):
            if not isinstance(value, dict):
                raise _bad(self.path, f"{self.where}.{key}[{index}] is not a table")
            found.append(make(_Fields(self.path, f"{self.where}.{key}[{index}]", value)))
        return found


def _debian_package(field: _Fields) -> DebianPackage:
    return DebianPackage(
        package=field.text("package", re.compile(r"[a-z0-9][a-z0-9+.-]*"), "a package name"),
        version=field.text("version", re.compile(r"[A-Za-z0-9.+~:-]+"), "a Debian version"),
        architecture=field.text("architecture", re.compile(r"[a-z0-9-]+"), "an architecture"),
        sha256=Sha256(field.text("sha256", _SHA256, "a sha256 hex digest")),
    )


def _python_wheel(field: _Fields) -> PythonWheel:
    return PythonWheel(
        name=field.text("name", re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*"), "a project name"),
        version=field.text("version", re.compile(r"[A-Za-z0-9.+!_-]+"), "a version"),
        file=field.text("file", re.compile(r"[A-Za-z0-9._+!-]+\.whl"), "a wheel file name"),
        sha256=Sha256(field.text("sha256", _SHA256, "a sha256 hex digest")),
    )


def render_image_lock(images: dict[str, ImageLock]) -> str:
    """Return the text of a lock holding ``images`` (role -> entry), stable byte for byte."""
    lines = [_HEADER, f"schema = {_SCHEMA}\n"]
    for role in sorted(images):
        entry = images[role]
        lines.append(f"\n[images.{role}]\n")
        for key in ("name", "digest", "recipe", "recipe_sha256", "archive_sha256", "archive_md5"):
            lines.append(f"{key} = {_string(getattr(entry, key))}\n")
        lines.append(f"archive_size = {entry.archive_size}\n")
        lines.append(
            _array("debian", entry.debian, ("package", "version", "architecture", "sha256"))
        )
        lines.append(_array("python", entry.python, ("name", "version", "file", "sha256")))
    return "".join(lines)


def _string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 0x20 for c in escaped):
        raise ValueError(f"{value!r} cannot be a lock value")
    return f'"{escaped}"'


def _array(key: str, items: Sequence[Any], fields: Sequence[str]) -> str:
    rows = [
        "  { " + ", ".join(f"{f} = {_string(str(getattr(item, f)))}" for f in fields) + " },\n"
        for item in items
    ]
    return f"{key} = [\n{''.join(rows)}]\n"


def write_image_lock(repo: Path, entry: ImageLock, role: str = "build") -> Path:
    """Write ``entry`` as ``[images.ROLE]`` of the repository's lock, keeping other roles."""
    path = repo / LOCK_PATH
    images: dict[str, ImageLock] = {}
    if path.exists():
        lock = tomllib.loads(read_regular(path, limit=_MAX_LOCK_BYTES).decode("utf-8"))
        others = [other for other in lock.get("images", {}) if other != role]
        images = {other: read_image_lock(repo, other) for other in others}
    images[role] = entry
    write_text_atomic(path, render_image_lock(images))
    return path


def recipe_sha256(repo: Path, recipe: str) -> Sha256:
    """Return the sha256 of the recipe at repository path ``recipe``, as it is now.

    Raises:
        OperationalError: the recipe is missing or not a regular file.
    """
    return Sha256(hashlib.sha256(read_regular(repo / recipe, inside=repo)).hexdigest())


def pin_container(repo: Path, role: str = "build") -> ContainerPin:
    """Pin the image the stages of a container build are about to run in.

    The pin says ``enforced: true, how: podman``: a build asks for it only when every stage
    runs in the image by digest. The archive's place is the repository's DVC remote.

    Raises:
        OperationalError: the lock is missing or malformed, its digest is missing or zeros,
            or the recipe changed since the image was locked.
    """
    lock = read_image_lock(repo, role)
    actual = recipe_sha256(repo, lock.recipe)
    if actual != lock.recipe_sha256:
        raise OperationalError(
            f"{repo / lock.recipe} changed since {repo / LOCK_PATH} was written "
            f"(sha256 {actual[:12]}..., locked {lock.recipe_sha256[:12]}...)",
            hint="rebuild and relock the image: `bitwright image build --update`",
        )
    return ContainerPin(
        image=lock.name,
        digest=lock.digest,
        archive_sha256=lock.archive_sha256,
        archive_md5=lock.archive_md5,
        archive_size=lock.archive_size,
        remote_url=default_remote_url(repo),
        enforced=True,
        how="podman",
    )
