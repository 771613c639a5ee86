"""The image's Debian root file system: resolved once, then bootstrapped from locked ``.deb`` files.

Resolving (a first build, or ``--update``) runs ``mmdebstrap`` against the machine's own apt
sources for the recipe's suite and keeps every ``.deb`` it installed; the lock records each
as ``package=version`` with its sha256. Every build then bootstraps only from those files:
they are gathered from the cache (``apt-get download`` of the exact version fills it) and
checked by sha256, a flat apt repository is made of exactly them, and ``mmdebstrap`` installs
from it. Nothing else can reach the image, and an apt source that now serves other bytes for
a locked version is refused.

``mmdebstrap`` reads the sources afresh, ``apt-get download`` reads the machine's package
lists, which may be older (or leave out ``-updates`` and ``-security``); and a mirror drops a
version once a newer one replaces it. A locked version the lists do not hold is named, with
the lock, in one line that says how to go on (:func:`unserved`).

The root file system is then made the same on every machine: the apt sources line, the
host name and the resolver configuration that ``mmdebstrap`` takes from the host are
replaced, and ``SOURCE_DATE_EPOCH`` makes ``mmdebstrap`` remove its other traces.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bitwright.digest import sha256_file
from bitwright.errors import OperationalError, ToolError
from bitwright.image.inputs import holds, keep_copy, refuse_other_bytes, require_delivered
from bitwright.image.recipe import ImageRecipe
from bitwright.model.digests import Sha256
from bitwright.pins.container import DebianPackage

__all__ = [
    "DebCache",
    "apt_sources",
    "bootstrap_root",
    "resolve_packages",
    "unserved",
]

Notify = Callable[[str], None]

_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
_SOURCES_HINT = (
    "add a Debian source for the suite to /etc/apt/sources.list.d, or change the recipe's suite"
)
_NOT_SERVED_HINT = (
    "run `apt-get update` (this machine's package lists may be stale), or `bitwright image "
    "build --update` to re-lock to what the apt sources serve now (the image digest then changes)"
)
_FIXED_SOURCES = "# bitwright build image: its packages are those of containers/images.lock\n"
_RELEASE_DATE = "Thu, 01 Jan 1970 00:00:00 UTC"


def apt_sources(suite: str, roots: Sequence[Path] = _SOURCES) -> list[str]:
    """Return the machine's apt sources for ``suite`` (and its updates and security) as lines.

    Both the one-line format and deb822 ``.sources`` files are read; disabled stanzas and
    other suites are left out.

    Raises:
        OperationalError: no source serves the suite.
    """
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    lines: list[str] = []
    for path in _source_files(roots):
        text = path.read_text(encoding="utf-8", errors="replace")
        entries = _deb822(text) if path.suffix == ".sources" else _one_line(text)
        for options, uri, dist, components in entries:
            if dist in wanted:
                opts = f"[{' '.join(options)}] " if options else ""
                lines.append(f"deb {opts}{uri} {dist} {' '.join(components)}".rstrip())
    if not lines:
        raise OperationalError(f"no apt source of this machine serves {suite}", hint=_SOURCES_HINT)
    return list(dict.fromkeys(lines))


def _source_files(roots: Sequence[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.iterdir()):
                if path.suffix in (".list", ".sources") and path.is_file():
                    yield path


Entry = tuple[list[str], str, str, list[str]]


def _one_line(text: str) -> Iterator[Entry]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        match = re.fullmatch(r"deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)", line)
        if match:
            options = match.group(1).split() if match.group(1) else []
            yield options, match.group(2), match.group(3), match.group(4).split()


def _deb822(text: str) -> Iterator[Entry]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        options = [f"signed-by={fields['signed-by']}"] if fields.get("signed-by") else []
        for uri in fields.get("uris", "").split():
            for dist in fields.get("suites", "").split():
                yield options, uri, dist, fields.get("components", "").split()


class DebCache:
    """``.deb`` files kept by their sha256 (``DIR/<sha256>.deb``), filled as builds need them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, sha256: str) -> Path:
        """Where the file with this sha256 is (or would be) kept."""
        return self.directory / f"{sha256}.deb"

    def add(self, source: Path) -> Sha256:
        """Keep a copy of ``source`` under its sha256 and return it."""
        digest = sha256_file(source)
        keep_copy(source, self.path(digest))
        return digest

    def fetch(
        self, packages: Sequence[DebianPackage], scratch: Path, notify: Notify, *, lock_file: Path
    ) -> None:
        """Make sure every locked package is here, downloading the exact versions missing.

        Args:
            packages: the locked packages.
            scratch: a new directory for the downloads.
            notify: progress lines.
            lock_file: the image lock that locks them (named when a version is not served).

        Raises:
            OperationalError: the machine's apt lists do not hold a locked version.
            ToolError: ``apt-get download`` failed otherwise (a mirror out of reach).
            VerificationFailed: a source served other bytes than the lock records.
        """
        missing = [p for p in packages if not holds(self.path(p.sha256), p.sha256)]
        if not missing:
            return
        notify(f"downloading {len(missing)} Debian package(s) with apt-get")
        scratch.mkdir(parents=True, exist_ok=True)
        specs = [f"{p.package}:{p.architecture}={p.version}" for p in missing]
        try:
            _run(["apt-get", "download", "-q", *specs], cwd=scratch, what="apt-get download")
        except ToolError:
            absent = _unserved_or_none(missing)
            if not absent:
                raise
            raise OperationalError(
                f"{lock_file}: the apt sources here do not serve the locked "
                f"{_named([p.spec for p in absent])}",
                hint=_NOT_SERVED_HINT,
            ) from None
        by_name = {(p.package, p.version, p.architecture): p for p in missing}
        for deb in sorted(scratch.glob("*.deb")):
            wanted = by_name.get(_control_key(deb))
            if wanted is not None:
                refuse_other_bytes(deb.name, self.add(deb), wanted.sha256, "the apt sources")
        require_delivered(
            [p.spec for p in missing if not holds(self.path(p.sha256), p.sha256)],
            "apt-get",
            "the apt sources no longer carry these versions; use a snapshot mirror",
        )


