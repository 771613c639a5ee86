"""The sample DVC project of tests/fixtures/sklearn_project as a real git + DVC repository.

A typical public project: scikit-learn and dvclive, four stages (the first a plain shell
command), an ``artifacts:`` section, the data tracked with ``dvc add`` and pushed to a local
DVC remote. None of its stages imports bitwright. :func:`with_stagekit` makes the variant whose
stages confirm their determinism settings through ``bitwright.stagekit``, used only where the
build requires a receipt from the stage itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.integration.project import commit, commit_with_data, copy_of_template

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sklearn_project"
RECEIPT = "from bitwright import stagekit\n\nstagekit.begin()\n"
SHELL_RECEIPT = ' && python -c "from bitwright import stagekit; stagekit.begin()"'

_TEMPLATE: list[Path] = []


def make_sample(base: Path) -> Path:
    """Give ``base`` its own committed copy of the sample project and of its DVC remote."""
    return copy_of_template(_TEMPLATE, _create, base, "sample")


def _create(base: Path) -> None:
    repo = base / "sample"
    shutil.copytree(FIXTURE, repo)
    (repo / "data" / "raw").mkdir()
    (repo / "data" / "wine.csv").rename(repo / "data" / "raw" / "wine.csv")
    commit_with_data(repo, base / "remote")


def with_stagekit(repo: Path) -> None:
    """Make every stage write receipts through stagekit (the shell stage by a last command)."""
    for script in sorted((repo / "src").glob("*.py")):
        text = script.read_text()
        end = text.index('"""', 3) + 3
        script.write_text(text[:end] + "\n\n" + RECEIPT + text[end:])
    dvc_yaml = repo / "dvc.yaml"
    text = dvc_yaml.read_text()
    target = "> data/prepared/wine.csv"
    dvc_yaml.write_text(text.replace(target, target + SHELL_RECEIPT, 1))
    commit(repo, "stages confirm their determinism settings")
