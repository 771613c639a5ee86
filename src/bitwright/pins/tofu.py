"""TOFU pins of third-party models and datasets: what was fetched the first time, file by file.

A model or dataset fetched from outside the repository (a local path, an ``http(s)`` URL,
``hf://ORG/NAME@REVISION``) is pinned on first use: :func:`add_pin` fetches it into a
repository path and records every file's sha256 and size, the revision it resolved to and
when it was first seen, in the committed pins file :data:`PINS_FILE`::

    {
      "version": 1,
      "pins": {
        "third_party/bert": {
          "source": "hf://google/bert-tiny@main",
          "kind": "model",
          "revision": "6f75de8b60a9f8a2fdf7b69cbd86d9e64bcb3837",
          "first_seen": "2026-01-01T00:00:00Z",
          "sha256": "<tree digest of the files>",
          "files": {"config.json": {"sha256": "...", "size": 570}, ...}
        }
      }
    }

The key is where the files live in the repository (a directory, or a single file); stages
declare it as a dep. :func:`check_pins` fetches every source again and re-reads every local
copy and names each file that changed, appeared or vanished. ``bitwright build`` refuses
pinned inputs whose local files changed (:func:`check_local`), records the pins its stages
read (:func:`pins_read_by`), and names stages that read third-party files no pin covers
(:func:`unpinned_inputs`). Fetching lives in :mod:`.sources`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bitwright.digest import DigestCache, sha256_files, tree_sha256, walk_tree
from bitwright.errors import CheckFailed, OperationalError, UsageError
from bitwright.fileio import read_json_object, write_text_atomic
from bitwright.model import Pipeline, Sha256, is_sha256
from bitwright.pins._gitcmd import git_bytes
from bitwright.pins.sources import Fetched, Source, fetch, parse_source

__all__ = [
    "PINS_FILE",
    "FilePin",
    "PinChange",
    "PinsFile",
    "ThirdPartyPin",
    "add_pin",
    "check_local",
    "check_pins",
    "digest_local",
    "pins_read_by",
    "read_pins",
    "read_pins_file",
    "restore_pinned",
    "unpinned_inputs",
    "write_pins",
]

PINS_FILE = "thirdparty.pins.json"
"""The committed pins file, at the repository root."""

_VERSION = 1
_PIN_FIELDS = {"source", "kind", "revision", "first_seen", "sha256", "files"}
_KINDS = ("model", "dataset")
_FIX = f"fix {PINS_FILE} (it is written by `bitwright pin add`) or pin the source again"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass(frozen=True)
class FilePin:
    """One pinned file: its sha256 and size."""

    sha256: Sha256
    size: int


@dataclass(frozen=True)
class ThirdPartyPin:
    """A third-party model or dataset as it was first seen.

    Attributes:
        path: where its files live, relative to the repository root (POSIX).
        source: what was fetched (``hf://...``, ``https://...``, a local path or file URI).
        kind: ``model`` or ``dataset``.
        revision: what the source resolved to (a commit, an ETag), or ``""``.
        first_seen: RFC 3339 UTC time of the first fetch.
        files: path relative to :attr:`path` (``""`` for a single file) -> its pin.
    """

    path: str
    source: str
    kind: str
    revision: str
    first_seen: str
    files: Mapping[str, FilePin]

    @property
    def sha256(self) -> Sha256:
        """The file's sha256 for a single file; the tree digest of the files otherwise."""
        if set(self.files) == {""}:
            return self.files[""].sha256
        return tree_sha256({name: f.sha256 for name, f in self.files.items()})

    @property
    def uri(self) -> str:
        """The source as a URI (a local path becomes a ``file://`` URI)."""
        return parse_source(self.source).uri

    def to_json(self) -> dict[str, Any]:
        """The pin as it is written in the pins file."""
        return {
            "source": self.source,
            "kind": self.kind,
            "revision": self.revision,
            "first_seen": self.first_seen,
            "sha256": self.sha256,
            "files": {
                name: {"sha256": f.sha256, "size": f.size} for name, f in sorted(self.files.items())
            },
        }


@dataclass(frozen=True)
class PinsFile:
    """Every pin of a repository, by path."""

    pins: Mapping[str, ThirdPartyPin] = field(default_factory=dict)

    def covering(self, path: str) -> ThirdPartyPin | None:
        """The pin whose files hold ``path`` (the pin's path itself or a file under it)."""
        for pinned in self.pins.values():
            if _inside(path, pinned.path):
                return pinned
        return None


@dataclass(frozen=True)
class PinChange:
    """One file of a pin that is not as it was first seen.

    Attributes:
        pin: the pin's path.
        file: the file, relative to the repository root.
        what: ``changed``, ``added`` or ``missing``.
        where: ``source`` (fetched again) or ``local`` (the copy in the repository).
        detail: one line (the digests, or the sizes).
    """

    pin: str
    file: str
    what: str
    where: str
    detail: str

    def line(self) -> str:
        """``FILE: WHAT in the WHERE (DETAIL)``."""
        return f"{self.file}: {self.what} in the {self.where} ({self.detail})"


def read_pins(repo: Path) -> PinsFile:
    """Read the pins file of ``repo`` (an empty set of pins when there is none).

    Raises:
        UsageError: the file is malformed or has unknown fields.
        OperationalError: it cannot be read (not a regular file, too large...).
    """
    path = repo / PINS_FILE
    if not path.exists() and not path.is_symlink():
        return PinsFile()
    return read_pins_file(path, inside=repo)


def read_pins_file(path: Path, *, inside: Path | None = None) -> PinsFile:
    """Read the pins file ``path`` (for a gate, the trusted copy its policy names).

    Raises:
        UsageError: the file is malformed or has unknown fields.
        OperationalError: it is missing or cannot be read (not a regular file, too large...).
    """
    data = read_json_object(path, "a pins file", hint=_FIX, inside=inside)
    if set(data) != {"version", "pins"} or data["version"] != _VERSION:
        raise UsageError(f"{PINS_FILE}: expected exactly version {_VERSION} and pins", hint=_FIX)
    if not isinstance(data["pins"], dict):
        raise UsageError(f"{PINS_FILE}: pins is not an object", hint=_FIX)
    return PinsFile({key: _pin(key, value) for key, value in sorted(data["pins"].items())})


def write_pins(repo: Path, pins: PinsFile) -> Path:
    """Write the pins file (sorted, indented: it is reviewed in diffs), atomically."""
    document = {
        "version": _VERSION,
        "pins": {key: pin.to_json() for key, pin in sorted(pins.pins.items())},
    }
    path = repo / PINS_FILE
    write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def _pin(key: str, value: Any) -> ThirdPartyPin:
    where = f"{PINS_FILE}: pin {key!r}"
    _check_path(key, where)
    if not isinstance(value, dict) or set(value) != _PIN_FIELDS:
        raise UsageError(f"{where} must have exactly {', '.join(sorted(_PIN_FIELDS))}", hint=_FIX)
    strings = ("source", "kind", "revision", "first_seen", "sha256")
    if not all(isinstance(value[k], str) for k in strings):
        raise UsageError(f"{where}: {', '.join(strings)} must be strings", hint=_FIX)
    if value["kind"] not in _KINDS or not _TIME.fullmatch(value["first_seen"]):
        raise UsageError(f"{where}: kind or first_seen is malformed", hint=_FIX)
    files = value["files"]
    if not isinstance(files, dict) or not files:
        raise UsageError(f"{where}: files must list at least one file", hint=_FIX)
    pinned = ThirdPartyPin(
        path=key,
        source=value["source"],
        kind=value["kind"],
        revision=value["revision"],
        first_seen=value["first_seen"],
        files={name: _file_pin(where, name, spec) for name, spec in files.items()},
    )
    parse_source(pinned.source)
    if pinned.sha256 != value["sha256"]:
        raise UsageError(f"{where}: sha256 is not the digest of its files", hint=_FIX)
    return pinned


def _file_pin(where: str, name: str, spec: Any) -> FilePin:
    if name:
        _check_path(name, f"{where}: file {name!r}")
    if (
        not isinstance(spec, dict)
        or set(spec) != {"sha256", "size"}
        or not isinstance(spec["sha256"], str)
        or not is_sha256(spec["sha256"])
        or not isinstance(spec["size"], int)
        or isinstance(spec["size"], bool)
        or spec["size"] < 0
    ):
        raise UsageError(f"{where}: file {name!r} needs a sha256 and a size", hint=_FIX)
    return FilePin(Sha256(spec["sha256"]), spec["size"])


def _check_path(path: str, where: str) -> None:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or str(pure) != path:
        raise UsageError(f"{where}: {path!r} is not a plain relative path", hint=_FIX)


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


# -- adding and checking ----------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest_local(repo: Path, path: str, cache: DigestCache | None = None) -> dict[str, FilePin]:
    """The files of the repository path ``path`` (a file: key ``""``) with digest and size.

    Raises:
        OperationalError: it is missing, or holds something that is not a regular file.
    """
    target = repo / path
    if target.is_file():
        digest = sha256_files([target], cache)[target]
        return {"": FilePin(digest, target.stat().st_size)}
    if not target.is_dir():
        raise OperationalError(f"{path} not found", hint="fetch it again: bitwright pin add")
    entries = list(walk_tree(target))
    digests = sha256_files([e.path for e in entries], cache)
    return {e.relpath: FilePin(digests[e.path], e.size) for e in entries}


def add_pin(
    repo: Path,
    source_text: str,
    *,
    to: str | None = None,
    kind: str | None = None,
    offline: bool = False,
    replace: bool = False,
) -> ThirdPartyPin:
    """Fetch ``source_text`` into the repository, pin every file, and save the pins file.

    Args:
        repo: the repository root.
        source_text: a local path, an ``http(s)`` URL, or ``hf://[datasets/]ORG/NAME[@REV]``.
        to: the repository path to hold it (default: a path the source suggests under
            ``third_party/``; a local path inside the repository stays where it is).
        kind: ``model`` or ``dataset`` (default: what the source says, else ``model``).
        offline: fetch from local caches only (huggingface_hub's cache).
        replace: pin again a path that is already pinned (trust the source anew).

    Raises:
        UsageError: a malformed source or path, or a path already pinned.
        OperationalError: the source cannot be fetched or the files cannot be written.
    """
    source = parse_source(source_text, base=Path.cwd())
    dest = to or source.default_path(repo)
    _check_path(dest, "the pin's path")
    pins = read_pins(repo)
    if dest in pins.pins and not replace:
        raise UsageError(
            f"{dest} is already pinned (first seen {pins.pins[dest].first_seen})",
            hint="`bitwright pin check` compares it with its source; --replace trusts it anew",
        )
    fetched = _fetch_into(repo, source, dest, offline=offline)
    pinned = ThirdPartyPin(
        path=dest,
        source=source.text,
        kind=kind or source.kind,
        revision=fetched.revision,
        first_seen=_now(),
        files=digest_local(repo, dest),
    )
    if pinned.kind not in _KINDS:
        raise UsageError(f"kind {pinned.kind!r} is not model or dataset", hint="--kind model")
    write_pins(repo, PinsFile({**pins.pins, dest: pinned}))
    return pinned


def _fetch_into(repo: Path, source: Source, dest: str, *, offline: bool) -> Fetched:
    target = repo / dest
    if source.local is not None and source.local.resolve() == target.resolve():
        return Fetched(revision="")  # already where it belongs: pinned in place
    with tempfile.TemporaryDirectory(prefix=".bitwright-pin-", dir=repo) as scratch:
        staged = Path(scratch) / "fetched"
        fetched = fetch(source, staged, offline=offline)
        if target.exists() or target.is_symlink():
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(target)
    return fetched


def check_pins(
    repo: Path, paths: Iterable[str] = (), *, offline: bool = False, fetch_sources: bool = True
) -> list[PinChange]:
    """Fetch each pin's source again and re-read its local copy; every file not as pinned.

    Args:
        repo: the repository root.
        paths: the pins to check (default: all).
        offline: fetch from local caches only.
        fetch_sources: also fetch the sources (not only re-read the local copies).

    Raises:
        UsageError: a path is not pinned.
        OperationalError: a source cannot be fetched.
    """
    pins = read_pins(repo)
    wanted = list(paths) or list(pins.pins)
    unknown = [p for p in wanted if p not in pins.pins]
    if unknown:
        raise UsageError(f"{unknown[0]} is not pinned", hint=f"pinned: {', '.join(pins.pins)}")
    changes: list[PinChange] = []
    for key in wanted:
        pinned = pins.pins[key]
        changes += _compare(pinned, _local_files(repo, pinned), "local")
        if fetch_sources:
            source = parse_source(pinned.source, base=repo)
            with tempfile.TemporaryDirectory(prefix="bitwright-pin-check-") as scratch:
                staged = Path(scratch) / "fetched"
                fetch(source, staged, offline=offline)
                changes += _compare(pinned, _staged_files(staged), "source")
    return changes


def restore_pinned(
    repo: Path, pins: Iterable[ThirdPartyPin], *, offline: bool = False
) -> tuple[list[str], list[PinChange]]:
    """Fetch the pinned inputs a checkout lacks (git ignores them) from their sources, and check.

    What a rebuilder does: the clone of the source has the pins file but not the third-party
    files. Each missing one is fetched from the source it was pinned from into its path; every
    pinned input, fetched or already there, is then compared file by file with its pin.

    Returns:
        The paths fetched, and every file not as pinned (empty: all are the pinned bytes).

    Raises:
        OperationalError: a source cannot be fetched (unreachable, gone).
    """
    fetched: list[str] = []
    changes: list[PinChange] = []
    for pinned in pins:
        target = repo / pinned.path
        if not (target.exists() or target.is_symlink()):
            _fetch_into(repo, parse_source(pinned.source, base=repo), pinned.path, offline=offline)
            fetched.append(pinned.path)
        changes += _compare(pinned, _local_files(repo, pinned), "local")
    return fetched, changes


def check_local(repo: Path, pins: Iterable[ThirdPartyPin], cache: DigestCache | None) -> None:
    """Refuse pinned inputs whose local files are not as pinned (what a build checks).

    Raises:
        CheckFailed: a file changed, appeared or vanished; the first is named.
    """
    for pinned in pins:
        changes = _compare(pinned, _local_files(repo, pinned, cache), "local")
        if changes:
            more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
            raise CheckFailed(
                f"third-party input {changes[0].line()}{more}",
                hint="restore it (`bitwright pin check` compares with the source), or pin "
                "the new content with `bitwright pin add --replace`",
            )


def _local_files(
    repo: Path, pinned: ThirdPartyPin, cache: DigestCache | None = None
) -> dict[str, FilePin]:
    try:
        return digest_local(repo, pinned.path, cache)
    except OperationalError:
        return {}


def _staged_files(staged: Path) -> dict[str, FilePin]:
    return digest_local(staged.parent, staged.name)


def _compare(pinned: ThirdPartyPin, now: Mapping[str, FilePin], where: str) -> list[PinChange]:
    changes: list[PinChange] = []

    def name(rel: str) -> str:
        return f"{pinned.path}/{rel}" if rel else pinned.path

    for rel in sorted(set(pinned.files) | set(now)):
        before, after = pinned.files.get(rel), now.get(rel)
        if before is None and after is not None:
            changes.append(PinChange(pinned.path, name(rel), "added", where, f"{after.size} B"))
        elif after is None and before is not None:
            changes.append(PinChange(pinned.path, name(rel), "missing", where, "pinned, now gone"))
        elif before is not None and after is not None and before != after:
            detail = f"sha256 {before.sha256[:12]}... pinned, {after.sha256[:12]}... now"
            changes.append(PinChange(pinned.path, name(rel), "changed", where, detail))
    return changes


# -- what a build reads ---------------------------------------------------------------------


def pins_read_by(pipeline: Pipeline, pins: PinsFile) -> list[ThirdPartyPin]:
    """The pins whose files some stage declares as a dep (or a dep inside them)."""
    deps = [dep for spec in pipeline.stages for dep in spec.deps]
    return [
        pinned
        for pinned in pins.pins.values()
        if any(_inside(dep, pinned.path) or _inside(pinned.path, dep) for dep in deps)
    ]


def unpinned_inputs(
    repo: Path, pipeline: Pipeline, pins: PinsFile, tracked_elsewhere: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Stages that read third-party files: deps git does not track and nothing else provides.

    A file of a dep is accounted for when git tracks it, a stage produces it, a DVC
    snapshot (``tracked_elsewhere``) holds it, or a pin covers it. What is left was put
    there by hand or by a download: a third-party input no pin vouches for.

    Returns:
        Stage name -> the unaccounted files it reads (sorted, repository-relative).
    """
    provided = [out for spec in pipeline.stages for out in spec.outs]
    provided += [*tracked_elsewhere, *pins.pins]
    found: dict[str, tuple[str, ...]] = {}
    for spec in pipeline.stages:
        deps = [d for d in spec.deps if not any(_inside(d, p) for p in provided)]
        if not deps:
            continue
        raw = git_bytes(repo, "ls-files", "-z", "--others", "--", *deps)
        files = sorted(
            f
            for f in (p.decode("utf-8", "replace") for p in raw.split(b"\0") if p)
            if not any(_inside(f, p) for p in provided)
        )
        if files:
            found[spec.name] = tuple(files)
    return found
