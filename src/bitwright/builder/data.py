"""Bring missing data snapshots into the workspace before a build pins them.

A fresh clone has the ``.dvc`` files but not the data they track; ``dvc pull`` fetches them
from the project's DVC remote. What arrives is then checked against its ``.dvc`` md5 by the
data pin, so a fetch can never slip altered data into a build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bitwright.errors import OperationalError
from bitwright.pins.data import find_dvc_files, read_dvc_file

__all__ = ["dvc_executable", "pull_missing_data"]


def dvc_executable() -> list[str]:
    """The DVC command of bitwright's own environment."""
    beside = Path(sys.executable).parent / "dvc"
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "dvc"]


def pull_missing_data(repo: Path, *, dvc_files: tuple[Path, ...] | None = None) -> tuple[str, ...]:
    """``dvc pull`` every ``.dvc`` file whose data is absent; return the paths fetched.

    Args:
        repo: the repository root.
        dvc_files: the ``.dvc`` files of ``repo`` as
            :func:`~bitwright.pins.data.find_dvc_files` returns them, when the caller
            already has them; ``None`` walks the repository here.

    Raises:
        OperationalError: DVC could not fetch a snapshot (no remote, object missing).
    """
    missing: list[tuple[str, str]] = []
    for tracked in find_dvc_files(repo) if dvc_files is None else dvc_files:
        for out in read_dvc_file(repo, tracked):
            if not (repo / out.path).exists():
                missing.append((out.dvc_file, out.path))
    if not missing:
        return ()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for dvc_file, path in missing:
        done = subprocess.run(
            [*dvc_executable(), "pull", "-q", dvc_file],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not (repo / path).exists():
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise OperationalError(
                f"data snapshot {path} is not in the workspace and `dvc pull {dvc_file}` "
                f"failed: {reason}",
                hint="check the DVC remote in .dvc/config (`dvc remote list`)",
            )
    return tuple(path for _, path in missing)
