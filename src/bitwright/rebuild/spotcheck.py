"""``bitwright rebuild RELEASE --spot-check N``: audit a few training segments of a release.

The flow::

    verify_release                 signatures, in-toto chain, subjects (not ok -> FAILED)
    trusted provenance             the trajectory claim (chain head, Merkle root, counts)
    checkout + data                the pinned commit, every data snapshot checked
    stage materials                upstream products from the release or DVC, else rebuilt
    fetch the trajectory           by its md5, checked against the signed sha256
    run checks                     chain, order, data, seed, batches (spotcheck.audit)
    draw N segments                from H(secret || head) (spotcheck.sampling)
    fetch their states             start, end and final, each checked against its commitment
    final state = released model   tensor by tensor
    replay, sealed                 jobs or Ray; end states compared with the committed ones
    report.md + signed VSA

:class:`AuditSession` holds everything up to the draw, so one session can run many audits
(each draws anew; a segment once replayed is not replayed again).
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bitwright.attest import generate_keypair
from bitwright.attest.canonical import canonical_json
from bitwright.attest.signers import KeySigner
from bitwright.attest.statement import (
    ExternalParameters,
    InternalParameters,
    Statement,
    dvc_parameters,
)
from bitwright.attest.trust import TrustPolicy
from bitwright.attest.vsa import VSA_FILE, build_vsa, write_vsa
from bitwright.builder.orchestrate import build_stage
from bitwright.digest import sha256_file
from bitwright.errors import BitwrightError, CheckFailed, OperationalError, UsageError
from bitwright.fileio import write_text_atomic
from bitwright.model import DeterminismSettings, Pipeline
from bitwright.pins.git import pin_git_commit
from bitwright.pipeline import load_pipeline
from bitwright.rebuild.compare import Tolerance
from bitwright.rebuild.fetch import fetch_snapshots, fetch_third_party, recorded_snapshots
from bitwright.rebuild.flow import RebuildRun
from bitwright.rebuild.partial import check_materials, place_materials, unmatched
from bitwright.rebuild.publish import REPORT_FILE, VERIFIER_PUB, resource_uri
from bitwright.rebuild.workspace import checkout_source, fresh_workspace, source_location
from bitwright.release.layout import ReleaseLayout
from bitwright.spotcheck import (
    Claim,
    Randomness,
    ReplayPlan,
    SpotCheckReport,
    check_claim,
    check_run,
    fetch_objects,
    report_markdown,
    trajectory_claims,
    usable_remote,
)
from bitwright.spotcheck.replay import REPLAY_DIR
from bitwright.spotcheck.session import AuditSession
from bitwright.trajectory import Trajectory, TrajectoryInvalid, read_trajectory
from bitwright.verify import verify_release

__all__ = [
    "POLICY_URI",
    "VERIFIER_ID",
    "AuditOptions",
    "AuditSession",
    "open_audit",
    "spot_check_release",
]

POLICY_URI = "https://bitwright.dev/policies/spot-check/v1"
VERIFIER_ID = "https://bitwright.dev/verifiers/spot-check/v1"
LEVEL_SPOT_CHECKED = "BITWRIGHT_TRAINING_SPOT_CHECKED"
METHOD = "segment-replay/v1"

Notify = Callable[[str], None]


@dataclass(frozen=True)
class AuditOptions:
    """Where and how an audit runs; what it draws is the caller's (segments, seed).

    Attributes:
        jobs: sealed replay processes run at once.
        ray_address: replay on this Ray cluster instead (workers see the workspace path).
        source: clone the source from here instead of the provenance's repository.
        data_remote: fetch every DVC object (data, materials, states) from this remote.
        workspace: an empty directory to audit in (default: a fresh temporary one).
        verifier_key: the verifier's private key (default: a fresh one, said in the notes).
        tolerance: overrides the stage's ``compare.<stage>`` tolerance of params.yaml.
    """

    jobs: int = 1
    ray_address: str | None = None
    source: str | None = None
    data_remote: str | None = None
    workspace: Path | None = None
    verifier_key: Path | None = None
    tolerance: Tolerance | None = None


class _Refused(Exception):  # noqa: N818  (a control-flow signal: the audit cannot start)
    """The release cannot be audited: why, and the stage that says so ("" for none)."""

    def __init__(self, reason: str, stage: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


@dataclass(frozen=True)
class _Claimed:
    """What the verified release claims of its committed run, and the link that claims it."""

    statement: Statement
    subjects: dict[str, str]
    external: ExternalParameters
    internal: InternalParameters
    claim: Claim
    link: Mapping[str, Any]


@dataclass(frozen=True)
class _Workspace:
    """The checked-out source with its data and the training stage's materials in place."""

    ws: Path
    pipeline: Pipeline
    key: Path
    originals: dict[str, Path]
    remote: str | None

    @property
    def states_dir(self) -> Path:
        return self.ws / REPLAY_DIR / "states"


