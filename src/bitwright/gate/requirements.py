"""The requirements a gate checks, each with its evidence and the digest of that evidence.

Every requirement has an id (a contract: decisions, scripts and docs name them), the claim
it backs (:data:`bitwright.gate.claims.CLAIMS`), whether it passed, one line saying why, and
the evidence it used as JSON data whose canonical sha256 the decision records. Ids::

    provenance  layout-and-links  model-signature  aibom           (verify's checks)
    builder  source  clean-build  determinism-confirmed  data-pinned  (the provenance)
    third-party-pinned                                             (the trusted pins file)
    scan-clean  no-custom-code  formats  size                      (the files themselves)
    reproducibility  no-different-verdict                          (rebuilders' VSAs)
    denied-dependencies                                            (package and image deny lists)
    signal:NAME                                                    (plugins)
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bitwright.attest.canonical import canonical_json
from bitwright.attest.statement import BUILD_IMAGE, PYTHON_PACKAGES, SOURCE, Statement
from bitwright.gate.claims import claim_of
from bitwright.gate.policy import Deny, Deployment, Reproducibility
from bitwright.gate.verdicts import Verdict, VerdictKind
from bitwright.pins.tofu import FilePin, PinsFile
from bitwright.scan import ScanReport, Severity
from bitwright.verify import CheckStatus, VerifyReport

__all__ = [
    "VERIFY_CHECKS",
    "RequirementResult",
    "check_builder",
    "check_clean_build",
    "check_data_pinned",
    "check_denied",
    "check_determinism",
    "check_formats",
    "check_no_custom_code",
    "check_reproducibility",
    "check_scan",
    "check_size",
    "check_source",
    "check_third_party",
    "check_verify",
    "missing_provenance",
]

VERIFY_CHECKS = {
    "provenance": ("provenance-signature", "subjects", "byproducts", "dependencies"),
    "layout-and-links": ("layout-signature", "layout-expiry", "in-toto"),
    "model-signature": ("model-signature",),
    "aibom": ("aibom",),
}
"""Which of ``verify``'s checks (by name) each verify-backed requirement needs passed."""


@dataclass(frozen=True)
class RequirementResult:
    """One requirement, judged.

    Attributes:
        id: the requirement's id.
        passed: whether it holds.
        summary: one line: what held, or what failed for which file.
        evidence: the facts it used (JSON data).
    """

    id: str
    passed: bool
    summary: str
    evidence: Mapping[str, Any]

    @property
    def claim(self) -> str:
        """The claim this requirement backs (see :mod:`bitwright.gate.claims`)."""
        return claim_of(self.id)

    @property
    def evidence_sha256(self) -> str:
        """sha256 of the evidence's canonical JSON."""
        return hashlib.sha256(canonical_json(dict(self.evidence))).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The requirement as the decision records it."""
        return {
            "id": self.id,
            "claim": self.claim,
            "passed": self.passed,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "evidenceDigest": {"sha256": self.evidence_sha256},
        }


def _result(
    rid: str, problems: Sequence[str], ok: str, evidence: Mapping[str, Any]
) -> RequirementResult:
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return RequirementResult(rid, False, problems[0] + more, evidence)
    return RequirementResult(rid, True, ok, evidence)


def missing_provenance(rid: str, why: str) -> RequirementResult:
    """A requirement that needs a verified provenance the target does not have."""
    return RequirementResult(rid, False, why, {"provenance": None})


def check_verify(rid: str, report: VerifyReport) -> RequirementResult:
    """A requirement backed by ``verify``'s checks: each must have passed."""
    checks = {}
    problems = []
    for name in VERIFY_CHECKS[rid]:
        result = report.check(name)
        status = result.status.value if result is not None else "absent"
        checks[name] = {"status": status, "detail": result.detail if result else ""}
        if result is None or result.status is not CheckStatus.PASSED:
            detail = result.detail if result is not None else "not reported"
            problems.append(f"verify check {name} {status}: {detail}")
    ok = f"verify checks passed: {', '.join(VERIFY_CHECKS[rid])}"
    return _result(rid, problems, ok, {"verify": checks})


