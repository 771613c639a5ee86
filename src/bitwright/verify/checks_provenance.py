"""The provenance checks: who signed it, whether the artifacts are its subjects, its byproducts.

The provenance is checked with :func:`bitwright.attest.trust.verify_attestation` against the
verifier's trust policy only: a sigstore bundle (``provenance.sigstore.json``) against the
trusted identities, a DSSE envelope (``provenance.intoto.json``) against the trusted keys.
Its byproducts pin the exact bytes of every link and of the layout, so a link swapped for
another validly signed one (from another build) is caught here even when in-toto's rules
happen to hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE
from bitwright.attest.keys import keyid8
from bitwright.attest.provenance import PROVENANCE_FILE, parse_statement
from bitwright.attest.statement import LAYOUT_BYPRODUCT, Statement
from bitwright.attest.trust import TrustPolicy, verify_attestation
from bitwright.errors import VerificationFailed
from bitwright.model import Sha256
from bitwright.verify.checks_layout import LAYOUT_FILE, link_names
from bitwright.verify.material import ReleaseReader

__all__ = [
    "BUNDLE_FILE",
    "check_byproducts",
    "check_provenance_signature",
    "check_subjects",
    "describe_problems",
]

BUNDLE_FILE = "provenance.sigstore.json"
_LINK_PREFIX = "links/"
_REFETCH = "the release was altered after it was signed; do not use it, take it again"


def check_provenance_signature(reader: ReleaseReader, policy: TrustPolicy) -> tuple[Statement, str]:
    """Check that a trusted signer signed the provenance; parse its Statement.

    A sigstore bundle is checked when the policy trusts identities, the bare DSSE envelope
    when it trusts keys.

    Raises:
        OperationalError: a file is unreadable, or the sigstore trust config cannot be used.
        VerificationFailed: a malformed file, a signature no trusted signer made, nothing the
            policy can check it with, or a Statement this version does not understand.
    """
    has_envelope, has_bundle = reader.exists(PROVENANCE_FILE), reader.exists(BUNDLE_FILE)
    envelope: dict[str, Any] | None = None
    bundle: dict[str, Any] | None = None
    if has_bundle and policy.identities:
        source = BUNDLE_FILE
        bundle = _object(reader.json(BUNDLE_FILE, "a sigstore bundle", hint=_REFETCH), source)
        if has_envelope:
            # A keyless envelope has no keyids: it is compared with the bundle's, not parsed.
            envelope = _object(
                reader.json(PROVENANCE_FILE, "a DSSE envelope", hint=_REFETCH), PROVENANCE_FILE
            )
    elif has_envelope and policy.keys and not has_bundle:
        source = PROVENANCE_FILE
        envelope = reader.envelope(PROVENANCE_FILE)
    else:
        raise VerificationFailed(
            f"{BUNDLE_FILE if has_bundle else PROVENANCE_FILE} is signed "
            f"{'keyless (sigstore)' if has_bundle else 'with a key'} and you trust no "
            f"{'identity' if has_bundle else 'key'} to check it",
            hint="pass the keyless signer (--identity ID --issuer URL)"
            if has_bundle
            else "pass the owner's public key (--key PUB)",
        )
    verified = verify_attestation(
        envelope=envelope,
        bundle=bundle,
        policy=policy,
        expected_payload_type=INTOTO_PAYLOAD_TYPE,
        source=source,
    )
    statement = parse_statement(verified.payload, source=source)
    signer = keyid8(verified.signer_id) if verified.method == "key" else verified.signer_id
    return statement, (
        f"{source} signed by trusted {verified.method} {signer}; "
        f"{len(statement.subject)} subject(s)"
    )


def _object(value: Any, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise VerificationFailed(f"{source} is not a JSON object", hint=_REFETCH)
    return value


def check_subjects(statement: Statement, artifacts: Mapping[str, Sha256]) -> tuple[None, str]:
    """Check that ``artifacts/`` holds exactly the subjects, each with its signed sha256.

    Args:
        statement: the verified provenance.
        artifacts: path relative to ``artifacts/`` -> sha256 of every file there.

    Raises:
        VerificationFailed: a subject is missing or differs, or a file is not a subject;
            the first such file is named.
    """
    subjects = statement.subject_digests()
    problems: list[str] = []
    for name, digest in sorted(subjects.items()):
        actual = artifacts.get(name)
        if actual is None:
            problems.append(f"artifacts/{name} is missing")
        elif actual != digest:
            problems.append(
                f"artifacts/{name} has sha256 {actual[:16]}..., the signed subject {digest[:16]}..."
            )
    problems.extend(
        f"artifacts/{name} is not a subject of the provenance"
        for name in sorted(set(artifacts) - set(subjects))
    )
    if problems:
        raise VerificationFailed(describe_problems(problems), hint=_REFETCH)
    return None, f"{len(subjects)} artifact(s) match the signed subjects"


def check_byproducts(statement: Statement, reader: ReleaseReader) -> tuple[None, str]:
    """Check that the byproducts name exactly the files in ``links/`` with their bytes' sha256.

    The layout's digest is checked too when the provenance records it.

    Raises:
        VerificationFailed: a link is missing, differs, or is not recorded; or the layout
            is not the one recorded.
        OperationalError: a link file cannot be read.
    """
    claimed: dict[str, str] = {}
    layout_digest: str | None = None
    for item in statement.predicate.run_details.byproducts or []:
        digest = (item.digest or {}).get("sha256", "")
        if item.name == LAYOUT_BYPRODUCT:
            layout_digest = digest
        elif item.name is not None and item.name.startswith(_LINK_PREFIX):
            claimed[item.name] = digest
    if not claimed:
        raise VerificationFailed(
            "the provenance records no link byproducts", hint="this build left no stage links"
        )
    on_disk = set(link_names(reader))
    problems: list[str] = []
    for name, digest in sorted(claimed.items()):
        if name not in on_disk:
            problems.append(f"{name} is recorded by the provenance but missing")
        elif _sha256(reader.read(name)) != digest:
            problems.append(f"{name} is not the link the provenance records")
    problems.extend(
        f"{name} is not recorded by the provenance" for name in sorted(on_disk - set(claimed))
    )
    if layout_digest is not None and _sha256(reader.read(LAYOUT_FILE)) != layout_digest:
        problems.append(f"{LAYOUT_FILE} is not the layout the provenance records")
    if problems:
        raise VerificationFailed(describe_problems(problems), hint=_REFETCH)
    layout_note = " and the layout" if layout_digest is not None else ""
    return None, f"{len(claimed)} link(s){layout_note} match the recorded byproducts"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_problems(problems: list[str]) -> str:
    """Return the first problem, with a count of the others."""
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return problems[0] + more