def spot_check_release(
    release: Path,
    policy: TrustPolicy,
    *,
    segments: int,
    seed: int | None = None,
    fraction: float | None = None,
    options: AuditOptions | None = None,
    out: Path | None = None,
    notify: Notify = lambda _: None,
) -> SpotCheckReport:
    """Audit ``segments`` segments of ``release``'s committed training run (see the module doc).

    Raises:
        UsageError: a bad count, jobs or fraction, or a release with no committed run.
        OperationalError: the source, data, a material or DVC cannot be had.
    """
    options = options or AuditOptions()
    if segments < 1 or options.jobs < 1 or not (fraction is None or 0 < fraction <= 1):
        raise UsageError(
            "--spot-check and --jobs take a positive count, --fraction a number in (0, 1]",
            hint="e.g. --spot-check 21 --fraction 0.2",
        )
    opened = open_audit(release, policy, options, notify=notify)
    if isinstance(opened, SpotCheckReport):
        return _publish(opened, out, None, randomness=None)
    notify(f"auditing {segments} of {len(opened.trajectory.segments)} segments")
    randomness = Randomness.draw(seed)
    report = opened.audit(randomness, segments, fraction)
    return _publish(report, out, opened, randomness=randomness)


def open_audit(
    release: Path,
    policy: TrustPolicy,
    options: AuditOptions | None = None,
    *,
    notify: Notify = lambda _: None,
) -> AuditSession | SpotCheckReport:
    """Verify the release and prepare a workspace to audit its run; a report if it cannot be."""
    options = options or AuditOptions()
    run = RebuildRun(release.resolve(), notify)
    try:
        claimed = _claimed_run(run, policy)
        workspace = _prepare_workspace(run, claimed, options)
        trajectory = _fetch_trajectory(run, claimed.claim, workspace)
    except _Refused as refused:
        return SpotCheckReport(str(run.release), False, refused.reason, stage=refused.stage)
    return _session(run, claimed, workspace, trajectory, options)


def _claimed_run(run: RebuildRun, policy: TrustPolicy) -> _Claimed:
    """Verify the release and read its trajectory claim, checked against the signed link.

    Raises:
        _Refused: the release does not verify, or its claim or build contradicts the audit.
        UsageError: the release records no committed training run.
    """
    with run.step("verify", f"verifying {run.release}"):
        verification = verify_release(run.release, policy)
    if not verification.ok or verification.trusted is None:
        raise _Refused(f"the release does not verify ({verification.why_not})")
    statement = verification.trusted.statement  # what verify authenticated, not read again
    external, internal = dvc_parameters(statement)
    claims = trajectory_claims(statement)
    if not claims:
        raise UsageError(
            "the release records no committed training trajectory",
            hint="record training with bitwright.trajectory.Recorder, or use --compare",
        )
    claim = claims[0]
    link = verification.trusted.links.get(claim.stage, {})
    problems = check_claim(claim, link)
    if internal.dirty:
        problems.append("the release was built from a dirty work tree")
    if problems:
        raise _Refused(problems[0], claim.stage)
    return _Claimed(statement, statement.subject_digests(), external, internal, claim, link)


def _prepare_workspace(run: RebuildRun, claimed: _Claimed, options: AuditOptions) -> _Workspace:
    """Check out the source, fetch and check its data, and put the stage's materials in place.

    Raises:
        _Refused: the released pipeline has no such stage, or a material differs.
    """
    stage = claimed.claim.stage
    ws = fresh_workspace(options.workspace)
    location = source_location(options.source or claimed.external.repository)
    commit = claimed.external.commit
    with run.step("checkout", f"cloning {location} at {commit[:12]} into {ws}"):
        checkout_source(location, commit, ws)
    key = _verifier_key(options.verifier_key, run)
    pipeline = load_pipeline(ws)
    if stage not in pipeline.names:
        raise _Refused(f"the released pipeline has no stage {stage!r}")
    _fetch_data(ws, pipeline, claimed.statement, options.data_remote, run)
    layout = ReleaseLayout(run.release)
    originals = {sha: layout.artifact(name) for name, sha in claimed.subjects.items()}
    mismatch = _stage_materials(ws, pipeline, stage, claimed.link, originals, key, run)
    if mismatch:
        raise _Refused(mismatch, stage)
    remote = usable_remote(claimed.claim.remote, options.data_remote)
    return _Workspace(ws, pipeline, key, originals, remote)


