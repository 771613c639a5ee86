"""The outcome of ``bitwright rebuild --compare``: verdict, stages, files, drift; JSON and Markdown.

The report is pure data (:class:`RebuildReport`); :meth:`RebuildReport.to_json` is the
``--json`` output and :func:`report_markdown` the ``report.md`` a verifier publishes beside
the signed VSA.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bitwright.rebuild.compare import FileComparison, Verdict
from bitwright.rebuild.stages import StageComparison

__all__ = ["DataCheck", "RebuildReport", "report_markdown"]


@dataclass(frozen=True)
class DataCheck:
    """One data snapshot as fetched and checked: ``ok`` or what is wrong with it."""

    path: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild found.

    Attributes:
        release: the release directory.
        verdict: the overall verdict (the worst over stages, subjects and data).
        reason: one line explaining the verdict.
        commit: the commit rebuilt ("" when the release did not verify).
        stages: per-stage comparisons in topological order.
        first_divergent: the first stage whose same materials gave other products.
        subjects: comparisons of the released artifacts with the rebuilt files.
        data: the data snapshots as fetched and checked.
        drift: environment differences from the build machine.
        notes: what the rebuild chose on its own (key generated, data source...).
        workspace: where it rebuilt ("" when it never got that far).
        timings: step -> seconds.
        stage_only: the stage of a partial rebuild (``--stage``), else "".
        verification: the release verification's JSON (``bitwright verify``'s report).
        not_checked: what a partial rebuild did not rebuild or compare.
        outputs: written file kind -> path (``report``, ``json``, ``vsa``, ``verifier_key``).
    """

    release: str
    verdict: Verdict
    reason: str
    commit: str = ""
    stages: tuple[StageComparison, ...] = ()
    first_divergent: str | None = None
    subjects: tuple[FileComparison, ...] = ()
    data: tuple[DataCheck, ...] = ()
    drift: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    workspace: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    stage_only: str = ""
    verification: dict[str, Any] = field(default_factory=dict)
    not_checked: tuple[str, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def reproduced(self) -> bool:
        """Whether the release was reproduced (bitwise or within tolerance)."""
        return self.verdict in (Verdict.REPRODUCED, Verdict.REPRODUCED_WITHIN_TOLERANCE)

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON data (the ``--json`` output of ``bitwright rebuild``)."""
        return {
            "release": self.release,
            "verdict": self.verdict.value,
            "reproduced": self.reproduced,
            "reason": self.reason,
            "commit": self.commit,
            "stage_only": self.stage_only or None,
            "not_checked": list(self.not_checked),
            "first_divergent_stage": self.first_divergent,
            "stages": [s.to_json() for s in self.stages],
            "subjects": [s.to_json() for s in self.subjects],
            "data": [{"path": d.path, "ok": d.ok, "detail": d.detail} for d in self.data],
            "drift": list(self.drift),
            "notes": list(self.notes),
            "workspace": self.workspace,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "verification": self.verification,
            "outputs": dict(self.outputs),
        }

    def differing_files(self) -> tuple[FileComparison, ...]:
        """Every file comparison that is not bit-identical: stages' products, then subjects."""
        seen: dict[str, FileComparison] = {}
        for stage in self.stages:
            for f in stage.files:
                seen.setdefault(f.path, f)
        for f in self.subjects:
            if f.verdict is not Verdict.REPRODUCED:
                seen.setdefault(f.path, f)
        return tuple(seen.values())


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def report_markdown(report: RebuildReport) -> str:
    """Render the report as Markdown: verdict, stage table, differing tensors/fields, drift."""
    lines = [f"# Rebuild of {report.release}", ""]
    lines += [f"**Verdict: {report.verdict.value}** — {_cell(report.reason)}", ""]
    if report.commit:
        lines += [f"- commit: `{report.commit}`"]
    if report.stage_only:
        lines += [f"- partial rebuild of stage `{report.stage_only}`"]
    if report.not_checked:
        lines += [f"- not rebuilt or compared: {', '.join(report.not_checked)}"]
    if report.first_divergent:
        lines += [f"- first divergent stage: `{report.first_divergent}`"]
    if report.workspace:
        lines += [f"- workspace: `{report.workspace}`"]
    lines.append("")
    if report.data:
        lines += ["## Data", "", "| snapshot | ok | detail |", "|---|---|---|"]
        lines += [
            f"| `{d.path}` | {'yes' if d.ok else 'NO'} | {_cell(d.detail)} |" for d in report.data
        ]
        lines.append("")
    if report.stages:
        lines += ["## Stages", "", "| stage | materials | products | verdict | note |"]
        lines.append("|---|---|---|---|---|")
        for s in report.stages:
            lines.append(
                f"| `{s.stage}` | {s.summary('materials')} | {s.summary('products')} "
                f"| {s.verdict.value} ({s.role.value}) | {_cell(s.note)} |"
            )
        lines.append("")
    lines += _products_table(report.stages)
    if report.subjects:
        lines += ["## Released artifacts", "", "| artifact | verdict | detail |", "|---|---|---|"]
        lines += [
            f"| `{f.path}` | {f.verdict.value} | {_cell(f.detail)} |" for f in report.subjects
        ]
        lines.append("")
    lines += _difference_tables(report.differing_files())
    lines += ["## Environment drift", ""]
    lines += [f"- {_cell(d)}" for d in report.drift] or ["none"]
    lines.append("")
    if report.notes:
        lines += ["## Notes", "", *[f"- {_cell(n)}" for n in report.notes], ""]
    return "\n".join(lines)


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown section holding one table; the cells are given as they are shown."""
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _products_table(stages: tuple[StageComparison, ...]) -> list[str]:
    """Every product of every stage, intermediate ones included, with both digests."""
    rows = [
        (f"`{s.stage}`", f"`{_cell(p.path)}`", p.status.value, f"`{p.original or '-'}`",
         f"`{p.rebuilt or '-'}`")
        for s in stages
        for p in s.products
    ]  # fmt: skip
    if not rows:
        return []
    header = ("stage", "product", "status", "original sha256", "rebuilt sha256")
    return _table("Products", header, rows)


def _difference_tables(files: tuple[FileComparison, ...]) -> list[str]:
    lines: list[str] = []
    summaries = [
        (f"`{f.path}`", s.compared, s.differing, s.numeric_differing, _number(s.max_abs),
         _number(s.max_rel))
        for f in files
        if (s := f.summary) is not None
    ]  # fmt: skip
    if summaries:
        lines += _table(
            "Numbers that differ",
            ("file", "values compared", "differing", "numbers differing", "max abs", "max rel"),
            summaries,
        )
    columns = [
        (f"`{f.path}`", f"`{_cell(c.name)}`", c.kind, f"{c.differing}/{c.total}",
         _number(c.max_abs), _number(c.max_rel))
        for f in files
        for c in f.columns
    ]  # fmt: skip
    if columns:
        lines += _table(
            "Columns that differ",
            ("file", "column", "kind", "differing", "max abs", "max rel"),
            columns,
        )
    tensors = [
        (f"`{f.path}`", f"`{t.name}`", t.dtype, list(t.shape), f"{t.differing}/{t.total}",
         _number(t.max_abs), _number(t.max_rel), t.max_ulp)
        for f in files
        for t in f.tensors
        if not t.bit_exact
    ]  # fmt: skip
    if tensors:
        lines += _table(
            "Tensors that differ",
            ("file", "tensor", "dtype", "shape", "differing", "max abs", "max rel", "max ULP"),
            tensors,
        )
    fields = [
        (f"`{f.path}`", f"`{d.path}`", _cell(d.original), _cell(d.rebuilt))
        for f in files
        for d in f.fields
    ]
    if fields:
        lines += _table(
            "Fields that differ (the worst of each file)",
            ("file", "field", "original", "rebuilt"),
            fields,
        )
    return lines
