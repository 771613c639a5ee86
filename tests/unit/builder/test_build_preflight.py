"""Preflight: the repository is walked for ``.dvc`` files once, params are checked via a memo."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bitwright.builder.data as build_data
import bitwright.builder.preflight as build_preflight
import bitwright.pins.data as pins_data
import bitwright.pipeline.params as params
from bitwright.attest import generate_keypair
from bitwright.builder.data import pull_missing_data
from bitwright.builder.paths import ProjectPaths
from bitwright.builder.preflight import preflight
from bitwright.errors import OperationalError
from bitwright.pipeline import write_params_file

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = b"id,label\n1,cat\n"


def _dvc_file(md5: str, path: str) -> str:
    return f"outs:\n- md5: {md5}\n  size: {len(DATA)}\n  hash: md5\n  path: {path}\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user git config, a private digest cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(tmp_path / "digests.sqlite"))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Preflight Tester")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "preflight@example.org")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed project: reference configs and container lock, one ``dvc add``ed file."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "configs", repo / "configs")
    shutil.copytree(REPO_ROOT / "containers", repo / "containers")
    write_params_file(repo)
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_bytes(DATA)
    (repo / "data" / "raw.csv.dvc").write_text(_dvc_file(hashlib.md5(DATA).hexdigest(), "raw.csv"))
    (repo / ".gitignore").write_text(".bitwright/\n/data/raw.csv\n")
    generate_keypair(ProjectPaths(repo).keys)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "project")
    return repo


def test_preflight_walks_once_and_memoizes_the_params_check(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks: list[Path] = []
    real = pins_data.find_dvc_files

    def counted(repo: Path) -> tuple[Path, ...]:
        walks.append(repo)
        return real(repo)

    def no_walk(repo: Path) -> tuple[Path, ...]:
        raise AssertionError(f"walked {repo} again")

    monkeypatch.setattr(build_preflight, "find_dvc_files", counted)
    monkeypatch.setattr(build_data, "find_dvc_files", no_walk)
    monkeypatch.setattr(pins_data, "find_dvc_files", no_walk)
    key = ProjectPaths(project).owner_key

    first = preflight(project, key_path=key, allow_dirty=False, strict=False)
    assert len(walks) == 1
    assert [pin.path for pin in first.pins.data] == ["data/raw.csv"]
    assert ProjectPaths(project).params_memo.is_file()

    def refuse(*_: object) -> str:
        raise AssertionError("composed although the memo should have answered")

    monkeypatch.setattr(params, "_compose_yaml", refuse)
    second = preflight(project, key_path=key, allow_dirty=False, strict=False)
    assert second.pins == first.pins


def test_pull_uses_the_given_dvc_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    tracked = repo / "data" / "raw.csv.dvc"
    tracked.write_text(_dvc_file(hashlib.md5(DATA).hexdigest(), "raw.csv"))  # data absent

    def no_walk(root: Path) -> tuple[Path, ...]:
        raise AssertionError(f"walked {root}")

    monkeypatch.setattr(build_data, "find_dvc_files", no_walk)
    failing_dvc = [sys.executable, "-c", "import sys; sys.exit('no remote')"]
    monkeypatch.setattr(build_data, "dvc_executable", lambda: failing_dvc)
    assert pull_missing_data(repo, dvc_files=()) == ()
    with pytest.raises(OperationalError, match=r"data/raw\.csv is not in the workspace") as caught:
        pull_missing_data(repo, dvc_files=(tracked,))
    assert "no remote" in caught.value.message
    with pytest.raises(AssertionError, match="walked"):
        pull_missing_data(repo)


def test_a_cpu_without_the_pinned_kernel_path_is_refused_before_anything_is_pinned(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a rebuild on another machine meets first (its build runs this preflight)."""
    key = ProjectPaths(project).owner_key
    monkeypatch.setattr(build_preflight, "cpu_flags", lambda: frozenset({"sse2", "avx"}))
    pulled: list[Path] = []
    monkeypatch.setattr(build_preflight, "pull_missing_data", lambda *a, **k: pulled.append(a[0]))
    with pytest.raises(OperationalError, match="cannot run the pinned CPU kernel path 'avx2'") as e:
        preflight(project, key_path=key, allow_dirty=False, strict=False)
    assert "lacks avx2, fma" in e.value.message and "AVX2" in e.value.hint
    assert pulled == []  # refused before any data was fetched
