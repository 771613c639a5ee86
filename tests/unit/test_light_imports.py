"""Light install: bitwright and its command line import torch only where a stage uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TORCH_HELPERS = ("bitwright.trajectory.torchstate",)
"""Modules whose one job is torch (stage code imports them when it trains with torch)."""

SCRIPT = f"""
import importlib, pkgutil, sys
import bitwright
for module in pkgutil.walk_packages(bitwright.__path__, "bitwright."):
    if module.name not in {TORCH_HELPERS!r}:
        importlib.import_module(module.name)
heavy = sorted(m for m in ("torch", "safetensors", "sklearn") if m in sys.modules)
print(",".join(heavy))
"""


def test_the_torch_helpers_exist() -> None:
    import importlib.util

    assert all(importlib.util.find_spec(name) is not None for name in TORCH_HELPERS)


def test_no_module_of_bitwright_imports_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_the_command_line_runs_where_torch_cannot_be_imported(tmp_path: Path) -> None:
    blocker = tmp_path / "torch"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('torch is not installed here')\n")
    bitwright = str(Path(sys.executable).parent / "bitwright")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for args in (["--help"], ["init", "--help"], ["digest", str(blocker / "__init__.py")]):
        done = subprocess.run(
            [bitwright, *args], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, (args, done.stderr)
