"""Every bypass family of public pickle scanners: real payloads, all unsafe, none executed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import scan_payloads as payloads
from scan_payloads import MARKER

from bitwright.scan import Severity, scan_path


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "model.bin"
    path.write_bytes(data)
    return path


def _unsafe_lines(path: Path) -> list[str]:
    report = scan_path(path)
    assert not report.clean
    assert not (path.parent / MARKER).exists(), "the scan ran the payload"
    return [f.message for f in report.findings if f.severity is Severity.UNSAFE]


@pytest.mark.parametrize("name", sorted(payloads.RAW_PAYLOADS))
def test_raw_payloads_are_unsafe_without_running(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, payloads.RAW_PAYLOADS[name]())

    assert _unsafe_lines(path)


@pytest.mark.parametrize("name", sorted(payloads.GADGETS))
def test_gadgets_are_unsafe(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, payloads.GADGETS[name]())

    assert _unsafe_lines(path)


@pytest.mark.parametrize("name", sorted(payloads.FILE_PAYLOADS))
def test_payloads_inside_model_files_are_unsafe(tmp_path: Path, name: str) -> None:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "model.bin"
    payloads.FILE_PAYLOADS[name](path)

    lines = _unsafe_lines(path)

    assert any("builtins.open" in line or "posix" in line or "io.open" in line for line in lines)


def test_the_unsafe_finding_names_the_callable_and_where_it_hides(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    payloads.zip_in_zip(path)

    report = scan_path(path)

    (finding,) = [f for f in report.findings if f.severity is Severity.UNSAFE]
    assert finding.path == "bundle.zip!bundle/inner.dat!model/config.txt"
    assert "builtins.open" in finding.message


def test_a_memo_built_name_is_resolved_not_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path, "memo", payloads.stack_global_from_memo())

    report = scan_path(path)

    assert report.files[0].globals == ("builtins.open",)


def test_a_computed_stack_global_is_unresolvable(tmp_path: Path) -> None:
    path = _write(tmp_path, "computed", payloads.stack_global_of_computed_name())

    (line,) = _unsafe_lines(path)

    assert "computed when the file loads" in line


def test_the_payloads_are_real_when_loaded(tmp_path: Path) -> None:
    """Control: the loaders these files target do run them (in a child process)."""
    cases: list[tuple[str, Path, str]] = []
    for name, build in payloads.RAW_PAYLOADS.items():
        cases.append((name, _write(tmp_path, name, build()), "pickle"))
    loaders = {
        "joblib-object-array": "joblib",
        "npy-object-array": "numpy",
        "legacy-torch": "torch",
        "torch-data-pkl-replaced": "torch",
    }
    for name, how in loaders.items():
        folder = tmp_path / name
        folder.mkdir()
        payloads.FILE_PAYLOADS[name](folder / "model.bin")
        cases.append((name, folder / "model.bin", how))

    ran = payloads.load_in_subprocess(cases)

    assert ran == dict.fromkeys(ran, True)
    assert os.path.exists(tmp_path / "open-protocol0" / MARKER)
