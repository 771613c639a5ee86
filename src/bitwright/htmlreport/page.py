"""What a visual report shows: plain values that ``rebuild``, ``nightly`` and ``gate`` fill in.

Nothing here knows where the values come from; :func:`bitwright.htmlreport.render_html` turns
a :class:`Page` into one self-contained HTML file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Bar",
    "Dag",
    "DagNode",
    "Histogram",
    "History",
    "HistoryCell",
    "Matrix",
    "Page",
    "Requirement",
    "TensorRow",
    "Tone",
    "tone_of",
]


class Tone(StrEnum):
    """How a verdict is coloured."""

    GOOD = "good"
    WARN = "warn"
    BAD = "bad"
    ERROR = "error"
    NEUTRAL = "neutral"


_TONES = {
    "REPRODUCED": Tone.GOOD,
    "PASS": Tone.GOOD,
    "PASSED": Tone.GOOD,
    "ADMIT": Tone.GOOD,
    "OK": Tone.GOOD,
    "REPRODUCED_WITHIN_TOLERANCE": Tone.WARN,
    "WITHIN_TOLERANCE": Tone.WARN,
    "WARN": Tone.WARN,
    "DIFFERENT": Tone.BAD,
    "FAIL": Tone.BAD,
    "DENY": Tone.BAD,
    "FAILED": Tone.ERROR,
    "ERROR": Tone.ERROR,
}


def tone_of(verdict: str) -> Tone:
    """The tone of a verdict word (``REPRODUCED``, ``PASS``...); neutral when unknown."""
    return _TONES.get(verdict.upper(), Tone.NEUTRAL)


@dataclass(frozen=True)
class DagNode:
    """One stage of the pipeline and its verdict (``""`` when it was not judged)."""

    name: str
    verdict: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Dag:
    """The pipeline: stages and ``(upstream, downstream)`` edges."""

    nodes: tuple[DagNode, ...]
    edges: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Matrix:
    """Verdicts of stages (rows) under variations or checks (columns).

    ``cells[(row, column)]`` is the verdict word; a missing cell shows as not run.
    """

    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], str]
    column_notes: dict[str, str]


@dataclass(frozen=True)
class TensorRow:
    """One tensor (or field) that differs, with how far."""

    file: str
    tensor: str
    dtype: str
    shape: tuple[int, ...]
    differing: int
    total: int
    max_abs: float
    max_rel: float
    max_ulp: int
    within_tolerance: bool
    context: str = ""


@dataclass(frozen=True)
class Bar:
    """One bin of a histogram."""

    label: str
    count: int


@dataclass(frozen=True)
class Histogram:
    """A histogram, e.g. of the absolute differences of one tensor's elements."""

    title: str
    bars: tuple[Bar, ...]
    x_label: str = ""


@dataclass(frozen=True)
class HistoryCell:
    """One stage on one night: its worst verdict and the share of variations reproduced."""

    verdict: str
    reproduced: float
    detail: str = ""


@dataclass(frozen=True)
class History:
    """Reproducibility per stage over nights (oldest first)."""

    nights: tuple[str, ...]
    stages: tuple[str, ...]
    cells: dict[tuple[str, str], HistoryCell]


@dataclass(frozen=True)
class Requirement:
    """One requirement of a policy with its verdict and the evidence behind it."""

    name: str
    verdict: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """A whole report.

    Attributes:
        title: the page's heading.
        verdict: the overall verdict word.
        reason: one line explaining it.
        facts: ``(label, value)`` lines under the heading (commit, release...).
        dag: the pipeline coloured by verdict, if any.
        matrix: stage-by-variation verdicts, if any.
        requirements: a policy's requirements with verdicts and evidence, if any.
        tensors: tensors (or fields) that differ.
        histograms: histograms of the differences of the worst tensors.
        history: reproducibility per stage over nights, if any.
        notes: further lines.
    """

    title: str
    verdict: str
    reason: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    dag: Dag | None = None
    matrix: Matrix | None = None
    requirements: tuple[Requirement, ...] = ()
    tensors: tuple[TensorRow, ...] = ()
    histograms: tuple[Histogram, ...] = ()
    history: History | None = None
    notes: tuple[str, ...] = ()
