"""Pin the source commit of a build: HEAD, its committer time, where to fetch it, and dirt."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bitwright.errors import DirtyTreeError, OperationalError, ToolError
from bitwright.model.pins import GitPin
from bitwright.pins._gitcmd import clone_at_commit, git_bytes, git_text, repo_toplevel
from bitwright.pins.source_signature import read_source_signature
from bitwright.pins.worktree import find_dirty_paths

__all__ = [
    "clone_at_commit",
    "head_commit_time",
    "is_ignored_untracked",
    "pin_git_commit",
    "redact_url",
]

_SHOWN_PATHS = 5
_COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def redact_url(url: str) -> str:
    """Return ``url`` without a password or token in its user part (it goes into attestations)."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    # A lone user part of https URLs is usually a token (https://TOKEN@github.com/...).
    keep = name if parts.scheme in {"ssh", "git+ssh"} else ""
    netloc = f"{keep}@{host}" if keep else host
    return urlunsplit(parts._replace(netloc=netloc))


def _head_commit(top: Path) -> str:
    try:
        commit = git_text(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except ToolError:
        commit = ""
    if not _COMMIT_RE.fullmatch(commit):
        raise OperationalError(
            f"git repository {top} has no commit yet", hint="commit the project, then build"
        )
    return commit


def head_commit_time(repo: Path) -> int:
    """The committer time of HEAD (seconds since the epoch), or 0 when there is no commit.

    For runs that need ``SOURCE_DATE_EPOCH`` without pinning the tree (development runs).
    """
    try:
        text = git_text(repo, "log", "-1", "--format=%ct")
    except (ToolError, OperationalError):
        return 0
    return int(text) if text.isdigit() else 0


def is_ignored_untracked(repo: Path, path: str) -> bool:
    """Whether ``path`` (relative to ``repo``) exists, is not tracked, and git ignores it.

    Such a file can shape a build without ever being part of the commit a build pins.
    """
    listed = git_bytes(repo, "ls-files", "--others", "--ignored", "--exclude-standard", "--", path)
    return bool(listed.strip())


def _remote_url(top: Path) -> str:
    raw = git_bytes(top, "config", "--default=", "--get", "remote.origin.url").decode().strip()
    return redact_url(raw) if raw else str(top)


def _source_date_epoch(top: Path, commit: str, commit_time: int, ignore: Iterable[str]) -> int:
    """When the source last changed: the last commit up to ``commit`` not only of ``ignore``.

    ``ignore`` holds the files a build rewrites itself: a commit of ``dvc.lock`` alone keeps
    the epoch of the commit before it.
    """
    excludes = [f":(exclude,top){path.strip('/')}" for path in ignore]
    text = git_text(top, "log", "-1", "--format=%ct", commit, "--", ":(top)", *excludes)
    return int(text) if text.isdigit() else commit_time


def pin_git_commit(repo: Path, *, allow_dirty: bool = False, ignore: Iterable[str] = ()) -> GitPin:
    """Pin the HEAD commit of the git work tree holding ``repo``.

    The work tree is compared with HEAD by content (see :mod:`bitwright.pins.worktree`):
    edits hidden by ``assume-unchanged``/``skip-worktree`` or a restored mtime, staged
    changes, deletions, executable-bit changes and untracked files that are not ignored
    all make it dirty.

    Args:
        repo: a directory inside the work tree (its top level is what gets pinned).
        allow_dirty: record a dirty tree instead of refusing it; the pin is then
            not rebuildable (:attr:`GitPin.rebuildable` is false).
        ignore: repository-relative paths the build itself rewrites (``dvc.lock``):
            their differences do not make the tree dirty, and commits that change only
            them do not move ``SOURCE_DATE_EPOCH`` (:attr:`GitPin.source_date_epoch`).

    Returns:
        The commit id, its committer time (``SOURCE_DATE_EPOCH``), the ``origin`` URL
        (credentials removed) or the work tree's absolute path when there is no
        ``origin``, the dirty paths, and the commit's git signature if it has one.

    Raises:
        OperationalError: ``repo`` is not in a git work tree, or it has no commit.
        DirtyTreeError: the tree differs from HEAD and ``allow_dirty`` is false.
        ToolError: git is missing or failed.
    """
    top = repo_toplevel(repo)
    commit = _head_commit(top)
    commit_time = int(git_text(top, "show", "-s", "--format=%ct", commit))
    ignore = tuple(ignore)
    dirty = find_dirty_paths(top, ignore=ignore)
    if dirty and not allow_dirty:
        shown = ", ".join(dirty[:_SHOWN_PATHS])
        more = f" and {len(dirty) - _SHOWN_PATHS} more" if len(dirty) > _SHOWN_PATHS else ""
        raise DirtyTreeError(
            f"work tree {top} differs from commit {commit[:12]}: {shown}{more}",
            hint="commit or stash the changes (or pass --allow-dirty: the build is then "
            "marked not rebuildable)",
        )
    return GitPin(
        commit=commit,
        commit_time=commit_time,
        remote_url=_remote_url(top),
        dirty=bool(dirty),
        dirty_paths=dirty,
        source_date_epoch=_source_date_epoch(top, commit, commit_time, ignore),
        signature=read_source_signature(top, commit),
    )
