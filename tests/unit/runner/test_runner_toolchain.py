"""A toolchain that lives under /tmp (a fresh clone there) stays reachable in the sandbox."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bitwright.runner import BubblewrapSandbox, RepoView


def test_interpreter_under_tmp_is_visible_despite_the_private_tmp(
    bwrap: BubblewrapSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="toolchain-") as name:
        prefix = Path(name)
        tool = prefix / "bin" / "tool"
        tool.parent.mkdir()
        tool.write_text("#!/bin/sh\necho toolchain-ok\n")
        tool.chmod(0o755)
        monkeypatch.setattr(sys, "prefix", str(prefix))  # as if the venv lived here
        repo = tmp_path / "repo"
        repo.mkdir()
        view = RepoView.create(repo, visible=("data",), outs=(), strict=True)
        argv = bwrap.wrap([str(tool)], view=view, writable=(), env={"PATH": "/bin"}, cwd=repo)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "toolchain-ok"


def test_the_rest_of_tmp_stays_private(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir="/tmp", prefix="not-toolchain-") as other:
        repo = tmp_path / "repo"
        repo.mkdir()
        view = RepoView.create(repo, visible=(), outs=(), strict=True)
        argv = bwrap.wrap(["/bin/ls", other.name], view=view, writable=(), env={}, cwd=repo)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode != 0
