"""A tiny real project (git, DVC, Hydra configs, torch stages) for integration tests."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BITWRIGHT = str(BIN / "bitwright")

STAGE_FIRST = """\
import json, pathlib, sys
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bitwright import stagekit
settings = stagekit.begin()
import torch, yaml
params = yaml.safe_load(open("params.yaml"))
text = pathlib.Path("data/raw/input.txt").read_text()
if params["first"].get("crash"):
    raise SystemExit(7)
if params["first"].get("peek"):
    pathlib.Path("notes/secret.txt").read_text()
if params["first"].get("undo_determinism"):
    torch.use_deterministic_algorithms(False)
gen = torch.Generator().manual_seed(settings.seed)
x = torch.randn(4, generator=gen) * params["first"]["scale"]
out = {"n": len(text), "x": x.tolist()}
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/first.json").write_text(json.dumps(out, sort_keys=True))
"""

STAGE_SECOND = """\
import json, pathlib
from bitwright import stagekit
stagekit.begin()
data = json.loads(pathlib.Path("out/first.json").read_text())
pathlib.Path("out/second.json").write_text(json.dumps({"sum": sum(data["x"])}, sort_keys=True))
"""

DVC_YAML = """\
stages:
  first:
    cmd: bitwright stage run first -- python stages/first.py
    deps:
      - stages/first.py
      - data/raw
    params:
      - first
    outs:
      - out/first.json
  second:
    cmd: bitwright stage run second -- python stages/second.py
    deps:
      - stages/second.py
      - out/first.json
    outs:
      - out/second.json
"""

CONFIG = """\
first:
  scale: 2.0
  crash: false
  peek: false
  undo_determinism: false
determinism:
  seed: 7
  torch_deterministic: true
  cudnn_benchmark: false
  allow_tf32: false
  threads: 1
  pythonhashseed: 0
  cublas_workspace_config: ":4096:8"
  mkl_cbwr: AVX2,STRICT
"""


def env() -> dict[str, str]:
    """The environment for git/dvc/bitwright subprocesses in tests."""
    e = dict(os.environ)
    e.update(
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
        PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}",
    )
    return e


def sh(
    *args: str, cwd: Path, check: bool = True, more_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd`` (with ``more_env`` set too) and capture its output."""
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**env(), **(more_env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def commit(repo: Path, message: str = "change") -> None:
    """Commit every change in ``repo``."""
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", message, cwd=repo)


def set_config(repo: Path, **first: object) -> None:
    """Change keys of ``first:`` in the Hydra config, recompose params.yaml and commit."""
    config = repo / "configs" / "config.yaml"
    text = config.read_text()
    for key, value in first.items():
        lines = text.splitlines()
        lines = [
            f"  {key}: {str(value).lower() if isinstance(value, bool) else value}"
            if line.strip().startswith(f"{key}:")
            else line
            for line in lines
        ]
        text = "\n".join(lines) + "\n"
    config.write_text(text)
    sh(BITWRIGHT, "params", "--write", cwd=repo)
    commit(repo, f"config {first}")


_TEMPLATE: list[Path] = []


def make_project(base: Path) -> Path:
    """Give ``base`` its own copy of a committed two-stage project and its DVC remote.

    The project is created once per test process (a dozen CLI start-ups) and copied; each
    copy points at its own copy of the remote, so a test may alter either freely.
    """
    return copy_of_template(_TEMPLATE, _create_project, base, "project")


def copy_of_template(
    made: list[Path], create: Callable[[Path], object], base: Path, name: str
) -> Path:
    """Copy the repository ``name`` and its DVC remote, made once per process, into ``base``.

    ``create(dir)`` makes ``dir/name`` and ``dir/remote`` the first time (kept in ``made``);
    each copy's DVC remote is its own copy of the remote.
    """
    if not made:
        template = Path(tempfile.mkdtemp(prefix=f"bitwright-{name}-"))
        atexit.register(shutil.rmtree, template, True)
        create(template)
        made.append(template)
    return copy_with_remote(made[0] / name, base / name)


def copy_with_remote(repo: Path, copy: Path) -> Path:
    """Copy ``repo`` and its DVC remote (beside it, ``remote``) to ``copy`` and beside it.

    The copy's ``.dvc/config.local`` names its own remote, so either may change freely.
    """
    shutil.copytree(repo, copy, symlinks=True)
    shutil.copytree(repo.parent / "remote", copy.parent / "remote")
    config = copy / ".dvc" / "config.local"
    config.write_text(
        config.read_text().replace(str(repo.parent / "remote"), str(copy.parent / "remote"))
    )
    return copy


def _create_project(base: Path) -> Path:
    """Create a committed two-stage project with DVC-tracked data and a local DVC remote."""
    repo = base / "project"
    (repo / "stages").mkdir(parents=True)
    (repo / "configs").mkdir()
    (repo / "data" / "raw").mkdir(parents=True)
    (repo / "notes").mkdir()
    shutil.copytree(ROOT / "containers", repo / "containers")
    (repo / "stages" / "first.py").write_text(STAGE_FIRST)
    (repo / "stages" / "second.py").write_text(STAGE_SECOND)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "configs" / "config.yaml").write_text(CONFIG)
    (repo / "data" / "raw" / "input.txt").write_text("hello reproducible world\n")
    (repo / "notes" / "secret.txt").write_text("not a declared input\n")
    (repo / ".gitignore").write_text(".bitwright/\n")
    (repo / "out").mkdir()
    (repo / "out" / ".gitignore").write_text("/first.json\n/second.json\n")
    commit_with_data(repo, base / "remote")
    sh(BITWRIGHT, "keygen", cwd=repo)
    return repo


