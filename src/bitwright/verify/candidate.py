"""Checking a release before it is written: what ``bitwright release`` hands to verify.

``release`` assembles its directory, then calls :func:`check_candidate`: the checks of
``bitwright verify``, trusting the owner's key (and the build's own provenance when it is
signed keyless, which cannot be checked offline). A release that verify would reject is
refused with one line naming the check and the fix, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from bitwright.attest.keys import SSlibKey
from bitwright.attest.statement import Statement
from bitwright.attest.trust import TrustPolicy
from bitwright.errors import OperationalError
from bitwright.verify.verify import verify_release

__all__ = ["check_candidate"]

_REBUILD = "run `bitwright build` again, then `bitwright release`"
_FIXES = {
    "layout-expiry": "the build's layout has expired: " + _REBUILD,
    "dependencies": "the attestations come from different builds (a commit since the "
    "last build?): " + _REBUILD,
    "byproducts": "the links changed since the provenance was signed: " + _REBUILD,
    "model-signature": "sign with the key that signed the build (--key), or " + _REBUILD,
    "release-statement": "sign with the key that signed the build (--key), or " + _REBUILD,
}


def check_candidate(directory: Path, owner: SSlibKey, own_provenance: Statement | None) -> None:
    """Refuse (exit 3, with the fix) an assembled release that verify would reject.

    Raises:
        OperationalError: a check failed or could not run; names it and the fix.
    """
    report = verify_release(directory, TrustPolicy(keys=(owner,)), own_provenance=own_provenance)
    if report.ok:
        return
    failure = report.first_failure
    if failure is None:
        raise OperationalError(
            f"the release would not verify: {', '.join(report.missing_required)} could not "
            "be checked; nothing was written",
            hint=_REBUILD,
        )
    raise OperationalError(
        f"the release would not verify ({failure.name}: {failure.detail}); nothing was written",
        hint=_FIXES.get(failure.name, _REBUILD),
    )
