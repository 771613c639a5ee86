"""The params.yaml check memo: a passed check is not recomposed, a stale file never passes."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import bitwright.pipeline.params as params
from bitwright.digest import DigestCache
from bitwright.errors import OperationalError
from bitwright.pipeline import check_params_file, write_params_file

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG_FILES = sorted(
    p.relative_to(REPO_ROOT / "configs").as_posix() for p in (REPO_ROOT / "configs").rglob("*.yaml")
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the reference configs and a current params.yaml."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    write_params_file(root)
    return root


@pytest.fixture
def memo(tmp_path: Path) -> Path:
    """Where the memo goes: a directory that does not exist yet, as in a fresh clone."""
    return tmp_path / "state" / "cache" / "params.memo"


@pytest.fixture
def composed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the compositions: one entry (the config directory) per call."""
    calls: list[str] = []
    real = params._compose_yaml

    def spy(config_dir: Path, config_name: str, overrides: list[str]) -> str:
        calls.append(str(config_dir))
        return real(config_dir, config_name, overrides)

    monkeypatch.setattr(params, "_compose_yaml", spy)
    return calls


def forbid_composing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any composition fail loudly."""

    def refuse(*_: object) -> str:
        raise AssertionError("composed although the memo should have answered")

    monkeypatch.setattr(params, "_compose_yaml", refuse)


def test_memo_hit_skips_composing(repo: Path, memo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_params_file(repo, memo=memo)
    assert memo.is_file()
    forbid_composing(monkeypatch)
    check_params_file(repo, memo=memo)  # answered by the memo
    with pytest.raises(AssertionError, match="composed"):
        check_params_file(repo)  # without the memo it has to compose


def test_memo_hit_works_with_a_digest_cache(
    repo: Path, memo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DigestCache.open(tmp_path / "digests.sqlite") as cache:
        check_params_file(repo, memo=memo, cache=cache)
        forbid_composing(monkeypatch)
        check_params_file(repo, memo=memo, cache=cache)


def test_memo_hit_does_not_import_hydra(repo: Path, memo: Path) -> None:
    check_params_file(repo, memo=memo)
    script = (
        "import sys; from pathlib import Path\n"
        "from bitwright.pipeline import check_params_file\n"
        f"check_params_file(Path({str(repo)!r}), memo=Path({str(memo)!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'hydra', 'omegaconf'}))\n"
    )
    env = {**os.environ, "BITWRIGHT_DIGEST_CACHE": "off"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("config", CONFIG_FILES)
def test_any_config_change_recomposes(
    repo: Path, memo: Path, composed: list[str], config: str
) -> None:
    check_params_file(repo, memo=memo)
    assert len(composed) == 1
    path = repo / "configs" / config
    path.write_text(path.read_text() + "# a comment changes no parameter\n")
    check_params_file(repo, memo=memo)
    assert len(composed) == 2
    check_params_file(repo, memo=memo)  # the new state is memoized in turn
    assert len(composed) == 2


def test_new_config_file_recomposes(repo: Path, memo: Path, composed: list[str]) -> None:
    check_params_file(repo, memo=memo)
    (repo / "configs" / "model" / "other.yaml").write_text("name: other\n")
    check_params_file(repo, memo=memo)
    assert len(composed) == 2


def test_stale_file_is_refused_despite_a_memo(repo: Path, memo: Path) -> None:
    check_params_file(repo, memo=memo)
    train = repo / "configs" / "train" / "default.yaml"
    train.write_text(train.read_text().replace("lr: 0.05", "lr: 0.04"))
    with pytest.raises(OperationalError, match="stale"):
        check_params_file(repo, memo=memo)
    with pytest.raises(OperationalError, match="stale"):  # and it stays refused
        check_params_file(repo, memo=memo)


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace("lr: 0.05", "lr: 0.5"),
        lambda text: text + "\n",
        lambda text: text.replace("# overrides: []", '# overrides: ["train.epochs=3"]'),
    ],
    ids=["value", "trailing-newline", "header"],
)
def test_edited_params_file_is_refused_despite_a_memo(
    repo: Path, memo: Path, composed: list[str], edit: Callable[[str], str]
) -> None:
    check_params_file(repo, memo=memo)
    path = repo / "params.yaml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(OperationalError, match="stale"):
        check_params_file(repo, memo=memo)
    assert len(composed) == 2


def test_crlf_params_file_passes_as_without_a_memo(repo: Path, memo: Path) -> None:
    path = repo / "params.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    check_params_file(repo)
    check_params_file(repo, memo=memo)
    check_params_file(repo, memo=memo)


def test_other_composer_version_recomposes(
    repo: Path, memo: Path, composed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    check_params_file(repo, memo=memo)
    real = importlib.metadata.version

    def newer_hydra(dist: str) -> str:
        return "99.0" if dist == "hydra-core" else real(dist)

    monkeypatch.setattr(importlib.metadata, "version", newer_hydra)
    check_params_file(repo, memo=memo)
    assert len(composed) == 2


@pytest.mark.parametrize("content", [b"", b"not a key\n", b"\xff\xfe garbage", b"0" * 64])
def test_corrupt_memo_recomposes_and_is_replaced(
    repo: Path, memo: Path, composed: list[str], content: bytes
) -> None:
    check_params_file(repo, memo=memo)
    good = memo.read_bytes()
    memo.write_bytes(content)
    check_params_file(repo, memo=memo)
    assert len(composed) == 2
    assert memo.read_bytes() == good


def test_corrupt_memo_does_not_let_a_stale_file_pass(repo: Path, memo: Path) -> None:
    memo.parent.mkdir(parents=True)
    memo.write_text("corrupt\n")
    path = repo / "params.yaml"
    path.write_text(path.read_text().replace("lr: 0.05", "lr: 0.5"))
    with pytest.raises(OperationalError, match="stale"):
        check_params_file(repo, memo=memo)
    assert memo.read_text() == "corrupt\n"


def test_unusable_memo_path_still_checks(repo: Path, memo: Path, composed: list[str]) -> None:
    memo.mkdir(parents=True)  # a directory where the memo should be: unreadable, unwritable
    check_params_file(repo, memo=memo)
    check_params_file(repo, memo=memo)
    assert len(composed) == 2
    assert memo.is_dir()


def test_memo_written_only_after_a_passing_check(repo: Path, memo: Path) -> None:
    path = repo / "params.yaml"
    current = path.read_text()
    path.write_text(current.replace("lr: 0.05", "lr: 0.5"))
    with pytest.raises(OperationalError, match="stale"):
        check_params_file(repo, memo=memo)
    assert not memo.exists()
    path.write_text(current)
    check_params_file(repo, memo=memo)
    assert memo.is_file()
    assert not [p.name for p in memo.parent.iterdir() if p != memo]  # no temporary left


def test_environment_dependent_configs_are_not_memoized(
    repo: Path, memo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITWRIGHT_TEST_TAG", "first")
    data = repo / "configs" / "data" / "digits.yaml"
    data.write_text(data.read_text() + "tag: ${oc.env:BITWRIGHT_TEST_TAG}\n")
    write_params_file(repo)
    check_params_file(repo, memo=memo)
    assert not memo.exists()
    monkeypatch.setenv("BITWRIGHT_TEST_TAG", "second")
    with pytest.raises(OperationalError, match="stale"):
        check_params_file(repo, memo=memo)
