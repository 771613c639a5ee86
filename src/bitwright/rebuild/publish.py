"""Write what a rebuild publishes: ``report.md``, ``report.html``, ``report.json`` and the VSA.

``--out`` is checked before the rebuild starts (:func:`check_report_dir`): a new or empty
directory, or an earlier report of bitwright's own (it holds ``report.json`` naming a
release and a verdict); anything else, a file or something precious is refused. The files
of an earlier report are overwritten, nothing else is touched.

The VSA's subjects are what was verified (the release's artifacts, or for ``--stage`` that
stage's products); its policy digest covers the trusted signers, the tolerances, the strictness
and the stage, so two VSAs can be told apart by what they checked against; its input
attestations are the provenance, the layout and the links read from the release.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bitwright.attest import canonical_json
from bitwright.attest.signers import KeySigner
from bitwright.attest.statement import SOURCE, Statement
from bitwright.attest.trust import TrustPolicy
from bitwright.attest.vsa import (
    LEVEL_REPRODUCED_BITWISE,
    LEVEL_REPRODUCED_WITHIN_TOLERANCE,
    VSA_FILE,
    build_vsa,
    write_vsa,
)
from bitwright.digest import sha256_file
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.fileio import read_json_object, write_text_atomic
from bitwright.rebuild.compare import Tolerance, Verdict
from bitwright.rebuild.report import RebuildReport, report_markdown
from bitwright.rebuild.visual import HTML_FILE, rebuild_html
from bitwright.release.layout import ReleaseLayout
from bitwright.release.target import check_output_dir

__all__ = [
    "POLICY_URI",
    "REPORT_FILE",
    "REPORT_JSON",
    "VERIFIER_PUB",
    "check_report_dir",
    "is_report_dir",
    "policy_document",
    "resource_uri",
    "verified_levels",
    "write_outputs",
]

POLICY_URI = "https://bitwright.dev/policies/rebuild-compare/v1"
"""The ``policy.uri`` of a rebuild's VSA; ``policy.digest`` pins the exact settings."""

REPORT_FILE = "report.md"
REPORT_JSON = "report.json"
"""The report as ``--json`` prints it; also what marks a directory as a rebuild report."""
VERIFIER_PUB = "verifier.pub"
"""The verifier's public key, copied beside the VSA so others can check it."""


def is_report_dir(directory: Path) -> bool:
    """Whether ``directory`` holds an earlier rebuild report of bitwright's."""
    marker = directory / REPORT_JSON
    try:
        data = read_json_object(marker, "a rebuild report", hint="", limit=16 << 20)
    except (OperationalError, VerificationFailed):
        return False
    return {"release", "verdict", "reproduced"} <= set(data)


def check_report_dir(out: Path) -> Path:
    """Return ``out`` resolved if a rebuild may write its report there (see the module doc).

    Raises:
        OperationalError: ``out`` is a file, someone else's directory or precious.
    """
    return check_output_dir(
        out, what="rebuild report directory", is_own=is_report_dir, replace=True
    )


def policy_document(
    policy: TrustPolicy,
    tolerances: Mapping[str, Tolerance],
    *,
    strict_env: bool,
    stage: str | None,
) -> dict[str, Any]:
    """The JSON document whose canonical sha256 is the VSA's policy digest."""
    return {
        "policy": POLICY_URI,
        "trustedKeys": sorted(str(k.keyid) for k in policy.keys),
        "trustedIdentities": sorted(f"{i.identity} {i.issuer}" for i in policy.identities),
        "tolerances": {
            name: {"atol": t.atol, "rtol": t.rtol} for name, t in sorted(tolerances.items())
        },
        "strictEnv": strict_env,
        "stage": stage or "",
    }


def resource_uri(statement: Statement, repository: str) -> str:
    """What a VSA of the release names: its source's URI, else ``git+REPOSITORY``."""
    source = statement.dependency(SOURCE)
    return (source.uri if source else None) or f"git+{repository}"


def verified_levels(verdict: Verdict, *, stage: str | None) -> list[str]:
    """The VSA levels a verdict establishes (none unless reproduced)."""
    scope = "_STAGE" if stage else ""
    if verdict is Verdict.REPRODUCED:
        return [LEVEL_REPRODUCED_BITWISE.replace("BITWRIGHT", f"BITWRIGHT{scope}")]
    if verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE:
        return [LEVEL_REPRODUCED_WITHIN_TOLERANCE.replace("BITWRIGHT", f"BITWRIGHT{scope}")]
    return []


def _input_attestations(release: Path) -> list[tuple[str, str, str]]:
    layout = ReleaseLayout(release)
    files = [layout.provenance, layout.provenance_bundle, layout.layout]
    files += sorted(layout.links.glob("*.link")) if layout.links.is_dir() else []
    return [
        (f.relative_to(release).as_posix(), f.resolve().as_uri(), sha256_file(f))
        for f in files
        if f.is_file()
    ]


def write_outputs(
    report: RebuildReport,
    out: Path,
    *,
    subjects: Mapping[str, str],
    resource_uri: str,
    policy: Mapping[str, Any],
    key_path: Path | None,
) -> dict[str, str]:
    """Write ``report.md``, ``report.html`` and, with a key and a subject, the signed VSA.

    Returns:
        Output kind (``report``, ``html``, ``vsa``, ``verifier_key``) -> the path written.

    Raises:
        OperationalError: a file cannot be written.
        KeyProblem: the verifier key cannot be loaded.
    """
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    if key_path is not None and subjects:
        statement = build_vsa(
            subjects=subjects,
            resource_uri=resource_uri,
            policy_uri=POLICY_URI,
            policy_sha256=hashlib.sha256(canonical_json(dict(policy))).hexdigest(),
            input_attestations=_input_attestations(Path(report.release)),
            passed=report.reproduced,
            verified_levels=verified_levels(report.verdict, stage=report.stage_only or None),
            time_verified=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        written["vsa"] = str(write_vsa(statement, KeySigner.from_file(key_path), out / VSA_FILE))
        public = key_path.with_suffix(".pub")
        if public.is_file():
            target = out / VERIFIER_PUB
            write_text_atomic(target, public.read_text(encoding="utf-8"))
            written["verifier_key"] = str(target)
    report_path = out / REPORT_FILE
    write_text_atomic(report_path, report_markdown(report))
    written["report"] = str(report_path)
    html_path = out / HTML_FILE
    write_text_atomic(html_path, rebuild_html(report))
    written["html"] = str(html_path)
    written["json"] = str(out / REPORT_JSON)
    final = {**report.to_json(), "outputs": dict(written)}
    write_text_atomic(out / REPORT_JSON, json.dumps(final, indent=2, sort_keys=True) + "\n")
    return written
