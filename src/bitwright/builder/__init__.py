"""Orchestrates a build: preflight pins, ``dvc repro`` with every stage sealed and linked, layout.

``bitwright build`` (:func:`bitwright.builder.orchestrate.build`) pins everything once, writes a
build context, and runs ``dvc repro``; each ``dvc.yaml`` cmd calls ``bitwright stage run``
(:func:`bitwright.builder.stage.run_stage`), which runs its stage sealed and writes the stage's
signed link. Under a build, ``bitwright stage run`` hands its stage to the build process
(:mod:`.stageserver`, over :mod:`.stagecall`) instead of starting bitwright's machinery again;
run by plain ``dvc repro`` it pins and runs on its own. Stages DVC skipped or restored from its
run-cache get the link of the run that made their outputs, or are run again.

The names below are imported on first use, so that the light :mod:`.stagecall` can be
imported without the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names

if TYPE_CHECKING:
    from bitwright.builder.context import BuildContext
    from bitwright.builder.orchestrate import BuildResult, build
    from bitwright.builder.paths import ProjectPaths
    from bitwright.builder.stage import run_stage

__all__ = ["BuildContext", "BuildResult", "ProjectPaths", "build", "run_stage"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "BuildContext": "context",
        "BuildResult": "orchestrate",
        "build": "orchestrate",
        "ProjectPaths": "paths",
        "run_stage": "stage",
    },
)
