"""Find where a git work tree differs from its HEAD commit, by content, whatever git's caches say.

``git status`` trusts its stat cache and the index flags: a file edited under
``git update-index --assume-unchanged`` or ``--skip-worktree``, or edited and given its old
mtime back, looks clean to it. A build that claims a commit must not trust that, so this
module hashes every tracked file's bytes as a git blob (``blob <len> NUL <bytes>``, sha1 or
sha256 by the repository's object format) and compares it with the HEAD tree entry; only
files whose raw bytes differ are handed to ``git hash-object PATH...``, which applies
the clean filters and end-of-line conversion of ``.gitattributes`` the way ``git add`` would,
so a checkout converted by ``text``/``eol``/LFS attributes is not called dirty.

A path is dirty when:

- its worktree content, type (file, symlink, submodule) or executable bit differs from HEAD
  (``core.fileMode`` is not consulted: the bit changes what a rebuild runs), or it is missing
  (a sparse checkout's absent files count too: a rebuild would see them);
- its index entry differs from HEAD (staged, added, removed with ``git rm --cached``) or is
  unmerged;
- a checked-out submodule is at another commit than HEAD records, or is itself dirty
  (reported as ``submodule/path``); a submodule that is not checked out is clean, as for git;
- it is untracked and not ignored (a wholly untracked directory is reported once, ``dir/``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bitwright.pins._gitcmd import git_bytes, git_paths, git_text

__all__ = ["blob_id", "find_dirty_paths"]

_GITLINK = "160000"
_SYMLINK = "120000"
_EXECUTABLE = "100755"
_CHUNK = 1 << 20
_LARGE = 1 << 20


@dataclass(frozen=True)
class _Entry:
    """One blob or gitlink entry of a tree or of the index."""

    mode: str
    oid: str


def blob_id(data: bytes, *, algorithm: str = "sha1") -> str:
    """Return git's object id of a blob holding ``data`` (``git hash-object --no-filters``)."""
    hasher = hashlib.new(algorithm)
    hasher.update(b"blob %d\0" % len(data))
    hasher.update(data)
    return hasher.hexdigest()


def _file_blob_id(path: bytes, algorithm: str) -> str:
    with open(path, "rb") as handle:
        hasher = hashlib.new(algorithm)
        hasher.update(b"blob %d\0" % os.fstat(handle.fileno()).st_size)
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _split_z(raw: bytes) -> Iterator[bytes]:
    return (record for record in raw.split(b"\0") if record)


def _head_tree(top: Path) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for record in _split_z(git_bytes(top, "ls-tree", "-r", "-z", "--full-tree", "HEAD")):
        meta, _, name = record.partition(b"\t")
        mode, _kind, oid = meta.decode().split(" ")
        entries[os.fsdecode(name)] = _Entry(mode, oid)
    return entries


def _index(top: Path) -> tuple[dict[str, _Entry], set[str]]:
    entries: dict[str, _Entry] = {}
    unmerged: set[str] = set()
    for record in _split_z(git_bytes(top, "ls-files", "-s", "-z")):
        meta, _, name = record.partition(b"\t")
        mode, oid, stage_number = meta.decode().split(" ")
        path = os.fsdecode(name)
        if stage_number != "0":
            unmerged.add(path)
        else:
            entries[path] = _Entry(mode, oid)
    return entries, unmerged


def _untracked(top: Path) -> set[str]:
    raw = git_bytes(
        top, "ls-files", "-z", "--others", "--exclude-standard", "--directory",
        "--no-empty-directory",
    )  # fmt: skip
    return {os.fsdecode(record) for record in _split_z(raw)}


def _object_algorithm(top: Path) -> str:
    return "sha256" if git_text(top, "rev-parse", "--show-object-format") == "sha256" else "sha1"


def _symlinks_supported(top: Path) -> bool:
    raw = git_bytes(top, "config", "--type=bool", "--default=true", "--get", "core.symlinks")
    return raw.strip() == b"true"


class _Checker:
    """Compares the work tree of one repository with its HEAD entries."""

    def __init__(self, top: Path, algorithm: str) -> None:
        self.top = top
        self.root = os.fsencode(top) + b"/"
        self.algorithm = algorithm
        self._symlinks: bool | None = None

    def symlinks(self) -> bool:
        if self._symlinks is None:
            self._symlinks = _symlinks_supported(self.top)
        return self._symlinks


def _filtered_ids(top: Path, paths: list[str]) -> list[str]:
    """Blob ids of ``paths`` with the clean filters and EOL conversion ``git add`` applies."""
    out = b"".join(git_paths(top, ["hash-object"], paths))
    return out.decode().split()


