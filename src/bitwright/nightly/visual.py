"""The visual report of a night.

The DAG by worst verdict, the stage-by-variation matrix, the tensors that moved, histograms
of their differences, and the history over nights.
"""

from __future__ import annotations

from collections.abc import Sequence

from bitwright.htmlreport import (
    Histogram,
    History,
    HistoryCell,
    Matrix,
    Page,
    TensorRow,
)
from bitwright.nightly.history import Since
from bitwright.nightly.night import Night
from bitwright.rebuild.visual import stage_dag

__all__ = ["HISTORY_SHOWN", "history_chart", "night_page"]

HISTORY_SHOWN = 60
"""The most recent nights the history chart shows."""


def history_chart(nights: Sequence[Night]) -> History:
    """Per stage and night: the worst result and the share of variations reproduced."""
    shown = list(nights)[-HISTORY_SHOWN:]
    labels = tuple(n.night for n in shown)
    stages: dict[str, None] = {}
    for night in shown:
        stages.update(dict.fromkeys(night.stages))
    cells: dict[tuple[str, str], HistoryCell] = {}
    for night in shown:
        for stage in night.stages:
            cells[(stage, night.night)] = HistoryCell(
                night.stage_result(stage).value,
                night.reproduced_share(stage),
                f"commit {night.commit[:12]}",
            )
    return History(labels, tuple(stages), cells)


def night_page(
    night: Night,
    since: Sequence[Since],
    nights: Sequence[Night],
    histograms: Sequence[Histogram] = (),
) -> Page:
    """Describe a night (and the history up to it) as a visual report page."""
    worst = {stage: night.stage_result(stage).value for stage in night.stages}
    details = {s.stage: s.describe() for s in since}
    matrix = Matrix(
        title="Stages under each variation",
        rows=night.stages,
        columns=tuple(v.name for v in night.variations),
        cells={(s.stage, v.name): s.result.value for v in night.variations for s in v.stages},
        column_notes={
            v.name: "; ".join(x for x in ("; ".join(v.changes), v.note) if x)
            for v in night.variations
        },
    )
    rows = tuple(
        TensorRow(
            file=m.file,
            tensor=m.tensor,
            dtype="",
            shape=(),
            differing=m.differing,
            total=m.total,
            max_abs=m.max_abs,
            max_rel=0.0,
            max_ulp=m.max_ulp,
            within_tolerance=s.result.reproduced,
            context=f"{s.stage} under {v.name}",
        )
        for v in night.variations
        for s in v.stages
        for m in s.moved
    )
    return Page(
        title="bitwright nightly",
        verdict=night.result.value,
        reason=_reason(night, since),
        facts=(
            ("commit", night.commit),
            ("release", night.release),
            ("night", night.night),
            ("sandbox", night.environment.get("sandbox", "")),
        ),
        dag=stage_dag(night.stages, worst, night.edges, details),
        matrix=matrix,
        tensors=rows,
        histograms=tuple(histograms),
        history=history_chart(nights),
        notes=tuple(f"not applied: {s.name}: {s.reason}" for s in night.skipped),
    )


def _reason(night: Night, since: Sequence[Since]) -> str:
    if night.result.reproduced:
        applied = len(night.variations) - 1
        return f"every stage reproduced without variation and under {applied} variation(s)"
    if since:
        return "; ".join(s.describe() for s in since)
    return "a stage did not reproduce"
