"""Fixtures of the pins tests: hermetic git and DVC in tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from _pinkit import dvc, git, hermetic_env


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config; fixed identities and dates; DVC never phones home."""
    for key, value in hermetic_env(tmp_path_factory.mktemp("home")).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory of committed git repositories holding ``files`` (path -> text)."""

    def make(files: dict[str, str] | None = None, name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for rel, text in (files or {"README.md": "hello\n"}).items():
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


DATA_FILES = {
    "data/raw.csv": "id,label\n1,cat\n2,dog\n",
    "data/images/a.txt": "image a\n",
    "data/images/nested/b.txt": "image b\n",
    "data/images/scratch.tmp": "dvcignored\n",
}


@pytest.fixture(scope="session")
def dvc_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git + DVC repository: two ``dvc add`` snapshots and one stage output."""
    env = hermetic_env(tmp_path_factory.mktemp("dvc-home"))
    repo = tmp_path_factory.mktemp("dvc-template") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", env=env)
    dvc(repo, "init", "-q", env=env)
    for rel, text in DATA_FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    (repo / ".dvcignore").write_text("*.tmp\n")
    dvc(repo, "add", "-q", "data/raw.csv", "data/images", env=env)
    (repo / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python train.py\n    deps: [data/raw.csv]\n"
        "    outs: [model.pt]\n"
    )
    (repo / "model.pt").write_bytes(b"weights")
    (repo / ".gitignore").write_text("/model.pt\n")
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", "data", env=env)
    return repo


@pytest.fixture
def dvc_repo(dvc_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of :func:`dvc_template` for one test to change."""
    repo = tmp_path / "repo"
    shutil.copytree(dvc_template, repo, symlinks=True)
    return repo
