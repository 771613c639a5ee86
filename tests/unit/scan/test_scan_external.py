"""Other scanners' evidence: recorded beside the verdict, never admitting or refusing."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import pytest

from bitwright.scan import scan_path
from bitwright.scan.external import (
    ExternalScanner,
    FicklingScanner,
    ModelscanScanner,
    PicklescanScanner,
    run_external,
    with_external_evidence,
)

PAYLOAD = b"cposix\nsystem\n(Vid\ntR."


class _Says(ExternalScanner):
    """A scanner that says what it is told to (the interface, as a test double)."""

    tool = "fake"

    def __init__(self, verdict: str, *, crash: bool = False) -> None:
        self._verdict = verdict
        self._crash = crash

    def available(self) -> bool:
        return True

    def version(self) -> str:
        return "0"

    def scan(self, files: Sequence[Path]) -> tuple[str, str]:
        if self._crash:
            raise RuntimeError("the tool broke")
        return self._verdict, f"{len(files)} file(s)"


def test_evidence_never_changes_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "evil.pkl").write_bytes(PAYLOAD)
    (tmp_path / "fine.pkl").write_bytes(pickle.dumps([1]))
    report = scan_path(tmp_path)

    cleared = with_external_evidence(report, tmp_path, [_Says("clean")])

    assert not cleared.clean
    assert cleared.blocking == report.blocking
    assert cleared.external[0].detail == "2 file(s)"


def test_a_crashing_tool_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (evidence,) = run_external([tmp_path], [_Says("clean", crash=True)])

    assert evidence.verdict == "error"
    assert "the tool broke" in evidence.detail


def test_picklescan_and_fickling_flag_a_payload(tmp_path: Path) -> None:
    (tmp_path / "evil.pkl").write_bytes(PAYLOAD)

    evidence = {
        e.tool: e.verdict
        for e in run_external([tmp_path / "evil.pkl"], [PicklescanScanner(), FicklingScanner()])
    }

    assert evidence == {"picklescan": "flagged", "fickling": "flagged"}


@pytest.mark.parametrize(("status", "verdict"), [(0, "clean"), (1, "flagged"), (2, "error")])
def test_modelscan_is_read_by_its_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, verdict: str
) -> None:
    # modelscan pins rich<15, which bitwright's own rich excludes: a stand-in command plays it.
    fake = tmp_path / "bin" / "modelscan"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--output-file" ]; do shift; done\n'
        f'echo \'{{"summary": {{"total_issues": {status}}}}}\' > "$2"\n'
        f"exit {status}\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps([1]))

    (evidence,) = run_external([tmp_path / "m.pkl"], [ModelscanScanner()])

    assert evidence.verdict == verdict
    if status == 1:
        assert "1 issue(s)" in evidence.detail