def _submodule_dirt(
    top: Path, path: str, entry: _Entry, ignore: Callable[[str], bool]
) -> list[str]:
    sub = top / path
    if not sub.is_dir():
        return [path]
    if not (sub / ".git").exists():
        return []  # not checked out: git calls it clean, and a rebuild fetches it by commit
    if git_text(sub, "rev-parse", "HEAD") != entry.oid:
        return [path]
    return [f"{path}/{inner}" for inner in find_dirty_paths(sub) if not ignore(f"{path}/{inner}")]


def find_dirty_paths(
    repo: Path, *, ignore: Iterable[str] = (), jobs: int | None = None
) -> tuple[str, ...]:
    """Return the sorted repository-relative paths where the work tree differs from HEAD.

    Args:
        repo: the top directory of a git work tree with at least one commit.
        ignore: repository-relative paths (files or directories) whose differences do not
            count, e.g. tracked files the build itself rewrites.
        jobs: threads hashing files (default: up to 8, by CPU count).

    Raises:
        OperationalError: ``repo`` is not a git work tree.
        ToolError: git failed.
    """
    ignored = tuple(p.strip("/") for p in ignore)

    def is_ignored(path: str) -> bool:
        clean = path.rstrip("/")
        return any(clean == p or clean.startswith(p + "/") for p in ignored)

    head = _head_tree(repo)
    index, unmerged = _index(repo)
    dirty = set(unmerged) | _untracked(repo)
    dirty |= {p for p, e in head.items() if index.get(p) != e}
    dirty |= index.keys() - head.keys()

    checker = _Checker(repo, _object_algorithm(repo))
    to_check = [(p, e) for p, e in head.items() if p not in dirty and not is_ignored(p)]
    for path, entry in to_check:
        if entry.mode == _GITLINK:
            dirty.update(_submodule_dirt(repo, path, entry, is_ignored))
    files = [(p, e) for p, e in to_check if e.mode != _GITLINK]
    verdicts = _verdicts(checker, files, jobs or min(8, os.cpu_count() or 1))
    dirty.update(path for path, verdict in verdicts.items() if verdict == "dirty")
    maybe = sorted(path for path, verdict in verdicts.items() if verdict == "content")
    if maybe:
        filtered = _filtered_ids(repo, maybe)
        dirty.update(p for p, oid in zip(maybe, filtered, strict=True) if oid != head[p].oid)
    return tuple(sorted(p for p in dirty if not is_ignored(p)))


def _verdicts(checker: _Checker, files: list[tuple[str, _Entry]], jobs: int) -> dict[str, str]:
    """Classify every tracked file as ``clean``, ``dirty`` or ``content`` (raw bytes differ).

    Small files are hashed in this thread (a pool costs more than they do); files of
    1 MiB and more go to ``jobs`` threads, as hashlib releases the GIL on large buffers.
    """
    verdicts: dict[str, str] = {}
    large: list[tuple[str, _Entry]] = []
    for path, entry in files:
        verdict, size = _classify(checker, path, entry)
        if verdict == "hash" and size >= _LARGE:
            large.append((path, entry))
        elif verdict == "hash":
            verdicts[path] = _compare_content(checker, path, entry)
        else:
            verdicts[path] = verdict
    if large:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            done = pool.map(lambda item: _compare_content(checker, *item), large)
            verdicts.update(zip((path for path, _ in large), done, strict=True))
    return verdicts


def _classify(checker: _Checker, path: str, entry: _Entry) -> tuple[str, int]:
    """Decide a file by its type and mode: ``clean``, ``dirty``, or ``hash`` (with its size)."""
    full = checker.root + os.fsencode(path)
    try:
        info = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        return "dirty", 0
    is_link = stat.S_ISLNK(info.st_mode)
    if entry.mode == _SYMLINK and is_link:
        same = blob_id(os.readlink(full), algorithm=checker.algorithm) == entry.oid
        return ("clean" if same else "dirty"), 0
    if is_link or not stat.S_ISREG(info.st_mode):
        return "dirty", 0
    if entry.mode == _SYMLINK:
        # A symlink stored as a plain file is legitimate only with core.symlinks=false.
        return ("dirty" if checker.symlinks() else "hash"), info.st_size
    if bool(info.st_mode & stat.S_IXUSR) != (entry.mode == _EXECUTABLE):
        return "dirty", 0
    return "hash", info.st_size


def _compare_content(checker: _Checker, path: str, entry: _Entry) -> str:
    if _file_blob_id(checker.root + os.fsencode(path), checker.algorithm) == entry.oid:
        return "clean"
    # The link text of a symlink stored as a plain file has no filters to apply.
    return "dirty" if entry.mode == _SYMLINK else "content"
