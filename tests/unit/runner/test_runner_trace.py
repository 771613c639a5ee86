"""Read tracing: the hook records repository reads, undeclared_reads names the undeclared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bitwright.model import StageSpec
from bitwright.runner import undeclared_reads
from bitwright.runner.trace import install_trace_hook, traced_paths

STAGE = StageSpec(
    name="train",
    cmd="python pipelines/train.py",
    deps=("pipelines/train.py", "pipelines/lib", "data/raw"),
    outs=("models/model.pt",),
    params=(("params.yaml", "train.lr"),),
)


def _trace(tmp_path: Path, repo: Path, paths: list[str]) -> Path:
    trace = tmp_path / "trace"
    trace.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in paths))
    return trace


def test_only_undeclared_repository_files_are_named(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    paths = [
        str(repo / "pipelines/train.py"),
        str(repo / "pipelines/lib/util.py"),
        str(repo / "pipelines/lib/__pycache__/util.cpython-311.pyc"),
        str(repo / "pipelines/__pycache__/helpers.cpython-311.pyc"),
        str(repo / "data/raw/a.csv"),
        str(repo / "data/rawer.csv"),
        str(repo / "params.yaml"),
        str(repo / "models/model.pt"),
        str(repo / ".venv/lib/python3.11/site-packages/torch/__init__.py"),
        str(repo / "secret.txt"),
        "/usr/lib/python3.11/os.py",
    ]
    found = undeclared_reads(
        _trace(tmp_path, repo, paths), repo=repo, stage=STAGE, allowed_extra=[".venv"]
    )
    assert found == ("data/rawer.csv", "pipelines/helpers.py", "secret.txt")


def test_a_missing_trace_means_no_reads(tmp_path: Path) -> None:
    assert undeclared_reads(tmp_path / "none", repo=tmp_path, stage=STAGE, allowed_extra=()) == ()


def test_the_hook_records_reads_even_when_they_fail(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "present.txt").write_text("x")
    hook = install_trace_hook(tmp_path / "hook")
    code = (
        "import os\n"
        "open('present.txt').read()\n"
        "open('written.txt', 'w').write('w')\n"
        "try:\n    open('sub/../hidden.txt')\nexcept FileNotFoundError:\n    pass\n"
        "os.close(os.open('present.txt', os.O_RDONLY))\n"
        "open('/etc/hostname').close()\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(hook),
        "BITWRIGHT_TRACE": str(tmp_path / "trace"),
        "BITWRIGHT_TRACE_ROOT": str(repo),
    }
    subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, check=True, timeout=60)
    assert traced_paths(tmp_path / "trace") == (
        str(repo / "present.txt"),
        str(repo / "hidden.txt"),
    )
