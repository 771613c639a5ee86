"""The release statement and coverage checks: every file of the release is signed, none is extra.

``release-statement``: a trusted key signed ``release.intoto.json``, a release statement
(:mod:`bitwright.attest.release_statement`) naming the commit the provenance names.

``coverage``: the release holds exactly the files the statement lists, each with its signed
sha256: a README, a key in ``keys/``, an AI BOM or a model signature changed after release,
and any file added anywhere, are named and fail. The directory is listed without following
links, so a symlink, FIFO or device fails here too (nothing is opened). ``verdicts/`` is the
one exception: verification summaries added later (``bitwright vsa add``) each carry their
own signature, checked by ``vsa add`` and ``gate`` with the verifiers' keys; here they are
only required to be regular files of bounded size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE, verify_envelope
from bitwright.attest.keys import SSlibKey, keyid8
from bitwright.attest.release_statement import (
    RELEASE_STATEMENT_FILE,
    UNSIGNED_DIRS,
    ReleaseStatement,
    parse_release_statement,
)
from bitwright.attest.statement import SOURCE, Statement
from bitwright.errors import VerificationFailed
from bitwright.verify.checks_provenance import describe_problems
from bitwright.verify.material import Inventory, ReleaseReader

__all__ = ["check_coverage", "check_release_statement"]

_ARTIFACTS = "artifacts/"
_RETAKE = "the release was altered after it was signed; do not use it, take it again"


def check_release_statement(
    reader: ReleaseReader, keys: Sequence[SSlibKey], statement: Statement | None
) -> tuple[ReleaseStatement, str]:
    """Check that a trusted key signed the release statement, for the provenance's commit.

    Args:
        reader: the release.
        keys: the trusted keys.
        statement: the trusted provenance, when it verified (its commit must be named).

    Raises:
        VerificationFailed: no statement, not signed by a trusted key, malformed, or it
            names another commit than the provenance.
        OperationalError: the file cannot be read.
    """
    if not reader.exists(RELEASE_STATEMENT_FILE):
        raise VerificationFailed(
            f"the release has no {RELEASE_STATEMENT_FILE}: its README, keys, AI BOM and "
            "model signature are covered by no signature",
            hint="ask the owner for a release made with this version of 'bitwright release'",
        )
    if not keys:
        raise VerificationFailed(
            f"{RELEASE_STATEMENT_FILE} is signed with a key and no trusted key was given",
            hint="pass the owner's public key (--key)",
        )
    payload = verify_envelope(
        reader.envelope(RELEASE_STATEMENT_FILE),
        keys,
        payload_type=INTOTO_PAYLOAD_TYPE,
        source=RELEASE_STATEMENT_FILE,
    )
    released = parse_release_statement(payload, source=RELEASE_STATEMENT_FILE)
    source = statement.dependency(SOURCE) if statement is not None else None
    commit = (source.digest or {}).get("gitCommit") if source is not None else None
    if statement is not None and commit != released.predicate.commit:
        raise VerificationFailed(
            f"{RELEASE_STATEMENT_FILE} releases commit {released.predicate.commit[:12]}, "
            f"the provenance names {str(commit)[:12]}",
            hint=_RETAKE,
        )
    signer = next((keyid8(k) for k in keys if _signed_by(reader, k)), "")
    return released, (
        f"signed by trusted key {signer}; lists {len(released.subject)} file(s) of commit "
        f"{released.predicate.commit[:12]}"
    )


def check_coverage(
    reader: ReleaseReader,
    released: ReleaseStatement,
    inventory: Inventory,
    artifacts: Mapping[str, str],
) -> tuple[None, str]:
    """Check that the release holds exactly the signed files, each with its signed digest.

    Args:
        reader: the release.
        released: the verified release statement.
        inventory: every entry of the release, listed without following links.
        artifacts: the fresh digests of ``artifacts/`` (relative to it).

    Raises:
        VerificationFailed: a file is not covered, missing or different, or an entry is not
            a regular file (the first problem is named, with a count of the others).
        OperationalError: a listed file cannot be read or is larger than the limit.
    """
    signed = released.files()
    problems = [f"{entry}: a release holds regular files only" for entry in inventory.strange]
    present = {n for n in inventory.files if n != RELEASE_STATEMENT_FILE and not _unsigned(n)}
    for name in sorted(present - set(signed)):
        problems.append(f"{name} is covered by no signature")
    for name in sorted(set(signed) - present):
        problems.append(f"{name} is listed by {RELEASE_STATEMENT_FILE} but missing")
    for name in sorted(present & set(signed)):
        if _digest(reader, name, artifacts) != signed[name]:
            problems.append(f"{name} differs from its signed digest")
    verdicts = [n for n in inventory.files if _unsigned(n)]
    problems.extend(
        f"{name} is larger than the {reader.limits.document_bytes} bytes accepted"
        for name in verdicts
        if inventory.files[name] > reader.limits.document_bytes
    )
    if problems:
        raise VerificationFailed(describe_problems(problems), hint=_RETAKE)
    detail = f"all {len(signed)} file(s) signed by {RELEASE_STATEMENT_FILE}, none added"
    if verdicts:
        detail += (
            f"; {len(verdicts)} verdict file(s) in verdicts/ carry their own signatures "
            "(checked by 'bitwright vsa add' and 'bitwright gate' with the verifiers' keys)"
        )
    return None, detail


def _digest(reader: ReleaseReader, name: str, artifacts: Mapping[str, str]) -> str | None:
    if name.startswith(_ARTIFACTS):
        return artifacts.get(name.removeprefix(_ARTIFACTS))
    return hashlib.sha256(reader.read(name)).hexdigest()


def _unsigned(name: str) -> bool:
    return name.split("/", 1)[0] in UNSIGNED_DIRS


def _signed_by(reader: ReleaseReader, key: SSlibKey) -> bool:
    try:
        verify_envelope(reader.envelope(RELEASE_STATEMENT_FILE), [key], source="")
    except VerificationFailed:
        return False
    return True
