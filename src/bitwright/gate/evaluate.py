"""The promotion decision: every requirement of a policy profile, judged against a target.

The target is a release directory (``bitwright release`` lays it out) or a bare model
directory (a third-party model, say, with no attestations). For a release, ``verify`` runs
against the profile's signers, its verified provenance is read for the builder, source,
tree, receipts, data, third-party inputs and packages, the artifacts are scanned, and the
rebuilders' VSAs (``RELEASE/verdicts/`` and any given) are counted. A bare model directory
has no provenance: every requirement that needs one fails, and what remains (the scan, the
deployment constraints, its TOFU pin) is judged on its files. Plugins answer the signals a
profile names. The release is admitted only when every requirement holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwright.attest.statement import Statement
from bitwright.errors import OperationalError
from bitwright.gate.plugins import SignalContext, SignalVerdict, evaluate_signal
from bitwright.gate.policy import LoadedPolicy, verifier_keys
from bitwright.gate.requirements import (
    RequirementResult,
    check_builder,
    check_clean_build,
    check_data_pinned,
    check_denied,
    check_determinism,
    check_formats,
    check_no_custom_code,
    check_reproducibility,
    check_scan,
    check_size,
    check_source,
    check_third_party,
    check_verify,
    missing_provenance,
)
from bitwright.gate.verdicts import VERDICTS_DIR, read_verdicts
from bitwright.pins.tofu import PinsFile, digest_local, read_pins_file
from bitwright.release.layout import ReleaseLayout
from bitwright.scan import DEFAULT_FAMILIES, ScanPolicy, ScanReport, scan_path
from bitwright.verify import CheckStatus, VerifyReport

__all__ = ["Decision", "evaluate"]


@dataclass(frozen=True)
class Decision:
    """A promotion decision.

    Attributes:
        target: what was judged.
        kind: ``release`` or ``model-directory``.
        policy_path: the policy file.
        policy_sha256: sha256 of the policy's canonical JSON.
        profile: the profile in force.
        subjects: what the decision is about: artifact name -> sha256.
        requirements: every requirement, judged, in a fixed order.
        decided_on: RFC 3339 UTC time.
    """

    target: str
    kind: str
    policy_path: str
    policy_sha256: str
    profile: str
    subjects: dict[str, str]
    requirements: tuple[RequirementResult, ...]
    decided_on: str

    @property
    def admitted(self) -> bool:
        """Whether every requirement holds."""
        return all(r.passed for r in self.requirements)

    @property
    def failed(self) -> tuple[RequirementResult, ...]:
        """The requirements that do not hold."""
        return tuple(r for r in self.requirements if not r.passed)

    def to_json(self) -> dict[str, Any]:
        """The decision as JSON (``bitwright gate --json``; the record's predicate)."""
        return {
            "decision": "admit" if self.admitted else "deny",
            "target": self.target,
            "targetKind": self.kind,
            "policy": {
                "uri": Path(self.policy_path).resolve().as_uri(),
                "digest": {"sha256": self.policy_sha256},
                "profile": self.profile,
            },
            "decidedOn": self.decided_on,
            "requirements": [r.to_json() for r in self.requirements],
        }


@dataclass(frozen=True)
class _Facts:
    """What the gate found out about the target before judging it."""

    files_root: Path
    report: VerifyReport | None
    statement: Statement | None
    why_no_statement: str
    scan: ScanReport
    subjects: dict[str, str]


def evaluate(
    target: Path,
    policy: LoadedPolicy,
    *,
    vsa_files: Sequence[Path] = (),
    now: dt.datetime | None = None,
) -> Decision:
    """Judge ``target`` against the policy's profile.

    Args:
        target: a release directory or a model directory.
        policy: the loaded policy (its profile chosen).
        vsa_files: VSAs given besides those in ``RELEASE/verdicts/``.
        now: the time freshness is judged at (default: now).

    Raises:
        OperationalError: the target is missing or incomplete in a way no check can judge
            (a release without its layout), or a file cannot be read.
        UsageError: the policy holds an unusable key.
    """
    if not target.is_dir():
        raise OperationalError(
            f"{target} is not a directory", hint="pass a release or a model directory"
        )
    moment = now or dt.datetime.now(dt.UTC)
    facts = _facts(target, policy)
    profile = policy.profile
    results: list[RequirementResult] = []
    results += _attested(facts, policy)
    results += _files(facts, policy)
    if profile.reproducibility.verdicts or profile.reproducibility.verifiers:
        if facts.statement is None:
            results.append(missing_provenance("reproducibility", facts.why_no_statement))
        else:
            verdicts = read_verdicts(
                [*_release_verdicts(target), *vsa_files],
                verifier_keys(profile),
                facts.subjects,
            )
            results += check_reproducibility(verdicts, profile.reproducibility, moment)
    results += _signals(facts, policy)
    return Decision(
        target=str(target),
        kind="release" if facts.report is not None else "model-directory",
        policy_path=str(policy.path),
        policy_sha256=policy.sha256,
        profile=policy.profile_name,
        subjects=facts.subjects,
        requirements=tuple(results),
        decided_on=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _is_release(target: Path) -> bool:
    layout = ReleaseLayout(target)
    return layout.provenance.is_file() or layout.provenance_bundle.is_file()


def _facts(target: Path, policy: LoadedPolicy) -> _Facts:
    deployment = policy.profile.deployment
    # The scan records everything; the requirements decide what code and formats may pass.
    scan_policy = ScanPolicy(
        allow_custom_code=True,
        allow_unknown_formats=True,
        families=frozenset(deployment.allowlist or DEFAULT_FAMILIES),
    )
    if not _is_release(target):
        scan = scan_path(target, policy=scan_policy)
        why = f"{target} holds no provenance: nothing attests how it was built"
        subjects = {f.path: f.sha256 for f in scan.files}
        return _Facts(target, None, None, why, scan, subjects)
    from bitwright.verify import verify_release
    from bitwright.verify.checks_provenance import check_provenance_signature
    from bitwright.verify.material import ReleaseReader

    layout = ReleaseLayout(target)
    trust = policy.trust()
    report = verify_release(target, trust)
    statement: Statement | None = None
    why = "the provenance did not verify, so nothing it says counts"
    signature = report.check("provenance-signature")
    if signature is not None and signature.status is CheckStatus.PASSED:
        statement, _ = check_provenance_signature(ReleaseReader(target), trust)
    scan = scan_path(layout.artifacts, policy=scan_policy)
    subjects = (
        statement.subject_digests()
        if statement is not None
        else {f.path: f.sha256 for f in scan.files}
    )
    return _Facts(layout.artifacts, report, statement, why, scan, subjects)


def _attested(facts: _Facts, policy: LoadedPolicy) -> list[RequirementResult]:
    profile = policy.profile
    require = profile.require
    results: list[RequirementResult] = []
    verify_backed = [
        ("provenance", require.provenance),
        ("layout-and-links", require.layout_and_links),
        ("model-signature", require.model_signature),
        ("aibom", require.aibom),
    ]
    for rid, wanted in verify_backed:
        if not wanted:
            continue
        if facts.report is None:
            results.append(missing_provenance(rid, facts.why_no_statement))
        else:
            results.append(check_verify(rid, facts.report))
    statement = facts.statement
    wanted_checks = [
        ("builder", bool(profile.builders)),
        ("source", bool(profile.sources)),
        ("clean-build", require.clean_build),
        ("determinism-confirmed", require.determinism_confirmed),
        ("data-pinned", require.data_pinned),
        ("denied-dependencies", bool(profile.deny.packages or profile.deny.containers)),
    ]
    for rid, wanted in wanted_checks:
        if not wanted:
            continue
        if statement is None:
            results.append(missing_provenance(rid, facts.why_no_statement))
            continue
        results.append(_from_statement(rid, statement, policy))
    if require.third_party_pinned:
        results.append(_third_party(facts, policy))
    return results


def _from_statement(rid: str, statement: Statement, policy: LoadedPolicy) -> RequirementResult:
    profile = policy.profile
    if rid == "builder":
        return check_builder(statement, profile.builders)
    if rid == "source":
        return check_source(statement, profile.sources)
    if rid == "clean-build":
        return check_clean_build(statement)
    if rid == "determinism-confirmed":
        return check_determinism(statement)
    if rid == "data-pinned":
        return check_data_pinned(statement)
    return check_denied(statement, profile.deny)


def _third_party(facts: _Facts, policy: LoadedPolicy) -> RequirementResult:
    if facts.report is not None and facts.statement is None:
        return missing_provenance("third-party-pinned", facts.why_no_statement)
    pins_path = policy.relative(policy.profile.third_party_pins)
    pins: PinsFile | None = read_pins_file(pins_path) if pins_path is not None else None
    model = None
    if facts.report is None and pins_path is not None:
        # a bare model directory must itself be a pinned path of the pins file's repository
        base = pins_path.parent.resolve()
        root = facts.files_root.resolve()
        if root.is_relative_to(base):
            relative = root.relative_to(base).as_posix()
            model = (relative, digest_local(base, relative))
        else:
            model = (str(root), {})
    return check_third_party(facts.statement, pins, model)


def _files(facts: _Facts, policy: LoadedPolicy) -> list[RequirementResult]:
    require = policy.profile.require
    deployment = policy.profile.deployment
    results: list[RequirementResult] = []
    if require.scan_clean:
        results.append(check_scan(facts.scan, deployment))
    if not deployment.custom_code:
        results.append(check_no_custom_code(facts.scan, deployment))
    if deployment.formats is not None:
        results.append(check_formats(facts.scan, deployment.formats))
    if deployment.max_file_bytes is not None or deployment.max_total_bytes is not None:
        results.append(check_size(facts.scan, deployment))
    return results


def _signals(facts: _Facts, policy: LoadedPolicy) -> list[RequirementResult]:
    if not policy.profile.signals:
        return []
    files = {facts.files_root / f.path: f.sha256 for f in facts.scan.files}
    formats = {facts.files_root / f.path: f.format for f in facts.scan.files}
    context = SignalContext(facts.files_root, files, formats, facts.subjects)
    results = []
    for name in policy.profile.signals:
        answer = evaluate_signal(name, context)
        evidence = {"verdict": answer.verdict.value, **dict(answer.evidence)}
        passed = answer.verdict is SignalVerdict.PASS
        results.append(RequirementResult(f"signal:{name}", passed, answer.summary, evidence))
    return results


def _release_verdicts(target: Path) -> list[Path]:
    folder = target / VERDICTS_DIR
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".intoto.json"))
