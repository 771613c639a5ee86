"""The rebuild workspace: a clean git checkout of the pinned commit, fetched from the source.

A verifier never rebuilds in someone's working tree: the source is cloned into a fresh
directory (a temporary one unless the verifier names an empty one) and checked out at the
commit the provenance names, detached, so nothing but that commit's tracked files is there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bitwright.errors import UsageError
from bitwright.pins import clone_at_commit

__all__ = ["checkout_source", "fresh_workspace", "source_location"]


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
        ToolError: git is missing.
    """
    clone_at_commit(source, commit, workspace)
    return workspace
