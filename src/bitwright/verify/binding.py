"""Binding and freshness: is this release what the verifier expects, not merely well signed?

A release of another project, or an older release of this one, signed by the same key is
as well signed as the one a verifier wants. The verifier says what it expects
(:class:`Expectations`: the source repository, the commit or a ref of it, a date before
which no build is acceptable, a clean tree, a source commit signed by an allowed signer)
and the ``binding`` check compares that with the trusted provenance. Whatever is expected,
:func:`source_facts` states what was released, for a human to read.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bitwright.attest.provenance import external_parameters, internal_parameters
from bitwright.attest.statement import Statement
from bitwright.errors import UsageError, VerificationFailed
from bitwright.model import SourceSignature
from bitwright.pins.remote import resolve_remote_ref
from bitwright.pins.source_signature import check_source_signature, describe_signature
from bitwright.verify._run import SkipCheck
from bitwright.verify.report import SourceFacts

__all__ = ["Expectations", "check_binding", "parse_date", "source_facts"]

_HINT = "this is not the release you expect; get the right one from the project"


@dataclass(frozen=True)
class Expectations:
    """What the verifier expects of the release (nothing by default).

    Attributes:
        source_uri: the source repository it must be built from.
        commit: the full commit id it must be built from.
        ref: a branch or tag of the source whose commit it must be built from (resolved
            with ``git ls-remote`` against ``source_uri`` or the recorded repository).
        not_before: the build must have finished at or after this time.
        require_clean: the build must not have run on a dirty tree.
        allowed_signers: the source commit must carry an SSH signature by a key of this
            allowed-signers file.
    """

    source_uri: str | None = None
    commit: str | None = None
    ref: str | None = None
    not_before: datetime | None = None
    require_clean: bool = False
    allowed_signers: Path | None = None

    def __post_init__(self) -> None:
        if self.commit is not None and (
            len(self.commit) not in (40, 64)
            or any(c not in "0123456789abcdef" for c in self.commit)
        ):
            raise UsageError(
                f"--commit {self.commit[:80]!r} is not a full commit id",
                hint="give all 40 (or 64) lowercase hex digits: a prefix can be forged",
            )

    @property
    def given(self) -> bool:
        """Whether the verifier expects anything at all."""
        return any(
            (self.source_uri, self.commit, self.ref, self.not_before, self.require_clean)
        ) or (self.allowed_signers is not None)


def parse_date(text: str) -> datetime:
    """Parse ``--not-before``: an ISO 8601 date or date-time (UTC when no zone is given).

    Raises:
        UsageError: not a date.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--not-before {text!r} is not a date",
            hint="write 2026-01-31 or 2026-01-31T12:00:00Z",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def source_facts(statement: Statement) -> SourceFacts:
    """What the trusted provenance says was released (raises VerificationFailed if malformed)."""
    external, internal = external_parameters(statement), internal_parameters(statement)
    metadata = statement.predicate.run_details.metadata
    return SourceFacts(
        repository=external.repository,
        commit=external.commit,
        builder=statement.predicate.run_details.builder.id,
        started_on=(metadata.started_on if metadata else None) or "",
        finished_on=(metadata.finished_on if metadata else None) or "",
        dirty=internal.dirty,
        dirty_paths=tuple(internal.dirty_paths or ()),
        signature=describe_signature(_signature(statement)),
    )


def check_binding(statement: Statement, expected: Expectations) -> tuple[None, str]:
    """Check the release against what the verifier expects.

    Raises:
        SkipCheck: nothing is expected.
        VerificationFailed: the release is of another repository or commit, older than
            ``not_before``, built dirty under ``require_clean``, or its source commit is
            not signed by an allowed signer.
        OperationalError: a ref cannot be resolved or the allowed-signers file read.
    """
    if not expected.given:
        raise SkipCheck(
            "nothing expected: pass --source-uri, --commit or --ref, --not-before to bind "
            "the release to the project and version you want"
        )
    facts = source_facts(statement)
    held: list[str] = []
    if expected.source_uri is not None:
        if _normal(expected.source_uri) != _normal(facts.repository):
            raise VerificationFailed(
                f"the release was built from {facts.repository}, not {expected.source_uri}",
                hint=_HINT,
            )
        held.append("source")
    held += _commit_binding(facts, expected)
    if expected.not_before is not None:
        held.append(_freshness(facts, expected.not_before))
    if expected.require_clean:
        if facts.dirty:
            shown = ", ".join(facts.dirty_paths[:3]) or "paths not recorded"
            raise VerificationFailed(
                f"the release was built from a dirty work tree ({shown}): not rebuildable",
                hint="ask for a release built from a committed tree",
            )
        held.append("clean tree")
    if expected.allowed_signers is not None:
        who = check_source_signature(_signature(statement), facts.commit, expected.allowed_signers)
        held.append(f"source signed by {who}")
    return None, "as expected: " + ", ".join(held)


def _commit_binding(facts: SourceFacts, expected: Expectations) -> list[str]:
    held: list[str] = []
    if expected.commit is not None:
        if expected.commit != facts.commit:
            raise VerificationFailed(
                f"the release was built from commit {facts.commit[:12]}, "
                f"not {expected.commit[:12]}",
                hint=_HINT,
            )
        held.append(f"commit {facts.commit[:12]}")
    if expected.ref is not None:
        repository = expected.source_uri or facts.repository
        wanted = resolve_remote_ref(repository, expected.ref)
        if wanted != facts.commit:
            raise VerificationFailed(
                f"the release was built from commit {facts.commit[:12]}; {expected.ref} of "
                f"{repository} is {wanted[:12]}",
                hint="an older (or other) release: get the release of that ref",
            )
        held.append(f"{expected.ref} = {facts.commit[:12]}")
    return held


def _freshness(facts: SourceFacts, not_before: datetime) -> str:
    built = facts.finished_on or facts.started_on
    if not built:
        raise VerificationFailed(
            "the provenance records no build time", hint="--not-before needs a dated build"
        )
    moment = datetime.fromisoformat(built.replace("Z", "+00:00"))
    if moment < not_before:
        raise VerificationFailed(
            f"the release was built on {built}, before {not_before.isoformat()}",
            hint="an older release: get the current one from the project",
        )
    return f"built on {built}"


def _signature(statement: Statement) -> SourceSignature | None:
    recorded = internal_parameters(statement).source_signature
    if recorded is None:
        return None
    try:
        base64.b64decode(recorded.commit_object, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(
            "the recorded source commit object is not base64", hint=_HINT
        ) from None
    return SourceSignature(recorded.kind, recorded.signer, recorded.commit_object)


def _normal(uri: str) -> str:
    text = uri.strip().removeprefix("git+").removeprefix("file://").rstrip("/")
    return text.removesuffix(".git").rstrip("/")
