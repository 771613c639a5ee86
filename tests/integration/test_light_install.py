"""Installing bitwright (no extras) beside current releases of common packages changes none.

pip resolves, in a fresh virtual environment and without installing anything (``--dry-run
--report``), first the current releases of pydantic, PyYAML, numpy and scikit-learn alone,
then the same together with bitwright: bitwright must not make pip choose other versions of
them, and must pull no torch (nor CUDA wheels). Needs PyPI; skipped when it cannot be reached.
"""

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


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _resolve(python: Path, report: Path, *requirements: str) -> dict[str, str]:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--dry-run",
         "--quiet", "--ignore-installed", "--report", str(report), *requirements],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        if str(ROOT) not in requirements:  # the common packages alone: PyPI is not reachable
            pytest.skip(f"cannot resolve from PyPI here: {done.stderr.strip()[-300:]}")
        raise AssertionError(f"pip cannot install bitwright beside them: {done.stderr}")
    install = json.loads(report.read_text())["install"]
    return {_name(i["metadata"]["name"]): i["metadata"]["version"] for i in install}


def test_bitwright_installs_without_torch_and_downgrades_nothing(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    current = _resolve(python, tmp_path / "current.json", *COMMON)
    together = _resolve(python, tmp_path / "together.json", *COMMON, str(ROOT))
    assert "bitwright" in together
    assert "torch" not in together
    assert not [n for n in together if n.startswith("nvidia-") and n != "nvidia-ml-py"]
    changed = {n: (current[n], together[n]) for n in COMMON if current[n] != together[n]}
    assert changed == {}, f"with bitwright, pip would choose other versions: {changed}"