def check_builder(statement: Statement, allowed: Sequence[str]) -> RequirementResult:
    """The builder that ran the build is one the policy allows."""
    builder = statement.predicate.run_details.builder.id
    evidence = {"builder": builder, "allowed": list(allowed)}
    problems = [] if builder in allowed else [f"builder {builder} is not an allowed builder"]
    return _result("builder", problems, f"built by allowed builder {builder}", evidence)


def check_source(statement: Statement, patterns: Sequence[str]) -> RequirementResult:
    """The source repository matches one of the allowed patterns."""
    external = statement.predicate.build_definition.external_parameters
    repository = str(external.get("repository", ""))
    commit = str(external.get("commit", ""))
    evidence = {"repository": repository, "commit": commit, "allowed": list(patterns)}
    matched = any(fnmatch.fnmatchcase(repository, p) for p in patterns)
    problems = [] if matched else [f"source {repository} is not an allowed repository"]
    return _result("source", problems, f"source {repository} at {commit[:12]}", evidence)


def check_clean_build(statement: Statement) -> RequirementResult:
    """The build ran on a clean tree (not ``--allow-dirty``)."""
    internal = statement.predicate.build_definition.internal_parameters or {}
    dirty = internal.get("dirty") is not False
    listed = internal.get("dirtyPaths")
    paths = [str(p) for p in listed] if isinstance(listed, list) else []
    evidence = {"dirty": internal.get("dirty"), "dirtyPaths": paths}
    shown = f": {', '.join(paths[:3])}" if paths else ""
    problems = [f"the build ran on a dirty tree{shown}"] if dirty else []
    return _result("clean-build", problems, "built from a clean tree", evidence)


def check_determinism(statement: Statement) -> RequirementResult:
    """Every linked stage's receipts confirmed its determinism settings."""
    internal = statement.predicate.build_definition.internal_parameters or {}
    determinism = internal.get("determinism") or {}
    confirmed = determinism.get("confirmed", {}) if isinstance(determinism, dict) else {}
    stages = sorted(
        item.name.removeprefix("links/").split(".")[0]
        for item in statement.predicate.run_details.byproducts or []
        if item.name and item.name.startswith("links/")
    )
    missing = [s for s in stages if not (isinstance(confirmed, dict) and confirmed.get(s))]
    evidence = {
        "stages": stages,
        "confirmed": sorted(confirmed) if isinstance(confirmed, dict) else [],
    }
    problems = [f"stage {s}: no receipt confirmed its determinism settings" for s in missing]
    return _result(
        "determinism-confirmed", problems, f"{len(stages)} stage(s) confirmed by receipts", evidence
    )


def _tofu(statement: Statement) -> list[tuple[str, str]]:
    return [
        (dep.name or "", (dep.digest or {}).get("sha256", ""))
        for dep in statement.predicate.build_definition.resolved_dependencies or []
        if (dep.annotations or {}).get("pinning") == "tofu"
    ]


def check_data_pinned(statement: Statement) -> RequirementResult:
    """Every data snapshot has a sha256 and a place to fetch it from."""
    fixed = {SOURCE, BUILD_IMAGE, PYTHON_PACKAGES}
    tofu = {name for name, _ in _tofu(statement)}
    data = [
        dep
        for dep in statement.predicate.build_definition.resolved_dependencies or []
        if dep.name not in fixed and dep.name not in tofu
    ]
    evidence = {
        "data": [
            {"name": d.name, "uri": d.uri or "", "sha256": (d.digest or {}).get("sha256", "")}
            for d in data
        ]
    }
    problems = [
        f"data snapshot {d.name} has no {'source' if d.uri is None else 'sha256'}"
        for d in data
        if "sha256" not in (d.digest or {}) or d.uri is None
    ]
    return _result(
        "data-pinned", problems, f"{len(data)} data snapshot(s) pinned with their source", evidence
    )


