"""Installing bitwright (no extras) beside current releases of common packages changes none."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMMON = ("pydantic", "pyyaml", "numpy", "scikit-learn")


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def test_bitwright_installs_without_torch_and_downgrades_nothing(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    ready = _pip(python, "install", "-q", *COMMON)
    if ready.returncode != 0:
        pytest.skip(f"cannot install from PyPI here: {ready.stderr.strip()[-300:]}")
    listed = _pip(python, "list", "--format", "json")
    before = {_name(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    report = tmp_path / "report.json"
    planned = _pip(python, "install", "--dry-run", "--quiet", "--report", str(report), str(ROOT))
    assert planned.returncode == 0, planned.stderr
    install = json.loads(report.read_text())["install"]
    changes = {_name(i["metadata"]["name"]): i["metadata"]["version"] for i in install}
    assert "torch" not in changes
    assert not [n for n in changes if n.startswith("nvidia-")]
    touched = {n: (before[n], changes[n]) for n in COMMON if n in changes}
    assert touched == {}, f"installing bitwright would change {touched}"
    assert "bitwright" in changes
