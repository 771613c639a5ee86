"""What a sealed stage sees of its repository: visible paths, hidden paths, outs, binds.

A sandbox that can build a private mount namespace (bubblewrap, podman) shows a stage the
repository read-only: everything (warn mode) or only its declared deps plus the toolchain
(strict mode). Secrets and caches (:data:`HIDDEN`) are never shown. Outputs are written through
fresh *scratch* directories mounted over the outs' parent directories, so writes anywhere but
the outs' directories fail at once (read-only file system), a stale out is never visible, and
whatever else the stage leaves next to its outs can be found afterwards. Inside a scratch
directory, the visible part of the real directory is mounted again read-only; this module
computes that list once, for the sandbox (to mount it) and the runner (to tell mount points
from files the stage wrote).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.errors import UsageError

__all__ = [
    "HIDDEN",
    "Bind",
    "RepoView",
    "child_toward",
    "is_under",
    "out_parents",
    "strictly_under",
]

HIDDEN: tuple[str, ...] = (".git", ".bitwright", ".dvc/cache", ".dvc/tmp")
"""Repository paths a stage never sees: history, signing keys, the DVC cache and its locks."""


def is_under(path: str, base: str) -> bool:
    """Return whether repo-relative ``path`` is ``base`` or lies inside it ("." holds all)."""
    return base == "." or path == base or path.startswith(base.rstrip("/") + "/")


def strictly_under(path: str, base: str) -> bool:
    """Return whether repo-relative ``path`` lies inside ``base`` and is not ``base``."""
    return path != base and is_under(path, base)


def out_parents(outs: Iterable[str]) -> tuple[str, ...]:
    """Return the directories holding the outs, each once, shallowest first ("." = the root)."""
    parents = {posixpath.dirname(out.rstrip("/")) or "." for out in outs}
    return tuple(sorted(parents, key=lambda p: (0 if p == "." else p.count("/") + 1, p)))


@dataclass(frozen=True)
class Bind:
    """A writable host directory ``source`` mounted at ``target`` inside the sandbox."""

    source: Path
    target: Path

    @classmethod
    def same(cls, path: Path) -> Bind:
        """Return a bind of ``path`` at the same place."""
        return cls(path, path)


@dataclass(frozen=True)
class RepoView:
    """The repository as one stage sees it.

    Attributes:
        root: the repository's absolute, resolved path (the same inside the sandbox).
        visible: repo-relative paths shown read-only; ``(".",)`` shows everything (warn mode).
        outs: the stage's declared outs, written through scratch directories, never shown stale.
        hidden: repo-relative paths never shown, even when a visible path contains them.
    """

    root: Path
    visible: tuple[str, ...]
    outs: tuple[str, ...]
    hidden: tuple[str, ...] = HIDDEN

    @classmethod
    def create(
        cls, root: Path, *, visible: Sequence[str], outs: Sequence[str], strict: bool
    ) -> RepoView:
        """Return the view of a stage: everything (warn mode) or ``visible`` only (strict).

        Visible paths under a hidden one stay hidden: keys are never shown, even if declared.
        """
        norm = tuple(dict.fromkeys(_normalize(v) for v in visible)) if strict else (".",)
        shown = tuple(v for v in norm if not any(is_under(v, h) for h in HIDDEN))
        return cls(root=root, visible=shown, outs=tuple(_normalize(o) for o in outs))

    def covers(self, rel: str) -> bool:
        """Whether the real contents of ``rel`` are visible (a visible path holds it)."""
        return any(is_under(rel, v) for v in self.visible)

    def hidden_inside(self, exposed: Iterable[str]) -> tuple[str, ...]:
        """Return the hidden paths that exist and lie strictly inside one of ``exposed``."""
        found = [
            h
            for h in self.hidden
            if any(strictly_under(h, e) for e in exposed) and os.path.lexists(self.root / h)
        ]
        return tuple(found)

    def exposed_inside(self, parent: str) -> tuple[str, ...]:
        """Return what is mounted read-only inside the scratch directory at ``parent``.

        That is the visible part of the real directory: every entry but outs and hidden
        paths when the directory is visible, else the visible paths that lie inside it
        (none inside another).
        """
        if self.covers(parent):
            base = self.root if parent == "." else self.root / parent
            try:
                names = sorted(os.listdir(base))
            except FileNotFoundError:
                return ()
            entries = (n if parent == "." else f"{parent}/{n}" for n in names)
            return tuple(
                e
                for e in entries
                if e not in self.outs and not any(is_under(e, h) for h in self.hidden)
            )
        inside = [v for v in self.visible if strictly_under(v, parent)]
        return tuple(v for v in inside if not any(strictly_under(v, o) for o in inside))

    def mount_points_inside(self, parent: str, parents: Sequence[str]) -> frozenset[str]:
        """Return the entries of the scratch at ``parent`` that are mounts, not the stage's.

        Everything is mounted on an entry directly inside ``parent``: a visible path, or a
        read-only directory holding deeper visible paths and deeper scratch directories.
        """
        targets = [*self.exposed_inside(parent), *(p for p in parents if strictly_under(p, parent))]
        return frozenset(child_toward(parent, t) for t in targets)


def child_toward(parent: str, path: str) -> str:
    """Return the entry directly inside ``parent`` on the way to ``path`` (strictly inside)."""
    rel = path if parent == "." else path[len(parent) + 1 :]
    head = rel.split("/", 1)[0]
    return head if parent == "." else f"{parent}/{head}"


def _normalize(rel: str) -> str:
    norm = posixpath.normpath(rel.strip())
    if norm.startswith("../") or norm == ".." or posixpath.isabs(norm):
        raise UsageError(
            f"{rel!r} is not a path inside the repository",
            hint="declare deps and outs relative to the repository root, without '..'",
        )
    return norm
