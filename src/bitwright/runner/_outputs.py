"""Where a stage writes its outs: scratch directories in a sandbox, else in place.

In a remapping sandbox, each outs' parent directory is covered by a fresh scratch directory
(see :mod:`bitwright.runner.view`). After a successful run the declared outs are moved from
the scratch directories into the repository; anything else the stage left there is reported
as a stray write and discarded, so it can never slip into the repository unattested.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bitwright.runner.view import Bind, RepoView, is_under, out_parents

__all__ = ["OutputStaging"]


@dataclass(frozen=True)
class OutputStaging:
    """The writable directories of one stage run.

    Attributes:
        view: the stage's view of its repository.
        parents: the outs' parent directories, shallowest first.
        scratch: each parent's scratch directory on the host; empty when writing in place.
        scratch_root: the directory holding them, removed by :meth:`cleanup`.
        mounted: per parent, the repo paths the sandbox mounts inside its scratch directory
            (listed before the run, as the sandbox sees them).
    """

    view: RepoView
    parents: tuple[str, ...]
    scratch: dict[str, Path]
    scratch_root: Path | None
    mounted: dict[str, frozenset[str]]

    @classmethod
    def prepare(cls, view: RepoView, *, scratch_in: Path | None) -> OutputStaging:
        """Create the outs' parent directories, and scratch directories under ``scratch_in``.

        Args:
            view: the stage's view of its repository.
            scratch_in: where to make scratch directories (on the repository's file system,
                so outs move by renaming); None writes the outs in place.
        """
        parents = out_parents(view.outs)
        for parent in parents:  # mount points must exist in the read-only view
            (view.root / parent).mkdir(parents=True, exist_ok=True)
        if scratch_in is None:
            return cls(view, parents, {}, None, {})
        scratch_in.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=".outs-", dir=scratch_in))
        scratch = {}
        for index, parent in enumerate(parents):
            scratch[parent] = root / str(index)
            scratch[parent].mkdir()
        mounted = {p: view.mount_points_inside(p, parents) for p in parents}
        return cls(view, parents, scratch, root, mounted)

    def binds(self) -> list[Bind]:
        """Return the writable binds: scratch over each parent, or each parent in place."""
        if self.scratch_root is None:
            return [Bind.same(self.view.root / p) for p in self.parents]
        return [Bind(self.scratch[p], self.view.root / p) for p in self.parents]

    def collect(self) -> tuple[str, ...]:
        """Return the stray writes, sorted; when there are none, move the outs into place.

        A stray write is a file or directory the stage created in a scratch directory that
        is neither an out nor a mount point of the view (deeper directories of a scratch
        are read-only mounts). With stray writes nothing is moved: the run fails, and the
        scratch directories are discarded whole.
        """
        if self.scratch_root is None:
            return ()
        strays: list[str] = []
        for parent, directory in self.scratch.items():
            strays.extend(_strays(directory, parent, self.mounted[parent], self.view.outs))
        if strays:
            return tuple(sorted(strays))
        for out in self.view.outs:
            parent = os.path.dirname(out) or "."
            produced = self.scratch[parent] / os.path.basename(out)
            if os.path.lexists(produced):
                _replace(produced, self.view.root / out)
        return ()

    def cleanup(self) -> None:
        """Remove the scratch directories and whatever the stage left in them."""
        if self.scratch_root is not None:
            shutil.rmtree(self.scratch_root, ignore_errors=True)


def _replace(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif os.path.lexists(target):
        target.unlink()
    shutil.move(source, target)


def _strays(
    directory: Path, parent: str, mounted: frozenset[str], outs: tuple[str, ...]
) -> Iterator[str]:
    for name in sorted(os.listdir(directory)):
        path = name if parent == "." else f"{parent}/{name}"
        if path not in mounted and not any(is_under(path, out) for out in outs):
            yield path
