"""Render a :class:`~bitwright.htmlreport.page.Page` as one self-contained HTML file.

No network and no external file: the stylesheet, the script and the drawings (inline SVG) are
in the page, and its content security policy allows exactly those (by their sha256) and
nothing else, so a browser opening the report fetches nothing. Every value is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import math
from html import escape

from bitwright.htmlreport.page import Matrix, Page, Requirement, TensorRow, tone_of
from bitwright.htmlreport.svg import dag_svg, histogram_svg, history_svg

__all__ = ["render_html"]

_CSS = """
:root{--good:#2e9e48;--warn:#d9a400;--bad:#d2352b;--error:#7a1fa2;--neutral:#9aa0a6;
--ink:#1f2328;--muted:#59636e;--line:#d0d7de}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid var(--line);padding-bottom:4px}
.verdict-badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;
font-weight:600}
.badge-good{background:var(--good)}.badge-warn{background:var(--warn)}
.badge-bad{background:var(--bad)}.badge-error{background:var(--error)}
.badge-neutral{background:var(--neutral)}
.facts{color:var(--muted);margin:8px 0}.facts code{color:var(--ink)}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;cursor:pointer;user-select:none}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.cell-good{background:#dcf5e1}td.cell-warn{background:#fff3c4}
td.cell-bad{background:#ffdcd8}td.cell-error{background:#ecd5f5}
td.cell-neutral{background:#f1f3f4;color:var(--muted)}
tr.highlight td{outline:2px solid #0969da}
svg{display:block;margin:6px 0;overflow:visible}
.dag .node rect{stroke:#1f2328;stroke-width:1}
.dag .node text{text-anchor:middle;fill:#fff;font-size:12px}
.dag .node text.name{font-weight:600;font-size:13px}
.dag .node.tone-neutral text{fill:#1f2328}
.dag .node:focus rect,.dag .node.selected rect{stroke:#0969da;stroke-width:3}
.tone-good rect,rect.tone-good{fill:var(--good)}.tone-warn rect,rect.tone-warn{fill:var(--warn)}
.tone-bad rect,rect.tone-bad{fill:var(--bad)}.tone-error rect,rect.tone-error{fill:var(--error)}
.tone-neutral rect,rect.tone-neutral{fill:#e8eaed}
.edge{fill:none;stroke:#59636e;stroke-width:1.5}.arrowhead{fill:#59636e}
.histogram .bar{fill:#0969da}.axis{stroke:#59636e}
.tick,.label{font-size:11px;fill:#59636e}
.histograms{display:flex;flex-wrap:wrap;gap:18px}.histograms figure{margin:0}
figcaption{font-size:12px;color:var(--muted)}
ul.evidence{margin:2px 0 2px 18px;padding:0;color:var(--muted)}
footer{margin-top:32px;color:var(--muted);font-size:12px}
""".strip()

_JS = """
(function(){
  function sortBy(table,col,numeric){
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    var dir=table.getAttribute('data-sort')===String(col)?-1:1;
    rows.sort(function(a,b){
      var x=a.cells[col].getAttribute('data-value')||a.cells[col].textContent;
      var y=b.cells[col].getAttribute('data-value')||b.cells[col].textContent;
      if(numeric){x=parseFloat(x);y=parseFloat(y);return dir*((x>y)-(x<y));}
      return dir*x.localeCompare(y);
    });
    rows.forEach(function(r){body.appendChild(r);});
    table.setAttribute('data-sort',dir===1?String(col):'');
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){sortBy(table,i,th.classList.contains('num'));});
    });
  });
  document.querySelectorAll('#dag .node').forEach(function(node){
    node.addEventListener('click',function(){
      var stage=node.getAttribute('data-stage');
      document.querySelectorAll('#dag .node').forEach(function(n){n.classList.remove('selected');});
      node.classList.add('selected');
      document.querySelectorAll('tr[data-stage]').forEach(function(tr){
        tr.classList.toggle('highlight',tr.getAttribute('data-stage')===stage);
      });
    });
  });
  document.body.setAttribute('data-ready','1');
})();
""".strip()


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


_CSP = (
    f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.3g}"


def _badge(verdict: str) -> str:
    return (
        f'<span class="verdict-badge badge-{tone_of(verdict).value}">'
        f"{_e(verdict or 'not judged')}</span>"
    )


def _matrix(matrix: Matrix) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in matrix.columns)
    rows = []
    for row in matrix.rows:
        cells = []
        for column in matrix.columns:
            verdict = matrix.cells.get((row, column), "")
            tone = tone_of(verdict).value
            cells.append(f'<td class="cell-{tone}">{_e(verdict or "not run")}</td>')
        rows.append(f'<tr data-stage="{_e(row)}"><th>{_e(row)}</th>{"".join(cells)}</tr>')
    notes = [
        f"<li><code>{_e(name)}</code>: {_e(note)}</li>"
        for name, note in matrix.column_notes.items()
        if note
    ]
    return (
        f'<h2>{_e(matrix.title)}</h2><table id="matrix"><thead><tr><th>stage</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        + (f'<ul class="evidence">{"".join(notes)}</ul>' if notes else "")
    )


def _tensors(rows: tuple[TensorRow, ...]) -> str:
    head = (
        "<tr><th>where</th><th>file</th><th>tensor</th><th>dtype</th><th>shape</th>"
        '<th class="num">differing</th><th class="num">max abs</th>'
        '<th class="num">max rel</th><th class="num">max ULP</th><th>tolerance</th></tr>'
    )
    body = []
    for t in rows:
        body.append(
            f'<tr data-stage="{_e(t.context)}"><td>{_e(t.context)}</td><td><code>{_e(t.file)}'
            f"</code></td><td><code>{_e(t.tensor)}</code></td><td>{_e(t.dtype)}</td>"
            f"<td>{_e(list(t.shape))}</td>"
            f'<td class="num" data-value="{t.differing}">{t.differing}/{t.total}</td>'
            f'<td class="num" data-value="{_e(t.max_abs)}">{_number(t.max_abs)}</td>'
            f'<td class="num" data-value="{_e(t.max_rel)}">{_number(t.max_rel)}</td>'
            f'<td class="num" data-value="{t.max_ulp}">{t.max_ulp}</td>'
            f"<td>{'within' if t.within_tolerance else 'beyond'}</td></tr>"
        )
    return (
        '<h2>Tensors that differ</h2><table id="tensors" class="sortable">'
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
    )


def _requirements(requirements: tuple[Requirement, ...]) -> str:
    rows = []
    for r in requirements:
        evidence = "".join(f"<li>{_e(line)}</li>" for line in r.evidence)
        rows.append(
            f'<tr data-requirement="{_e(r.name)}"><td>{_e(r.name)}</td>'
            f'<td class="cell-{tone_of(r.verdict).value}">{_e(r.verdict)}</td>'
            f'<td><ul class="evidence">{evidence}</ul></td></tr>'
        )
    return (
        '<h2>Requirements</h2><table id="requirements"><thead><tr><th>requirement</th>'
        f"<th>verdict</th><th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(page: Page) -> str:
    """Return ``page`` as one self-contained HTML document (UTF-8 text)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(page.title)}</h1>",
        f'<p id="verdict" data-verdict="{_e(page.verdict)}">{_badge(page.verdict)} '
        f"{_e(page.reason)}</p>",
    ]
    if page.facts:
        facts = " · ".join(f"{_e(k)}: <code>{_e(v)}</code>" for k, v in page.facts)
        parts.append(f'<p class="facts">{facts}</p>')
    if page.dag is not None:
        parts += ["<h2>Pipeline</h2>", dag_svg(page.dag)]
    if page.requirements:
        parts.append(_requirements(page.requirements))
    if page.matrix is not None:
        parts.append(_matrix(page.matrix))
    if page.tensors:
        parts.append(_tensors(page.tensors))
    if page.histograms:
        figures = "".join(
            f"<figure>{histogram_svg(h, i)}<figcaption>{_e(h.title)}</figcaption></figure>"
            for i, h in enumerate(page.histograms)
        )
        parts.append(
            f'<h2>Differences of the worst tensors</h2><div class="histograms">{figures}</div>'
        )
    if page.history is not None and page.history.nights:
        parts += ["<h2>Reproducibility over nights</h2>", history_svg(page.history)]
    if page.notes:
        notes = "".join(f"<li>{_e(n)}</li>" for n in page.notes)
        parts.append(f"<h2>Notes</h2><ul>{notes}</ul>")
    parts.append("<footer>bitwright report: self-contained, fetches nothing.</footer>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"
