"""What a build releases: the project's declared artifacts, metrics and plots, or its finals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bitwright.builder.provenance import release_subjects, select_release
from bitwright.errors import UsageError
from bitwright.pipeline import load_pipeline
from bitwright.project import ReleaseConfig

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "sklearn_project"
OUTPUTS = {
    "data/prepared/wine.csv": "a\n",
    "data/split/train.csv": "b\n",
    "models/model.pkl": "model",
    "dvclive/metrics.json": "{}",
    "dvclive/plots/metrics/trees.tsv": "step\ttrees\n",
    "eval/predictions.csv": "p\n",
    "eval/metrics.json": "{}",
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(SAMPLE, root)
    for rel, text in OUTPUTS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(tmp_path / "digests.sqlite"))
    return root


def test_the_declared_artifacts_metrics_and_plots_across_all_stages(repo: Path) -> None:
    selection = select_release(load_pipeline(repo), ReleaseConfig())
    assert selection.declared
    assert selection.paths == (
        "models/model.pkl",
        "dvclive/metrics.json",
        "eval/metrics.json",
        "dvclive/plots",
    )
    subjects = release_subjects(repo, load_pipeline(repo))
    assert set(subjects) == {
        "models/model.pkl",
        "dvclive/metrics.json",
        "dvclive/plots/metrics/trees.tsv",
        "eval/metrics.json",
    }
    assert "eval/predictions.csv" not in subjects  # an intermediate product, not declared


def test_the_config_adds_paths_and_leaves_out_what_it_excludes(repo: Path) -> None:
    config = ReleaseConfig(paths=("eval/predictions.csv",), exclude=("dvclive",), metrics=True)
    pipeline = load_pipeline(repo)
    subjects = release_subjects(repo, pipeline, select_release(pipeline, config))
    assert set(subjects) == {"models/model.pkl", "eval/metrics.json", "eval/predictions.csv"}
    plain = ReleaseConfig(metrics=False, plots=False)
    assert select_release(pipeline, plain).paths == ("models/model.pkl",)


def test_a_project_that_declares_nothing_releases_its_final_stages(repo: Path) -> None:
    text = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(text.split("\nartifacts:")[0] + "\n")
    pipeline = load_pipeline(repo)
    selection = select_release(pipeline, ReleaseConfig())
    assert not selection.declared and selection.as_parameter() is None
    assert selection.paths == ("eval/predictions.csv", "eval/metrics.json")


def test_a_released_path_no_stage_produces_is_refused(repo: Path) -> None:
    pipeline = load_pipeline(repo)
    config = ReleaseConfig(paths=("data/raw/wine.csv",))
    (repo / "data/raw").mkdir(parents=True)
    (repo / "data/raw/wine.csv").write_text("x\n")
    with pytest.raises(UsageError, match="data/raw/wine.csv is released but no stage"):
        release_subjects(repo, pipeline, select_release(pipeline, config))
    nothing = ReleaseConfig(paths=("models",), exclude=("models",), metrics=False, plots=False)
    text = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(text.split("\nartifacts:")[0] + "\n")
    bare = load_pipeline(repo)
    with pytest.raises(UsageError, match="nothing to release"):
        release_subjects(repo, bare, select_release(bare, nothing))
