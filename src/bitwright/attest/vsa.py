"""SLSA Verification Summary Attestations (VSA v1): typed, canonical, DSSE-signed, read back.

A VSA is an in-toto Statement v1 whose predicate (``https://slsa.dev/verification_summary/v1``)
says who verified what, when, against which policy and attestations, and with which result.
bitwright's verifiers (``bitwright rebuild``, the gate) write one; its subjects are the
artifacts that were verified. Levels bitwright defines itself (``BITWRIGHT_...``) never start
with ``SLSA_``, a prefix the spec reserves for SLSA's own levels.

The wire models refuse unknown fields, like the provenance's (:mod:`.statement`); the
Statement is signed as RFC 8785 canonical JSON in a DSSE envelope (payloadType
``application/vnd.in-toto+json``) and :func:`read_vsa` accepts it only when a trusted key
signed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator

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
    ResourceDescriptor,
    WireModel,
    first_problem,
    loads_strict,
)
from bitwright.errors import OperationalError, VerificationFailed

__all__ = [
    "LEVEL_REPRODUCED_BITWISE",
    "LEVEL_REPRODUCED_WITHIN_TOLERANCE",
    "REBUILD_VERIFIER_ID",
    "VSA_FILE",
    "VSA_V1",
    "VerificationResult",
    "Verifier",
    "VsaPredicate",
    "VsaStatement",
    "build_vsa",
    "parse_vsa",
    "read_vsa",
    "vsa_bytes",
    "write_vsa",
]

VSA_V1 = "https://slsa.dev/verification_summary/v1"
"""The ``predicateType`` of an SLSA VSA v1."""

VSA_FILE = "vsa.intoto.json"
"""The file name of a signed VSA."""

REBUILD_VERIFIER_ID = "https://bitwright.dev/verifiers/rebuild/v1"
"""The ``verifier.id`` of ``bitwright rebuild``."""

LEVEL_REPRODUCED_BITWISE = "BITWRIGHT_REPRODUCED_BITWISE"
"""Every stage's products and every subject were rebuilt to the same bytes."""

LEVEL_REPRODUCED_WITHIN_TOLERANCE = "BITWRIGHT_REPRODUCED_WITHIN_TOLERANCE"
"""The rebuilt outputs equal the released ones within the pipeline's declared tolerances."""

_Uri = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")]
_Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"),
]
_Level = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
_DAMAGED = "the VSA is damaged or was not written by a bitwright verifier"


class VerificationResult(StrEnum):
    """``verificationResult``: whether the verification passed."""

    PASSED = "PASSED"
    FAILED = "FAILED"


class Verifier(WireModel):
    """``verifier``: who verified (an id URI) and its components' versions."""

    id: _Uri
    version: dict[str, str] | None = None


class VsaPredicate(WireModel):
    """The SLSA VSA v1 predicate."""

    verifier: Verifier
    time_verified: _Timestamp | None = None
    resource_uri: _Uri
    policy: ResourceDescriptor
    input_attestations: list[ResourceDescriptor] | None = None
    verification_result: Literal["PASSED", "FAILED"]
    verified_levels: list[_Level]
    dependency_levels: dict[str, int] | None = None
    slsa_version: Literal["1.0"] | None = None

    @field_validator("verified_levels")
    @classmethod
    def _no_reserved_prefix(cls, levels: list[str]) -> list[str]:
        for level in levels:
            if level.startswith("SLSA_") and not level.startswith("SLSA_BUILD_LEVEL_"):
                raise ValueError(f"level {level!r}: the SLSA_ prefix is reserved for SLSA levels")
        return levels


