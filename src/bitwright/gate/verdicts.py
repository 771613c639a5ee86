"""Verdicts of independent rebuilders: collected into a release, counted by the gate.

A rebuilder's verdict is the SLSA VSA that ``bitwright rebuild --out`` signs
(:mod:`bitwright.attest.vsa`). ``bitwright vsa add RELEASE VSA...`` (:func:`add_verdicts`)
keeps one in ``RELEASE/verdicts/`` only when its subjects are exactly the release's
artifacts, names and digests; the gate (:func:`read_verdicts`) reads those and any given
on its command line, and counts a verdict only when a trusted verifier key signed it, its
subjects are the release's and it is recent enough. The VSA carries no reason: a failed
verification (``FAILED``, no level) counts as DIFFERENT, whether the bits differed or the
rebuild broke. A verdict on one stage (``BITWRIGHT_STAGE_...``) says nothing of the release.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bitwright.attest.dsse import (
    INTOTO_PAYLOAD_TYPE,
    read_envelope,
    unverified_payload,
    verify_envelope,
)
from bitwright.attest.keys import SSlibKey
from bitwright.attest.vsa import (
    LEVEL_REPRODUCED_BITWISE,
    LEVEL_REPRODUCED_WITHIN_TOLERANCE,
    VsaStatement,
    parse_vsa,
)
from bitwright.errors import CheckFailed, OperationalError, VerificationFailed
from bitwright.fileio import NotRegularFile, read_regular, write_atomic

__all__ = [
    "VERDICTS_DIR",
    "Verdict",
    "VerdictKind",
    "add_verdicts",
    "read_verdicts",
]

VERDICTS_DIR = "verdicts"
"""Where a release keeps the VSAs of its rebuilders (never covered by its own signatures)."""

_MAX_VSA_BYTES = 4 << 20


class VerdictKind(StrEnum):
    """What a verdict says of the release."""

    REPRODUCED = "REPRODUCED"
    REPRODUCED_WITHIN_TOLERANCE = "REPRODUCED_WITHIN_TOLERANCE"
    DIFFERENT = "DIFFERENT"
    OTHER = "OTHER"  # passed, but for a level that is not a reproduction of the release


@dataclass(frozen=True)
class Verdict:
    """One VSA as the gate reads it.

    Attributes:
        file: where it was read.
        sha256: the file's digest (evidence).
        signer: the keyid of the trusted verifier key that signed it, or ``""``.
        kind: what it says.
        time_verified: its ``timeVerified`` (``""`` when absent).
        matches: whether its subjects are exactly the release's.
        problem: why it does not count, or ``""``.
    """

    file: str
    sha256: str
    signer: str
    kind: VerdictKind
    time_verified: str
    matches: bool
    problem: str = ""

    def age_days(self, now: dt.datetime) -> float | None:
        """Days since it was verified, or None without a time."""
        if not self.time_verified:
            return None
        stamp = dt.datetime.fromisoformat(self.time_verified.replace("Z", "+00:00"))
        return (now - stamp).total_seconds() / 86400


def _kind(statement: VsaStatement) -> VerdictKind:
    if not statement.passed:
        return VerdictKind.DIFFERENT
    levels = set(statement.predicate.verified_levels)
    if LEVEL_REPRODUCED_BITWISE in levels:
        return VerdictKind.REPRODUCED
    if LEVEL_REPRODUCED_WITHIN_TOLERANCE in levels:
        return VerdictKind.REPRODUCED_WITHIN_TOLERANCE
    return VerdictKind.OTHER


def _subjects(statement: VsaStatement) -> dict[str, str]:
    return {(s.name or "_"): (s.digest or {}).get("sha256", "") for s in statement.subject}


def read_verdicts(
    files: Sequence[Path], verifiers: Sequence[SSlibKey], subjects: Mapping[str, str]
) -> list[Verdict]:
    """Read each VSA file: who of ``verifiers`` signed it, what it says, whether it matches.

    A file that cannot be read as a VSA, or that no trusted verifier signed, is returned
    with its problem rather than raised: one bad verdict must not hide the others.

    Args:
        files: the VSA files.
        verifiers: the trusted verifier keys.
        subjects: the release's artifact name -> sha256.
    """
    found: list[Verdict] = []
    for path in files:
        found.append(_read_one(path, verifiers, subjects))
    return found


def _read_one(path: Path, verifiers: Sequence[SSlibKey], subjects: Mapping[str, str]) -> Verdict:
    try:
        data = read_regular(path, limit=_MAX_VSA_BYTES)
        envelope = read_envelope(path)
    except (OperationalError, VerificationFailed) as exc:
        return Verdict(str(path), "", "", VerdictKind.OTHER, "", False, exc.message)
    digest = hashlib.sha256(data).hexdigest()
    signer = ""
    payload = b""
    for key in verifiers:
        try:
            payload = verify_envelope(
                envelope, [key], payload_type=INTOTO_PAYLOAD_TYPE, source=str(path)
            )
        except VerificationFailed:
            continue
        signer = key.keyid
        break
    if not signer:
        problem = "signed by no trusted verifier key"
        return Verdict(str(path), digest, "", VerdictKind.OTHER, "", False, problem)
    try:
        statement = parse_vsa(payload, source=str(path))
    except VerificationFailed as exc:
        return Verdict(str(path), digest, signer, VerdictKind.OTHER, "", False, exc.message)
    matches = _subjects(statement) == dict(subjects)
    return Verdict(
        file=str(path),
        sha256=digest,
        signer=signer,
        kind=_kind(statement),
        time_verified=statement.predicate.time_verified or "",
        matches=matches,
        problem="" if matches else "its subjects are not this release's artifacts",
    )


def add_verdicts(release: Path, artifacts: Mapping[str, str], files: Sequence[Path]) -> list[Path]:
    """Check each VSA's subjects against ``artifacts`` and copy it into ``release/verdicts/``.

    The signature is not judged here (the gate does, with the keys its policy trusts), but
    the file must be a DSSE envelope holding a VSA v1 whose subjects are exactly the
    release's artifacts. The copy is named by the file's digest, so adding twice is harmless.

    Args:
        release: the release directory.
        artifacts: path under ``artifacts/`` -> sha256 of every released file.
        files: the VSA files.

    Returns:
        The files written, in order.

    Raises:
        CheckFailed: a VSA is for other artifacts (nothing is added then).
        VerificationFailed: a file is not a VSA.
        OperationalError: a file is unreadable, or the copy cannot be written.
    """
    staged: list[tuple[Path, bytes]] = []
    for path in files:
        try:
            data = read_regular(path, limit=_MAX_VSA_BYTES)
        except NotRegularFile as exc:
            raise OperationalError(exc.message, hint=exc.hint) from None
        statement = parse_vsa(unverified_payload(read_envelope(path), source=str(path)))
        claimed = _subjects(statement)
        if claimed != dict(artifacts):
            raise CheckFailed(
                f"{path}: {_difference(claimed, artifacts)}",
                hint="this VSA verified another release; rebuild this one and add its VSA",
            )
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.intoto.json"
        staged.append((release / VERDICTS_DIR / name, data))
    for target, envelope in staged:
        write_atomic(target, envelope)
    return [target for target, _ in staged]


def _difference(claimed: Mapping[str, str], artifacts: Mapping[str, str]) -> str:
    for name in sorted(set(claimed) | set(artifacts)):
        if name not in artifacts:
            return f"subject {name} is not an artifact of the release"
        if name not in claimed:
            return f"artifact {name} is not a subject of the VSA"
        if claimed[name] != artifacts[name]:
            return f"subject {name} has another sha256 than the release's artifact"
    return "its subjects differ from the release's artifacts"
