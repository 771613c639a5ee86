"""``bitwright rebuild RELEASE --compare``: rebuild a release independently and compare it.

The flow::

    verify_release            signatures, in-toto chain, subjects (not ok -> FAILED)
    checkout_source           clean clone of the pinned commit (workspace.py)
    pull + check data         every snapshot, md5 and sha256, before any stage (fetch.py)
    environment_drift         what differs from the build machine (drift.py)
    build(ws, verifier key)   the whole pipeline sealed, or one stage (partial.py)
    compare_stages            link by link, first divergent stage (stages.py)
    compare_files             differing products and subjects, tensor by tensor
    report.md + signed VSA    (publish.py)

Only trusted material decides: the provenance is read through the policy, the links were
checked by ``verify_release``; the rebuild is signed with the verifier's own key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bitwright.attest import generate_keypair, read_envelope, read_link
from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE
from bitwright.attest.provenance import parse_statement
from bitwright.attest.statement import SOURCE, Statement, dvc_parameters
from bitwright.attest.trust import TrustPolicy, verify_attestation
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
from bitwright.rebuild.fetch import (
    check_snapshots,
    choose_remote,
    pull_snapshots,
    recorded_snapshots,
    use_remote,
)
from bitwright.rebuild.partial import check_materials, place_materials, unmatched
from bitwright.rebuild.publish import policy_document, write_outputs
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
from bitwright.verify import verify_release

__all__ = ["Notify", "rebuild_release"]

Notify = Callable[[str], None]

_DATA_OK = "DVC md5 and sha256 match the provenance"


@dataclass
class _Run:
    """What the flow has learnt so far; turned into the report at every exit."""

    release: Path
    notify: Notify
    commit: str = ""
    workspace: str = ""
    stage_only: str = ""
    verification: dict[str, Any] = field(default_factory=dict)
    data: list[DataCheck] = field(default_factory=list)
    drift: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, message: str) -> Iterator[None]:
        self.notify(message)
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - started

    def report(self, verdict: Verdict, reason: str, **more: Any) -> RebuildReport:
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
            **more,
        )


def _trusted_statement(layout: ReleaseLayout, policy: TrustPolicy) -> Statement:
    envelope = read_envelope(layout.provenance) if layout.provenance.is_file() else None
    bundle = (
        json.loads(layout.provenance_bundle.read_text(encoding="utf-8"))
        if layout.provenance_bundle.is_file()
        else None
    )
    verified = verify_attestation(
        envelope=envelope,
        bundle=bundle,
        policy=policy,
        expected_payload_type=INTOTO_PAYLOAD_TYPE,
        source=str(layout.provenance),
    )
    return parse_statement(verified.payload, source=str(layout.provenance))


def _links(directory: Path) -> dict[str, dict[str, Any]]:
    links: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.link")) if directory.is_dir() else ():
        payload, _ = read_link(path)
        links[str(payload["name"])] = payload
    return links


def _verifier_key(verifier_key: Path | None, workspace: Path, run: _Run) -> Path:
    if verifier_key is not None:
        return verifier_key.resolve()
    pair = generate_keypair(ProjectPaths(workspace).keys, name="verifier")
    run.notes.append(
        f"no --verifier-key: generated a fresh key pair, public key {pair.public_path} "
        f"(keyid {pair.keyid[:8]})"
    )
    return pair.private_path


class _Originals:
    """Where the original bytes of a product are: released artifacts, found by sha256."""

    def __init__(self, layout: ReleaseLayout, subjects: Mapping[str, str]) -> None:
        self.by_digest = {sha: layout.artifact(name) for name, sha in subjects.items()}

    def comparer(
        self, workspace: Path, tolerances: Mapping[str, Tolerance]
    ) -> Callable[[str, Sequence[PathMatch]], tuple[FileComparison, ...]]:
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
        verifier_key: the verifier's private key (default: a fresh one, said in the notes).
        tolerance: overrides every stage's ``compare.<stage>`` tolerance of params.yaml.
        out: where to write ``report.md`` and the signed ``vsa.intoto.json``.
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
        OperationalError: the source, a commit, a data object or a material cannot be had,
            or a tool failed.
    """
    run = _Run(release.resolve(), notify, stage_only=stage or "")
    layout = ReleaseLayout(run.release)
    with run.step("verify", f"verifying {run.release}"):
        verification = verify_release(run.release, policy)
    run.verification = verification.to_json()
    failure = verification.first_failure
    if not verification.ok:
        why = f"{failure.name}: {failure.detail}" if failure else "a mandatory check was skipped"
        report = run.report(Verdict.FAILED, f"the release does not verify ({why})")
        return _publish(report, out, {}, "", {}, None)
    statement = _trusted_statement(layout, policy)
    external, internal = dvc_parameters(statement)
    run.commit = external.commit
    subjects = statement.subject_digests()
    source_dep = statement.dependency(SOURCE)
    resource_uri = (source_dep.uri if source_dep else None) or f"git+{external.repository}"
    if internal.dirty:
        report = run.report(Verdict.FAILED, "the release was built from a dirty work tree")
        return _publish(report, out, subjects, resource_uri, {}, None)

    ws = fresh_workspace(workspace)
    run.workspace = str(ws)
    location = source_location(source or external.repository)
    with run.step("checkout", f"cloning {location} at {external.commit[:12]} into {ws}"):
        checkout_source(location, external.commit, ws)
    key = _verifier_key(verifier_key, ws, run)
    pipeline = load_pipeline(ws)
    if stage is not None and stage not in pipeline.names:
        raise UsageError(
            f"the released pipeline has no stage {stage!r}",
            hint=f"stages are: {', '.join(pipeline.names)}",
        )
    tolerances = stage_tolerances(load_params(ws), pipeline.names, tolerance)
    policy_doc = policy_document(policy, tolerances, strict_env=strict_env, stage=stage)
    params_sha = sha256_file(ws / external.params.path)
    if params_sha != external.params.sha256:
        report = run.report(
            Verdict.DIFFERENT,
            f"{external.params.path} at {external.commit[:12]} is not the one the provenance "
            "records",
        )
        return _publish(report, out, subjects, resource_uri, policy_doc, key)

    snapshots = recorded_snapshots(statement)
    with run.step("data", f"fetching {len(snapshots)} data snapshot(s)"):
        url, note = choose_remote(ws, snapshots, data_remote)
        run.notes.append(note)
        if url is not None:
            use_remote(ws, url)
        pull_snapshots(ws, tuple(s.path for s in snapshots))
        findings = check_snapshots(ws, snapshots)
    bad = {f.path: f.detail for f in findings}
    run.data = [DataCheck(s.path, s.path not in bad, bad.get(s.path, _DATA_OK)) for s in snapshots]
    known = {s.path for s in snapshots}
    run.data += [DataCheck(p, False, d) for p, d in bad.items() if p not in known]
    if findings:
        first = findings[0]
        report = run.report(
            Verdict.DIFFERENT,
            f"data snapshot {first.path} is not what the release was built from: "
            f"{first.detail}; nothing was run",
        )
        return _publish(report, out, subjects, resource_uri, policy_doc, key)

    container = None
    if sandbox is SandboxKind.PODMAN:
        with run.step("image", "obtaining the build image by digest"):
            container = container_pin(ws, notify)
    run.drift = environment_drift(
        statement,
        internal,
        environment=build_environment(ws, container),
        container=container,
        sandbox=sandbox or detect_sandbox(None).kind,
    )
    if strict_env and run.drift:
        report = run.report(
            Verdict.FAILED, f"environment drift with --strict-env: {run.drift[0]}; nothing was run"
        )
        return _publish(report, out, subjects, resource_uri, policy_doc, key)

    originals = _Originals(layout, subjects)
    compare = originals.comparer(ws, tolerances)
    original_links = _links(layout.links)
    if stage is not None:
        report = _rebuild_one(
            run,
            ws,
            pipeline,
            stage,
            original_links,
            originals,
            key,
            compare,
            variation,
            quiet_tools,
            sandbox,
        )
        products = {
            p: str(h["sha256"])
            for p, h in original_links.get(stage, {}).get("products", {}).items()
        }
        return _publish(report, out, products, resource_uri, policy_doc, key)

    with run.step("build", "rebuilding the pipeline sealed, signed with the verifier key"):
        try:
            build(
                ws,
                key_path=key,
                force=True,
                sandbox=sandbox,
                notify=notify,
                variation=variation,
                quiet_tools=quiet_tools,
            )
        except CheckFailed as exc:
            failed = run.report(Verdict.FAILED, f"the rebuild failed: {exc.message}")
            return _publish(failed, out, subjects, resource_uri, policy_doc, key)
    with run.step("compare", "comparing stage by stage"):
        rows, first_divergent = compare_stages(
            pipeline.topological(), original_links, _links(ProjectPaths(ws).links), compare
        )
        rows = _name_knobs(rows, pipeline, ws, run)
        subject_rows = tuple(
            _compare_subject(layout, ws, name, pipeline, tolerances) for name in sorted(subjects)
        )
    verdict = Verdict.combine([*(r.verdict for r in rows), *(s.verdict for s in subject_rows)])
    report = run.report(
        verdict,
        _reason(verdict, first_divergent, rows),
        stages=rows,
        first_divergent=first_divergent,
        subjects=subject_rows,
    )
    return _publish(report, out, subjects, resource_uri, policy_doc, key)