class VsaStatement(WireModel):
    """An in-toto Statement v1 whose predicate is an SLSA VSA v1; subjects carry a sha256."""

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[ResourceDescriptor] = Field(min_length=1)
    predicate_type: Literal["https://slsa.dev/verification_summary/v1"]
    predicate: VsaPredicate

    @field_validator("subject")
    @classmethod
    def _subjects_have_sha256(cls, subjects: list[ResourceDescriptor]) -> list[ResourceDescriptor]:
        for subject in subjects:
            if subject.digest is None or "sha256" not in subject.digest:
                raise ValueError(f"subject {subject.name!r} has no sha256 digest")
        return subjects

    def to_json(self) -> dict[str, Any]:
        """Return the Statement as the JSON object that is signed (``_type`` included)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data

    @property
    def passed(self) -> bool:
        """Whether the verification passed."""
        return self.predicate.verification_result == VerificationResult.PASSED.value


def build_vsa(
    *,
    subjects: Mapping[str, str],
    resource_uri: str,
    policy_uri: str,
    policy_sha256: str,
    input_attestations: Sequence[tuple[str, str, str]],
    passed: bool,
    verified_levels: Sequence[str],
    time_verified: str,
    verifier_id: str = REBUILD_VERIFIER_ID,
    policy_annotations: Mapping[str, Any] | None = None,
) -> VsaStatement:
    """Build a VSA Statement.

    Args:
        subjects: artifact name -> sha256 of the artifacts verified (at least one).
        resource_uri: the URI of what was verified (e.g. ``git+URL@COMMIT`` of its source).
        policy_uri: the URI of the policy applied.
        policy_sha256: sha256 of the policy's canonical JSON (what exactly was applied).
        input_attestations: ``(name, uri, sha256)`` of each attestation the verifier read.
        passed: the verification's result.
        verified_levels: the levels it established (``[]`` when it failed).
        time_verified: RFC 3339 UTC time of the verification.
        verifier_id: the verifier's id URI.
        policy_annotations: what the policy applied, in words a reader of the VSA needs
            without the policy document (a spot-check's method, n, randomness commitment).

    Raises:
        OperationalError: a value does not fit the VSA schema (a bug of the caller).
    """
    data: dict[str, Any] = {
        "_type": STATEMENT_V1,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
        "predicateType": VSA_V1,
        "predicate": {
            "verifier": {"id": verifier_id, "version": {"bitwright": __version__}},
            "timeVerified": time_verified,
            "resourceUri": resource_uri,
            "policy": {
                "uri": policy_uri,
                "digest": {"sha256": policy_sha256},
                **({"annotations": dict(policy_annotations)} if policy_annotations else {}),
            },
            "inputAttestations": [
                {"name": name, "uri": uri, "digest": {"sha256": digest}}
                for name, uri, digest in input_attestations
            ],
            "verificationResult": (
                VerificationResult.PASSED if passed else VerificationResult.FAILED
            ).value,
            "verifiedLevels": list(verified_levels),
            "slsaVersion": "1.0",
        },
    }
    try:
        return VsaStatement.model_validate(data)
    except ValidationError as exc:
        raise OperationalError(
            f"cannot build the VSA: {first_problem(exc)}",
            hint="this is a bug in the verifier; report it",
        ) from None


def vsa_bytes(statement: VsaStatement) -> bytes:
    """Return the RFC 8785 canonical bytes of ``statement`` (what the envelope signs)."""
    return canonical_json(statement.to_json())


def write_vsa(statement: VsaStatement, signer: AttestationSigner, path: Path) -> Path:
    """Sign ``statement`` into a DSSE envelope and write it to ``path`` atomically.

    Raises:
        OperationalError: the file cannot be written.
        SignerError: signing failed.
    """
    signed = signer.sign(vsa_bytes(statement), INTOTO_PAYLOAD_TYPE)
    return write_envelope(signed.envelope, path)


def read_vsa(path: Path, keys: Sequence[Key]) -> VsaStatement:
    """Read ``path``, check that one of ``keys`` signed it, and parse the VSA.

    Raises:
        OperationalError: the file is missing or unreadable.
        UsageError: ``keys`` is empty.
        VerificationFailed: not a DSSE envelope, not signed by ``keys``, or not a VSA v1
            this version understands (unknown fields refused).
    """
    envelope = read_envelope(path)
    payload = verify_envelope(envelope, keys, payload_type=INTOTO_PAYLOAD_TYPE, source=str(path))
    return parse_vsa(payload, source=str(path))


def parse_vsa(payload: bytes, *, source: str = "VSA") -> VsaStatement:
    """Parse an (authenticated) VSA payload, refusing anything unknown.

    Raises:
        VerificationFailed: not JSON, another predicate type, or a malformed statement.
    """
    try:
        data = loads_strict(payload)
    except ValueError as exc:
        raise VerificationFailed(f"{source}: not JSON ({exc})", hint=_DAMAGED) from None
    if isinstance(data, dict) and data.get("predicateType") != VSA_V1:
        raise VerificationFailed(
            f"{source}: predicate type {data.get('predicateType')!r} is not {VSA_V1}",
            hint="pass a VSA (vsa.intoto.json), not another attestation",
        )
    try:
        return VsaStatement.model_validate(data)
    except ValidationError as exc:
        one_line = " ".join(first_problem(exc).split())
        raise VerificationFailed(f"{source}: malformed VSA: {one_line}", hint=_DAMAGED) from None