def _fetch_trajectory(run: RebuildRun, claim: Claim, workspace: _Workspace) -> Trajectory:
    """Fetch the committed trajectory file and read it, checked against the signed sha256.

    Raises:
        _Refused: the fetched file is not the signed one, or is not a trajectory.
        OperationalError: the remote does not hold it.
    """
    directory = workspace.states_dir / "trajectory"
    name = Path(claim.file).name
    with run.step("trajectory", f"fetching the trajectory of stage {claim.stage}"):
        gone = fetch_objects(workspace.ws, directory, {name: (claim.md5, 0)}, workspace.remote)
    if gone:
        raise OperationalError(
            f"the trajectory {claim.file} is not in the DVC remote "
            f"{workspace.remote or '(the checkout default)'}",
            hint="ask the maintainer to `dvc push` the training stage's outs (or --data-remote)",
        )
    path = directory / name
    if sha256_file(path) != claim.sha256:  # a regular file, streamed
        raise _Refused(f"the fetched {claim.file} is not the signed one", claim.stage)
    try:
        return read_trajectory(path, inside=workspace.ws)
    except TrajectoryInvalid as exc:
        raise _Refused(exc.message, claim.stage) from None


def _session(
    run: RebuildRun,
    claimed: _Claimed,
    workspace: _Workspace,
    trajectory: Trajectory,
    options: AuditOptions,
) -> AuditSession:
    """The audit session: the run's findings so far and the plan to replay its segments."""
    claim, link, ws = claimed.claim, claimed.link, workspace.ws
    declared = DeterminismSettings.from_json(dict(claimed.internal.determinism.declared))
    problems = check_run(trajectory, claim, link, declared.seed)
    model_sha = str(
        ((link.get("products") or {}).get(trajectory.header.model) or {}).get("sha256", "")
    )
    artifact = workspace.originals.get(model_sha)
    if artifact is None:
        problems.append(f"no released artifact is the trained model {trajectory.header.model}")
    plan = ReplayPlan(
        workspace=ws,
        stage=workspace.pipeline.stage(claim.stage),
        settings=declared,
        source_date_epoch=pin_git_commit(ws, allow_dirty=True).commit_time,
        states_dir=workspace.states_dir,
        trajectory=trajectory,
        jobs=options.jobs,
        ray_address=options.ray_address,
    )
    tolerance = options.tolerance or _tolerance(ws, claim.stage)
    return AuditSession(
        release=run.release,
        claim=claim,
        trajectory=trajectory,
        plan=plan,
        subjects=claimed.subjects,
        resource_uri=resource_uri(claimed.statement, claimed.external.repository),
        model_artifact=artifact or Path("/nonexistent"),
        training_seconds=_seconds(link),
        remote=workspace.remote,
        atol=tolerance.atol,
        rtol=tolerance.rtol,
        key=workspace.key,
        findings=problems,
        notes=run.notes,
        final_checked=artifact is None,
    )


def _fetch_data(
    ws: Path, pipeline: Pipeline, statement: Statement, data_remote: str | None, run: RebuildRun
) -> None:
    snapshots = recorded_snapshots(statement)
    with run.step("data", f"fetching {len(snapshots)} data snapshot(s)"):
        note, findings = fetch_snapshots(ws, snapshots, data_remote)
    run.notes.append(note)
    if findings:
        raise CheckFailed(
            f"data snapshot {findings[0].path} is not what the release was built from: "
            f"{findings[0].detail}",
            hint="fetch the data from the maintainer's remote (--data-remote)",
        )
    with run.step("third-party", "fetching the pinned third-party inputs"):
        note, problems = fetch_third_party(ws, pipeline, statement)
    run.notes.append(note)
    if problems:
        raise CheckFailed(
            f"third-party input {problems[0]}: not what the release was built from",
            hint="the pinned source no longer serves the pinned bytes; ask the maintainer",
        )


def _stage_materials(
    ws: Path,
    pipeline: Pipeline,
    stage: str,
    link: Mapping[str, Any],
    originals: Mapping[str, Path],
    key: Path,
    run: RebuildRun,
) -> str:
    """Put the stage's materials in place, rebuilding upstream stages if need be.

    Returns:
        "" when every material matches the signed link, else what differs.
    """
    with run.step("materials", f"putting the materials of stage {stage} in place"):
        try:
            run.notes.extend(place_materials(ws, pipeline, stage, link, originals))
        except OperationalError:
            for upstream in _upstream(pipeline, stage):
                run.notify(f"rebuilding upstream stage {upstream}, sealed")
                try:
                    build_stage(ws, upstream, key_path=key, notify=run.notify)
                except BitwrightError as exc:
                    return f"upstream stage {upstream} could not be rebuilt: {exc.message}"
            run.notes.append(f"upstream stages of {stage} rebuilt sealed from the pinned inputs")
        differing = unmatched(check_materials(ws, pipeline, stage, link))
    if differing:
        bad = differing[0]
        return (
            f"material {bad.path} of stage {stage!r} is {bad.status.value} against the signed link"
        )
    return ""


