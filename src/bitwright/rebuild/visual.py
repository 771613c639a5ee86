"""The visual report of a rebuild (``report.html`` beside ``report.md``), and its parts.

:func:`rebuild_page` describes a :class:`~bitwright.rebuild.report.RebuildReport` as an
:class:`~bitwright.htmlreport.Page`: the pipeline coloured by each stage's verdict, the tensors
that differ, and histograms of the differences of the worst tensors, read from the released
and the rebuilt files. The nightly report reuses the parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bitwright.errors import BitwrightError
from bitwright.htmlreport import Bar, Dag, DagNode, Histogram, Page, TensorRow, render_html
from bitwright.pipeline import load_pipeline
from bitwright.rebuild.compare import FileComparison
from bitwright.rebuild.compare.histogram import difference_histogram
from bitwright.rebuild.report import RebuildReport
from bitwright.rebuild.stages import StageComparison
from bitwright.release.layout import ReleaseLayout

__all__ = [
    "HTML_FILE",
    "pipeline_edges",
    "rebuild_html",
    "rebuild_page",
    "tensor_histograms",
    "tensor_rows",
]

HTML_FILE = "report.html"

_HISTOGRAMS = 3
"""How many of the worst tensors get a histogram."""


def pipeline_edges(
    stages: Sequence[StageComparison], workspace: Path | None
) -> tuple[tuple[str, str], ...]:
    """The ``(upstream, downstream)`` stage pairs.

    From ``dvc.yaml`` when the workspace still has it, else from the links (a stage's
    material that another stage produced).
    """
    if workspace is not None and (workspace / "dvc.yaml").is_file():
        try:
            pipeline = load_pipeline(workspace)
        except BitwrightError:
            pass
        else:
            return tuple(
                (up, name) for name in pipeline.names for up in sorted(pipeline.upstream(name))
            )
    producer = {p.path: s.stage for s in stages for p in s.products}
    edges = {
        (producer[m.path], s.stage)
        for s in stages
        for m in s.materials
        if m.path in producer and producer[m.path] != s.stage
    }
    return tuple(sorted(edges))


def stage_dag(
    names: Iterable[str],
    verdicts: Mapping[str, str],
    edges: Sequence[tuple[str, str]],
    details: Mapping[str, str] | None = None,
) -> Dag:
    """The DAG of ``names`` coloured by ``verdicts`` (a stage without one is not judged)."""
    details = details or {}
    nodes = tuple(DagNode(n, verdicts.get(n, ""), details.get(n, "")) for n in names)
    return Dag(nodes, tuple(edges))


def tensor_rows(files: Iterable[FileComparison], context: str) -> list[TensorRow]:
    """One row per tensor whose bits differ (``context``: the stage or variation)."""
    return [
        TensorRow(
            file=f.path,
            tensor=t.name,
            dtype=t.dtype,
            shape=t.shape,
            differing=t.differing,
            total=t.total,
            max_abs=t.max_abs,
            max_rel=t.max_rel,
            max_ulp=t.max_ulp,
            within_tolerance=t.within_tolerance,
            context=context,
        )
        for f in files
        for t in f.tensors
        if not t.bit_exact
    ]


def tensor_histograms(
    rows: Sequence[TensorRow], original: Mapping[str, Path], rebuilt: Path, limit: int = _HISTOGRAMS
) -> tuple[Histogram, ...]:
    """Histograms of ``|Δ|`` for the ``limit`` worst rows whose two files still exist.

    Args:
        rows: tensors that differ.
        original: file path -> where its original bytes are (the release's artifacts).
        rebuilt: the workspace the rebuilt files are in.
        limit: how many histograms at most.
    """
    found: list[Histogram] = []
    for row in sorted(rows, key=lambda r: (r.max_abs, r.differing), reverse=True):
        if len(found) >= limit:
            break
        a, b = original.get(row.file), rebuilt / row.file
        if a is None or not a.is_file() or not b.is_file():
            continue
        try:
            bins = difference_histogram(a, b, row.tensor)
        except BitwrightError:
            continue
        if bins:
            found.append(
                Histogram(
                    f"{row.file} {row.tensor}: {row.differing} of {row.total} elements differ",
                    tuple(Bar(label, count) for label, count in bins),
                    "|Δ| by decade",
                )
            )
    return tuple(found)


def _originals(report: RebuildReport, files: Iterable[FileComparison]) -> dict[str, Path]:
    layout = ReleaseLayout(Path(report.release))
    return {f.path: layout.artifact(f.path) for f in files}


def rebuild_page(report: RebuildReport) -> Page:
    """Describe a rebuild's report as a visual report page."""
    workspace = Path(report.workspace) if report.workspace else None
    files = report.differing_files()
    context = {f.path: s.stage for s in report.stages for f in s.files}
    rows = [r for f in files for r in tensor_rows([f], context.get(f.path, "released artifact"))]
    histograms = tensor_histograms(rows, _originals(report, files), workspace) if workspace else ()
    dag = None
    if report.stages:
        verdicts = {s.stage: s.verdict.value for s in report.stages}
        details = {s.stage: s.note or s.role.value for s in report.stages}
        edges = pipeline_edges(report.stages, workspace)
        dag = stage_dag([s.stage for s in report.stages], verdicts, edges, details)
    facts = [("release", report.release)]
    if report.commit:
        facts.append(("commit", report.commit))
    if report.first_divergent:
        facts.append(("first divergent stage", report.first_divergent))
    return Page(
        title="bitwright rebuild",
        verdict=report.verdict.value,
        reason=report.reason,
        facts=tuple(facts),
        dag=dag,
        tensors=tuple(rows),
        histograms=histograms,
        notes=(*(f"drift: {d}" for d in report.drift), *report.notes),
    )


def rebuild_html(report: RebuildReport) -> str:
    """The self-contained ``report.html`` of a rebuild."""
    return render_html(rebuild_page(report))
