"""The HTML report in a real headless browser (Chromium through pytest-playwright).

The page must load without a console error (a blocked resource or a script error is one),
run its script, draw the DAG with each stage in its verdict's colour, and draw the histograms
and the history chart. Screenshots are kept in ``test-artifacts/`` (ignored by git).
Playwright's own browser downloads cannot work offline: Debian's Chromium is used.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nightly"))
from report_pages import a_gate_page, a_night_page  # noqa: E402

from bitwright.htmlreport import render_html  # noqa: E402

pytest.importorskip("playwright", reason="pytest-playwright is not installed")

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TONES = {"good": "rgb(46, 158, 72)", "bad": "rgb(210, 53, 43)", "error": "rgb(122, 31, 162)"}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium here (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": chromium, "args": FLAGS}


def _open(page: Any, html: str, tmp_path: Path) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith("file:") else problems.append(r.url))
    target = tmp_path / "report.html"
    target.write_text(html, encoding="utf-8")
    page.goto(target.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    return problems


def test_the_night_report_renders_in_a_browser(page: Any, tmp_path: Path) -> None:
    problems = _open(page, render_html(a_night_page(tmp_path)), tmp_path)
    fills = page.eval_on_selector_all(
        "#dag g.node",
        "nodes => Object.fromEntries(nodes.map(n => "
        "[n.dataset.stage, getComputedStyle(n.querySelector('rect')).fill]))",
    )
    assert fills == {"prepare": TONES["good"], "train": TONES["bad"], "evaluate": TONES["good"]}
    dag = page.locator("#dag").bounding_box()
    assert dag is not None and dag["width"] > 300 and dag["height"] > 30
    bars = page.eval_on_selector_all(
        "svg.histogram rect.bar", "bars => bars.map(b => b.getBoundingClientRect().height)"
    )
    assert len(bars) > 10 and max(bars) > 50
    cells = page.eval_on_selector_all(
        "#history-chart rect.cell[data-stage='train']",
        "cells => cells.map(c => getComputedStyle(c).fill)",
    )
    assert cells == [TONES["good"], TONES["error"], TONES["good"], TONES["bad"]]
    page.locator("#dag g.node[data-stage='train']").click()
    highlighted = page.eval_on_selector_all("tr.highlight", "rows => rows.length")
    assert highlighted >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "nightly-report.png"), full_page=True)
    assert problems == []


def test_the_gate_report_renders_in_a_browser(page: Any, tmp_path: Path) -> None:
    problems = _open(page, render_html(a_gate_page()), tmp_path)
    verdicts = page.eval_on_selector_all(
        "#requirements td[class^='cell-']", "cells => cells.map(c => c.textContent)"
    )
    assert verdicts == ["PASS", "FAIL", "PASS"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gate-report.png"), full_page=True)
    assert problems == []
