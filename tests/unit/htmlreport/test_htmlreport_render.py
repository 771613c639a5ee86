"""The HTML report as text: self-contained, escaped, and drawing what the data says."""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nightly"))
from report_pages import a_gate_page, a_night_page, difference_histogram, tensor_files  # noqa: E402

from bitwright.htmlreport import Dag, DagNode, Page, render_html, tone_of  # noqa: E402
from bitwright.htmlreport.svg import layers  # noqa: E402
from bitwright.rebuild.compare import Verdict  # noqa: E402


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def test_the_page_fetches_nothing_and_its_policy_allows_only_its_own_code(tmp_path: Path) -> None:
    html = render_html(a_night_page(tmp_path))
    page = _parse(html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "data"):
            assert not attrs.get(name), f"<{tag} {name}=...> would fetch something"
    (csp,) = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None and "default-src 'none'" in csp
    for code in (*page.scripts, *page.styles):
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp
    assert not any("style" in attrs for _, attrs in page.tags), "inline styles break the CSP"


def test_hostile_names_are_escaped() -> None:
    evil = '<img src=x onerror="alert(1)">'
    page = Page(
        title=evil,
        verdict="DIFFERENT",
        reason=evil,
        dag=Dag((DagNode(evil, "DIFFERENT", evil), DagNode("b", "REPRODUCED")), ((evil, "b"),)),
    )
    html = render_html(page)
    assert evil not in html
    assert not any(tag == "img" for tag, _ in _parse(html).tags)
    gate = render_html(a_gate_page())
    assert "<script>x</script>" not in gate and "&lt;script&gt;x&lt;/script&gt;" in gate


def test_the_dag_is_coloured_by_verdict_and_laid_out_by_depth(tmp_path: Path) -> None:
    page = a_night_page(tmp_path)
    assert page.dag is not None
    assert layers(page.dag) == {"prepare": 0, "train": 1, "evaluate": 2}
    html = render_html(page)
    nodes = {
        a["data-stage"]: a["class"]
        for t, a in _parse(html).tags
        if t == "g" and a.get("data-stage")
    }
    assert nodes == {
        "prepare": "node tone-good",
        "train": "node tone-bad",
        "evaluate": "node tone-good",
    }
    assert len(re.findall(r'<path class="edge"', html)) == 2
    assert tone_of("REPRODUCED_WITHIN_TOLERANCE").value == "warn"
    assert tone_of("FAILED").value == "error"


def test_histograms_count_the_differences_by_decade(tmp_path: Path) -> None:
    original, rebuilt = tensor_files(tmp_path)
    weight = dict(difference_histogram(original, rebuilt, "fc1.weight"))
    assert sum(weight.values()) == len(range(0, 4096, 3))
    labels = list(weight)
    beyond_one_ulp = labels[labels.index("1e-6") :]  # 1 ULP of |x| < 8 in float32 is < 1e-6
    assert weight["1e-7"] > 0 and all(weight[label] == 0 for label in beyond_one_ulp)
    bias = dict(difference_histogram(original, rebuilt, "fc1.bias"))
    assert bias == {**dict.fromkeys(bias, 0), "1e-1": 1}
    assert difference_histogram(original, rebuilt, "absent") == ()
    page = a_night_page(tmp_path)
    assert [h.title.split(":")[0] for h in page.histograms] == [
        "models/model.safetensors fc1.bias",
        "models/model.safetensors fc1.weight",
    ]


def test_the_history_chart_shows_every_night_and_stage(tmp_path: Path) -> None:
    page = a_night_page(tmp_path)
    assert page.history is not None
    assert len(page.history.nights) == 4
    html = render_html(page)
    cells = [a for t, a in _parse(html).tags if t == "rect" and a.get("data-night")]
    assert len(cells) == 4 * 3
    train = {a["data-night"][:10]: a["class"] for a in cells if a["data-stage"] == "train"}
    assert train == {
        "2026-03-01": "cell tone-good",
        "2026-03-02": "cell tone-error",
        "2026-03-03": "cell tone-good",
        "2026-03-04": "cell tone-bad",
    }


@pytest.mark.parametrize("verdict", ["ADMIT", "DENY"])
def test_the_gate_page_lists_requirements_with_evidence(verdict: str) -> None:
    html = render_html(Page("gate", verdict, requirements=a_gate_page().requirements))
    rows = [a for t, a in _parse(html).tags if t == "tr" and a.get("data-requirement")]
    assert [r["data-requirement"] for r in rows] == [
        "provenance signed by the owner",
        "reproduced by 2 verifiers",
        "scan clean",
    ]
    assert "keyid 1a2b3c4d" in html


def test_a_rebuild_report_shows_its_stages_tensors_and_histograms(tmp_path: Path) -> None:
    from bitwright.rebuild.compare import Tolerance, compare_files
    from bitwright.rebuild.report import RebuildReport
    from bitwright.rebuild.stages import PathMatch, PathStatus, StageComparison, StageRole
    from bitwright.rebuild.visual import rebuild_html

    original, rebuilt = tensor_files(tmp_path)
    release = tmp_path / "release"
    (release / "artifacts" / "models").mkdir(parents=True)
    original.rename(release / "artifacts" / "models" / "model.safetensors")
    path = "models/model.safetensors"
    compared = compare_files(
        release / "artifacts" / path, tmp_path / "rebuilt" / path, path=path, tolerance=Tolerance()
    )
    data = PathMatch("data/in.csv", PathStatus.MATCHED, "a" * 64, "a" * 64)
    model = PathMatch(path, PathStatus.DIFFERS, "b" * 64, "c" * 64)
    report = RebuildReport(
        release=str(release),
        verdict=compared.verdict,
        reason="stage 'train' gave other products from the same materials",
        stages=(
            StageComparison("prepare", Verdict.REPRODUCED, StageRole.REPRODUCED, (), (data,)),
            StageComparison(
                "train", compared.verdict, StageRole.FIRST_DIVERGENT, (data,), (model,), (compared,)
            ),
        ),
        workspace=str(tmp_path / "rebuilt"),
    )
    html = rebuild_html(report)
    page = _parse(html)
    nodes = {
        a["data-stage"]: a["data-verdict"] for t, a in page.tags if t == "g" and a.get("data-stage")
    }
    assert nodes == {"prepare": "REPRODUCED", "train": "DIFFERENT"}
    assert '<path class="edge" data-from="prepare" data-to="train"' in html
    tensors = [
        a["data-stage"] for t, a in page.tags if t == "tr" and a.get("data-stage") == "train"
    ]
    assert len(tensors) == 2  # fc1.weight and fc1.bias moved
    assert html.count('class="histogram"') == 2
