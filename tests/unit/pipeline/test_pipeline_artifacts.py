"""dvc.yaml's artifacts:, top-level metrics and which outs are metrics or plots."""

from __future__ import annotations

import pytest

from bitwright.errors import UsageError
from bitwright.model import ArtifactSpec
from bitwright.pipeline import parse_pipeline

STAGES = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [models/model.pkl]
    metrics:
      - dvclive/metrics.json:
          cache: false
    plots:
      - dvclive/plots
"""


def test_artifacts_metrics_and_plots_are_read() -> None:
    pipeline = parse_pipeline(
        STAGES
        + "metrics:\n  - dvclive/metrics.json\n"
        + "artifacts:\n  wine-classifier:\n    path: models/model.pkl\n    type: model\n"
        + "    desc: a forest\n    labels: [scikit-learn]\n    meta: {owner: me}\n"
        + "  raw:\n    path: ./data/raw\n"
    )
    assert pipeline.artifacts == (
        ArtifactSpec("wine-classifier", "models/model.pkl", "model", "a forest", ("scikit-learn",)),
        ArtifactSpec("raw", "data/raw"),
    )
    train = pipeline.stage("train")
    assert train.outs == ("models/model.pkl", "dvclive/metrics.json", "dvclive/plots")
    assert (train.metrics, train.plots) == (("dvclive/metrics.json",), ("dvclive/plots",))
    assert pipeline.metrics == ("dvclive/metrics.json",)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("artifacts: [a]\n", "'artifacts' must be a mapping"),
        ("artifacts:\n  Bad_Name:\n    path: m\n", "invalid artifact name"),
        ("artifacts:\n  m:\n    type: model\n", "expected a mapping with a 'path'"),
        ("artifacts:\n  m:\n    path: m\n    owner: me\n", "unknown key 'owner'"),
        ("artifacts:\n  m:\n    path: m\n    labels: a\n", "labels a list of strings"),
        ("artifacts:\n  m:\n    path: ../m\n", "points outside the repository"),
        ("artifacts:\n  m:\n    path: ${x}\n", "uses templating"),
        ("metrics: reports/m.json\n", "top-level 'metrics' must be a list of paths"),
    ],
)
def test_a_broken_section_is_a_usage_error(section: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_pipeline(STAGES + section)
