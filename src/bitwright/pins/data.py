"""Pin the DVC data snapshots a pipeline starts from: the ``*.dvc`` files of ``dvc add``.

Outputs of pipeline stages (``dvc.yaml``/``dvc.lock``) are products, not pins, and are left
out, as are old single-stage ``.dvc`` files that carry a ``cmd``. Each out is checked
against its ``.dvc`` hash with DVC's own hashing (``dvc_data``, ``.dvcignore`` honoured),
from the bytes, never from DVC's mtime-keyed state cache: a snapshot edited and given its
old mtime back is caught. Its sha256 covers exactly the files DVC tracks: a file's sha256,
or for a directory the :func:`bitwright.digest.tree_sha256` of its files, which equals
``digest_tree`` of the directory when nothing in it is ``.dvcignore``'d.

Nothing here starts DVC's CLI, so DVC's analytics never run from this module; callers that
do run ``dvc`` pass ``DVC_NO_ANALYTICS=1`` (see :data:`DVC_ENV`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from bitwright.digest import DigestCache, sha256_file, sha256_files, tree_sha256
from bitwright.errors import DirtyTreeError, OperationalError
from bitwright.model.digests import Sha256
from bitwright.model.pins import DataPin
from bitwright.pins.dvcconfig import default_remote_url

__all__ = ["DVC_ENV", "DvcOut", "find_dvc_files", "pin_data", "read_dvc_file"]

DVC_ENV = {"DVC_NO_ANALYTICS": "1"}
"""Environment additions for every ``dvc`` command bitwright runs: DVC must not phone home."""

_SKIP_DIRS = {".git", ".dvc", ".hg"}


@dataclass(frozen=True)
class DvcOut:
    """One out of a ``.dvc`` file, as recorded.

    Attributes:
        path: repository-relative POSIX path of the tracked file or directory.
        md5: the recorded hash (``<md5>.dir`` for a directory).
        hash_name: ``md5`` (DVC 3) or ``md5-dos2unix`` (DVC 2 files without ``hash:``).
        dvc_file: repository-relative path of the ``.dvc`` file.
    """

    path: str
    md5: str
    hash_name: str
    dvc_file: str


def find_dvc_files(repo: Path) -> tuple[Path, ...]:
    """Return the ``*.dvc`` files under ``repo``, sorted, as DVC collects them.

    Directories ``.git``/``.dvc``, DVC subrepositories, Python virtual environments and
    whatever ``.dvcignore`` excludes are not searched.
    """
    from dvc.ignore import DvcIgnoreFilter
    from dvc_objects.fs.local import localfs

    top = os.fspath(repo.resolve())  # DVC's ignore rules need absolute paths
    ignore = DvcIgnoreFilter(localfs, top)
    found: list[Path] = []
    for root, dirs, files in ignore.walk(localfs, top):
        dirs[:] = [
            d
            for d in dirs
            if d not in _SKIP_DIRS
            and not os.path.isdir(os.path.join(root, d, ".dvc"))
            and not os.path.isfile(os.path.join(root, d, "pyvenv.cfg"))
        ]
        found.extend(Path(root, name) for name in files if name.endswith(".dvc"))
    return tuple(sorted(found))


def _invalid(dvc_file: str, why: str) -> OperationalError:
    return OperationalError(
        f"{dvc_file}: {why}", hint=f"recreate it with `dvc add` (or `git checkout {dvc_file}`)"
    )


def read_dvc_file(repo: Path, dvc_file: Path) -> tuple[DvcOut, ...]:
    """Return the outs of a ``.dvc`` file; none when it is a (legacy) pipeline stage.

    Raises:
        OperationalError: the file is unreadable, not a ``.dvc`` mapping, or an out lacks
            a path or hash, or points outside the repository.
    """
    rel = dvc_file.resolve().relative_to(repo.resolve()).as_posix()
    try:
        data: Any = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _invalid(rel, f"unreadable .dvc file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("outs"), list):
        raise _invalid(rel, "not a .dvc file (no `outs:` list)")
    if data.get("cmd"):
        return ()  # a DVC 1.x stage file: its outs are products of a command
    outs: list[DvcOut] = []
    base = PurePosixPath(rel).parent
    for out in data["outs"]:
        if not isinstance(out, dict) or not isinstance(out.get("path"), str):
            raise _invalid(rel, "an out has no `path`")
        out_path = PurePosixPath(os.path.normpath(base / out["path"]))
        if out_path.is_absolute() or out_path.parts[:1] == ("..",) or "://" in out["path"]:
            raise _invalid(rel, f"out {out['path']} is outside the repository")
        md5 = out.get("md5")
        if not isinstance(md5, str) or not md5:
            raise _invalid(rel, f"out {out['path']} has no md5 (was `dvc add` interrupted?)")
        hash_name = "md5" if out.get("hash") == "md5" else "md5-dos2unix"
        outs.append(DvcOut(out_path.as_posix(), md5, hash_name, rel))
    return tuple(outs)


@dataclass(frozen=True)
class _Hashed:
    md5: str
    size: int
    files: tuple[str, ...]  # relative paths inside a directory; () for a file


def _dvc_hash(path: Path, hash_name: str, ignore: Any) -> _Hashed:
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.fs.local import localfs

    with tempfile.TemporaryDirectory(prefix="bitwright-dvc-") as scratch:
        odb = HashFileDB(localfs, scratch, hash_name=hash_name)
        _, meta, obj = build(odb, os.fspath(path), localfs, hash_name, dry_run=True, ignore=ignore)
    files = tuple("/".join(key) for key, _, _ in obj) if isinstance(obj, Tree) else ()
    return _Hashed(str(obj.hash_info.value), int(meta.size or 0), files)


def _pin_out(
    repo: Path, out: DvcOut, remote_url: str, ignore: Any, cache: DigestCache | None
) -> DataPin:
    path = repo / out.path
    if not path.exists():
        raise DirtyTreeError(
            f"{out.path} (tracked by {out.dvc_file}) is not in the workspace",
            hint="fetch it with `dvc pull` or `dvc checkout`",
        )
    hashed = _dvc_hash(path, out.hash_name, ignore)
    if hashed.md5 != out.md5:
        raise DirtyTreeError(
            f"{out.path} differs from {out.dvc_file} (md5 {hashed.md5}, recorded {out.md5})",
            hint=f"record the new data with `dvc add {out.path}` and commit, "
            f"or restore it with `dvc checkout {out.dvc_file}`",
        )
    if path.is_dir():
        digests = sha256_files([path / rel for rel in hashed.files], cache)
        sha256 = tree_sha256({rel: digests[path / rel] for rel in hashed.files})
        nfiles = len(hashed.files)
    else:
        sha256, nfiles = sha256_file(path, cache), 1
    return DataPin(
        path=out.path,
        dvc_md5=out.md5,
        sha256=Sha256(sha256),
        size=hashed.size,
        nfiles=nfiles,
        remote_url=remote_url,
    )


def pin_data(
    repo: Path,
    *,
    cache: DigestCache | None = None,
    dvc_files: tuple[Path, ...] | None = None,
) -> tuple[DataPin, ...]:
    """Pin every DVC-tracked data snapshot of ``repo`` that no pipeline stage produces.

    Args:
        repo: the repository root (where ``.dvc/`` is).
        cache: digest cache for the sha256 pass (``None`` reads every file); DVC's md5
            check always reads the bytes.
        dvc_files: the ``.dvc`` files of ``repo`` as :func:`find_dvc_files` returns them,
            when the caller already has them; ``None`` walks the repository here.

    Returns:
        One pin per out of every ``*.dvc`` file, sorted by path; empty without DVC data.

    Raises:
        DirtyTreeError: a snapshot is missing from the workspace or differs from its
            ``.dvc`` file.
        OperationalError: a ``.dvc`` file or the DVC config is malformed, or a file is
            unreadable.
    """
    from dvc.ignore import DvcIgnoreFilter
    from dvc_objects.fs.local import localfs

    root = repo.resolve()
    remote_url = default_remote_url(root)
    ignore = DvcIgnoreFilter(localfs, os.fspath(root))
    pins = [
        _pin_out(root, out, remote_url, ignore, cache)
        for dvc_file in (find_dvc_files(root) if dvc_files is None else dvc_files)
        for out in read_dvc_file(root, dvc_file)
    ]
    return tuple(sorted(pins, key=lambda pin: pin.path))
