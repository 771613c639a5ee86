"""Progress of long commands: live on a terminal, plain lines elsewhere, quiet for --json."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bitwright.cli import progress


def _console(monkeypatch: pytest.MonkeyPatch, *, terminal: bool) -> io.StringIO:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=terminal, width=100, highlight=False)
    monkeypatch.setattr(progress, "stderr", console)
    return sink


def test_a_terminal_gets_a_live_count_of_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = _console(monkeypatch, terminal=True)
    with progress.live_progress("nightly", json_out=False) as notify:
        notify("variation 2/9: time_zone (TZ=Pacific/Kiritimati)")
    text = sink.getvalue()
    assert "\x1b[" in text  # drawn with terminal controls
    assert "1/9" in text  # one of nine variations done
    assert "variation 2/9: time_zone (TZ=Pacific/Kiritimati)" in text


@pytest.mark.parametrize(("terminal", "json_out"), [(False, False), (True, True)])
def test_no_live_drawing_in_a_pipe_or_for_json(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, json_out: bool
) -> None:
    sink = _console(monkeypatch, terminal=terminal)
    assert not progress.progress_wanted(json_out)
    with progress.live_progress("build", json_out=json_out) as notify:
        notify("running dvc repro")
    text = sink.getvalue()
    assert "bitwright: running dvc repro" in text
    assert "━" not in text and "\r" not in text  # no bar, nothing redrawn
