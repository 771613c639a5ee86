"""A stage DVC runs on its own (dvc repro, dvc exp run) is sealed and judged, never signed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bitwright.builder import run_stage
from bitwright.builder.context import CONTEXT_ENV
from bitwright.builder.paths import ProjectPaths
from bitwright.errors import ReceiptMismatch, StageFailed, UsageError

STAGE = """
import json, os, pathlib
pathlib.Path("out").mkdir(exist_ok=True)
written = "no"
try:
    pathlib.Path(".dvc/tmp/signal").write_text("x")
    written = "yes"
except OSError:
    pass
receipt = os.environ.get("LIE_IN_RECEIPT")
if receipt:  # claims a generator seeded with 99, which no declared seed gives
    fields = dict(kind="stagekit", phase="begin", pid=os.getpid(), seed=99,
                  generators={"random": "9" * 64})
    with open(os.environ["BITWRIGHT_RECEIPT"], "a") as f:
        f.write(json.dumps(fields) + "\\n")
pathlib.Path("out/result.json").write_text(json.dumps({"dvc_tmp_written": written}))
if os.environ.get("EXIT_HARD"):
    os._exit(0)
"""

DVC_YAML = """\
stages:
  work:
    cmd: bitwright stage run work -- python work.py
    deps: [work.py]
    outs: [out/result.json]
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "work.py").write_text(STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / ".dvc" / "tmp").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(tmp_path / "digests.sqlite"))
    return root


def test_a_development_run_needs_no_key_nor_commit_and_leaves_no_link(repo: Path) -> None:
    paths = ProjectPaths(repo)
    assert not paths.owner_key.exists()
    outcome = run_stage(repo, "work", ["python", "work.py"], host_env=dict(os.environ))
    assert outcome.link is None
    assert not paths.links.exists() or not any(paths.links.iterdir())
    assert json.loads((repo / "out/result.json").read_text()) == {"dvc_tmp_written": "no"}
    assert outcome.run.sandbox.env_cleared or outcome.run.sandbox.kind.value != "bubblewrap"
    assert outcome.run.receipts.runner is not None  # the runner confirms any stage
    assert not any("requires it" in w for w in outcome.warnings)


def test_a_development_run_missing_a_receipt_warns_what_a_build_would_refuse(repo: Path) -> None:
    config = repo / ".bitwright" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('[sandbox]\nenv = ["EXIT_HARD"]\n')
    env = {**os.environ, "EXIT_HARD": "1"}
    outcome = run_stage(repo, "work", ["python", "work.py"], host_env=env)
    assert outcome.link is None
    assert any("Python receipt" in w and "requires it" in w for w in outcome.warnings)


def test_the_project_config_applies_to_development_runs(repo: Path) -> None:
    config = repo / ".bitwright" / "config.toml"
    config.parent.mkdir()
    config.write_text('[stages.work.sandbox]\nwritable = [".dvc/tmp"]\n')
    outcome = run_stage(repo, "work", ["python", "work.py"])
    assert outcome.run.allowances.writable == (".dvc/tmp",)
    if outcome.run.sandbox.kind.value == "bubblewrap":
        assert json.loads((repo / "out/result.json").read_text()) == {"dvc_tmp_written": "yes"}
        assert not (repo / ".dvc/tmp/signal").exists()
    config.write_text('[stages.wrok.sandbox]\nwritable = [".dvc/tmp"]\n')
    with pytest.raises(UsageError, match=r"\[stages.wrok\] names no stage"):
        run_stage(repo, "work", ["python", "work.py"])


def test_a_receipt_that_contradicts_the_declaration_still_fails_the_stage(repo: Path) -> None:
    env = {**os.environ, "LIE_IN_RECEIPT": "1"}
    run_stage(repo, "work", ["python", "work.py"], host_env=env)  # the variable is not passed
    config = repo / ".bitwright" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('[sandbox]\nenv = ["LIE_IN_RECEIPT"]\n')
    with pytest.raises(ReceiptMismatch, match="random generator state: declared 'seeded with 0"):
        run_stage(repo, "work", ["python", "work.py"], host_env=env)


def test_a_command_that_is_not_the_stages_is_refused(repo: Path) -> None:
    with pytest.raises(UsageError, match="is not the one in dvc.yaml"):
        run_stage(repo, "work", ["python", "other.py"])
    (repo / "work.py").write_text("raise SystemExit(4)\n")
    with pytest.raises(StageFailed, match="exited with status 4"):
        run_stage(repo, "work", ["python", "work.py"])
