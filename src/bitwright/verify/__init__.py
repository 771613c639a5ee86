"""Verifying a release without rebuilding it: signatures, the in-toto chain, digests.

:func:`verify_release` checks a release directory against a
:class:`~bitwright.attest.trust.TrustPolicy` and returns a :class:`VerifyReport`, one named
:class:`CheckResult` per check::

    layout-signature  layout-expiry  in-toto              (checks_layout)
    provenance-signature  subjects  byproducts            (checks_provenance)
    dependencies                                          (checks_chain)
    aibom  model-signature                                (checks_release)
"""

from bitwright.verify.report import (
    CHECK_NAMES,
    MANDATORY_CHECKS,
    CheckResult,
    CheckStatus,
    VerifyReport,
)
from bitwright.verify.verify import verify_release

__all__ = [
    "CHECK_NAMES",
    "MANDATORY_CHECKS",
    "CheckResult",
    "CheckStatus",
    "VerifyReport",
    "verify_release",
]
