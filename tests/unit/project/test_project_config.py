"""The project config: defaults, per-stage allowances, and what a hostile file gets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bitwright.errors import OperationalError, UsageError
from bitwright.fileio import NotRegularFile
from bitwright.model import SandboxAllowances
from bitwright.project import (
    CONFIG_PATH,
    load_project_config,
    parse_project_config,
    require_committed_config,
)

FULL = b"""
schema = 1
[sandbox]
env = ["HF_HUB_OFFLINE"]
writable = []
network = false

[stages.train.sandbox]
env = ["WANDB_MODE"]
writable = [".dvc/tmp"]

[stages.fetch.sandbox]
network = true

[release]
paths = ["reports/summary.md"]
exclude = ["dvclive/plots"]
metrics = false
framework = "scikit-learn"
"""


def test_a_project_without_a_config_gets_the_defaults(tmp_path: Path) -> None:
    config = load_project_config(tmp_path)
    assert not config.present
    assert config.allowances("train") == SandboxAllowances()
    assert (config.release.metrics, config.release.plots, config.release.paths) == (True, True, ())


def test_stage_allowances_add_to_the_projects() -> None:
    config = parse_project_config(FULL)
    assert config.allowances("train") == SandboxAllowances(
        env=("HF_HUB_OFFLINE", "WANDB_MODE"), writable=(".dvc/tmp",)
    )
    assert config.allowances("fetch").network and not config.allowances("train").network
    assert config.allowances("other") == SandboxAllowances(env=("HF_HUB_OFFLINE",))
    assert config.release.paths == ("reports/summary.md",)
    assert (config.release.metrics, config.release.framework) == (False, "scikit-learn")
    config.check_stages(["train", "fetch", "evaluate"])
    with pytest.raises(UsageError, match=r"\[stages.fetch\] names no stage of dvc.yaml"):
        config.check_stages(["train", "evaluate"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"schema = 2\n", "schema 2 is not understood"),
        (b"[sandbox]\nenviron = []\n", "unknown key sandbox.environ"),
        (b"[sandboxes]\n", "unknown key sandboxes"),
        (b"[sandbox]\nnetwork = 'yes'\n", "sandbox.network must be true or false"),
        (b"[sandbox]\nenv = 'HOME'\n", "sandbox.env must be a list of non-empty strings"),
        (b"[sandbox]\nenv = ['PATH']\n", "the variable PATH cannot be passed"),
        (b"[stages.t.sandbox]\nwritable = ['.git/hooks']\n", "lies in .git"),
        (b"[stages.t]\nsandbox = 3\n", r"\[stages.t.sandbox\] must be a table"),
        (b"[release]\nframework = 3\n", "release.framework must be a string"),
        (b"[sandbox\n", "is not valid TOML"),
        (b"\xff\xfe", "is not UTF-8 text"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply|not valid TOML"),
    ],
)
def test_a_broken_config_is_a_usage_error_naming_the_file(text: bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_project_config(text)
    assert caught.value.message.startswith(CONFIG_PATH)


def test_hostile_config_files_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_PATH
    path.parent.mkdir()
    os.mkfifo(path)
    with pytest.raises(NotRegularFile, match="FIFO"):
        load_project_config(tmp_path)
    path.unlink()
    outside = tmp_path.parent / "elsewhere.toml"
    outside.write_text("schema = 1\n")
    path.symlink_to(outside)
    with pytest.raises(NotRegularFile):
        load_project_config(tmp_path)
    path.unlink()
    path.write_bytes(b"# " + b"x" * (300 << 10) + b"\n")
    with pytest.raises(OperationalError, match="more than the 262144 accepted"):
        load_project_config(tmp_path)


def test_a_config_git_ignores_is_refused_for_a_build(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / CONFIG_PATH).parent.mkdir()
    (tmp_path / CONFIG_PATH).write_text("schema = 1\n")
    (tmp_path / ".gitignore").write_text(".bitwright/\n")
    with pytest.raises(UsageError, match="is ignored by git, so no commit records it"):
        require_committed_config(tmp_path)
    (tmp_path / ".gitignore").write_text("/.bitwright/*\n!/.bitwright/config.toml\n")
    require_committed_config(tmp_path)
