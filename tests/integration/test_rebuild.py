"""`bitwright rebuild --compare` end to end: honest, forged, altered data, one stage alone.

A tiny real project (git, DVC with a local remote, torch stages, real keys) is built and
released once per module; its first stage writes a safetensors file that the second stage
copies into the release, so a forged first-stage output shows tensor by tensor.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.integration.insider import rerun_stage, resign_link, resign_provenance
from tests.integration.project import BITWRIGHT, STAGE_FIRST, commit, make_project, sh

from bitwright.attest import generate_keypair, load_public_key
from bitwright.attest.trust import TrustPolicy
from bitwright.attest.vsa import read_vsa
from bitwright.builder import ProjectPaths
from bitwright.digest import sha256_file
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.rebuild.compare import Verdict
from bitwright.rebuild.flow import rebuild_release
from bitwright.rebuild.stages import StageRole

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGE_FIRST_WEIGHTS = (
    STAGE_FIRST
    + """
from safetensors.torch import save_file
save_file({"w": x.contiguous(), "b": torch.arange(3, dtype=torch.float32)},
          "out/weights.safetensors")
"""
)

STAGE_SECOND_COPY = """\
import json, pathlib, shutil
from bitwright import stagekit
stagekit.begin()
data = json.loads(pathlib.Path("out/first.json").read_text())
pathlib.Path("out/second.json").write_text(json.dumps({"sum": sum(data["x"])}, sort_keys=True))
shutil.copyfile("out/weights.safetensors", "out/model.safetensors")
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
      - out/weights.safetensors
  second:
    cmd: bitwright stage run second -- python stages/second.py
    deps:
      - stages/second.py
      - out/first.json
      - out/weights.safetensors
    outs:
      - out/second.json
      - out/model.safetensors
"""


def _release(repo: Path, out: Path) -> Path:
    sh(BITWRIGHT, "release", "--out", str(out), cwd=repo)
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rebuild")


@pytest.fixture(scope="module")
def project(base: Path) -> Path:
    repo = make_project(base)
    (repo / "stages" / "first.py").write_text(STAGE_FIRST_WEIGHTS)
    (repo / "stages" / "second.py").write_text(STAGE_SECOND_COPY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "out" / ".gitignore").write_text(
        "/first.json\n/second.json\n/weights.safetensors\n/model.safetensors\n"
    )
    commit(repo, "weights")
    sh(BITWRIGHT, "build", cwd=repo)
    return repo


@pytest.fixture(scope="module")
def owner(project: Path) -> TrustPolicy:
    return TrustPolicy(keys=(load_public_key(ProjectPaths(project).owner_pub),))


@pytest.fixture(scope="module")
def verifier(base: Path) -> Path:
    return generate_keypair(base / "verifier-keys", name="verifier").private_path


@pytest.fixture(scope="module")
def honest(project: Path, base: Path) -> Path:
    return _release(project, base / "honest-release")


@pytest.fixture(scope="module")
def forged(project: Path, honest: Path, base: Path) -> Path:
    """An insider forgery: first's weights altered after the run, everything re-signed."""
    repo = base / "forger"
    shutil.copytree(project, repo, symlinks=True)
    from safetensors.torch import load_file, save_file

    weights = repo / "out" / "weights.safetensors"
    tensors = load_file(weights)
    tensors["w"][1] += 0.25
    save_file(tensors, weights)
    forged_sha256 = sha256_file(weights)

    def claim_the_forged_weights(body: dict[str, Any]) -> None:
        body["products"]["out/weights.safetensors"]["sha256"] = forged_sha256

    resign_link(repo, "first", claim_the_forged_weights)
    rerun_stage(repo, "second", "python", "stages/second.py")
    resign_provenance(repo)
    return _release(repo, base / "forged-release")


def test_honest_release_rebuilds_bitwise_and_its_vsa_verifies(
    honest: Path, owner: TrustPolicy, verifier: Path, base: Path
) -> None:
    out = base / "honest-out"
    report = rebuild_release(
        honest, owner, verifier_key=verifier, out=out, workspace=base / "ws-honest"
    )
    assert report.verdict is Verdict.REPRODUCED, report.reason
    assert [s.stage for s in report.stages] == ["first", "second"]
    assert all(s.role is StageRole.REPRODUCED for s in report.stages)
    assert {f.path for f in report.subjects} == {"out/model.safetensors", "out/second.json"}
    assert report.first_divergent is None
    vsa = read_vsa(out / "vsa.intoto.json", [load_public_key(verifier.with_suffix(".pub"))])
    assert vsa.passed
    assert vsa.predicate.verified_levels == ["BITWRIGHT_REPRODUCED_BITWISE"]
    assert {s.name for s in vsa.subject} == {"out/model.safetensors", "out/second.json"}
    assert "REPRODUCED" in (out / "report.md").read_text()
    with pytest.raises(VerificationFailed):  # the owner did not sign the verifier's VSA
        read_vsa(out / "vsa.intoto.json", list(owner.keys))


