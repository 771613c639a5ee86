"""Verifying a release without rebuilding it: signatures, the in-toto chain, digests.

:func:`verify_release` checks a release directory against a
:class:`~bitwright.attest.trust.TrustPolicy` and returns a :class:`VerifyReport`, one named
:class:`CheckResult` per check::

    layout-signature  layout-expiry  in-toto              (checks_layout)
    provenance-signature  subjects  byproducts            (checks_provenance)
    dependencies                                          (checks_chain)
    aibom  model-signature                                (checks_release)

The artifacts are hashed in the background while the signature checks run
(:class:`bitwright.digest.BackgroundTreeDigest`). :func:`verify_release` is imported on first
use, so that a command can start that hashing before the verifier's own imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names
from bitwright.verify.report import (
    CHECK_NAMES,
    MANDATORY_CHECKS,
    CheckResult,
    CheckStatus,
    VerifyReport,
)

if TYPE_CHECKING:
    from bitwright.verify.verify import verify_release

__all__ = [
    "CHECK_NAMES",
    "MANDATORY_CHECKS",
    "CheckResult",
    "CheckStatus",
    "VerifyReport",
    "verify_release",
]


__getattr__, __dir__ = lazy_names(__name__, {"verify_release": "verify"})