def unserved(packages: Sequence[DebianPackage]) -> list[DebianPackage]:
    """The packages whose exact version no index of the machine's apt lists holds.

    Raises:
        ToolError: ``apt-cache`` failed.
    """
    names = sorted({p.package for p in packages})
    listing = _run(["apt-cache", "madison", *names], cwd=Path("/"), what="apt-cache madison")
    served: set[tuple[str, str]] = set()
    for line in listing.splitlines():  # "name | version | URI suite/component arch Packages"
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2].endswith(" Packages"):  # not a source package
            served.add((fields[0], fields[1]))
    return [p for p in packages if (p.package, p.version) not in served]


def _unserved_or_none(packages: Sequence[DebianPackage]) -> list[DebianPackage]:
    """:func:`unserved`, or nothing when ``apt-cache`` cannot say (the first failure stands)."""
    try:
        return unserved(packages)
    except ToolError:
        return []


def _named(specs: Sequence[str], most: int = 5) -> str:
    more = f" and {len(specs) - most} more" if len(specs) > most else ""
    return ", ".join(specs[:most]) + more


def resolve_packages(
    recipe: ImageRecipe, cache: DebCache, scratch: Path, notify: Notify
) -> tuple[DebianPackage, ...]:
    """Find the package set of the recipe from the machine's apt sources; keep every ``.deb``.

    Raises:
        OperationalError: no apt source serves the suite.
        ToolError: ``mmdebstrap`` failed.
    """
    sources = apt_sources(recipe.suite)
    downloads = scratch / "resolved"
    downloads.mkdir(parents=True)
    notify(f"resolving the {recipe.variant} set of {recipe.suite} from the apt sources")
    argv = [
        *_mmdebstrap(recipe),
        "--skip=download/empty,essential/unlink",
        f'--customize-hook=cp "$1"/var/cache/apt/archives/*.deb {shlex.quote(str(downloads))}/',
        "--format=null",
        recipe.suite,
        "/dev/null",
        *sources,
    ]
    _run(argv, cwd=scratch, what="mmdebstrap", epoch=recipe.source_date_epoch)
    found: dict[tuple[str, str, str], DebianPackage] = {}
    for deb in sorted(downloads.glob("*.deb")):
        package, version, architecture = _control_key(deb)
        found[(package, version, architecture)] = DebianPackage(
            package, version, architecture, cache.add(deb)
        )
    shutil.rmtree(downloads)
    return tuple(found[k] for k in sorted(found))


