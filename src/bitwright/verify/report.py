"""The outcome of ``bitwright verify``: one named result per check, and the verdict over them.

Check names are a contract: the CLI prints them, scripts read them from ``--json`` and tests
match them. A release verifies when no check failed and every required check passed: all of
them but ``binding`` (which runs when the verifier states what it expects) and, with
``--allow-missing``, the AI BOM and the model signature.

Beside the checks the report says what was released (:class:`SourceFacts`: source, commit,
builder, build time, a dirty tree, a signed commit) and warnings for a human.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "AIBOM",
    "BINDING",
    "BYPRODUCTS",
    "CHECK_NAMES",
    "COVERAGE",
    "DEPENDENCIES",
    "IN_TOTO",
    "LAYOUT_EXPIRY",
    "LAYOUT_SIGNATURE",
    "MANDATORY_CHECKS",
    "MODEL_SIGNATURE",
    "OPTIONAL_FILE_CHECKS",
    "PROVENANCE_SIGNATURE",
    "RELEASE_STATEMENT",
    "SUBJECTS",
    "CheckResult",
    "CheckStatus",
    "SourceFacts",
    "VerifyReport",
]

LAYOUT_SIGNATURE = "layout-signature"
LAYOUT_EXPIRY = "layout-expiry"
IN_TOTO = "in-toto"
PROVENANCE_SIGNATURE = "provenance-signature"
SUBJECTS = "subjects"
BYPRODUCTS = "byproducts"
DEPENDENCIES = "dependencies"
RELEASE_STATEMENT = "release-statement"
COVERAGE = "coverage"
AIBOM = "aibom"
MODEL_SIGNATURE = "model-signature"
BINDING = "binding"

CHECK_NAMES = (
    LAYOUT_SIGNATURE,
    LAYOUT_EXPIRY,
    IN_TOTO,
    PROVENANCE_SIGNATURE,
    SUBJECTS,
    BYPRODUCTS,
    DEPENDENCIES,
    RELEASE_STATEMENT,
    COVERAGE,
    AIBOM,
    MODEL_SIGNATURE,
    BINDING,
)
"""Every check, in the order ``verify_release`` reports them."""

MANDATORY_CHECKS = CHECK_NAMES[:11]
"""The checks that must pass for a release to verify by default (``binding`` may be skipped)."""

OPTIONAL_FILE_CHECKS = (AIBOM, MODEL_SIGNATURE)
"""The checks ``--allow-missing`` lets a release skip when it lacks their file."""


class CheckStatus(StrEnum):
    """How one check ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """The result of one check.

    Attributes:
        name: the check's name (one of :data:`CHECK_NAMES`).
        status: passed, failed or skipped.
        detail: one line: what was checked, or what failed for which file, or why skipped.
        hint: for a failed check, what to do next ("" otherwise).
    """

    name: str
    status: CheckStatus
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class SourceFacts:
    """What the trusted provenance says was released, for a human to judge.

    Attributes:
        repository: the source repository URI.
        commit: the commit built.
        builder: ``runDetails.builder.id``.
        started_on: RFC 3339 start of the build ("" when not recorded).
        finished_on: RFC 3339 end of the build ("" when not recorded).
        dirty: whether the tree differed from the commit (``--allow-dirty``).
        dirty_paths: the paths that differed.
        signature: the source commit's git signature, in words ("unsigned", "ssh
            signature by SHA256:...").
    """

    repository: str
    commit: str
    builder: str
    started_on: str
    finished_on: str
    dirty: bool
    dirty_paths: tuple[str, ...]
    signature: str

    def to_json(self) -> dict[str, Any]:
        """The facts as the ``source`` object of ``--json``."""
        return {
            "repository": self.repository,
            "commit": self.commit,
            "builder": self.builder,
            "started_on": self.started_on,
            "finished_on": self.finished_on,
            "dirty": self.dirty,
            "dirty_paths": list(self.dirty_paths),
            "rebuildable": not self.dirty,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class VerifyReport:
    """Every check's result for one release.

    Attributes:
        release: the release directory checked.
        checks: the results, in :data:`CHECK_NAMES` order.
        required: the checks that must pass (see :data:`MANDATORY_CHECKS`).
        source: what the trusted provenance says was released (None when untrusted).
        warnings: what a human should know although the checks passed.
        trusted: the authenticated material later steps may build on (``rebuild``): not
            part of the JSON report.
    """

    release: str
    checks: tuple[CheckResult, ...]
    required: tuple[str, ...] = MANDATORY_CHECKS
    source: SourceFacts | None = None
    warnings: tuple[str, ...] = ()
    trusted: Any = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the release verifies: nothing failed and every required check passed."""
        passed = {c.name for c in self.checks if c.status is CheckStatus.PASSED}
        return self.first_failure is None and passed.issuperset(self.required)

    @property
    def first_failure(self) -> CheckResult | None:
        """The first failed check, or ``None``."""
        return next((c for c in self.checks if c.status is CheckStatus.FAILED), None)

    @property
    def why_not(self) -> str:
        """Why the release does not verify, in a few words ("" when it does)."""
        if self.ok:
            return ""
        failure = self.first_failure
        if failure is not None:
            return f"{failure.name}: {failure.detail}"
        passed = {c.name for c in self.checks if c.status is CheckStatus.PASSED}
        missing = [name for name in self.required if name not in passed]
        return f"required check(s) did not pass: {', '.join(missing)}"

    def check(self, name: str) -> CheckResult | None:
        """Return the result of the check called ``name``, or ``None`` if it is not reported."""
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """Return the report as a JSON object (the ``--json`` output of ``bitwright verify``)."""
        first = self.first_failure
        return {
            "release": self.release,
            "ok": self.ok,
            "first_failure": first.name if first is not None else None,
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": c.detail, "hint": c.hint}
                for c in self.checks
            ],
            "source": self.source.to_json() if self.source is not None else None,
            "warnings": list(self.warnings),
        }

    @property
    def missing_required(self) -> tuple[str, ...]:
        """Required checks that did not pass (skipped ones included)."""
        passed = {c.name for c in self.checks if c.status is CheckStatus.PASSED}
        return tuple(name for name in self.required if name not in passed)
