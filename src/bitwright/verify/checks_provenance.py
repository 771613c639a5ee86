"""The provenance checks: who signed it, whether the artifacts are its subjects, its byproducts.

The provenance is checked with :func:`bitwright.attest.trust.verify_attestation` against the
verifier's trust policy only: a sigstore bundle (``provenance.sigstore.json``) against the
trusted identities, a DSSE envelope (``provenance.intoto.json``) against the trusted keys.
Its byproducts pin the exact bytes of every link and of the layout, so a link swapped for
another validly signed one (from another build) is caught here even when in-toto's rules
happen to hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bitwright.attest import INTOTO_PAYLOAD_TYPE, keyid8, read_envelope
from bitwright.attest.dsse import read_json_object
from bitwright.attest.provenance import parse_statement
from bitwright.attest.statement import LAYOUT_BYPRODUCT, Statement
from bitwright.attest.trust import TrustPolicy, verify_attestation
from bitwright.digest import sha256_file
from bitwright.errors import VerificationFailed
from bitwright.model import Sha256
from bitwright.release.layout import ReleaseLayout

__all__ = ["check_byproducts", "check_provenance_signature", "check_subjects", "describe_problems"]

_LINK_PREFIX = "links/"
_REFETCH = "the release was altered after it was signed; do not use it, take it again"


def check_provenance_signature(
    release: ReleaseLayout, policy: TrustPolicy
) -> tuple[Statement, str]:
    """Check that a trusted signer signed the provenance; parse its Statement.

    A sigstore bundle is checked when the policy trusts identities, the bare DSSE envelope
    when it trusts keys.

    Raises:
        OperationalError: a file is unreadable, or the sigstore trust config cannot be used.
        VerificationFailed: a malformed file, a signature no trusted signer made, nothing the
            policy can check it with, or a Statement this version does not understand.
    """
    envelope_path, bundle_path = release.provenance, release.provenance_bundle
    envelope: dict[str, Any] | None = None
    bundle: dict[str, Any] | None = None
    if bundle_path.is_file() and policy.identities:
        source = bundle_path
        bundle = read_json_object(bundle_path, "a sigstore bundle", hint=_REFETCH)
        if envelope_path.is_file():
            # A keyless envelope has no keyids: it is compared with the bundle's, not parsed.
            envelope = read_json_object(envelope_path, "a DSSE envelope", hint=_REFETCH)
    elif envelope_path.is_file() and policy.keys and not bundle_path.is_file():
        source = envelope_path
        envelope = read_envelope(envelope_path)
    else:
        keyless = bundle_path.is_file()
        raise VerificationFailed(
            f"{bundle_path if keyless else envelope_path} is signed "
            f"{'keyless (sigstore)' if keyless else 'with a key'} and you trust no "
            f"{'identity' if keyless else 'key'} to check it",
            hint="pass the keyless signer (--identity ID --issuer URL)"
            if keyless
            else "pass the owner's public key (--key PUB)",
        )
    verified = verify_attestation(
        envelope=envelope,
        bundle=bundle,
        policy=policy,
        expected_payload_type=INTOTO_PAYLOAD_TYPE,
        source=str(source),
    )
    statement = parse_statement(verified.payload, source=str(source))
    signer = keyid8(verified.signer_id) if verified.method == "key" else verified.signer_id
    return statement, (
        f"{source.name} signed by trusted {verified.method} {signer}; "
        f"{len(statement.subject)} subject(s)"
    )


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


def check_byproducts(statement: Statement, release: ReleaseLayout) -> tuple[None, str]:
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
            claimed[item.name.removeprefix(_LINK_PREFIX)] = digest
    if not claimed:
        raise VerificationFailed(
            "the provenance records no link byproducts", hint="this build left no stage links"
        )
    on_disk = {p.name: p for p in release.links.iterdir()} if release.links.is_dir() else {}
    problems: list[str] = []
    for name, digest in sorted(claimed.items()):
        path = on_disk.get(name)
        if path is None:
            problems.append(f"links/{name} is recorded by the provenance but missing")
        elif not path.is_file() or sha256_file(path) != digest:
            problems.append(f"links/{name} is not the link the provenance records")
    problems.extend(
        f"links/{name} is not recorded by the provenance"
        for name in sorted(set(on_disk) - set(claimed))
    )
    if layout_digest is not None and sha256_file(release.layout) != layout_digest:
        problems.append(f"{release.layout.name} is not the layout the provenance records")
    if problems:
        raise VerificationFailed(describe_problems(problems), hint=_REFETCH)
    layout_note = " and the layout" if layout_digest is not None else ""
    return None, f"{len(claimed)} link(s){layout_note} match the recorded byproducts"


def describe_problems(problems: list[str]) -> str:
    """Return the first problem, with a count of the others."""
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return problems[0] + more
