"""bitwright's one way to run DVC and fetch its data: ``dvc`` of bitwright's own environment.

Every ``dvc`` command bitwright runs (``repro`` in a build, ``pull`` of data snapshots into a
workspace or a build, ``pull`` of a stage's recorded outputs for a partial rebuild) takes its
executable from :func:`dvc_executable` and its environment from :func:`dvc_environment`
(DVC never phones home), and every fetch goes through :func:`dvc_pull`.

A fresh clone has the ``.dvc`` files but not the data they track; :func:`pull_missing_data`
fetches them before a build pins them. What arrives is then checked against its ``.dvc`` md5
by the data pin, so a fetch can never slip altered data into a build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bitwright.errors import OperationalError, ToolError
from bitwright.pins import DVC_ENV
from bitwright.pins.data import find_dvc_files, read_dvc_file

__all__ = ["dvc_environment", "dvc_executable", "dvc_pull", "pull_missing_data"]


def dvc_executable() -> list[str]:
    """The DVC command of bitwright's own environment."""
    beside = Path(sys.executable).parent / "dvc"
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "dvc"]


def dvc_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every ``dvc`` command: this process's, no analytics, ``extra``."""
    return {**os.environ, **DVC_ENV, **(extra or {})}


def dvc_pull(repo: Path, target: str) -> str | None:
    """``dvc pull --quiet TARGET`` in ``repo``: None when it worked, else why not (DVC's words).

    ``target`` is a ``.dvc`` file or a stage name (its recorded outputs).

    Raises:
        ToolError: DVC cannot be started at all.
    """
    try:
        done = subprocess.run(
            [*dvc_executable(), "pull", "--quiet", target],
            cwd=repo,
            env=dvc_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ToolError(f"cannot run dvc: {exc}", hint="run `make setup` to install it") from None
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr + done.stdout).strip().splitlines() if line.strip()]
    return " ".join(lines[-2:]) if lines else f"exit status {done.returncode}"


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
    for dvc_file, path in missing:
        reason = dvc_pull(repo, dvc_file)
        if reason is not None or not (repo / path).exists():
            raise OperationalError(
                f"data snapshot {path} is not in the workspace and `dvc pull {dvc_file}` "
                f"failed: {reason or 'it did not arrive'}",
                hint="check the DVC remote in .dvc/config (`dvc remote list`)",
            )
    return tuple(path for _, path in missing)
