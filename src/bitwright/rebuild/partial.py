"""A partial rebuild (``--stage NAME``): put one stage's recorded materials in place, check them.

Source files come with the checkout and data snapshots from DVC (fetched by the full flow's
data step). Products of upstream stages come from the release's artifacts, found by digest,
or from the DVC remote (``dvc pull`` of the upstream stage's outs as ``dvc.lock`` at the
commit records them). Before the stage runs, every material is digested from its bytes and
checked against the original link: one the verifier cannot have is an operational error that
names it; one that differs means the stage cannot be judged alone from these inputs.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bitwright.builder.data import dvc_pull
from bitwright.builder.stage import stage_materials
from bitwright.digest import digest_artifacts
from bitwright.errors import OperationalError
from bitwright.model import Pipeline
from bitwright.pipeline import load_lock
from bitwright.rebuild.stages import PathMatch, PathStatus, match_paths

__all__ = ["check_materials", "place_materials", "unmatched"]


def place_materials(
    workspace: Path,
    pipeline: Pipeline,
    stage: str,
    original_link: Mapping[str, Any],
    artifacts: Mapping[str, Path],
) -> tuple[str, ...]:
    """Put the recorded materials of ``stage`` that the checkout lacks into ``workspace``.

    Args:
        workspace: the checkout at the released commit (data snapshots already pulled).
        pipeline: its pipeline.
        stage: the stage to rebuild alone.
        original_link: the released link of that stage (JSON).
        artifacts: sha256 -> a released artifact file with that digest.

    Returns:
        Notes saying where upstream products came from.

    Raises:
        OperationalError: a material is neither in the checkout, nor a released artifact,
            nor fetchable from the DVC remote (the message names it).
    """
    notes: list[str] = []
    pending: dict[str, list[str]] = {}
    for path, hashes in sorted(original_link.get("materials", {}).items()):
        if (workspace / path).is_file():
            continue
        producer = pipeline.producer_of(path)
        if producer is None:
            raise OperationalError(
                f"material {path} of stage {stage!r} is not in the checkout of the released commit",
                hint="pass the right --source, or rebuild the whole pipeline without --stage",
            )
        source = artifacts.get(str(hashes["sha256"]))
        if source is not None:
            target = workspace / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            notes.append(f"material {path} (of stage {producer}) taken from the release")
        else:
            pending.setdefault(producer, []).append(path)
    if pending:
        locked = load_lock(workspace) if (workspace / "dvc.lock").is_file() else {}
        for producer, paths in sorted(pending.items()):
            if producer in locked:
                dvc_pull(workspace, producer)  # what arrives is checked below
            missing = [p for p in paths if not (workspace / p).is_file()]
            if missing:
                raise OperationalError(
                    f"material {missing[0]} of stage {stage!r} (a product of stage "
                    f"{producer!r}) is neither a released artifact nor in the DVC remote",
                    hint=f"rebuild the whole pipeline (drop --stage), or ask the maintainer to "
                    f"commit dvc.lock and `dvc push` the outputs of {producer}",
                )
            notes.append(f"materials of stage {producer} pulled from the DVC remote")
    return tuple(notes)


def check_materials(
    workspace: Path, pipeline: Pipeline, stage: str, original_link: Mapping[str, Any]
) -> tuple[PathMatch, ...]:
    """Digest the stage's materials in the workspace and match them with the original link's.

    Returns:
        Every material's match; callers refuse to run when any is not ``matched``.

    Raises:
        OperationalError: a declared dep of the stage is missing from the workspace.
    """
    recorded = {p: str(h["sha256"]) for p, h in original_link.get("materials", {}).items()}
    current = digest_artifacts(workspace, stage_materials(pipeline.stage(stage)), None)
    return match_paths(recorded, current)


def unmatched(matches: tuple[PathMatch, ...]) -> tuple[PathMatch, ...]:
    """The matches that are not ``matched``."""
    return tuple(m for m in matches if m.status is not PathStatus.MATCHED)