def bootstrap_root(
    recipe: ImageRecipe,
    packages: Sequence[DebianPackage],
    cache: DebCache,
    scratch: Path,
    root: Path,
) -> None:
    """Install exactly ``packages`` (from the cache) into the new directory ``root``.

    Raises:
        ToolError: ``mmdebstrap`` failed (for instance, the locked set no longer satisfies
            the recipe's ``include``).
    """
    repository = scratch / "repository"
    _flat_repository(packages, cache, repository, recipe.suite)
    argv = [
        *_mmdebstrap(recipe),
        "--skip=output/dev,output/mknod",
        f'--customize-hook=printf %s {shlex.quote(_FIXED_SOURCES)} > "$1"/etc/apt/sources.list',
        '--customize-hook=printf "bitwright\\n" > "$1"/etc/hostname',
        '--customize-hook=rm -f "$1"/etc/resolv.conf',
        "--format=directory",
        recipe.suite,
        str(root),
        f"deb [trusted=yes] copy://{repository} ./",
    ]
    _run(argv, cwd=scratch, what="mmdebstrap", epoch=recipe.source_date_epoch)


def _mmdebstrap(recipe: ImageRecipe) -> list[str]:
    # not --quiet: it silences apt too, and apt's "E:" lines say why a run failed (_run)
    argv = ["mmdebstrap", "--mode=root", f"--variant={recipe.variant}"]
    if recipe.include:
        argv.append(f"--include={','.join(recipe.include)}")
    return argv


def _flat_repository(
    packages: Sequence[DebianPackage], cache: DebCache, directory: Path, suite: str
) -> None:
    """A trusted flat apt repository (``Packages`` and ``Release``) of exactly ``packages``."""
    directory.mkdir(parents=True)
    stanzas: list[str] = []
    for package in packages:
        name = f"{package.package}_{package.version.replace(':', '%3a')}_{package.architecture}.deb"
        target = directory / name
        source = cache.path(package.sha256)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        control = _dpkg_deb(["--field", str(target)]).rstrip("\n")
        stanzas.append(
            f"{control}\nFilename: ./{name}\nSize: {target.stat().st_size}\n"
            f"SHA256: {package.sha256}\n"
        )
    index = "\n".join(stanzas).encode()
    (directory / "Packages").write_bytes(index)
    architectures = " ".join(sorted({p.architecture for p in packages} - {"all"}))
    (directory / "Release").write_text(
        f"Origin: bitwright\nLabel: bitwright\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: {_RELEASE_DATE}\nArchitectures: {architectures}\nComponents: main\n"
        f"SHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} Packages\n",
        encoding="utf-8",
    )


def _control_key(deb: Path) -> tuple[str, str, str]:
    fields = _dpkg_deb(["--field", str(deb), "Package", "Version", "Architecture"])
    values = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    return values["Package"], values["Version"], values["Architecture"]


def _dpkg_deb(args: Sequence[str]) -> str:
    return _run(["dpkg-deb", *args], cwd=Path("/"), what="dpkg-deb")


def _run(argv: Sequence[str], *, cwd: Path, what: str, epoch: int | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(cwd) if cwd != Path("/") else os.environ.get("TMPDIR", "/tmp"),
    }
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        done = subprocess.run(
            list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ToolError(
            f"{argv[0]} is not installed",
            hint="install it: `make podman` (as root, with apt) or apt-get install mmdebstrap",
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        # apt's first errors name the cause ("Failed to fetch ..."); the last lines the wrapper
        last = [line for line in lines if line.startswith("E: ")][:2] or lines[-3:]
        raise ToolError(
            f"{what} failed (exit {done.returncode}): {' / '.join(last) or 'no message'}",
            hint="read the message; the image needs root and the machine's apt sources",
        )
    return done.stdout
