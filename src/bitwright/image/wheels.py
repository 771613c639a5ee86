"""The image's Python packages: wheels resolved from the project's lock, installed by their bytes.

Resolving (a first build, or ``--update``) asks pip for the recipe's packages at the versions
the project's lock holds, for the image's interpreter and C library, wheels only; the image
lock records every wheel with its sha256. Every build then installs exactly those files,
taken from the cache or downloaded again by name and version and checked by sha256.

Installing is unpacking (:pep:`427`), done here rather than by pip so the result depends on
the wheels alone: pip would write the build machine's interpreter path into scripts and
compile bytecode with the build machine's interpreter. Packages land in the recipe's
``site_packages``, ``.data/data`` under ``/usr/local``; scripts and headers are left out
(stages run ``python -m`` or their own files). Their bytecode is then compiled by the image's
own interpreter (:func:`compile_bytecode`), so no stage compiles torch again at every start
on its read-only root.

The project's lock is, today, the distribution set of the environment bitwright runs in:
the exact pins of ``pyproject.toml`` as installed, and what they pulled in. This is the
same list a build records as its ``python-packages`` dependency, read in one place
(:func:`project_lock`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from bitwright.digest import sha256_file
from bitwright.errors import OperationalError, ToolError, UsageError, VerificationFailed
from bitwright.image.inputs import holds, keep_copy, refuse_other_bytes, require_delivered
from bitwright.image.recipe import ImageRecipe
from bitwright.pins.container import PythonWheel
from bitwright.pins.environment import installed_packages

__all__ = [
    "WheelCache",
    "check_drift",
    "compile_bytecode",
    "install_wheels",
    "normalize",
    "project_lock",
    "resolve_wheels",
    "wheel_name_version",
]

Notify = Callable[[str], None]

_WHEEL = re.compile(r"(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl")
_CHUNK = 1 << 20
_DATA_PREFIX = "/usr/local"


def normalize(name: str) -> str:
    """The :pep:`503` form of a project name (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_lock() -> dict[str, str]:
    """The project's locked versions: normalized name -> version (bitwright itself left out)."""
    lock = dict(line.split("==", 1) for line in installed_packages())
    lock.pop("bitwright", None)
    return lock


def wheel_name_version(file_name: str) -> tuple[str, str]:
    """The normalized project name and the version in a wheel's file name.

    Raises:
        UsageError: it is not a wheel file name.
    """
    match = _WHEEL.fullmatch(file_name)
    if match is None:
        raise UsageError(f"{file_name!r} is not a wheel file name", hint="fix the image lock")
    return normalize(match.group("name")), match.group("version")


def check_drift(
    recipe: ImageRecipe, wheels: Sequence[PythonWheel], lock: Mapping[str, str]
) -> list[str]:
    """Return how the image lock's wheels differ from the recipe and the project's lock.

    A package of the recipe that no wheel provides, or a wheel whose project the project's
    lock holds at another version, is drift: the image would not run what the project pins.
    """
    have = {normalize(w.name): w.version for w in wheels}
    drift = [
        f"{name}: the recipe asks for it, the image lock has no wheel of it"
        for name in (normalize(p) for p in recipe.python_packages)
        if name not in have
    ]
    drift += [
        f"{name}: the project locks {lock[name]}, the image lock has {version}"
        for name, version in sorted(have.items())
        if name in lock and lock[name] != version
    ]
    return drift


class WheelCache:
    """Wheels kept by their sha256 (``DIR/<sha256>/<file name>``), filled as builds need them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, wheel: PythonWheel) -> Path:
        """Where this wheel is (or would be) kept."""
        return self.directory / wheel.sha256 / wheel.file

    def add(self, source: Path) -> PythonWheel:
        """Keep a copy of the wheel ``source`` and return its lock entry."""
        name, version = wheel_name_version(source.name)
        wheel = PythonWheel(name, version, source.name, sha256_file(source))
        keep_copy(source, self.path(wheel))
        return wheel

    def fetch(
        self, recipe: ImageRecipe, wheels: Sequence[PythonWheel], scratch: Path, notify: Notify
    ) -> None:
        """Make sure every locked wheel is here, downloading the exact files missing.

        Raises:
            ToolError: pip could not download a wheel.
            VerificationFailed: an index served other bytes than the lock records.
        """
        missing = [w for w in wheels if not holds(self.path(w), w.sha256)]
        if not missing:
            return
        notify(f"downloading {len(missing)} wheel(s) with pip")
        target = scratch / "wheels"
        requirements = [f"{w.name}=={w.version}" for w in missing]
        _pip_download(recipe, requirements, target, ["--no-deps"])
        wanted = {w.file: w for w in missing}
        for path in sorted(target.glob("*.whl")):
            if path.name in wanted:
                got = self.add(path).sha256
                refuse_other_bytes(path.name, got, wanted[path.name].sha256, "the package index")
        require_delivered(
            [w.file for w in missing if not holds(self.path(w), w.sha256)],
            "pip",
            "check the package index (pip config list); the files must be the locked ones",
        )


def resolve_wheels(
    recipe: ImageRecipe, lock: Mapping[str, str], cache: WheelCache, scratch: Path, notify: Notify
) -> tuple[PythonWheel, ...]:
    """Resolve the recipe's packages at the project's locked versions into wheels; keep them.

    Raises:
        ToolError: pip found no wheel set (a package without a wheel for the image).
    """
    if not recipe.python_packages:
        return ()
    notify(f"resolving {len(recipe.python_packages)} Python package(s) from the project's lock")
    constraints = scratch / "constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(lock.items())))
    target = scratch / "resolved-wheels"
    _pip_download(recipe, list(recipe.python_packages), target, ["-c", str(constraints)])
    wheels = [cache.add(path) for path in sorted(target.glob("*.whl"))]
    shutil.rmtree(target)
    return tuple(sorted(wheels, key=lambda w: w.name))


def _pip_download(
    recipe: ImageRecipe, requirements: Sequence[str], target: Path, extra: Sequence[str]
) -> None:
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    argv += ["--python-version", recipe.python_version, "--implementation", "cp"]
    argv += ["--abi", recipe.python_tag, "--dest", str(target)]
    for platform in recipe.manylinux_platforms():
        argv += ["--platform", platform]
    argv += [*extra, *requirements]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        last = [line for line in done.stderr.splitlines() if line.startswith("ERROR")][:2]
        raise ToolError(
            f"pip could not download wheels for the image: {' / '.join(last) or 'no message'}",
            hint="every package needs a wheel for the image's Python and C library",
        )


def install_wheels(
    recipe: ImageRecipe, wheels: Sequence[PythonWheel], cache: WheelCache, root: Path
) -> None:
    """Unpack every wheel into the root file system ``root`` (see the module doc).

    Raises:
        VerificationFailed: a wheel holds a path outside its install directory.
        OperationalError: a wheel is missing or unreadable.
    """
    for wheel in wheels:
        install_wheel(cache.path(wheel), root, recipe.site_packages)


def install_wheel(path: Path, root: Path, site_packages: str) -> None:
    """Unpack the wheel at ``path`` into ``root``: files 0644 or 0755, directories 0755.

    Raises:
        VerificationFailed: a member's name is absolute, climbs with ``..``, or is a link.
        OperationalError: the wheel is missing or not a zip file.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OperationalError(
            f"wheel {path} is unreadable ({exc})", hint="fetch it again"
        ) from None
    with archive:
        dist_info = ""
        for info in archive.infolist():
            if info.is_dir():
                continue
            target = _destination(info.filename, site_packages, path)
            if target is None:
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise VerificationFailed(
                    f"wheel {path.name} holds a symbolic link {info.filename!r}",
                    hint="wheels hold regular files only; refusing it",
                )
            executable = bool((info.external_attr >> 16) & 0o111)
            _write_member(archive, info, root / target.lstrip("/"), 0o755 if executable else 0o644)
            parts = PurePosixPath(info.filename).parts
            if parts[0].endswith(".dist-info"):
                dist_info = parts[0]
        if dist_info:
            installer = root / site_packages.lstrip("/") / dist_info / "INSTALLER"
            installer.write_text("bitwright\n", encoding="utf-8")
            os.chmod(installer, 0o644)


def _destination(name: str, site_packages: str, wheel: Path) -> str | None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or not pure.parts:
        raise VerificationFailed(
            f"wheel {wheel.name} holds a path {name!r} outside its install directory",
            hint="refusing it; the wheel is malformed or hostile",
        )
    match = re.fullmatch(r"[^/]+\.data/([^/]+)/(.+)", name)
    if match is None:
        return f"{site_packages}/{name}"
    scheme, rest = match.groups()
    if scheme in ("purelib", "platlib"):
        return f"{site_packages}/{rest}"
    if scheme == "data":
        return f"{_DATA_PREFIX}/{rest}"
    return None  # scripts, headers


def _write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, mode: int) -> None:
    _make_dirs(target.parent)
    with archive.open(info) as source, target.open("wb") as sink:
        while chunk := source.read(_CHUNK):
            sink.write(chunk)
    os.chmod(target, mode)


