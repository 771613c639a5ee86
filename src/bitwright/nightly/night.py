"""What one night found: per variation and stage, the result, digests and tensors that moved.

Results are REPRODUCED, WITHIN_TOLERANCE, DIFFERENT or FAILED.

A :class:`Night` is also one record of the history (:mod:`.history`): :meth:`Night.to_record`
and :meth:`Night.from_record` convert it to and from JSON, refusing unknown fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bitwright.model import JsonModel
from bitwright.rebuild.compare import Verdict
from bitwright.rebuild.report import RebuildReport
from bitwright.rebuild.stages import StageComparison

__all__ = [
    "CONTROL",
    "HISTORY_SCHEMA",
    "MovedTensor",
    "Night",
    "Result",
    "SkippedVariation",
    "StageResult",
    "VariationResult",
    "stage_results",
]

HISTORY_SCHEMA = "https://bitwright.dev/nightly/history/v1"
"""The ``schema`` of every history record."""

CONTROL = "control"
"""The rebuild without any variation, run first every night."""

_MOVED = 8
"""Tensors that moved, kept per stage and variation (the worst by max |Δ|)."""


class Result(StrEnum):
    """A stage's result under one variation."""

    REPRODUCED = "REPRODUCED"
    WITHIN_TOLERANCE = "WITHIN_TOLERANCE"
    DIFFERENT = "DIFFERENT"
    FAILED = "FAILED"

    @staticmethod
    def of(verdict: Verdict) -> Result:
        """The nightly result of a rebuild verdict."""
        if verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE:
            return Result.WITHIN_TOLERANCE
        return Result(verdict.value)

    @property
    def reproduced(self) -> bool:
        """Bitwise or within the declared tolerance."""
        return self in (Result.REPRODUCED, Result.WITHIN_TOLERANCE)

    @staticmethod
    def worst(results: Iterable[Result]) -> Result:
        """The worst of ``results`` (REPRODUCED when there are none)."""
        order = list(Result)
        return max(results, key=order.index, default=Result.REPRODUCED)


@dataclass(frozen=True)
class MovedTensor:
    """A tensor whose bits moved: where, and how far (``max_abs`` -1 when not finite)."""

    file: str
    tensor: str
    max_abs: float
    max_ulp: int
    differing: int
    total: int

    def describe(self) -> str:
        """``out/model.safetensors:fc1.weight (3/128 elements, max |Δ| 1.2e-07)``."""
        how_far = f"{self.max_abs:.2g}" if self.max_abs >= 0 else "not finite"
        return (
            f"{self.file}:{self.tensor} ({self.differing}/{self.total} elements, max |Δ| {how_far})"
        )


@dataclass(frozen=True)
class StageResult:
    """One stage under one variation."""

    stage: str
    result: Result
    detail: str = ""
    digests: dict[str, str] = field(default_factory=dict)
    moved: tuple[MovedTensor, ...] = ()


@dataclass(frozen=True)
class VariationResult:
    """One variation's rebuild: what changed and how every stage came out.

    Attributes:
        name: the variation (``control`` for none).
        kind: ``control``, ``environment`` or ``knob``.
        changes: the changes applied, as people read them.
        note: how this machine applied it, when weaker than the ideal.
        stages: per stage, in pipeline order.
        reason: the rebuild's one-line reason.
        seconds: how long the rebuild took.
    """

    name: str
    kind: str
    changes: tuple[str, ...]
    stages: tuple[StageResult, ...]
    reason: str
    note: str = ""
    seconds: float = 0.0

    @property
    def result(self) -> Result:
        """The worst stage result (FAILED when no stage was compared)."""
        return Result.worst(s.result for s in self.stages) if self.stages else Result.FAILED

    def stage(self, name: str) -> StageResult | None:
        """The result of stage ``name``, if it was compared."""
        return next((s for s in self.stages if s.stage == name), None)


@dataclass(frozen=True)
class SkippedVariation:
    """A variation this machine cannot apply, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Night(JsonModel):
    """One nightly run: a history record.

    Attributes:
        night: when it started (RFC 3339 UTC).
        finished: when it ended.
        release: the release directory rebuilt.
        commit: the commit it was built from.
        stages: the pipeline's stages in order.
        edges: ``(upstream, downstream)`` stage pairs.
        environment: the machine it ran on (python, torch, os, cpu, sandbox).
        subjects: the released artifacts and their sha256.
        variations: the control first, then every variation applied.
        skipped: the variations this machine could not apply.
    """

    night: str
    finished: str
    release: str
    commit: str
    stages: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    environment: dict[str, str]
    subjects: dict[str, str]
    variations: tuple[VariationResult, ...]
    skipped: tuple[SkippedVariation, ...] = ()

    @property
    def result(self) -> Result:
        """The worst result over every variation."""
        return Result.worst(v.result for v in self.variations) if self.variations else Result.FAILED

    def stage_result(self, stage: str) -> Result:
        """The worst result of ``stage`` over every variation (FAILED if never compared)."""
        found = [v.stage(stage) for v in self.variations]
        if not found or any(s is None for s in found):
            return Result.FAILED
        return Result.worst(s.result for s in found if s is not None)

    def reproduced_share(self, stage: str) -> float:
        """The share of this night's variations under which ``stage`` reproduced."""
        if not self.variations:
            return 0.0
        good = [v for v in self.variations if (s := v.stage(stage)) and s.result.reproduced]
        return len(good) / len(self.variations)

    def to_record(self) -> dict[str, Any]:
        """The history record (JSON data)."""
        return {"schema": HISTORY_SCHEMA, **self.to_json()}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Night:
        """Read a record :meth:`to_record` wrote.

        Raises:
            ValueError: it is not such a record (another schema, a missing or unknown field,
                a value of the wrong type).
        """
        body = dict(data)
        if body.pop("schema", None) != HISTORY_SCHEMA:
            raise ValueError(f"not a {HISTORY_SCHEMA} record")
        return cls.from_json(body)


def _moved(comparison: StageComparison) -> tuple[MovedTensor, ...]:
    moved = [
        MovedTensor(
            f.path,
            t.name,
            t.max_abs if math.isfinite(t.max_abs) else -1.0,
            t.max_ulp,
            t.differing,
            t.total,
        )
        for f in comparison.files
        for t in f.tensors
        if not t.bit_exact
    ]
    moved.sort(key=lambda m: (m.max_abs, m.differing), reverse=True)
    return tuple(moved[:_MOVED])


def stage_results(report: RebuildReport, stages: Iterable[str]) -> tuple[StageResult, ...]:
    """Every stage's result in a rebuild's report; stages it never compared are FAILED."""
    rows = {s.stage: s for s in report.stages}
    results: list[StageResult] = []
    for name in stages:
        row = rows.get(name)
        if row is None:
            results.append(StageResult(name, Result.FAILED, report.reason))
            continue
        digests = {p.path: p.rebuilt for p in row.products if p.rebuilt is not None}
        detail = row.note or "; ".join(f.detail for f in row.files)
        results.append(StageResult(name, Result.of(row.verdict), detail, digests, _moved(row)))
    return tuple(results)
