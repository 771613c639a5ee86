"""A stage's trajectory is checked before its link is signed; its summary is what is signed."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from bitwright.builder.trajectory import provenance_byproduct, trajectory_summary
from bitwright.errors import StageFailed
from bitwright.model import StageSpec
from bitwright.pipeline.dvcfile import output_remote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trajectory"))
from _trajloop import run_loop  # noqa: E402

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [data.bin]
    outs:
      - model.json
      - run:
          remote: states
"""
DVC_CONFIG = """\
[core]
    remote = origin
['remote "origin"']
    url = ../origin-remote
['remote "states"']
    url = ../states-remote
"""
SPEC = StageSpec("train", "python train.py", ("data.bin",), ("model.json", "run"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("data.bin").write_bytes(b"twenty items of training data")
    run_loop(Path("run"), Path("data.bin")).finish()
    Path("model.json").write_text("{}")
    Path("dvc.yaml").write_text(DVC_YAML)
    Path(".dvc").mkdir()
    Path(".dvc/config").write_text(DVC_CONFIG)
    return tmp_path


def _products(repo: Path) -> dict[str, str]:
    files = [p for p in repo.rglob("*") if p.is_file() and ".dvc" not in p.parts]
    return {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def test_the_summary_carries_head_root_counts_and_the_outs_remote(repo: Path) -> None:
    summary = trajectory_summary(repo, SPEC, _products(repo))
    assert summary is not None
    doc = json.loads((repo / "run" / "bitwright-trajectory.json").read_text())
    assert summary["chainHead"] == doc["chainHead"] and summary["merkleRoot"] == doc["merkleRoot"]
    assert (summary["segments"], summary["steps"]) == (12, 36)
    assert summary["remote"] == str(repo / "states-remote")
    described = provenance_byproduct("train", summary)
    assert described["name"] == "trajectory/train"
    assert described["annotations"]["chainHead"] == doc["chainHead"]


def test_a_stage_without_a_trajectory_has_no_summary(repo: Path) -> None:
    products = {p: d for p, d in _products(repo).items() if not p.startswith("run/")}
    assert trajectory_summary(repo, SPEC, products) is None


def test_a_broken_trajectory_fails_the_stage(repo: Path) -> None:
    path = repo / "run" / "bitwright-trajectory.json"
    doc = json.loads(path.read_text())
    doc["segments"][2]["batches"] = "0" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(StageFailed, match="segment 2"):
        trajectory_summary(repo, SPEC, _products(repo))


def test_states_the_run_did_not_produce_fail_the_stage(repo: Path) -> None:
    products = _products(repo)
    products["run/state-0000003.json"] = "0" * 64
    with pytest.raises(StageFailed, match="state-0000003.json, which the run did not produce"):
        trajectory_summary(repo, SPEC, products)
    del products["run/state-0000003.json"]
    with pytest.raises(StageFailed):
        trajectory_summary(repo, SPEC, products)


def test_a_model_that_is_not_a_product_fails_the_stage(repo: Path) -> None:
    products = {p: d for p, d in _products(repo).items() if p != "model.json"}
    with pytest.raises(StageFailed, match="names the model model.json"):
        trajectory_summary(repo, SPEC, products)


def test_an_outs_remote_option_is_read_from_dvc_yaml(repo: Path) -> None:
    assert output_remote(repo, "train", "run") == "states"
    assert output_remote(repo, "train", "model.json") == ""
