"""The signal bitwright ships: other pickle scanners (picklescan, fickling, modelscan).

It passes when at least one of them is installed and none flags a file; their results are
the evidence. It adds to the allowlist scan, never replaces it (:mod:`bitwright.scan.external`).
"""

from __future__ import annotations

from typing import ClassVar

from bitwright.gate.plugins.interface import Signal, SignalContext, SignalResult, SignalVerdict
from bitwright.scan.external import PICKLE_FORMATS, run_external

__all__ = ["ExternalScannersSignal"]


class ExternalScannersSignal(Signal):
    """picklescan, fickling and modelscan on the files that carry pickles."""

    name: ClassVar[str] = "external-scanners"
    description: ClassVar[str] = "other pickle scanners find nothing on the model files"

    def evaluate(self, context: SignalContext) -> SignalResult:
        """Run every installed scanner on the pickle-bearing files."""
        files = sorted(
            path
            for path, fmt in context.formats.items()
            if fmt.rpartition(":")[2] in PICKLE_FORMATS
        )
        evidence = run_external(files)
        results = {
            e.tool: {"version": e.version, "verdict": e.verdict, "detail": e.detail}
            for e in evidence
        }
        if not evidence:
            return SignalResult(SignalVerdict.ERROR, "no other scanner is installed", results)
        flagged = [e for e in evidence if e.verdict != "clean"]
        if flagged:
            named = "; ".join(f"{e.tool}: {e.verdict}: {e.detail}" for e in flagged)
            return SignalResult(SignalVerdict.FAIL, named, results)
        tools = ", ".join(e.tool for e in evidence)
        return SignalResult(SignalVerdict.PASS, f"{tools}: clean on {len(files)} file(s)", results)
