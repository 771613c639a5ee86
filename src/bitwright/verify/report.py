"""The outcome of ``bitwright verify``: one named result per check, and the verdict over them.

Check names are a contract: the CLI prints them, scripts read them from ``--json`` and tests
match them. A release verifies when no check failed and every mandatory check passed; the
optional checks (the AI BOM, the model signature) may be skipped when the release does not
carry their file or the verifier holds no key they can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "AIBOM",
    "BYPRODUCTS",
    "CHECK_NAMES",
    "DEPENDENCIES",
    "IN_TOTO",
    "LAYOUT_EXPIRY",
    "LAYOUT_SIGNATURE",
    "MANDATORY_CHECKS",
    "MODEL_SIGNATURE",
    "PROVENANCE_SIGNATURE",
    "SUBJECTS",
    "CheckResult",
    "CheckStatus",
    "VerifyReport",
]

LAYOUT_SIGNATURE = "layout-signature"
LAYOUT_EXPIRY = "layout-expiry"
IN_TOTO = "in-toto"
PROVENANCE_SIGNATURE = "provenance-signature"
SUBJECTS = "subjects"
BYPRODUCTS = "byproducts"
DEPENDENCIES = "dependencies"
AIBOM = "aibom"
MODEL_SIGNATURE = "model-signature"

CHECK_NAMES = (
    LAYOUT_SIGNATURE,
    LAYOUT_EXPIRY,
    IN_TOTO,
    PROVENANCE_SIGNATURE,
    SUBJECTS,
    BYPRODUCTS,
    DEPENDENCIES,
    AIBOM,
    MODEL_SIGNATURE,
)
"""Every check, in the order ``verify_release`` runs and reports them."""

MANDATORY_CHECKS = CHECK_NAMES[:7]
"""The checks that must pass for a release to verify (the rest may be skipped)."""


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
class VerifyReport:
    """Every check's result for one release.

    Attributes:
        release: the release directory checked.
        checks: the results, in :data:`CHECK_NAMES` order.
    """

    release: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """Whether the release verifies: nothing failed and every mandatory check passed."""
        passed = {c.name for c in self.checks if c.status is CheckStatus.PASSED}
        return self.first_failure is None and passed.issuperset(MANDATORY_CHECKS)

    @property
    def first_failure(self) -> CheckResult | None:
        """The first failed check, or ``None``."""
        return next((c for c in self.checks if c.status is CheckStatus.FAILED), None)

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
        }
