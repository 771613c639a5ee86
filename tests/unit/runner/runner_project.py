"""A small repository in tmp_path for runner tests, and running a stage in it."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwright.errors import OperationalError
from bitwright.model import (
    ArtifactMap,
    DeterminismSettings,
    SandboxAllowances,
    Sha256,
    StageRun,
    StageSpec,
)
from bitwright.runner import Sandbox, run_sealed


def sha256_tree(root: Path, paths: Sequence[str]) -> ArtifactMap:
    """The materials/products shape: every file under each path, by its sha256."""
    found: ArtifactMap = {}
    for rel in paths:
        full = root / rel
        if not full.exists():
            raise OperationalError(f"{rel} does not exist")
        files = [full] if full.is_file() else sorted(p for p in full.rglob("*") if p.is_file())
        for file in files:
            found[file.relative_to(root).as_posix()] = Sha256(
                hashlib.sha256(file.read_bytes()).hexdigest()
            )
    return found


@dataclass
class Project:
    """A repository with a dep, a secret, a signing key and history, and its log dir."""

    root: Path
    logs: Path

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def stage(
        self,
        name: str,
        script: str,
        *,
        deps: Sequence[str] = (),
        outs: Sequence[str] = (),
        declare_script: bool = True,
        wdir: str = ".",
    ) -> StageSpec:
        """Write ``pipelines/NAME.py`` and return its stage (the script is a dep)."""
        script_path = f"pipelines/{name}.py"
        self.write(script_path, textwrap.dedent(script))
        all_deps = (script_path, *deps) if declare_script else tuple(deps)
        return StageSpec(
            name=name,
            cmd=f"bitwright stage run {name} -- python {script_path}",
            deps=all_deps,
            outs=tuple(outs),
            params=(("params.yaml", "train.epochs"),),
            wdir=wdir,
        )

    def run(
        self,
        stage: StageSpec,
        sandbox: Sandbox,
        *,
        strict: bool = False,
        settings: DeterminismSettings | None = None,
        args: Sequence[str] = (),
        argv: Sequence[str] | None = None,
        allowances: SandboxAllowances | None = None,
        host_env: dict[str, str] | None = None,
    ) -> StageRun:
        """Run the stage's script with ``args`` (or ``argv`` instead of the script)."""
        script = f"pipelines/{stage.name}.py"
        return run_sealed(
            stage,
            repo=self.root,
            argv=list(argv) if argv is not None else [sys.executable, script, *args],
            settings=settings or DeterminismSettings(),
            source_date_epoch=1_700_000_000,
            strict=strict,
            sandbox=sandbox,
            digest=lambda paths: sha256_tree(self.root, paths),
            log_dir=self.logs,
            echo=False,
            allowances=allowances,
            host_env=host_env,
        )

    def read_json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())
