"""What a spot-check audit found: per-segment verdicts, the run's findings, odds and cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["FRACTIONS", "SegmentCheck", "SegmentVerdict", "SpotCheckReport", "report_markdown"]

FRACTIONS = (0.05, 0.1, 0.2)
"""Forged fractions every report gives the detection probability for."""


class SegmentVerdict(StrEnum):
    """The verdict on one checked segment."""

    REPRODUCED = "REPRODUCED"
    REPRODUCED_WITHIN_TOLERANCE = "REPRODUCED_WITHIN_TOLERANCE"
    FORGED = "FORGED"
    MISSING_CHECKPOINT = "MISSING_CHECKPOINT"
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"
    REPLAY_FAILED = "REPLAY_FAILED"

    @property
    def ok(self) -> bool:
        """Whether the segment was reproduced."""
        return self in (SegmentVerdict.REPRODUCED, SegmentVerdict.REPRODUCED_WITHIN_TOLERANCE)


@dataclass(frozen=True)
class SegmentCheck:
    """One audited segment: steps ``first`` to ``end - 1``, its verdict and inclusion proof."""

    index: int
    first: int
    end: int
    verdict: SegmentVerdict
    detail: str
    commitment: str
    proof: tuple[str, ...]

    @property
    def steps(self) -> str:
        """The step range as people write it."""
        return f"{self.first}-{self.end - 1}"


@dataclass(frozen=True)
class SpotCheckReport:
    """The outcome of one audit of a release's committed training run."""

    release: str
    passed: bool
    reason: str
    stage: str = ""
    segments_total: int = 0
    steps_total: int = 0
    chain_head: str = ""
    merkle_root: str = ""
    randomness: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[SegmentCheck, ...] = ()
    findings: tuple[str, ...] = ()
    detection: Mapping[str, float] = field(default_factory=dict)
    cost: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    outputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def first_failed(self) -> SegmentCheck | None:
        """The first checked segment that was not reproduced (forged, missing, mismatched)."""
        return next((c for c in self.checks if not c.verdict.ok), None)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (``--json``)."""
        first = self.first_failed
        return {
            "release": self.release,
            "passed": self.passed,
            "reason": self.reason,
            "stage": self.stage,
            "segmentsTotal": self.segments_total,
            "stepsTotal": self.steps_total,
            "chainHead": self.chain_head,
            "merkleRoot": self.merkle_root,
            "randomness": dict(self.randomness),
            "checked": [
                {**asdict(c), "verdict": c.verdict.value, "proof": list(c.proof)}
                for c in self.checks
            ],
            "firstFailed": None
            if first is None
            else {"index": first.index, "steps": first.steps, "verdict": first.verdict.value},
            "findings": list(self.findings),
            "detectionProbability": dict(self.detection),
            "cost": dict(self.cost),
            "notes": list(self.notes),
            "outputs": dict(self.outputs),
        }


def report_markdown(report: SpotCheckReport) -> str:
    """The human report (``report.md``)."""
    lines = [
        f"# Spot-check audit of {report.release}",
        "",
        f"**{'PASSED' if report.passed else 'FAILED'}**: {report.reason}",
        "",
        f"- stage `{report.stage}`: {report.segments_total} committed segments, "
        f"{report.steps_total} steps",
        f"- chain head `{report.chain_head}`, Merkle root `{report.merkle_root}`",
        f"- randomness: {report.randomness.get('method', '')}, commitment "
        f"`{report.randomness.get('commitment', '')}`"
        + (
            f", seed {report.randomness['seed']}"
            if report.randomness.get("seed") is not None
            else ""
        ),
        "",
    ]
    if report.findings:
        lines += ["## Findings", "", *(f"- {f}" for f in report.findings), ""]
    if report.checks:
        lines += [
            "## Segments checked",
            "",
            "| segment | steps | verdict | detail |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c.index} | {c.steps} | {c.verdict.value} | {c.detail} |" for c in report.checks
        ]
        lines.append("")
    if report.detection:
        lines += ["## Probability of catching a forged run", ""]
        lines += [f"- forged fraction {f}: {p:.4f}" for f, p in report.detection.items()]
        lines.append("")
    if report.cost:
        lines += ["## Cost", "", *(f"- {k}: {v:.4g}" for k, v in report.cost.items()), ""]
    if report.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in report.notes), ""]
    return "\n".join(lines)
