"""bitwright on an existing scikit-learn + dvclive DVC project, with no change to its stage code.

init -> commit (a clean tree) -> the everyday DVC loop -> build -> release -> verify ->
rebuild --compare -> REPRODUCED.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.project import BITWRIGHT, commit, env, sh
from tests.integration.sample import make_sample, with_stagekit

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _init_and_commit(repo: Path) -> None:
    done = sh(BITWRIGHT, "init", cwd=repo)
    assert "next:" in done.stderr and "bitwright build" in done.stderr
    commit(repo, "Build with bitwright")
    assert sh("git", "status", "--porcelain", "--untracked-files=all", cwd=repo).stdout == ""


def dvc_exp(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dvc exp ...``: its git commits (dulwich) refuse the tests' fixed ISO commit dates."""
    plain = {k: v for k, v in env().items() if not k.endswith("_DATE")}
    return subprocess.run(
        ["dvc", "exp", *args], cwd=repo, env=plain, capture_output=True, text=True, check=False
    )


def _payload(envelope_path: Path) -> dict[str, Any]:
    envelope = json.loads(envelope_path.read_text())
    payload: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return payload


def _release_verify_rebuild(repo: Path, tmp_path: Path) -> dict[str, Any]:
    release = tmp_path / "release"
    sh(BITWRIGHT, "release", "--out", str(release), cwd=repo)
    key = str(repo / ".bitwright" / "keys" / "owner.pub")
    verified = sh(BITWRIGHT, "verify", str(release), "--key", key, cwd=tmp_path, check=False)
    assert verified.returncode == 0, verified.stderr
    rebuilt = sh(
        BITWRIGHT, "rebuild", str(release), "--key", key, "--json", "--out",
        str(tmp_path / "rebuild"), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr
    report: dict[str, Any] = json.loads(rebuilt.stdout)
    assert report["verdict"] == "REPRODUCED"
    return report


def test_a_project_whose_stages_do_not_know_bitwright_builds_and_reproduces(
    tmp_path: Path,
) -> None:
    repo = make_sample(tmp_path)
    _init_and_commit(repo)
    built = sh(BITWRIGHT, "build", cwd=repo, check=False)
    assert built.returncode == 0, built.stderr
    _release_verify_rebuild(repo, tmp_path)


def test_the_sample_builds_releases_what_it_declares_verifies_and_reproduces(
    tmp_path: Path,
) -> None:
    repo = make_sample(tmp_path)
    with_stagekit(repo)
    _init_and_commit(repo)
    built = sh(BITWRIGHT, "build", "--json", cwd=repo, check=False)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["ran"] == ["prepare", "split", "train", "evaluate"]

    statement = _payload(repo / ".bitwright/attestations/provenance.intoto.json")
    subjects = {s["name"] for s in statement["subject"]}
    assert subjects == {
        "models/model.pkl",
        "dvclive/metrics.json",
        "dvclive/plots/metrics/train/accuracy.tsv",
        "dvclive/plots/metrics/trees.tsv",
        "eval/metrics.json",
    }
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["release"]["paths"][0] == "models/model.pkl"
    internal = definition["internalParameters"]
    assert internal["allowances"] == {
        stage: {"env": [], "writable": [".dvc/tmp"], "network": False}
        for stage in ("evaluate", "train")
    }
    assert internal["hermetic"] is True
    assert "container" not in internal  # no images.lock: stages on the host
    train_link = next((repo / ".bitwright/attestations/links").glob("train.*.link"))
    recorded = _payload(train_link)["byproducts"]["allowances"]
    assert recorded == {"env": [], "writable": [".dvc/tmp"], "network": False}

    report = _release_verify_rebuild(repo, tmp_path)
    assert [s["verdict"] for s in report["stages"]] == ["REPRODUCED"] * 4
    aibom = json.loads((tmp_path / "release" / "aibom.cdx.json").read_text())
    kinds = {
        c["name"]: c["type"] for c in aibom["components"] if c.get("bom-ref", "")[:5] != "pkg:"
    }
    assert kinds["wine-classifier"] == "machine-learning-model"
    assert kinds["eval/metrics.json"] == kinds["dvclive/plots/metrics/trees.tsv"] == "data"
    markdown = (tmp_path / "rebuild" / "report.md").read_text()
    assert "## Products" in markdown and "`data/split`" not in markdown
    assert "| `split` | `data/split/train.csv` | matched |" in markdown


def test_the_everyday_dvc_loop_stays_dvcs(tmp_path: Path) -> None:
    repo = make_sample(tmp_path)
    _init_and_commit(repo)
    repro = sh("dvc", "repro", cwd=repo, check=False)
    assert repro.returncode == 0, repro.stderr
    assert "development run: sealed but not attested" in repro.stderr
    assert not list((repo / ".bitwright").glob("attestations/links/*.link"))
    commit(repo, "first results")
    status = sh("dvc", "status", cwd=repo)
    assert "up to date" in status.stdout
    exp = dvc_exp(repo, "run", "-S", "train.n_estimators=40")
    assert exp.returncode == 0, exp.stderr
    sh("git", "checkout", "--", ".", cwd=repo)
    queued = dvc_exp(repo, "run", "--queue", "-S", "train.max_depth=3")
    assert "Queued experiment" in queued.stdout + queued.stderr
    ran = dvc_exp(repo, "run", "--run-all")
    assert ran.returncode == 0, ran.stderr
    shown = dvc_exp(repo, "show", "--csv").stdout.splitlines()
    rows = [line.split(",") for line in shown]
    depth = rows[0].index("train.max_depth")
    trees = rows[0].index("train.n_estimators")
    accuracy = rows[0].index("accuracy")
    values = {(r[depth], r[trees]) for r in rows[1:] if r[accuracy]}
    assert {("6", "40"), ("3", "60")} <= values
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("max_depth: 6", "max_depth: 5"))
    refused = sh(BITWRIGHT, "build", cwd=repo, check=False)
    assert refused.returncode == 3, refused.stderr  # only a build needs a clean tree
    assert "params.yaml" in refused.stderr
