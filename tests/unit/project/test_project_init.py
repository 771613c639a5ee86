"""bitwright init: wraps every stage, reversibly; config, .gitignore, key; a clean tree after."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwright.errors import KeyProblem, OperationalError, UsageError
from bitwright.pipeline import load_pipeline
from bitwright.project import CONFIG_PATH, init_project, load_project_config, undo_init
from bitwright.project._wrap import cmd_spans, needs_shell, unwrap_text, wrap_text

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "sklearn_project"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, env=_env()
    )
    return done.stdout


def _env() -> dict[str, str]:
    import os

    return {**os.environ, **GIT_ENV}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The sample DVC project, committed (``.dvc/`` stands in for `dvc init`)."""
    root = tmp_path / "project"
    shutil.copytree(SAMPLE, root)
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a DVC project")
    return root


def test_init_wraps_every_stage_and_the_tree_is_clean_after_a_commit(repo: Path) -> None:
    original = (repo / "dvc.yaml").read_bytes()
    result = init_project(repo)
    assert result.wrapped == ("prepare", "split", "train", "evaluate")
    pipeline = load_pipeline(repo)
    prepare = pipeline.stage("prepare")
    assert prepare.cmd.startswith("bitwright stage run prepare -- sh -c '")
    assert shlex.split(prepare.inner_cmd) == [
        "sh",
        "-c",
        "mkdir -p data/prepared && sed '/^#/d' data/raw/wine.csv > data/prepared/wine.csv",
    ]
    assert shlex.split(pipeline.stage("train").inner_cmd) == ["python", "src/train.py"]
    config = load_project_config(repo)
    assert config.allowances("train").writable == (".dvc/tmp",)
    assert config.allowances("evaluate").writable == (".dvc/tmp",)
    assert config.allowances("split").writable == ()
    assert (repo / ".bitwright/keys/owner.key").stat().st_mode & 0o777 == 0o600
    assert any("new owner key" in line for line in result.changes)
    assert result.next_steps[-1] == "bitwright build"

    git(repo, "add", *result.next_steps[0].split()[2:])
    git(repo, "commit", "-q", "-m", "Build with bitwright")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "ls-files", CONFIG_PATH).strip() == CONFIG_PATH

    again = init_project(repo)
    assert again.changes == () and again.already == result.wrapped
    undone = undo_init(repo)
    assert undone.wrapped == result.wrapped
    assert (repo / "dvc.yaml").read_bytes() == original
    assert git(repo, "show", "HEAD~1:.gitignore") == (repo / ".gitignore").read_text()
    assert (repo / ".bitwright/keys/owner.key").exists()  # a key is never deleted


def test_an_existing_directory_ignore_is_disabled_so_the_config_can_be_committed(
    repo: Path,
) -> None:
    (repo / ".gitignore").write_text("/models\n.bitwright/\n")
    init_project(repo, make_key=False)
    text = (repo / ".gitignore").read_text()
    assert "#bitwright init disabled: .bitwright/\n" in text
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", CONFIG_PATH], cwd=repo, check=False
    ).returncode
    assert ignored == 1  # not ignored
    assert (
        subprocess.run(["git", "check-ignore", "-q", ".bitwright/keys/x"], cwd=repo).returncode == 0
    )
    undo_init(repo)
    assert (repo / ".gitignore").read_text() == "/models\n.bitwright/\n"


def test_a_stage_that_cannot_be_wrapped_leaves_every_file_as_it_was(repo: Path) -> None:
    text = (repo / "dvc.yaml").read_text()
    multi = text.replace(
        "    cmd: python src/split.py\n", "    cmd: |\n      python a.py\n      python b.py\n"
    )
    (repo / "dvc.yaml").write_text(multi)
    with pytest.raises(UsageError, match="stage 'split': a multi-line cmd cannot be wrapped"):
        init_project(repo)
    assert (repo / "dvc.yaml").read_text() == multi
    assert not (repo / CONFIG_PATH).exists() and not (repo / ".bitwright").exists()


def test_init_refuses_what_is_not_a_git_and_dvc_project(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(OperationalError, match="not the root of a git work tree"):
        init_project(tmp_path)
    shutil.rmtree(repo / ".dvc")
    with pytest.raises(OperationalError, match="not a DVC project"):
        init_project(repo)


def test_a_wrapped_cmd_edited_by_hand_is_not_unwrapped_wrongly(repo: Path) -> None:
    init_project(repo, make_key=False)
    text = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(text.replace("run train -- python", "run evaluate -- python"))
    with pytest.raises(UsageError, match="stage 'train': its cmd runs another stage"):
        undo_init(repo)


COMMANDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r"),
    min_size=1,
    max_size=60,
).filter(
    lambda c: c.strip() == c and not c.startswith(("#", "&", "*", "!", "|", ">", "%", "@", "`"))
)


@settings(max_examples=300, deadline=None)
@given(command=COMMANDS, style=st.sampled_from(["plain", "single", "double"]))
def test_wrap_then_unwrap_gives_the_text_back_and_runs_the_same_command(
    command: str, style: str
) -> None:
    scalar = {
        "plain": command,
        "single": "'" + command.replace("'", "''") + "'",
        "double": json.dumps(command),
    }[style]
    text = f"stages:\n  s:\n    cmd: {scalar}\n    outs: [x]\n"
    try:
        parsed = yaml.safe_load(text)["stages"]["s"]["cmd"]
    except (yaml.YAMLError, TypeError, KeyError):
        return  # not a plain scalar YAML reads back; DVC would refuse the file too
    if not isinstance(parsed, str) or parsed != command:
        return
    (span,) = cmd_spans(text)
    try:
        wrapped = wrap_text(span, text)
    except UsageError:
        return  # refused, and then nothing is written
    new = text[: span.start] + wrapped + text[span.end :]
    value = yaml.safe_load(new)["stages"]["s"]["cmd"]
    inner = value.removeprefix("bitwright stage run s -- ")
    if needs_shell(command) or command.startswith("sh -c '"):
        assert shlex.split(inner) == ["sh", "-c", command]
    else:
        assert shlex.split(inner) == shlex.split(command)
    (again,) = cmd_spans(new)
    restored = new[: again.start] + str(unwrap_text(again, new)) + new[again.end :]
    assert restored == text


def test_the_cli_says_what_changed_and_what_to_run_next(repo: Path) -> None:
    bitwright = str(Path(sys.executable).parent / "bitwright")
    done = subprocess.run(
        [bitwright, "init", "--json", "--no-key"], cwd=repo, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["wrapped"] == ["prepare", "split", "train", "evaluate"]
    assert data["next"][-1] == "bitwright build"
    assert "changed dvc.yaml: wrapped the cmd of prepare, split, train, evaluate" in done.stderr
    undo = subprocess.run([bitwright, "init", "--undo"], cwd=repo, capture_output=True, text=True)
    assert undo.returncode == 0 and "unwrapped the cmd of" in undo.stderr
    broken = subprocess.run([bitwright, "init"], cwd=repo.parent, capture_output=True, text=True)
    assert broken.returncode == 3 and "not the root of a git work tree" in broken.stderr


def test_an_unusable_owner_key_is_said_before_anything_is_written(repo: Path) -> None:
    key = repo / ".bitwright" / "keys" / "owner.key"
    key.parent.mkdir(parents=True)
    key.write_text("not a key\n")
    before = (repo / "dvc.yaml").read_bytes()
    with pytest.raises(KeyProblem):
        init_project(repo)
    assert (repo / "dvc.yaml").read_bytes() == before
    assert not (repo / CONFIG_PATH).exists()
