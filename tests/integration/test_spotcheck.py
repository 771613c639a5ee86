"""`bitwright rebuild --spot-check` end to end: honest runs pass, forged runs are caught.

A tiny real project (git, DVC with a local remote, a torch training stage recording 63
segments, real keys) is built, pushed and released once per module; forgeries are made by its
maintainer, who re-signs everything with the owner key, so `verify` passes them. Each audit
session replays every distinct segment at most once and reuses its verdict across audits; the
audit logic (draw, checks, verdicts) runs for every audit.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from tests.integration import spotcheck_project as sp
from tests.integration.project import BITWRIGHT, sh

from bitwright.attest import load_public_key
from bitwright.attest.trust import TrustPolicy
from bitwright.attest.vsa import read_vsa
from bitwright.builder import ProjectPaths
from bitwright.rebuild.spotcheck import AuditOptions, AuditSession, open_audit
from bitwright.spotcheck import Randomness, SegmentVerdict, choose_segments
from bitwright.verify import verify_release

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spotcheck")


@pytest.fixture(scope="module")
def project(base: Path) -> Path:
    return sp.create(base / "honest")


@pytest.fixture(scope="module")
def owner(project: Path) -> TrustPolicy:
    return TrustPolicy(keys=(load_public_key(ProjectPaths(project).owner_pub),))


@pytest.fixture(scope="module")
def honest(project: Path, base: Path) -> Path:
    return sp.release(project, base / "honest-release")


@pytest.fixture(scope="module")
def forged(project: Path, base: Path) -> Path:
    repo = sp.forge(project, base / "forger")
    return sp.release(repo, base / "forged-release")


def _session(release: Path, owner: TrustPolicy, ws: Path, **more: object) -> AuditSession:
    session = open_audit(release, owner, AuditOptions(workspace=ws, **more))  # type: ignore[arg-type]
    assert isinstance(session, AuditSession), session
    return session


def _replay_everything(session: AuditSession) -> None:
    """One audit of every segment: each is replayed once, and reused by later audits."""
    session.audit(Randomness.draw(0), len(session.trajectory.segments))


@pytest.fixture(scope="module")
def honest_session(honest: Path, owner: TrustPolicy, base: Path) -> AuditSession:
    session = _session(honest, owner, base / "ws-honest")
    _replay_everything(session)
    return session


def test_an_honest_release_passes_20_audits_of_21_segments(honest_session: AuditSession) -> None:
    session = honest_session
    reports = [session.audit(Randomness.draw(seed), 21) for seed in range(1, 21)]
    assert [r.passed for r in reports] == [True] * 20, [r.reason for r in reports if not r.passed]
    assert all(len(r.checks) == 21 for r in reports)
    assert len({tuple(r.randomness["chosen"]) for r in reports}) == 20  # 20 independent draws
    assert session.replayed.processes == 1  # every segment replayed once, in one process


def test_a_forged_run_verifies_and_is_caught_in_99_of_100_audits(
    forged: Path, owner: TrustPolicy, base: Path
) -> None:
    assert verify_release(forged, owner).ok  # re-signed by the maintainer: only replay tells
    session = _session(forged, owner, base / "ws-forged")
    _replay_everything(session)
    forged_segments = {
        c.index for c in session.audit(Randomness.draw(0), 63).checks if not c.verdict.ok
    }
    assert forged_segments == set(range(0, sp.SEGMENTS, 3))
    reports = [session.audit(Randomness.draw(seed), 21) for seed in range(1, 101)]
    caught = [r for r in reports if not r.passed]
    assert len(caught) >= 99
    first = caught[0].first_failed
    assert first is not None and first.verdict is SegmentVerdict.FORGED
    assert (
        first.index in forged_segments and first.steps == f"{4 * first.index}-{4 * first.index + 3}"
    )
    assert f"segment {first.index} (steps {first.steps})" in caught[0].reason


def test_the_cli_passes_an_honest_release_with_a_signed_vsa(
    honest: Path, project: Path, base: Path
) -> None:
    out = base / "cli-honest"
    done = sh(
        BITWRIGHT,
        "rebuild",
        str(honest),
        "--spot-check",
        "21",
        "--seed",
        "3",
        "--jobs",
        "2",
        "--fraction",
        "0.3",
        "--key",
        str(ProjectPaths(project).owner_pub),
        "--out",
        str(out),
        "--json",
        "--workspace",
        str(base / "ws-cli-honest"),
        cwd=base,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] and len(report["checked"]) == 21
    assert set(report["detectionProbability"]) == {"0.05", "0.1", "0.2", "0.3"}
    assert report["cost"]["replay_processes"] == 2
    vsa = read_vsa(out / "vsa.intoto.json", [load_public_key(out / "verifier.pub")])
    notes = vsa.predicate.policy.annotations or {}
    assert vsa.passed and vsa.predicate.verified_levels == ["BITWRIGHT_TRAINING_SPOT_CHECKED"]
    assert notes["method"] == "segment-replay/v1" and notes["segments"] == 21 and notes["seed"] == 3
    assert notes["randomnessCommitment"] == Randomness.draw(3).commitment
    assert notes["outcome"] == "PASSED"


def test_the_cli_names_a_forged_segment_and_exits_1(
    forged: Path, project: Path, base: Path
) -> None:
    out = base / "cli-forged"
    done = sh(
        BITWRIGHT,
        "rebuild",
        str(forged),
        "--spot-check",
        "21",
        "--seed",
        "1",
        "--key",
        str(ProjectPaths(project).owner_pub),
        "--out",
        str(out),
        "--workspace",
        str(base / "ws-cli-forged"),
        cwd=base,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "FORGED" in done.stderr and "FAILED: segment " in done.stderr
    vsa = read_vsa(out / "vsa.intoto.json", [load_public_key(out / "verifier.pub")])
    assert not vsa.passed and (vsa.predicate.policy.annotations or {})["outcome"] == "FAILED"


def test_missing_and_altered_checkpoints_fail_their_segments(
    honest: Path, owner: TrustPolicy, project: Path, base: Path
) -> None:
    remote = base / "damaged-remote"
    shutil.copytree(project.parent / "remote", remote)
    session = _session(honest, owner, base / "ws-damaged", data_remote=str(remote))
    chosen = choose_segments(Randomness.draw(11), session.trajectory.chain_head, sp.SEGMENTS, 21)
    gone, corrupted, other = (session.trajectory.states[i] for i in chosen[:3])
    (remote / "files" / "md5" / gone.md5[:2] / gone.md5[2:]).unlink()
    target = remote / "files" / "md5" / corrupted.md5[:2] / corrupted.md5[2:]
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")  # DVC refuses it: missing
    # bytes that are not the committed ones arrive (a trajectory whose md5 names others)
    session.states_dir.mkdir(parents=True, exist_ok=True)
    (session.states_dir / other.file).write_bytes(b"not the committed state")
    report = session.audit(Randomness.draw(11), 21)
    verdicts = {c.index: c.verdict for c in report.checks}
    assert not report.passed
    assert verdicts[chosen[0]] is SegmentVerdict.MISSING_CHECKPOINT
    assert verdicts[chosen[1]] is SegmentVerdict.MISSING_CHECKPOINT
    assert verdicts[chosen[2]] is SegmentVerdict.CHECKPOINT_MISMATCH
    assert report.first_failed is not None and report.first_failed.index == chosen[0]
    assert SegmentVerdict.REPRODUCED in verdicts.values()


def test_a_released_model_that_is_not_the_final_state_fails(
    honest_session: AuditSession, base: Path
) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(str(honest_session.model_artifact))
    weights["bias"] += 0.5  # trained honestly, then another model released
    other = base / "other-model.safetensors"
    save_file(weights, str(other), metadata={"format": "pt"})
    session = replace(honest_session, model_artifact=other, final_checked=False, findings=[])
    report = session.audit(Randomness.draw(2), 3)
    assert not report.passed
    assert "the released model is not the final committed state" in report.reason
    assert "tensor bias" in report.reason
    assert all(c.verdict is SegmentVerdict.REPRODUCED for c in report.checks)


def test_ray_gives_the_same_verdicts_as_local_jobs(
    forged: Path, owner: TrustPolicy, base: Path
) -> None:
    pytest.importorskip("ray")  # the optional extra bitwright[ray]
    local = _session(forged, owner, base / "ws-jobs", jobs=2)
    on_ray = _session(forged, owner, base / "ws-ray", jobs=2, ray_address="local")
    first, second = (s.audit(Randomness.draw(5), 21) for s in (local, on_ray))
    assert [(c.index, c.verdict) for c in first.checks] == [
        (c.index, c.verdict) for c in second.checks
    ]
