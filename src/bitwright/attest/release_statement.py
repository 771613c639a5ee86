"""The release statement: a signed in-toto Statement v1 whose subjects are every file of a release.

The provenance covers the artifacts, the links and the layout; the release statement
(``release.intoto.json``, written by ``bitwright release``) covers everything a release
holds, so that nothing in it is trusted unsigned: the artifacts again, the provenance, the
links and the layout, and also the AI BOM, the model signature, the release README and the
public keys in ``keys/``. Only ``verdicts/`` (verification summaries added later, each
signed by its own verifier) and the statement itself are left out. The predicate names what
was released (repository, commit) so that the statement can be read alone::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "README.md", "digest": {"sha256": "..."}}, ...],
     "predicateType": "https://bitwright.dev/release/v1",
     "predicate": {"repository": "...", "commit": "..."}}

Subject names are POSIX paths relative to the release directory, sorted; the statement is
signed as RFC 8785 canonical JSON in a DSSE envelope, like every bitwright attestation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from bitwright.attest.canonical import canonical_json
from bitwright.attest.statement import (
    GitCommit,
    NonEmpty,
    ResourceDescriptor,
    WireModel,
    first_problem,
    loads_strict,
)
from bitwright.errors import OperationalError, VerificationFailed

__all__ = [
    "RELEASE_PREDICATE_V1",
    "RELEASE_STATEMENT_FILE",
    "UNSIGNED_DIRS",
    "ReleasePredicate",
    "ReleaseStatement",
    "build_release_statement",
    "parse_release_statement",
    "release_statement_bytes",
]

RELEASE_STATEMENT_FILE = "release.intoto.json"
"""The file name of the release statement, at the top of a release directory."""

RELEASE_PREDICATE_V1 = "https://bitwright.dev/release/v1"
"""The ``predicateType`` of a release statement."""

UNSIGNED_DIRS = ("verdicts",)
"""Top-level directories a release statement leaves out: their files carry own signatures."""

_DAMAGED = "the release statement is damaged or was not written by bitwright; take it again"


class ReleasePredicate(WireModel):
    """What was released: the source repository and commit."""

    repository: NonEmpty
    commit: GitCommit


class ReleaseStatement(WireModel):
    """An in-toto Statement v1 listing every signed file of a release with its sha256."""

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[ResourceDescriptor] = Field(min_length=1)
    predicate_type: Literal["https://bitwright.dev/release/v1"]
    predicate: ReleasePredicate

    @model_validator(mode="after")
    def _subjects_are_release_files(self) -> ReleaseStatement:
        seen: set[str] = set()
        for subject in self.subject:
            name = subject.name or ""
            problem = _path_problem(name)
            if problem is not None:
                raise ValueError(f"subject {name[:80]!r}: {problem}")
            if subject.digest is None or "sha256" not in subject.digest:
                raise ValueError(f"subject {name[:80]!r} has no sha256 digest")
            if name in seen:
                raise ValueError(f"subject {name[:80]!r} is listed twice")
            seen.add(name)
        return self

    def files(self) -> dict[str, str]:
        """Return release-relative path -> sha256 of every file the statement covers."""
        return {str(s.name): (s.digest or {})["sha256"] for s in self.subject}

    def to_json(self) -> dict[str, object]:
        """Return the Statement as the JSON object that is signed."""
        data: dict[str, object] = self.model_dump(mode="json", by_alias=True)
        return data


def build_release_statement(
    files: Mapping[str, str], *, repository: str, commit: str
) -> ReleaseStatement:
    """Build the release statement over ``files`` (release-relative path -> sha256).

    Raises:
        OperationalError: a path or digest is malformed, or a path lies in a directory the
            statement leaves out (a bug of the caller).
    """
    data = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(files.items())],
        "predicateType": RELEASE_PREDICATE_V1,
        "predicate": {"repository": repository, "commit": commit},
    }
    try:
        return ReleaseStatement.model_validate(data)
    except ValidationError as exc:
        raise OperationalError(
            f"cannot build the release statement: {first_problem(exc)}",
            hint="this is a bug in what bundled the release; report it",
        ) from None


def release_statement_bytes(statement: ReleaseStatement) -> bytes:
    """The RFC 8785 canonical bytes of ``statement`` (what its envelope signs)."""
    return canonical_json(statement.to_json())


def parse_release_statement(payload: bytes, *, source: str) -> ReleaseStatement:
    """Parse an (authenticated) release statement payload, refusing anything unknown.

    Raises:
        VerificationFailed: not JSON, duplicate keys, unknown fields, another type or
            predicate type, a path that leaves the release or a missing digest.
    """
    try:
        data = loads_strict(payload)
        return ReleaseStatement.model_validate(data)
    except ValueError as exc:
        problem = first_problem(exc) if isinstance(exc, ValidationError) else str(exc)
        raise VerificationFailed(
            f"{source} is not a release statement: {' '.join(problem.split())[:300]}",
            hint=_DAMAGED,
        ) from None


def _path_problem(name: str) -> str | None:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or path.as_posix() != name:
        return "not a plain relative path"
    if name == RELEASE_STATEMENT_FILE:
        return "the statement cannot list itself"
    if path.parts[0] in UNSIGNED_DIRS:
        return f"files under {path.parts[0]}/ carry their own signatures"
    return None