def commit_with_data(repo: Path, remote: Path) -> None:
    """Make the files in ``repo`` a committed git + DVC project.

    ``data/raw`` is tracked by DVC and pushed to a local remote at ``remote``, and
    ``params.yaml`` composed from ``configs/`` when there is one.
    """
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    sh("dvc", "config", "core.analytics", "false", cwd=repo)
    remote.mkdir()
    # a local directory remote is machine-specific: it lives in the untracked config.local
    sh("dvc", "remote", "add", "--local", "-d", "origin", str(remote), cwd=repo)
    sh("dvc", "add", "-q", "data/raw", cwd=repo)
    sh("dvc", "push", "-q", cwd=repo)
    if (repo / "configs").is_dir():
        sh(BITWRIGHT, "params", "--write", cwd=repo)
    commit(repo, "project")


def textblock(text: str) -> str:
    """Dedent helper for inline files."""
    return textwrap.dedent(text)


def add_third_party_input(repo: Path, base: Path, *, unpinned: bool = False) -> Path:
    """Pin a third-party tree as ``third_party/embeddings`` and make stage ``second`` read it.

    With ``unpinned``, ``second`` also reads ``vendor/extra.txt``, a file copied in by hand
    that no pin covers. Both are git-ignored; the change is committed. Returns the upstream
    directory the pin was fetched from.
    """
    upstream = base / "upstream" / "embeddings"
    upstream.mkdir(parents=True)
    (upstream / "vectors.txt").write_text("0.1 0.2\n")
    (repo / ".gitignore").write_text(".bitwright/\nthird_party/\nvendor/\n")
    sh(BITWRIGHT, "pin", "add", str(upstream), cwd=repo)
    deps = "      - third_party/embeddings\n"
    if unpinned:
        (repo / "vendor").mkdir()
        (repo / "vendor" / "extra.txt").write_text("copied by hand\n")
        deps += "      - vendor/extra.txt\n"
    first = "      - out/first.json\n"
    text = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(text.replace(f"{first}    outs:", f"{first}{deps}    outs:"))
    commit(repo, "third-party inputs")
    return upstream