def _make_dirs(directory: Path) -> None:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
        os.chmod(path, 0o755)  # whatever the umask: the tar records modes


def compile_bytecode(recipe: ImageRecipe, root: Path) -> None:
    """Compile the bytecode of the installed packages inside ``root``, the same on any machine.

    The image's own interpreter compiles (``chroot``), one file after another in sorted order,
    with hash randomization off, no ``site`` (a package's ``.pth`` file would import, and so
    compile, before compileall runs) and ``unchecked-hash`` invalidation (no source mtime in
    a ``.pyc``): the bytes then follow from the sources and the interpreter, both pinned. A
    source the interpreter cannot compile (a newer Python's syntax in a test file) gets no
    bytecode, the same everywhere.

    Raises:
        ToolError: the interpreter could not run in ``root``.
    """
    python = f"/usr/bin/python{recipe.python_version}"
    # -S: no site, so no .pth file of an installed package (setuptools' imports
    # _distutils_hack) runs first and leaves bytecode stamped with the install time, which
    # compileall would keep as up to date; -f rewrites any bytecode there is all the same.
    argv = [shutil.which("chroot") or "/usr/sbin/chroot", str(root), python, "-S", "-m"]
    argv += ["compileall", "-q", "-f", "-j", "1", "--invalidation-mode", "unchecked-hash"]
    argv.append(recipe.site_packages)
    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:  # 1: some file did not compile
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ToolError(
            f"the image's {python} could not compile the packages' bytecode: {last}",
            hint="the image needs its Python (the recipe's debian.include: python3)",
        )