def check_third_party(
    statement: Statement | None,
    pins: PinsFile | None,
    model: tuple[str, Mapping[str, FilePin]] | None,
) -> RequirementResult:
    """Third-party inputs (or the model directory itself) match the trusted pins file.

    Args:
        statement: the verified provenance, if any (its TOFU dependencies are checked).
        pins: the trusted pins file the policy names, if any.
        model: for a bare model directory, its path relative to the pins file and its files.
    """
    recorded = _tofu(statement) if statement is not None else []
    evidence: dict[str, Any] = {"recorded": [{"name": n, "sha256": d} for n, d in recorded]}
    if pins is None:
        problems = (
            [f"no trusted pins file to match {len(recorded)} third-party input(s)"]
            if (recorded or model is not None)
            else []
        )
        return _result("third-party-pinned", problems, "no third-party input", evidence)
    evidence["pins"] = {p.path: p.sha256 for p in pins.pins.values()}
    problems = []
    for name, digest in recorded:
        pinned = pins.pins.get(name)
        if pinned is None:
            problems.append(f"third-party input {name} is not in the trusted pins")
        elif pinned.sha256 != digest:
            problems.append(
                f"third-party input {name}: sha256 {digest[:12]}... recorded, "
                f"{pinned.sha256[:12]}... pinned"
            )
    if model is not None:
        path, files = model
        pinned = pins.pins.get(path)
        if pinned is None:
            problems.append(f"{path} is not in the trusted pins")
        else:
            for rel in sorted(set(pinned.files) | set(files)):
                if pinned.files.get(rel) != files.get(rel):
                    problems.append(f"{path}/{rel}: not as pinned")
    ok = f"{len(recorded) + (model is not None)} third-party input(s) as pinned"
    return _result("third-party-pinned", problems, ok, evidence)


def _scan_evidence(report: ScanReport, severities: set[Severity]) -> dict[str, Any]:
    return {
        "files": [{"path": f.path, "format": f.format, "sha256": f.sha256} for f in report.files],
        "findings": [f.line() for f in report.findings if f.severity in severities],
    }


def check_scan(report: ScanReport, deployment: Deployment) -> RequirementResult:
    """No file would run code on load; no format the scanner cannot judge, unless allowed."""
    severities = {Severity.UNSAFE}
    if "unknown" not in (deployment.formats or []):
        severities.add(Severity.UNKNOWN)
    problems = [f.line() for f in report.findings if f.severity in severities]
    ok = f"{len(report.files)} file(s) safe to load"
    return _result("scan-clean", problems, ok, _scan_evidence(report, severities))


def check_no_custom_code(report: ScanReport, deployment: Deployment) -> RequirementResult:
    """No code ships with the model (``trust_remote_code`` configs judged on their own)."""
    problems = [
        f.line()
        for f in report.findings
        if f.severity is Severity.CUSTOM_CODE
        and not (deployment.trust_remote_code and "trust_remote_code" in f.message)
    ]
    evidence = _scan_evidence(report, {Severity.CUSTOM_CODE})
    return _result("no-custom-code", problems, "no code ships with the model", evidence)


def check_formats(report: ScanReport, allowed: Sequence[str]) -> RequirementResult:
    """Every file is of an allowed format (the innermost, for compressed files)."""
    formats = {f.path: f.format.rpartition(":")[2] for f in report.files}
    problems = [
        f"{path}: format {fmt} is not allowed"
        for path, fmt in sorted(formats.items())
        if fmt not in allowed
    ]
    evidence = {"formats": formats, "allowed": list(allowed)}
    return _result(
        "formats", problems, f"formats {', '.join(sorted(set(formats.values())))}", evidence
    )


