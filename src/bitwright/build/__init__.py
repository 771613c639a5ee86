"""Orchestrates a build: preflight pins, ``dvc repro`` with every stage sealed and linked, layout.

``bitwright build`` (:func:`bitwright.build.orchestrate.build`) pins everything once, writes a
build context, and runs ``dvc repro``; each ``dvc.yaml`` cmd calls ``bitwright stage run``
(:func:`bitwright.build.stage.run_stage`), which reads that context, runs its stage sealed and
writes the stage's signed link. Stages DVC skipped or restored from its run-cache get the link
of the run that made their outputs, or are run again.
"""

from bitwright.build.context import BuildContext
from bitwright.build.orchestrate import BuildResult, build
from bitwright.build.paths import ProjectPaths
from bitwright.build.stage import run_stage

__all__ = ["BuildContext", "BuildResult", "ProjectPaths", "build", "run_stage"]