def _name_knobs(
    rows: Sequence[StageComparison], pipeline: Pipeline, ws: Path, run: _Run
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


def _compare_subject(
    layout: ReleaseLayout,
    ws: Path,
    name: str,
    pipeline: Pipeline,
    tolerances: Mapping[str, Tolerance],
) -> FileComparison:
    rebuilt = ws / name
    producer = pipeline.producer_of(name)
    return compare_files(
        layout.artifact(name),
        rebuilt if rebuilt.is_file() else None,
        path=name,
        tolerance=tolerances.get(producer or "", Tolerance()),
    )


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


def _rebuild_one(
    run: _Run,
    ws: Path,
    pipeline: Pipeline,
    stage: str,
    original_links: Mapping[str, Mapping[str, Any]],
    originals: _Originals,
    key: Path,
    compare: Callable[[str, Sequence[PathMatch]], tuple[FileComparison, ...]],
    variation: Variation | None,
    quiet_tools: bool,
    sandbox: SandboxKind | None,
) -> RebuildReport:
    original = original_links.get(stage)
    if original is None:
        raise OperationalError(
            f"the release has no link of stage {stage!r}", hint="fetch the complete release"
        )
    with run.step("materials", f"putting the recorded materials of stage {stage} in place"):
        run.notes.extend(place_materials(ws, pipeline, stage, original, originals.by_digest))
        differing = unmatched(check_materials(ws, pipeline, stage, original))
    if differing:
        bad = differing[0]
        return run.report(
            Verdict.DIFFERENT,
            f"material {bad.path} of stage {stage!r} is {bad.status.value} against the "
            "original link; the stage was not run",
        )
    with run.step("build", f"rebuilding stage {stage} alone, sealed"):
        try:
            link = build_stage(
                ws,
                stage,
                key_path=key,
                sandbox=sandbox,
                notify=run.notify,
                variation=variation,
                quiet_tools=quiet_tools,
            )
        except CheckFailed as exc:
            return run.report(Verdict.FAILED, f"the rebuild failed: {exc.message}")
    payload, _ = read_link(link)
    rows, first = compare_stages([stage], {stage: original}, {stage: payload}, compare)
    rows = _name_knobs(rows, pipeline, ws, run)
    return run.report(
        rows[0].verdict, _reason(rows[0].verdict, first, rows), stages=rows, first_divergent=first
    )


def _publish(
    report: RebuildReport,
    out: Path | None,
    subjects: Mapping[str, str],
    resource_uri: str,
    policy_doc: Mapping[str, Any],
    key: Path | None,
) -> RebuildReport:
    if out is None:
        return report
    outputs = write_outputs(
        report,
        out.resolve(),
        subjects=subjects,
        resource_uri=resource_uri,
        policy=policy_doc,
        key_path=key,
    )
    return replace(report, outputs=outputs)
