"""Verifying with keys imports neither model-signing nor sigstore, model.sig included.

model-signing imports all of sigstore (half a second of a verify's start-up); bitwright checks
``model.sig`` itself, so only a keyless provenance makes verify import sigstore.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from release_factory import Release

_VERIFY = """\
import json, sys
from pathlib import Path
from bitwright.attest.keys import load_public_key
from bitwright.attest.trust import TrustPolicy
from bitwright.verify import verify_release

report = verify_release(Path(sys.argv[1]), TrustPolicy(keys=(load_public_key(Path(sys.argv[2])),)))
statuses = {check.name: check.status.value for check in report.checks}
heavy = [m for m in ("model_signing", "sigstore") if m in sys.modules]
print(json.dumps({"ok": report.ok, "statuses": statuses, "heavy": heavy}))
"""


def _verify_in_fresh_interpreter(release: Release) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _VERIFY, str(release.root), str(release.keys.owner.public_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_release_with_model_sig_verifies_without_model_signing_or_sigstore(
    release: Release,
) -> None:
    result = _verify_in_fresh_interpreter(release)

    assert result["ok"] is True
    assert result["statuses"]["model-signature"] == "passed"
    assert result["heavy"] == []
