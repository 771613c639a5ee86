"""Fetch single DVC objects by their md5 into an audit's workspace: only the states it needs.

A training stage's states are one DVC-tracked out, pushed by the maintainer. An auditor needs
only a few of them, and the released commit's ``dvc.lock`` need not describe that build, so
each object is fetched on its own: a ``.dvc`` file per object (DVC's public format: md5, size,
``hash: md5``, path) written beside where it should land, then one ``dvc pull`` of them all.
The md5 only finds an object; what arrives is then checked against its committed sha256 by
the caller, so a remote cannot slip other bytes in.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from bitwright.builder.data import dvc_executable
from bitwright.errors import OperationalError
from bitwright.fileio import write_text_atomic
from bitwright.pins import DVC_ENV

__all__ = ["SPOTCHECK_REMOTE", "fetch_objects", "usable_remote"]

SPOTCHECK_REMOTE = "bitwright-spotcheck"
"""The DVC remote an audit adds to the workspace's ``.dvc/config.local``."""


def usable_remote(recorded: str, given: str | None) -> str | None:
    """The remote to fetch from: ``given``, else the recorded one when it can be reached here.

    ``None`` leaves DVC's own choice (the checkout's remote for the out, or its default).
    """
    if given:
        return given
    if not recorded:
        return None
    scheme = urlsplit(recorded).scheme
    if (not scheme or len(scheme) == 1) and not Path(recorded).is_dir():
        return None  # a local directory of the maintainer's machine
    return recorded


def fetch_objects(
    workspace: Path, directory: Path, objects: Mapping[str, tuple[str, int]], remote: str | None
) -> set[str]:
    """Fetch each ``name -> (md5, size)`` into ``directory``; return the names that did not come.

    Raises:
        OperationalError: DVC cannot run, or the remote is a local directory that does not exist.
    """
    wanted = {n: v for n, v in objects.items() if not (directory / n).is_file()}
    if not wanted:
        return set()
    directory.mkdir(parents=True, exist_ok=True)
    targets: list[str] = []
    for name, (md5, size) in sorted(wanted.items()):
        dvc_file = directory / f"{name}.dvc"
        write_text_atomic(
            dvc_file, f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {name}\n"
        )
        targets.append(str(dvc_file.relative_to(workspace)))
    argv = [*dvc_executable(), "pull", "--quiet"]
    if remote is not None:
        local = not urlsplit(remote).scheme or len(urlsplit(remote).scheme) == 1
        if local and not Path(remote).is_dir():
            raise OperationalError(
                f"the DVC remote {remote} does not exist", hint="pass the remote with --data-remote"
            )
        _add_remote(workspace, remote)
        argv += ["--remote", SPOTCHECK_REMOTE]
    try:
        subprocess.run(
            [*argv, *targets],
            cwd=workspace,
            env={**os.environ, **DVC_ENV},
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise OperationalError(f"cannot run dvc: {exc}", hint="reinstall bitwright") from None
    return {n for n in wanted if not (directory / n).is_file()}


def _add_remote(workspace: Path, url: str) -> None:
    config = workspace / ".dvc" / "config.local"
    text = config.read_text(encoding="utf-8") if config.is_file() else ""
    section = f"['remote \"{SPOTCHECK_REMOTE}\"']"
    if section not in text:
        write_text_atomic(config, f"{text.rstrip()}\n{section}\n    url = {url}\n".lstrip())
