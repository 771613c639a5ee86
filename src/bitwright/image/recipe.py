"""The image recipe ``containers/image.toml``: what the build image is made of.

A recipe names the packages, never their versions: those come from the machine's apt sources
and the project's Python lock the first time, and from ``containers/images.lock`` every time
after. Its sha256 is recorded in the lock, so an edited recipe is refused until the image is
rebuilt and relocked (``bitwright image build --update``)::

    schema = 1

    [image]
    name = "localhost/bitwright-build:py3.11-bookworm"
    source_date_epoch = 1735689600         # every mtime in the image, its creation time
    env = ["LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"]
    workdir = "/"

    [debian]
    suite = "bookworm"                     # from the machine's apt sources for this suite
    variant = "minbase"                    # mmdebstrap's package set
    include = ["python3", "python-is-python3"]

    [python]
    packages = ["torch", "numpy"]          # versions from the project's lock, with their deps
    version = "3.11"                       # the image's interpreter
    glibc = "2.36"                         # the image's C library: the newest manylinux tag
    site_packages = "/usr/local/lib/python3.11/dist-packages"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bitwright.errors import UsageError
from bitwright.fileio import read_regular

__all__ = ["RECIPE_PATH", "ImageRecipe", "read_recipe"]

RECIPE_PATH = "containers/image.toml"
"""Where a repository keeps the recipe of its build image."""

_SCHEMA = 1
_MAX_RECIPE_BYTES = 1 << 20
_VARIANTS = ("essential", "required", "minbase", "apt", "buildd", "important", "standard")
_NAME = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]*")
_PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=[^\n]*")


@dataclass(frozen=True)
class ImageRecipe:
    """A parsed, checked recipe (see the module doc for what each field means)."""

    path: str
    name: str
    source_date_epoch: int
    env: tuple[str, ...]
    workdir: str
    suite: str
    variant: str
    include: tuple[str, ...]
    python_packages: tuple[str, ...]
    python_version: str
    glibc: str
    site_packages: str

    @property
    def python_tag(self) -> str:
        """The CPython tag of the image's interpreter (``cp311``)."""
        return "cp" + self.python_version.replace(".", "")

    def manylinux_platforms(self, machine: str = "x86_64") -> tuple[str, ...]:
        """Every manylinux platform tag the image's C library runs, newest first."""
        major, minor = (int(x) for x in self.glibc.split("."))
        tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
        legacy = (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5))
        tags += [f"{name}_{machine}" for name, needs in legacy if minor >= needs]
        return tuple(tags)


def _usage(path: Path, why: str) -> UsageError:
    return UsageError(f"{path}: {why}", hint="fix the image recipe (see containers/README.md)")


def read_recipe(repo: Path, relative: str = RECIPE_PATH) -> ImageRecipe:
    """Read and check the recipe at ``repo/relative``.

    Raises:
        OperationalError: the recipe is missing or not a regular file.
        UsageError: it is not a valid recipe.
    """
    path = repo / relative
    try:
        doc = tomllib.loads(read_regular(path, limit=_MAX_RECIPE_BYTES, inside=repo).decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _usage(path, f"not TOML ({exc})") from None
    except RecursionError:
        raise _usage(path, "not TOML (nested too deeply)") from None
    if doc.get("schema") != _SCHEMA:
        raise _usage(path, f"unsupported schema {doc.get('schema')!r} (expected {_SCHEMA})")
    image, debian, python = (_table(doc, key, path) for key in ("image", "debian", "python"))
    recipe = ImageRecipe(
        path=relative,
        name=_text(image, "image.name", path, _NAME),
        source_date_epoch=_epoch(image, path),
        env=tuple(_texts(image, "image.env", path, _ENV, empty=True)),
        workdir=_absolute(_text(image, "image.workdir", path), "image.workdir", path),
        suite=_text(debian, "debian.suite", path, re.compile(r"[a-z][a-z0-9-]*")),
        variant=_text(debian, "debian.variant", path, re.compile("|".join(_VARIANTS))),
        include=tuple(_texts(debian, "debian.include", path, _PACKAGE, empty=True)),
        python_packages=tuple(_texts(python, "python.packages", path, _PROJECT, empty=True)),
        python_version=_text(python, "python.version", path, re.compile(r"3\.\d{1,2}")),
        glibc=_text(python, "python.glibc", path, re.compile(r"2\.\d{1,2}")),
        site_packages=_absolute(
            _text(python, "python.site_packages", path), "python.site_packages", path
        ),
    )
    if not recipe.name.startswith("localhost/") and "/" not in recipe.name:
        raise _usage(path, "image.name needs a registry or localhost/ prefix")
    return recipe


def _table(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise _usage(path, f"[{key}] is missing")
    return value


def _text(
    table: dict[str, Any], key: str, path: Path, pattern: re.Pattern[str] | None = None
) -> str:
    value = table.get(key.split(".", 1)[1])
    if not isinstance(value, str) or not value:
        raise _usage(path, f"{key} is missing or not a string")
    if pattern is not None and not pattern.fullmatch(value):
        raise _usage(path, f"{key} = {value!r} is not allowed")
    return value


def _texts(
    table: dict[str, Any], key: str, path: Path, pattern: re.Pattern[str], *, empty: bool
) -> list[str]:
    values = table.get(key.split(".", 1)[1], [] if empty else None)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _usage(path, f"{key} is not a list of strings")
    bad = [v for v in values if not pattern.fullmatch(v)]
    if bad:
        raise _usage(path, f"{key} holds {bad[0]!r}, which is not allowed")
    if len(set(values)) != len(values):
        raise _usage(path, f"{key} names something twice")
    return list(values)


def _epoch(table: dict[str, Any], path: Path) -> int:
    value = table.get("source_date_epoch")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**33:
        raise _usage(path, "image.source_date_epoch is not a positive integer of seconds")
    return value


def _absolute(value: str, key: str, path: Path) -> str:
    pure = PurePosixPath(value)
    if not pure.is_absolute() or ".." in pure.parts:
        raise _usage(path, f"{key} must be an absolute path without '..'")
    return value
