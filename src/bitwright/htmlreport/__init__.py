"""Self-contained visual reports: one HTML file with inline SVG, CSS and script, no network.

``rebuild --out``, ``nightly`` and ``gate`` describe what they found as a :class:`Page` (the
pipeline DAG coloured by verdict, a stage-by-variation matrix, a policy's requirements with
their evidence, the tensors that differ, histograms of their differences, the history over
nights) and :func:`render_html` draws it. The module depends on nothing else of bitwright.

The gate renders its decision with::

    page = Page(title="gate", verdict="DENY", reason="...",
                requirements=(Requirement("signed by the owner", "PASS", ("keyid 1a2b...",)), ...))
    write_text_atomic(out / "report.html", render_html(page))
"""

from bitwright.htmlreport.page import (
    Bar,
    Dag,
    DagNode,
    Histogram,
    History,
    HistoryCell,
    Matrix,
    Page,
    Requirement,
    TensorRow,
    Tone,
    tone_of,
)
from bitwright.htmlreport.render import render_html

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
    "render_html",
    "tone_of",
]
