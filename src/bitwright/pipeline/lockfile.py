"""Read ``dvc.lock``: per stage, the command DVC ran, its hashed deps and outs, its params.

The lock is DVC's record of the last ``dvc repro``; bitwright compares it with what it
attests (the run-cache can restore outputs without running a stage, and a stale lock
means the outputs were not produced by the current definition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwright.errors import OperationalError, UsageError
from bitwright.pipeline._yaml import parse_yaml, read_text

__all__ = ["LOCK_FILE", "LockedFile", "LockedStage", "load_lock", "parse_lock"]

LOCK_FILE = "dvc.lock"


@dataclass(frozen=True)
class LockedFile:
    """A dep or out as ``dvc.lock`` records it.

    Attributes:
        path: the path as recorded (relative to the stage's ``wdir``).
        md5: DVC's hash (``<md5>.dir`` for a directory), "" if not recorded.
        size: total size in bytes, if recorded.
        nfiles: number of files of a directory, if recorded.
        hash: the hash name DVC 3 records (``md5``), "" for older entries.
    """

    path: str
    md5: str = ""
    size: int | None = None
    nfiles: int | None = None
    hash: str = ""


@dataclass(frozen=True)
class LockedStage:
    """One stage of ``dvc.lock``: what DVC last ran and what it hashed.

    Attributes:
        name: the stage name.
        cmd: the command DVC ran.
        deps: the hashed dependencies.
        outs: the hashed outputs.
        params: parameter file -> key -> the value the stage ran with.
    """

    name: str
    cmd: str
    deps: tuple[LockedFile, ...] = ()
    outs: tuple[LockedFile, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def dep(self, path: str) -> LockedFile | None:
        """Return the locked dep recorded for ``path``, if any."""
        return next((d for d in self.deps if d.path == path), None)

    def out(self, path: str) -> LockedFile | None:
        """Return the locked out recorded for ``path``, if any."""
        return next((o for o in self.outs if o.path == path), None)


def load_lock(repo: Path) -> dict[str, LockedStage]:
    """Read the repository's ``dvc.lock``.

    Args:
        repo: the repository root.

    Returns:
        Stage name -> locked stage, in file order; empty when there is no ``dvc.lock``.

    Raises:
        OperationalError: ``dvc.lock`` is unreadable, malformed or of an unsupported schema.
    """
    path = Path(repo) / LOCK_FILE
    if not path.exists():
        return {}
    return parse_lock(read_text(path, LOCK_FILE, "regenerate it with `dvc repro`"))


def parse_lock(text: str, *, file: str = LOCK_FILE) -> dict[str, LockedStage]:
    """Parse the text of a ``dvc.lock`` (see :func:`load_lock`)."""
    hint = "regenerate it with `dvc repro` (or `dvc commit`)"
    data = parse_yaml(text, file, OperationalError, hint)
    if data is None:
        return {}
    if not isinstance(data, dict) or str(data.get("schema")) != "2.0":
        raise OperationalError(f"{file}: not a DVC 3 lock file (schema '2.0')", hint=hint)
    stages = data.get("stages") or {}
    if not isinstance(stages, dict):
        raise OperationalError(f"{file}: 'stages' must be a mapping", hint=hint)
    return {str(name): _locked_stage(file, str(name), body, hint) for name, body in stages.items()}


def _locked_stage(file: str, name: str, body: Any, hint: str) -> LockedStage:
    where = f"{file}: stage {name!r}"
    if not isinstance(body, dict):
        raise OperationalError(f"{where}: expected a mapping", hint=hint)
    cmd = body.get("cmd")
    if isinstance(cmd, list):
        raise UsageError(
            f"{where}: a list 'cmd' is not supported",
            hint="write one command in dvc.yaml and run `dvc repro`",
        )
    if not isinstance(cmd, str):
        raise OperationalError(f"{where}: 'cmd' is missing", hint=hint)
    params = body.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise OperationalError(f"{where}: 'params' must map files to key/value maps", hint=hint)
    files: dict[str, tuple[LockedFile, ...]] = {}
    for key in ("deps", "outs"):
        entries = body.get(key) or []
        if not isinstance(entries, list):
            raise OperationalError(f"{where}: {key!r} must be a list", hint=hint)
        files[key] = tuple(_locked_file(where, key, e, hint) for e in entries)
    return LockedStage(
        name=name,
        cmd=cmd,
        deps=files["deps"],
        outs=files["outs"],
        params={str(f): {str(k): v for k, v in kv.items()} for f, kv in params.items()},
    )


def _locked_file(where: str, key: str, entry: Any, hint: str) -> LockedFile:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise OperationalError(f"{where}: an entry of {key!r} has no 'path'", hint=hint)
    size, nfiles = entry.get("size"), entry.get("nfiles")
    if not isinstance(size, int | None) or not isinstance(nfiles, int | None):
        raise OperationalError(
            f"{where}: {key} {entry['path']!r} has a non-integer size or nfiles", hint=hint
        )
    return LockedFile(
        path=entry["path"],
        md5=str(entry.get("md5") or ""),
        size=size,
        nfiles=nfiles,
        hash=str(entry.get("hash") or ""),
    )
