"""``bitwright rebuild RELEASE --compare``: rebuild a release independently and compare it.

The flow, one function per step; a step that settles the verdict ends the rebuild (``_Done``)
and what was learnt so far is published::

    check --out               before any work: a file or someone else's directory is refused
    verify_release            signatures, chain, every file (not ok -> FAILED)
    checkout_source           clean clone of the pinned commit (workspace.py)
    pull + check data         every snapshot, md5 and sha256, before any stage (fetch.py)
    environment_drift         what differs from the build machine (drift.py)
    build(ws, verifier key)   the whole pipeline sealed, or one stage (partial.py)
    compare_stages            link by link, first divergent stage (stages.py)
    compare_files             differing products and subjects, tensor by tensor
    report.md + signed VSA    (publish.py)

Only trusted material decides: the provenance and the links are those ``verify_release``
authenticated, never read again from the release; the rebuild is signed with the verifier's
own key. A key generated for the rebuild lives in a private temporary directory that is
removed when the rebuild ends: no private key is left behind in the workspace.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bitwright.attest import generate_keypair, read_link
from bitwright.attest.statement import (
    ExternalParameters,
    InternalParameters,
    dvc_parameters,
)
from bitwright.attest.trust import TrustPolicy
from bitwright.builder import ProjectPaths, build
from bitwright.builder.orchestrate import build_stage
from bitwright.builder.preflight import build_environment, container_pin
from bitwright.digest import sha256_file
from bitwright.errors import CheckFailed, OperationalError, UsageError
from bitwright.model import Pipeline, SandboxKind
from bitwright.model.variation import Variation
from bitwright.pipeline import load_params, load_pipeline
from bitwright.rebuild.compare import FileComparison, Tolerance, Verdict, compare_files
from bitwright.rebuild.compare.knobs import parallel_knobs
from bitwright.rebuild.drift import environment_drift
from bitwright.rebuild.fetch import fetch_snapshots, fetch_third_party, recorded_snapshots
from bitwright.rebuild.partial import check_materials, place_materials, unmatched
from bitwright.rebuild.publish import (
    check_report_dir,
    policy_document,
    resource_uri,
    write_outputs,
)
from bitwright.rebuild.report import DataCheck, RebuildReport
from bitwright.rebuild.stages import (
    PathMatch,
    StageComparison,
    StageRole,
    compare_stages,
    stage_tolerances,
)
from bitwright.rebuild.workspace import checkout_source, fresh_workspace, source_location
from bitwright.release.layout import ReleaseLayout
from bitwright.runner import detect_sandbox
from bitwright.verify import TrustedRelease, verify_release

__all__ = ["Notify", "RebuildRun", "rebuild_release"]

Notify = Callable[[str], None]
Compare = Callable[[str, Sequence[PathMatch]], tuple[FileComparison, ...]]

_DATA_OK = "DVC md5 and sha256 match the provenance"


@dataclass(frozen=True)
class RebuildSettings:
    """How to rebuild: the options of :func:`rebuild_release`, kept together."""

    source: str | None = None
    data_remote: str | None = None
    workspace: Path | None = None
    strict_env: bool = False
    stage: str | None = None
    verifier_key: Path | None = None
    tolerance: Tolerance | None = None
    out: Path | None = None
    sandbox: SandboxKind | None = None
    variation: Variation | None = None
    quiet_tools: bool = False


class _Done(Exception):  # noqa: N818  (a control-flow signal: the verdict is settled)
    def __init__(self, report: RebuildReport) -> None:
        super().__init__(report.reason)
        self.report = report


@dataclass
class RebuildRun:
    """What the flow has learnt so far; turned into the report at every exit."""

    release: Path
    notify: Notify
    stage_only: str = ""
    commit: str = ""
    workspace: str = ""
    verification: dict[str, Any] = field(default_factory=dict)
    data: list[DataCheck] = field(default_factory=list)
    drift: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    not_checked: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    # what the VSA will cover and cite, set as soon as it is known
    subjects: dict[str, str] = field(default_factory=dict)
    resource_uri: str = ""
    policy_doc: dict[str, Any] = field(default_factory=dict)
    key: Path | None = None

    @contextmanager
    def step(self, name: str, message: str) -> Iterator[None]:
        """Announce a step and time it (in :attr:`timings`, under ``name``)."""
        self.notify(message)
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - started

    def report(self, verdict: Verdict, reason: str, **more: Any) -> RebuildReport:
        """The report of the run so far, with ``verdict`` and ``reason``."""
        return RebuildReport(
            release=str(self.release),
            verdict=verdict,
            reason=reason,
            commit=self.commit,
            data=tuple(self.data),
            drift=self.drift,
            notes=tuple(self.notes),
            workspace=self.workspace,
            timings=dict(self.timings),
            stage_only=self.stage_only,
            verification=self.verification,
            not_checked=self.not_checked,
            **more,
        )

    def stop(self, verdict: Verdict, reason: str) -> _Done:
        """The exception that ends the flow with this report (raise it)."""
        return _Done(self.report(verdict, reason))


@dataclass(frozen=True)
class _Plan:
    """The checked-out workspace and what the rebuild compares against."""

    ws: Path
    layout: ReleaseLayout
    trusted: TrustedRelease
    external: ExternalParameters
    internal: InternalParameters
    pipeline: Pipeline
    tolerances: dict[str, Tolerance]


def rebuild_release(
    release: Path,
    policy: TrustPolicy,
    *,
    source: str | None = None,
    data_remote: str | None = None,
    workspace: Path | None = None,
    strict_env: bool = False,
    stage: str | None = None,
    verifier_key: Path | None = None,
    tolerance: Tolerance | None = None,
    out: Path | None = None,
    sandbox: SandboxKind | None = None,
    notify: Notify = lambda _: None,
    variation: Variation | None = None,
    quiet_tools: bool = False,
) -> RebuildReport:
    """Rebuild ``release`` from its pinned inputs and compare it stage by stage.

    Args:
        release: the release directory.
        policy: whom to trust for the release's signatures.
        source: where to clone the source (default: the provenance's repository).
        data_remote: a DVC remote URL to fetch data from instead of the recorded one.
        workspace: an empty directory to rebuild in (default: a fresh temporary one).
        strict_env: environment drift fails the rebuild before anything runs.
        stage: rebuild only this stage from its recorded materials.
        verifier_key: the verifier's private key (default: a fresh one, removed afterwards).
        tolerance: overrides every stage's ``compare.<stage>`` tolerance of params.yaml.
        out: where to write ``report.md``, ``report.json`` and the signed
            ``vsa.intoto.json``; checked before any work.
        sandbox: where the stages run: the host's strongest sandbox (None), or podman in the
            build image the checkout locks (the container builder).
        notify: receives one line per step.
        variation: rebuild every stage under this variation (a nightly's; the caller
            chooses the workspace of a build-path or file-order variation).
        quiet_tools: send DVC's output to ``notify`` line by line instead of stderr.

    Returns:
        The report; its verdict says whether the release was reproduced.

    Raises:
        UsageError: the policy trusts nobody, an unknown ``stage``, a non-empty workspace.
        OperationalError: ``out`` may not be written; the source, a commit, a data object or
            a material cannot be had, or a tool failed.
    """
    settings = RebuildSettings(
        source,
        data_remote,
        workspace,
        strict_env,
        stage,
        verifier_key,
        tolerance,
        out,
        sandbox,
        variation,
        quiet_tools,
    )
    target = check_report_dir(out) if out is not None else None
    run = RebuildRun(release.resolve(), notify, stage_only=stage or "")
    with _verifier_key(verifier_key, run) as key:
        run.key = key
        try:
            report = _rebuild(run, policy, settings)
        except _Done as done:
            report = done.report
        return _publish(report, run, target)


def _rebuild(run: RebuildRun, policy: TrustPolicy, settings: RebuildSettings) -> RebuildReport:
    plan = _checkout(run, _verified(run, policy), settings, policy)
    _fetch_data(run, plan, settings.data_remote)
    _check_environment(run, plan, settings)
    originals = _Originals(plan.layout, run.subjects)
    compare = originals.comparer(plan.ws, plan.tolerances)
    if settings.stage is not None:
        return _rebuild_one(run, plan, settings, originals, compare)
    return _rebuild_all(run, plan, settings, compare)


def _verified(run: RebuildRun, policy: TrustPolicy) -> TrustedRelease:
    with run.step("verify", f"verifying {run.release}"):
        verification = verify_release(run.release, policy)
    run.verification = verification.to_json()
    if not verification.ok or verification.trusted is None:
        raise run.stop(Verdict.FAILED, f"the release does not verify ({verification.why_not})")
    trusted: TrustedRelease = verification.trusted
    return trusted


def _checkout(
    run: RebuildRun, trusted: TrustedRelease, settings: RebuildSettings, policy: TrustPolicy
) -> _Plan:
    external, internal = dvc_parameters(trusted.statement)
    run.commit = external.commit
    run.subjects = trusted.statement.subject_digests()
    run.resource_uri = resource_uri(trusted.statement, external.repository)
    if internal.dirty:
        raise run.stop(Verdict.FAILED, "the release was built from a dirty work tree")
    ws = fresh_workspace(settings.workspace)
    run.workspace = str(ws)
    location = source_location(settings.source or external.repository)
    with run.step("checkout", f"cloning {location} at {external.commit[:12]} into {ws}"):
        checkout_source(location, external.commit, ws)
    pipeline = load_pipeline(ws)
    if settings.stage is not None and settings.stage not in pipeline.names:
        raise UsageError(
            f"the released pipeline has no stage {settings.stage!r}",
            hint=f"stages are: {', '.join(pipeline.names)}",
        )
    tolerances = stage_tolerances(load_params(ws), pipeline.names, settings.tolerance)
    run.policy_doc = policy_document(
        policy, tolerances, strict_env=settings.strict_env, stage=settings.stage
    )
    if sha256_file(ws / external.params.path) != external.params.sha256:
        raise run.stop(
            Verdict.DIFFERENT,
            f"{external.params.path} at {external.commit[:12]} is not the one the provenance "
            "records",
        )
    layout = ReleaseLayout(run.release)
    return _Plan(ws, layout, trusted, external, internal, pipeline, tolerances)


def _fetch_data(run: RebuildRun, plan: _Plan, data_remote: str | None) -> None:
    snapshots = recorded_snapshots(plan.trusted.statement)
    with run.step("data", f"fetching {len(snapshots)} data snapshot(s)"):
        note, findings = fetch_snapshots(plan.ws, snapshots, data_remote)
    run.notes.append(note)
    bad = {f.path: f.detail for f in findings}
    run.data = [DataCheck(s.path, s.path not in bad, bad.get(s.path, _DATA_OK)) for s in snapshots]
    known = {s.path for s in snapshots}
    run.data += [DataCheck(p, False, d) for p, d in bad.items() if p not in known]
    if findings:
        first = findings[0]
        raise run.stop(
            Verdict.DIFFERENT,
            f"data snapshot {first.path} is not what the release was built from: "
            f"{first.detail}; nothing was run",
        )
    with run.step("third-party", "fetching the pinned third-party inputs"):
        note, problems = fetch_third_party(plan.ws, plan.pipeline, plan.trusted.statement)
    run.notes.append(note)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise run.stop(
            Verdict.DIFFERENT,
            f"third-party input {problems[0]}{more}: not what the release was built from; "
            "nothing was run",
        )


def _check_environment(run: RebuildRun, plan: _Plan, settings: RebuildSettings) -> None:
    container = None
    if settings.sandbox is SandboxKind.PODMAN:
        with run.step("image", "obtaining the build image by digest"):
            container = container_pin(plan.ws, run.notify)
    run.drift = environment_drift(
        plan.trusted.statement,
        plan.internal,
        environment=build_environment(plan.ws, container),
        container=container,
        sandbox=settings.sandbox or detect_sandbox(None).kind,
    )
    if settings.strict_env and run.drift:
        raise run.stop(
            Verdict.FAILED, f"environment drift with --strict-env: {run.drift[0]}; nothing was run"
        )


def _rebuild_all(
    run: RebuildRun, plan: _Plan, settings: RebuildSettings, compare: Compare
) -> RebuildReport:
    assert run.key is not None
    with run.step("build", "rebuilding the pipeline sealed, signed with the verifier key"):
        try:
            build(
                plan.ws,
                key_path=run.key,
                force=True,
                sandbox=settings.sandbox,
                notify=run.notify,
                variation=settings.variation,
                quiet_tools=settings.quiet_tools,
            )
        except CheckFailed as exc:
            raise run.stop(Verdict.FAILED, f"the rebuild failed: {exc.message}") from None
    with run.step("compare", "comparing stage by stage"):
        rows, first_divergent = compare_stages(
            plan.pipeline.topological(),
            plan.trusted.links,
            _rebuilt_links(ProjectPaths(plan.ws).links),
            compare,
        )
        rows = _name_knobs(rows, plan.pipeline, plan.ws, run)
        subject_rows = tuple(_compare_subject(plan, name) for name in sorted(run.subjects))
    verdict = Verdict.combine([*(r.verdict for r in rows), *(s.verdict for s in subject_rows)])
    return run.report(
        verdict,
        _reason(verdict, first_divergent, rows),
        stages=rows,
        first_divergent=first_divergent,
        subjects=subject_rows,
    )


def _rebuild_one(
    run: RebuildRun, plan: _Plan, settings: RebuildSettings, originals: _Originals, compare: Compare
) -> RebuildReport:
    assert run.key is not None and settings.stage is not None
    stage = settings.stage
    original = plan.trusted.links.get(stage)
    if original is None:
        raise OperationalError(
            f"the release has no link of stage {stage!r}", hint="fetch the complete release"
        )
    run.subjects = {p: str(h["sha256"]) for p, h in original.get("products", {}).items()}
    others = [name for name in plan.pipeline.topological() if name != stage]
    run.not_checked = (*(f"stage {name}" for name in others), "the released artifacts")
    with run.step("materials", f"putting the recorded materials of stage {stage} in place"):
        run.notes.extend(
            place_materials(plan.ws, plan.pipeline, stage, original, originals.by_digest)
        )
        differing = unmatched(check_materials(plan.ws, plan.pipeline, stage, original))
    if differing:
        bad = differing[0]
        raise run.stop(
            Verdict.DIFFERENT,
            f"material {bad.path} of stage {stage!r} is {bad.status.value} against the "
            "original link; the stage was not run",
        )
    with run.step("build", f"rebuilding stage {stage} alone, sealed"):
        try:
            link = build_stage(
                plan.ws,
                stage,
                key_path=run.key,
                sandbox=settings.sandbox,
                notify=run.notify,
                variation=settings.variation,
                quiet_tools=settings.quiet_tools,
            )
        except CheckFailed as exc:
            raise run.stop(Verdict.FAILED, f"the rebuild failed: {exc.message}") from None
    payload, _ = read_link(link)
    rows, first = compare_stages([stage], {stage: original}, {stage: payload}, compare)
    rows = _name_knobs(rows, plan.pipeline, plan.ws, run)
    reason = _stage_reason(rows[0].verdict, stage, others)
    return run.report(rows[0].verdict, reason, stages=rows, first_divergent=first)


class _Originals:
    """Where the original bytes of a product are: released artifacts, found by sha256."""

    def __init__(self, layout: ReleaseLayout, subjects: Mapping[str, str]) -> None:
        self.by_digest = {sha: layout.artifact(name) for name, sha in subjects.items()}

    def comparer(self, workspace: Path, tolerances: Mapping[str, Tolerance]) -> Compare:
        def compare(stage: str, differing: Sequence[PathMatch]) -> tuple[FileComparison, ...]:
            found: list[FileComparison] = []
            for match in differing:
                original = self.by_digest.get(match.original or "")
                if original is None:
                    continue
                rebuilt = workspace / match.path
                found.append(
                    compare_files(
                        original,
                        rebuilt if rebuilt.is_file() else None,
                        path=match.path,
                        tolerance=tolerances.get(stage, Tolerance()),
                    )
                )
            return tuple(found)

        return compare


def _compare_subject(plan: _Plan, name: str) -> FileComparison:
    rebuilt = plan.ws / name
    producer = plan.pipeline.producer_of(name)
    return compare_files(
        plan.layout.artifact(name),
        rebuilt if rebuilt.is_file() else None,
        path=name,
        tolerance=plan.tolerances.get(producer or "", Tolerance()),
    )


def _rebuilt_links(directory: Path) -> dict[str, dict[str, Any]]:
    """The links the rebuild just wrote, in the verifier's own workspace (its own files)."""
    links: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.link")) if directory.is_dir() else ():
        payload, _ = read_link(path)
        links[str(payload["name"])] = payload
    return links


def _name_knobs(
    rows: Sequence[StageComparison], pipeline: Pipeline, ws: Path, run: RebuildRun
) -> tuple[StageComparison, ...]:
    """Name the declared parameters that make a stage nondeterministic (``n_jobs=2``...)."""
    files = {f for spec in pipeline.stages for f in spec.param_files if (ws / f).is_file()}
    params = {f: load_params(ws, f) for f in sorted(files)}
    named: list[StageComparison] = []
    for row in rows:
        knobs = parallel_knobs(params, pipeline.stage(row.stage).params)
        lines = [k.describe() for k in knobs]
        if lines and row.role in (StageRole.FIRST_DIVERGENT, StageRole.DIVERGENT):
            named_knobs = tuple(f"{k.key}={k.value!r}" for k in knobs)
            row = replace(row, note="; ".join([row.note, *lines]), knobs=named_knobs)
        elif lines:
            run.notes.extend(f"stage {row.stage} ({row.verdict.value}): {line}" for line in lines)
        named.append(row)
    return tuple(named)


def _reason(verdict: Verdict, first: str | None, rows: Sequence[StageComparison]) -> str:
    if verdict is Verdict.REPRODUCED:
        return "every stage and every released artifact was rebuilt bit for bit"
    if verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE:
        return "the rebuilt outputs equal the released ones within the declared tolerances"
    if first is not None:
        knobs = [k for r in rows if r.stage == first for k in r.knobs]
        return f"stage {first!r} gave other products from the same materials" + (
            f" ({', '.join(knobs)} can make it nondeterministic)" if knobs else ""
        )
    failed = [r.stage for r in rows if r.verdict is Verdict.FAILED]
    if failed:
        return f"stage {failed[0]!r} could not be compared"
    return "the released artifacts differ from the rebuilt ones"


def _stage_reason(verdict: Verdict, stage: str, others: Sequence[str]) -> str:
    outcome = {
        Verdict.REPRODUCED: "its products were rebuilt bit for bit",
        Verdict.REPRODUCED_WITHIN_TOLERANCE: "its products equal the released ones within "
        "the declared tolerance",
        Verdict.DIFFERENT: "it gave other products from the same materials",
    }.get(verdict, "it could not be compared")
    skipped = ", ".join(others) or "none"
    return (
        f"stage {stage!r} alone, from its released materials: {outcome}; not rebuilt or "
        f"compared: stage(s) {skipped} and the released artifacts as a whole"
    )


@contextmanager
def _verifier_key(given: Path | None, run: RebuildRun) -> Iterator[Path]:
    """The verifier's key: the one given, or a fresh one in a private directory removed after."""
    if given is not None:
        yield given.resolve()
        return
    scratch = Path(tempfile.mkdtemp(prefix="bitwright-verifier-key-"))
    try:
        pair = generate_keypair(scratch, name="verifier")
        run.notes.append(
            f"no --verifier-key: signed with a fresh key pair (keyid {pair.keyid[:8]}); its "
            "private key was discarded after the rebuild"
        )
        yield pair.private_path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _publish(report: RebuildReport, run: RebuildRun, out: Path | None) -> RebuildReport:
    if out is None:
        return report
    outputs = write_outputs(
        report,
        out,
        subjects=run.subjects,
        resource_uri=run.resource_uri,
        policy=run.policy_doc,
        key_path=run.key if run.subjects and run.policy_doc else None,
    )
    return replace(report, outputs=outputs)
