"""The decision record: a signed in-toto statement of the decision, and its Markdown twin.

``bitwright gate --out DIR --key KEY`` writes ``DIR/decision.intoto.json``: a DSSE envelope
(signed by the gate's key) around an in-toto Statement v1 whose subjects are what was
judged (the release's artifacts, with their sha256) and whose predicate
(:data:`DECISION_PREDICATE`) names the policy by digest and profile and lists every
requirement with its result, its evidence and the digest of that evidence. ``decision.md``
says the same for people. :func:`read_decision` accepts a record only when a trusted key
signed it and every evidence digest is that of its evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, StringConstraints, ValidationError

from bitwright import __version__
from bitwright.attest.canonical import canonical_json
from bitwright.attest.dsse import (
    INTOTO_PAYLOAD_TYPE,
    read_envelope,
    verify_envelope,
    write_envelope,
)
from bitwright.attest.keys import Key
from bitwright.attest.signers import AttestationSigner
from bitwright.attest.statement import (
    STATEMENT_V1,
    DigestSet,
    ResourceDescriptor,
    WireModel,
    first_problem,
)
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.fileio import loads_strict, write_text_atomic
from bitwright.gate.evaluate import Decision

__all__ = [
    "DECISION_FILE",
    "DECISION_MD",
    "DECISION_PREDICATE",
    "GATE_ID",
    "DecisionStatement",
    "decision_markdown",
    "decision_statement",
    "read_decision",
    "write_decision",
]

DECISION_PREDICATE = "https://bitwright.dev/gate-decision/v1"
"""The predicateType of a gate's decision."""

GATE_ID = "https://bitwright.dev/gate/v1"
"""The gate's id in the records it signs."""

DECISION_FILE = "decision.intoto.json"
DECISION_MD = "decision.md"

_Timestamp = Annotated[
    str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
]
_DAMAGED = "the record is damaged, or not a bitwright gate decision"


class PolicyRef(WireModel):
    """The policy applied: where, its digest, and the profile."""

    uri: str
    digest: DigestSet
    profile: str


class GateRef(WireModel):
    """Who decided."""

    id: str
    version: dict[str, str]


class RequirementRecord(WireModel):
    """One requirement in the record."""

    id: str
    claim: str
    passed: bool
    summary: str
    evidence: dict[str, JsonValue]
    evidence_digest: DigestSet


class DecisionPredicate(WireModel):
    """The predicate of a decision."""

    decision: Literal["admit", "deny"]
    target: str
    target_kind: Literal["release", "model-directory"]
    policy: PolicyRef
    decided_on: _Timestamp
    gate: GateRef
    requirements: list[RequirementRecord]


class DecisionStatement(WireModel):
    """An in-toto Statement v1 carrying a gate decision."""

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[ResourceDescriptor] = Field(min_length=1)
    predicate_type: Literal["https://bitwright.dev/gate-decision/v1"]
    predicate: DecisionPredicate

    def to_json(self) -> dict[str, Any]:
        """The Statement as the JSON object that is signed."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data


def decision_statement(decision: Decision) -> DecisionStatement:
    """The Statement of ``decision``.

    Raises:
        OperationalError: the decision has no subject (an empty model directory).
    """
    if not decision.subjects:
        raise OperationalError(
            f"{decision.target}: nothing to record a decision about (no file)",
            hint="judge a release or a directory that holds the model",
        )
    data = {
        "_type": STATEMENT_V1,
        "subject": [
            {"name": name, "digest": {"sha256": digest}}
            for name, digest in sorted(decision.subjects.items())
        ],
        "predicateType": DECISION_PREDICATE,
        "predicate": {
            **decision.to_json(),
            "gate": {"id": GATE_ID, "version": {"bitwright": __version__}},
        },
    }
    try:
        return DecisionStatement.model_validate(data)
    except ValidationError as exc:
        raise OperationalError(
            f"cannot record the decision: {first_problem(exc)}", hint="report this bug"
        ) from None


def write_decision(decision: Decision, signer: AttestationSigner, out: Path) -> dict[str, Path]:
    """Sign the decision into ``out/decision.intoto.json`` and write ``out/decision.md``.

    Raises:
        OperationalError: a file cannot be written, or there is nothing to decide about.
        SignerError: signing failed.
    """
    statement = decision_statement(decision)
    signed = signer.sign(canonical_json(statement.to_json()), INTOTO_PAYLOAD_TYPE)
    record = write_envelope(signed.envelope, out / DECISION_FILE)
    markdown = out / DECISION_MD
    write_text_atomic(markdown, decision_markdown(decision))
    return {"record": record, "markdown": markdown}


def read_decision(path: Path, keys: Sequence[Key]) -> DecisionStatement:
    """Read a decision record that one of ``keys`` signed, its evidence digests checked.

    Raises:
        VerificationFailed: not signed by ``keys``, not a decision, or an evidence digest
            that is not its evidence's.
        OperationalError: the file is missing or unreadable.
    """
    envelope = read_envelope(path)
    payload = verify_envelope(envelope, keys, payload_type=INTOTO_PAYLOAD_TYPE, source=str(path))
    try:
        statement = DecisionStatement.model_validate(loads_strict(payload))
    except (ValueError, ValidationError) as exc:
        problem = first_problem(exc) if isinstance(exc, ValidationError) else str(exc)
        raise VerificationFailed(f"{path}: not a gate decision: {problem}", hint=_DAMAGED) from None
    for item in statement.predicate.requirements:
        digest = hashlib.sha256(canonical_json(item.evidence)).hexdigest()
        if item.evidence_digest.get("sha256") != digest:
            raise VerificationFailed(
                f"{path}: requirement {item.id}: the evidence digest is not its evidence's",
                hint=_DAMAGED,
            )
    return statement


def decision_markdown(decision: Decision) -> str:
    """The decision for people: verdict, policy, subjects, and a table of requirements."""
    verdict = "ADMIT" if decision.admitted else "DENY"
    lines = [
        f"# Gate decision: {verdict}",
        "",
        f"- target: `{decision.target}` ({decision.kind})",
        f"- policy: `{decision.policy_path}`, profile `{decision.profile}`, "
        f"sha256 `{decision.policy_sha256}`",
        f"- decided on: {decision.decided_on}",
        "",
        "## Requirements",
        "",
        "| requirement | claim | result | why | evidence sha256 |",
        "|---|---|---|---|---|",
    ]
    for item in decision.requirements:
        result = "pass" if item.passed else "**FAIL**"
        why = item.summary.replace("|", "\\|")
        lines.append(
            f"| `{item.id}` | {item.claim} | {result} | {why} | `{item.evidence_sha256[:16]}` |"
        )
    lines += ["", "## Subjects", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in sorted(decision.subjects.items())]
    return "\n".join(lines) + "\n"