def check_size(report: ScanReport, deployment: Deployment) -> RequirementResult:
    """No file, and not all files together, larger than the limits."""
    total = sum(f.size for f in report.files)
    problems = []
    if deployment.max_file_bytes is not None:
        problems += [
            f"{f.path}: {f.size} bytes, more than {deployment.max_file_bytes}"
            for f in report.files
            if f.size > deployment.max_file_bytes
        ]
    if deployment.max_total_bytes is not None and total > deployment.max_total_bytes:
        problems.append(f"{total} bytes in all, more than {deployment.max_total_bytes}")
    evidence = {"total": total, "largest": max((f.size for f in report.files), default=0)}
    return _result("size", problems, f"{total} bytes in {len(report.files)} file(s)", evidence)


def check_reproducibility(
    verdicts: Sequence[Verdict], rule: Reproducibility, now: datetime
) -> list[RequirementResult]:
    """REPRODUCED verdicts from as many distinct trusted keys, fresh; no DIFFERENT one."""
    counted = {VerdictKind.REPRODUCED}
    if rule.allow_tolerance:
        counted.add(VerdictKind.REPRODUCED_WITHIN_TOLERANCE)
    evidence = {
        "verdicts": [
            {
                "file": v.file.rsplit("/", 1)[-1],
                "sha256": v.sha256,
                "signer": v.signer,
                "kind": v.kind.value,
                "timeVerified": v.time_verified,
                "problem": v.problem,
            }
            for v in verdicts
        ],
        "required": rule.verdicts,
        "maxAgeDays": rule.max_age_days,
    }
    fresh_signers: set[str] = set()
    stale = 0
    for verdict in verdicts:
        if not verdict.signer or not verdict.matches or verdict.kind not in counted:
            continue
        age = verdict.age_days(now)
        if age is None or age > rule.max_age_days:
            stale += 1
            continue
        fresh_signers.add(verdict.signer)
    results: list[RequirementResult] = []
    if rule.verdicts:
        problems = []
        if len(fresh_signers) < rule.verdicts:
            why = f"; {stale} older than {rule.max_age_days} days" if stale else ""
            problems.append(
                f"{len(fresh_signers)} REPRODUCED verdict(s) from distinct trusted verifiers, "
                f"{rule.verdicts} required{why}"
            )
        days = rule.max_age_days
        ok = f"{len(fresh_signers)} trusted verifier(s) reproduced it within {days} days"
        results.append(_result("reproducibility", problems, ok, evidence))
    if rule.verifiers:
        different = [
            v for v in verdicts if v.signer and v.matches and v.kind is VerdictKind.DIFFERENT
        ]
        problems = [
            f"trusted verifier {v.signer[:8]} found it DIFFERENT ({v.file.rsplit('/', 1)[-1]})"
            for v in different
        ]
        results.append(
            _result(
                "no-different-verdict", problems, "no trusted verifier found it different", evidence
            )
        )
    return results


_NAME_NORMAL = re.compile(r"[-_.]+")


def _package(line: str) -> tuple[str, str]:
    name, _, version = line.partition("==")
    return _NAME_NORMAL.sub("-", name.strip()).lower(), version.strip()


def check_denied(statement: Statement, deny: Deny) -> RequirementResult:
    """No denied package (``name`` or ``name==version``) or image digest in the build."""
    packages_dep = statement.dependency(PYTHON_PACKAGES)
    lines = (packages_dep.annotations or {}).get("packages", []) if packages_dep else []
    installed = [_package(str(line)) for line in lines or []]  # type: ignore[union-attr]
    problems = []
    for entry in deny.packages:
        name, version = _package(entry)
        for have_name, have_version in installed:
            if have_name == name and (not version or version == have_version):
                problems.append(f"denied package {have_name}=={have_version} is in the build")
    image = statement.dependency(BUILD_IMAGE)
    digest = "sha256:" + (image.digest or {}).get("sha256", "") if image else ""
    if digest in deny.containers:
        problems.append(f"denied build image {digest} built it")
    evidence = {"packages": len(installed), "image": digest, "deny": deny.model_dump()}
    ok = f"none of {len(deny.packages)} denied package(s) or {len(deny.containers)} image(s)"
    return _result("denied-dependencies", problems, ok, evidence)
