"""Inline SVG drawings of a report: the pipeline DAG, histograms and the history chart.

Every drawing is a string of SVG markup with every text escaped. Colours come from CSS classes
(``tone-good``...), never from ``style`` attributes, so the page's content security policy
can forbid inline styles other than its own stylesheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from bitwright.htmlreport.page import Dag, Histogram, History, tone_of

__all__ = ["dag_svg", "histogram_svg", "history_svg", "layers"]

_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _PAD = 150, 46, 70, 24, 16


def _attr(text: object) -> str:
    return escape(str(text), quote=True)


def layers(dag: Dag) -> dict[str, int]:
    """Each stage's column: the length of the longest path of edges leading to it."""
    names = [n.name for n in dag.nodes]
    depth = dict.fromkeys(names, 0)
    for _ in names:  # longest paths settle after at most len(names) rounds (a DAG)
        changed = False
        for up, down in dag.edges:
            if up in depth and down in depth and depth[down] < depth[up] + 1:
                depth[down] = depth[up] + 1
                changed = True
        if not changed:
            break
    return depth


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def dag_svg(dag: Dag) -> str:
    """The pipeline, left to right, each stage a box coloured by its verdict."""
    depth = layers(dag)
    columns: dict[int, list[str]] = {}
    for node in dag.nodes:
        columns.setdefault(depth[node.name], []).append(node.name)
    where: dict[str, tuple[int, int]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            where[name] = (_PAD + col * (_NODE_W + _GAP_X), _PAD + row * (_NODE_H + _GAP_Y))
    width = _PAD * 2 + (max(columns, default=0) + 1) * (_NODE_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max((len(v) for v in columns.values()), default=1) * (_NODE_H + _GAP_Y)
    parts = [
        f'<svg id="dag" class="dag" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="pipeline stages coloured by verdict" width="{width}" '
        f'height="{height - _GAP_Y}" viewBox="0 0 {width} {height - _GAP_Y}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    for up, down in dag.edges:
        if up not in where or down not in where:
            continue
        (x1, y1), (x2, y2) = where[up], where[down]
        sx, sy, ex, ey = x1 + _NODE_W, y1 + _NODE_H // 2, x2, y2 + _NODE_H // 2
        mid = (sx + ex) // 2
        parts.append(
            f'<path class="edge" data-from="{_attr(up)}" data-to="{_attr(down)}" '
            f'd="M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}" marker-end="url(#arrow)"/>'
        )
    for node in dag.nodes:
        x, y = where[node.name]
        tone = tone_of(node.verdict).value
        label = node.verdict or "not judged"
        parts.append(
            f'<g class="node tone-{tone}" data-stage="{_attr(node.name)}" '
            f'data-verdict="{_attr(node.verdict)}" tabindex="0">'
            f"<title>{_attr(node.name)}: {_attr(label)}"
            f"{' — ' + _attr(node.detail) if node.detail else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="8"/>'
            f'<text x="{x + _NODE_W // 2}" y="{y + 19}" class="name">'
            f"{_attr(_short(node.name, 18))}</text>"
            f'<text x="{x + _NODE_W // 2}" y="{y + 36}" class="verdict">'
            f"{_attr(_short(label, 24))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(histogram: Histogram, index: int) -> str:
    """Bars of a histogram, with counts on hover and the bin labels below."""
    bars = histogram.bars
    width, height, base, left = max(320, 30 * len(bars) + 60), 230, 150, 40
    top = max((b.count for b in bars), default=0) or 1
    step = (width - left - 10) / max(len(bars), 1)
    parts = [
        f'<svg class="histogram" id="histogram-{index}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{_attr(histogram.title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}"/>',
        f'<text class="tick" x="{left - 4}" y="14" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{left - 4}" y="{base}" text-anchor="end">0</text>',
    ]
    for i, bar in enumerate(bars):
        h = round(130 * bar.count / top)
        x = left + i * step + 2
        parts.append(
            f'<rect class="bar" data-count="{bar.count}" x="{x:.1f}" y="{base - h}" '
            f'width="{max(step - 4, 1):.1f}" height="{h}"><title>{_attr(bar.label)}: '
            f"{bar.count}</title></rect>"
            f'<text class="tick" x="{x + step / 2 - 2:.1f}" y="{base + 12}" '
            f'transform="rotate(40 {x + step / 2 - 2:.1f} {base + 12})">{_attr(bar.label)}</text>'
        )
    if histogram.x_label:
        parts.append(
            f'<text class="tick" x="{(left + width) // 2}" y="{height - 8}" '
            f'text-anchor="middle">{_attr(histogram.x_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def history_svg(history: History) -> str:
    """Stages (rows) by nights (columns): each cell coloured by the stage's worst verdict."""
    cell, left, top = 26, 150, 24
    nights: Sequence[str] = history.nights
    width = left + cell * len(nights) + 20
    height = top + cell * len(history.stages) + 70
    parts = [
        f'<svg id="history-chart" class="history" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="reproducibility per stage over nights" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for r, stage in enumerate(history.stages):
        y = top + r * cell
        parts.append(
            f'<text class="label" x="{left - 8}" y="{y + cell * 0.65:.1f}" '
            f'text-anchor="end">{_attr(_short(stage, 20))}</text>'
        )
        for c, night in enumerate(nights):
            found = history.cells.get((stage, night))
            tone = tone_of(found.verdict).value if found else "neutral"
            what = (
                f"{found.verdict}, {found.reproduced:.0%} of variations reproduced"
                f"{'; ' + found.detail if found.detail else ''}"
                if found
                else "not run"
            )
            parts.append(
                f'<rect class="cell tone-{tone}" data-stage="{_attr(stage)}" '
                f'data-night="{_attr(night)}" x="{left + c * cell}" y="{y}" width="{cell - 3}" '
                f'height="{cell - 3}" rx="3"><title>{_attr(stage)} on {_attr(night)}: '
                f"{_attr(what)}</title></rect>"
            )
    base = top + cell * len(history.stages) + 12
    for c, night in enumerate(nights):
        x = left + c * cell + cell / 2
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{base}" transform="rotate(45 {x:.1f} {base})">'
            f"{_attr(night[:10])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