def _upstream(pipeline: Pipeline, stage: str) -> list[str]:
    needed: set[str] = set()
    frontier = [stage]
    while frontier:
        for up in pipeline.upstream(frontier.pop()):
            if up not in needed:
                needed.add(up)
                frontier.append(up)
    return [s for s in pipeline.topological() if s in needed]


def _tolerance(ws: Path, stage: str) -> Tolerance:
    from bitwright.pipeline import load_params
    from bitwright.rebuild.stages import stage_tolerances

    return stage_tolerances(load_params(ws), [stage], None).get(stage, Tolerance())


def _seconds(link: Mapping[str, Any]) -> float:
    byproducts = link.get("byproducts") or {}
    try:
        started = dt.datetime.fromisoformat(str(byproducts["started-on"]))
        finished = dt.datetime.fromisoformat(str(byproducts["finished-on"]))
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, (finished - started).total_seconds())


def policy_document(report: SpotCheckReport) -> dict[str, Any]:
    """What the VSA's policy digest covers: the method, the draw and what it was checked against."""
    return {
        "policy": POLICY_URI,
        "method": METHOD,
        "segments": report.randomness.get("segments"),
        "randomness": dict(report.randomness),
        "stage": report.stage,
        "chainHead": report.chain_head,
        "merkleRoot": report.merkle_root,
    }


def _publish(
    report: SpotCheckReport,
    out: Path | None,
    session: AuditSession | None,
    *,
    randomness: Randomness | None,
) -> SpotCheckReport:
    if out is None:
        return report
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    if session is not None and randomness is not None:
        document = policy_document(report)
        statement = build_vsa(
            subjects=session.subjects,
            resource_uri=session.resource_uri,
            policy_uri=POLICY_URI,
            policy_sha256=hashlib.sha256(canonical_json(document)).hexdigest(),
            input_attestations=_inputs(session),
            passed=report.passed,
            verified_levels=[LEVEL_SPOT_CHECKED] if report.passed else [],
            time_verified=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            verifier_id=VERIFIER_ID,
            policy_annotations={
                "method": METHOD,
                "segments": len(report.checks),
                "segmentsTotal": report.segments_total,
                "randomnessMethod": randomness.method,
                "randomnessCommitment": randomness.commitment,
                **({"seed": randomness.seed} if randomness.seed is not None else {}),
                "chosen": [c.index for c in report.checks],
                "outcome": "PASSED" if report.passed else "FAILED",
                "firstFailed": report.first_failed.index if report.first_failed else -1,
            },
        )
        written["vsa"] = str(write_vsa(statement, KeySigner.from_file(session.key), out / VSA_FILE))
        public = session.key.with_suffix(".pub")
        if public.is_file():
            write_text_atomic(out / VERIFIER_PUB, public.read_text(encoding="utf-8"))
            written["verifier_key"] = str(out / VERIFIER_PUB)
    write_text_atomic(out / REPORT_FILE, report_markdown(report))
    written["report"] = str(out / REPORT_FILE)
    return replace(report, outputs=written)


def _inputs(session: AuditSession) -> list[tuple[str, str, str]]:
    layout = ReleaseLayout(session.release)
    files = [layout.provenance, *sorted(layout.links.glob(f"{session.claim.stage}.*.link"))]
    return [
        (
            f.relative_to(session.release).as_posix(),
            f.resolve().as_uri(),
            sha256_file(f),
        )
        for f in files
        if f.is_file()
    ]


def _verifier_key(given: Path | None, run: RebuildRun) -> Path:
    """The verifier's key: the one given, or a fresh one in a private directory.

    The audit session outlives this call (it may run many audits), so the directory is
    removed when the process exits, never left behind in the workspace or ``/tmp``.
    """
    if given is not None:
        return given.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bitwright-verifier-key-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    pair = generate_keypair(scratch, name="verifier")
    run.notes.append(
        f"no --verifier-key: signed with a fresh key pair (keyid {pair.keyid[:8]}); its "
        "private key is discarded when the audit ends"
    )
    return pair.private_path