def test_forged_output_is_different_at_the_first_stage_tensor_by_tensor(
    forged: Path, owner: TrustPolicy, verifier: Path, base: Path
) -> None:
    out = base / "forged-out"
    done = sh(
        BITWRIGHT,
        "rebuild",
        str(forged),
        "--compare",
        "--key",
        str(ProjectPaths(base / "project").owner_pub),
        "--verifier-key",
        str(verifier),
        "--out",
        str(out),
        "--workspace",
        str(base / "ws-forged"),
        "--json",
        cwd=base,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "DIFFERENT"
    assert report["first_divergent_stage"] == "first"
    roles = {s["stage"]: s["role"] for s in report["stages"]}
    assert roles == {"first": "first divergent", "second": "inherited"}
    (weights,) = [f for f in report["stages"][0]["files"] if f["path"] == "out/weights.safetensors"]
    differing = {t["name"] for t in weights["tensors"] if not t["bit_exact"]}
    assert differing == {"w"}
    assert "| `w` |" in (out / "report.md").read_text()
    assert "divergent" in done.stderr and "DIFFERENT: stage 'first'" in done.stderr
    vsa = read_vsa(out / "vsa.intoto.json", [load_public_key(verifier.with_suffix(".pub"))])
    assert not vsa.passed and vsa.predicate.verified_levels == []


def _remote_copy(base: Path, name: str) -> tuple[Path, Path]:
    remote = base / name
    shutil.copytree(base / "remote", remote)
    for root, dirs, files in os.walk(remote):
        for entry in dirs + files:
            os.chmod(Path(root, entry), 0o755 if entry in dirs else 0o644)
    objects = [p for p in remote.rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    assert len(objects) == 1  # data/raw/input.txt
    return remote, objects[0]


def test_altered_data_object_is_caught_before_any_stage_runs(
    honest: Path, owner: TrustPolicy, verifier: Path, base: Path
) -> None:
    remote, obj = _remote_copy(base, "remote-altered")
    obj.write_text("hello forged world\n")
    ws = base / "ws-altered"
    report = rebuild_release(
        honest, owner, data_remote=str(remote), workspace=ws, verifier_key=verifier
    )
    assert report.verdict is Verdict.DIFFERENT
    assert "data/raw" in report.reason
    assert [d.path for d in report.data if not d.ok] == ["data/raw"]
    assert report.stages == ()
    assert not list(ProjectPaths(ws).links.glob("*.link"))  # nothing ran


def test_missing_data_object_is_an_operational_error_with_a_hint(honest: Path, base: Path) -> None:
    remote, obj = _remote_copy(base, "remote-missing")
    obj.unlink()
    done = sh(
        BITWRIGHT,
        "rebuild",
        str(honest),
        "--key",
        str(ProjectPaths(base / "project").owner_pub),
        "--data-remote",
        str(remote),
        "--workspace",
        str(base / "ws-missing"),
        cwd=base,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "data/raw" in done.stderr
    assert "dvc push" in done.stderr and "--data-remote" in done.stderr


def test_one_stage_alone_reproduces_and_catches_a_forgery_confined_to_it(
    honest: Path, forged: Path, owner: TrustPolicy, verifier: Path, base: Path
) -> None:
    good = rebuild_release(honest, owner, stage="first", workspace=base / "ws-first")
    assert good.verdict is Verdict.REPRODUCED, good.reason
    assert [s.stage for s in good.stages] == ["first"]
    assert good.stages[0].materials_matched
    # it says what it did not check, and no generated private key outlives it
    assert good.not_checked == ("stage second", "the released artifacts")
    assert "not rebuilt or compared: stage(s) second" in good.reason
    assert any("private key was discarded" in note for note in good.notes)
    assert not [p for p in (base / "ws-first").rglob("*.key")]

    bad = rebuild_release(
        forged, owner, stage="first", verifier_key=verifier, workspace=base / "ws-first-forged"
    )
    assert bad.verdict is Verdict.DIFFERENT
    assert bad.first_divergent == "first"
    (weights,) = [f for f in bad.stages[0].files if f.path == "out/weights.safetensors"]
    assert [t.name for t in weights.tensors if not t.bit_exact] == ["w"]


def test_a_stage_whose_upstream_product_cannot_be_had_names_it(
    honest: Path, owner: TrustPolicy, verifier: Path, base: Path
) -> None:
    # second needs out/first.json, which is neither released nor pushed to the DVC remote
    ws = base / "ws-second"
    with pytest.raises(OperationalError, match="out/first.json"):
        rebuild_release(honest, owner, stage="second", verifier_key=verifier, workspace=ws)
    # out/weights.safetensors was found among the released artifacts by its digest
    assert (ws / "out" / "weights.safetensors").is_file()


def test_a_release_that_does_not_verify_is_failed(honest: Path, base: Path, verifier: Path) -> None:
    stranger = generate_keypair(base / "stranger", name="stranger")
    policy = TrustPolicy(keys=(load_public_key(stranger.public_path),))
    report = rebuild_release(honest, policy, verifier_key=verifier)
    assert report.verdict is Verdict.FAILED
    assert "does not verify" in report.reason
    assert report.workspace == ""


@pytest.mark.parametrize("kind", ["file", "foreign-directory", "project"])
def test_an_out_that_is_not_a_report_directory_is_refused_before_any_work(
    honest: Path, project: Path, base: Path, kind: str
) -> None:
    out = {"file": base / "a-file", "foreign-directory": base / "notes", "project": project}[kind]
    if kind == "file":
        out.write_text("keep me")
    elif kind == "foreign-directory":
        out.mkdir(exist_ok=True)
        (out / "report.md").write_text("my own notes")
    workspace = base / f"ws-refused-{kind}"
    done = sh(
        BITWRIGHT,
        "rebuild",
        str(honest),
        *("--key", str(ProjectPaths(project).owner_pub), "--out", str(out)),
        *("--workspace", str(workspace)),
        cwd=base,
        check=False,
    )

    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"error: --out {out}")
    assert not workspace.exists()  # nothing was cloned, built or written
    if kind == "foreign-directory":
        assert (out / "report.md").read_text() == "my own notes"
