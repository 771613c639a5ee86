"""The rebuild workspace: a clean git checkout of the pinned commit, fetched from the source.

A verifier never rebuilds in someone's working tree: the source is cloned into a fresh
directory (a temporary one unless the verifier names an empty one) and checked out at the
commit the provenance names, detached, so nothing but that commit's tracked files is there.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bitwright.errors import OperationalError, ToolError, UsageError

__all__ = ["checkout_source", "fresh_workspace", "source_location"]

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


def fresh_workspace(workspace: Path | None) -> Path:
    """Return an empty directory to clone into: ``workspace`` if given, else a new temp dir.

    Raises:
        UsageError: ``workspace`` exists and is not an empty directory.
    """
    if workspace is None:
        return Path(tempfile.mkdtemp(prefix="bitwright-rebuild-")).resolve()
    workspace = workspace.resolve()
    if workspace.exists() and (not workspace.is_dir() or any(workspace.iterdir())):
        raise UsageError(
            f"workspace {workspace} is not an empty directory",
            hint="pass a new or empty directory to --workspace (a rebuild starts clean)",
        )
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace


def source_location(repository: str) -> str:
    """Turn the provenance's repository (or ``--source``) into something ``git clone`` takes.

    ``git+https://...`` and ``git+file://...`` lose their ``git+`` prefix; paths and
    ordinary URLs are kept.
    """
    return repository.removeprefix("git+")


def _git(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env={**os.environ, **_GIT_ENV},
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ToolError(f"cannot run git: {exc}", hint="install git") from None


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def checkout_source(source: str, commit: str, workspace: Path) -> Path:
    """Clone ``source`` into ``workspace`` and check out ``commit`` (detached).

    Args:
        source: a path or URL ``git clone`` accepts.
        commit: the full commit id the provenance names.
        workspace: an empty directory (see :func:`fresh_workspace`).

    Returns:
        ``workspace``, now a work tree of ``commit``.

    Raises:
        OperationalError: the source cannot be cloned, or does not hold the commit.
    """
    done = _git(["clone", "--quiet", "--no-checkout", source, str(workspace)])
    if done.returncode != 0:
        raise OperationalError(
            f"cannot clone the source {source}: {_last_line(done)}",
            hint="pass a reachable clone of the repository with --source PATH|URL",
        )
    if _git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=workspace).returncode != 0:
        # A commit not on any branch may still be fetchable by id.
        _git(["fetch", "--quiet", "origin", commit], cwd=workspace)
    done = _git(["checkout", "--quiet", "--detach", commit], cwd=workspace)
    if done.returncode != 0:
        raise OperationalError(
            f"the source {source} does not have commit {commit[:12]}: {_last_line(done)}",
            hint="pass a clone that has the released commit with --source PATH|URL",
        )
    return workspace
