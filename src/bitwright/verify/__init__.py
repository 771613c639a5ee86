"""Verifying a release without rebuilding it: signatures, the in-toto chain, every file.

:func:`verify_release` checks a release directory against a
:class:`~bitwright.attest.trust.TrustPolicy` and returns a :class:`VerifyReport`, one named
:class:`CheckResult` per check::

    layout-signature  layout-expiry  in-toto              (checks_layout)
    provenance-signature  subjects  byproducts            (checks_provenance)
    dependencies                                          (checks_chain)
    release-statement  coverage                           (checks_coverage)
    aibom  model-signature                                (checks_release)
    binding                                               (binding)

Every file is read bounded, as a regular file inside the release (:mod:`.material`, with
its :class:`Limits`, from the light :mod:`.limits`). The artifacts are hashed in the background
(:class:`bitwright.digest.BackgroundTreeDigest`) while the signature checks run.
:func:`verify_release` is imported on first use, so that a command can start that hashing
before the verifier's own imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names
from bitwright.verify.limits import DEFAULT_LIMITS, Limits
from bitwright.verify.report import (
    CHECK_NAMES,
    MANDATORY_CHECKS,
    CheckResult,
    CheckStatus,
    SourceFacts,
    VerifyReport,
)

if TYPE_CHECKING:
    from bitwright.verify.binding import Expectations, parse_date
    from bitwright.verify.candidate import check_candidate
    from bitwright.verify.verify import TrustedRelease, verify_release

__all__ = [
    "CHECK_NAMES",
    "DEFAULT_LIMITS",
    "MANDATORY_CHECKS",
    "CheckResult",
    "CheckStatus",
    "Expectations",
    "Limits",
    "SourceFacts",
    "TrustedRelease",
    "VerifyReport",
    "check_candidate",
    "parse_date",
    "verify_release",
]


__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "verify_release": "verify",
        "TrustedRelease": "verify",
        "Expectations": "binding",
        "parse_date": "binding",
        "check_candidate": "candidate",
    },
)
