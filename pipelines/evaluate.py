"""Stage ``evaluate``: score the model on the held-out split, write ``reports/metrics.json``.

Metrics: accuracy, mean cross-entropy loss, per-class precision/recall/F1/support and the
confusion matrix (rows: true class, columns: predicted). Floats are written in full
(``repr``): a rebuild that reproduces the weights bit for bit reproduces this file too.
"""

from __future__ import annotations

from bitwright import stagekit

settings = stagekit.begin()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from torch.nn import functional  # noqa: E402

# Run as `python pipelines/evaluate.py` from the repository root: make `pipelines` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines import common  # noqa: E402


def per_class(confusion: list[list[int]]) -> dict[str, dict[str, Any]]:
    """Return precision, recall, F1 and support of each class from a confusion matrix."""
    scores: dict[str, dict[str, Any]] = {}
    for label, row in enumerate(confusion):
        hits = row[label]
        support = sum(row)
        predicted = sum(r[label] for r in confusion)
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[str(label)] = {
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "support": support,
        }
    return scores


def main() -> None:
    """Run the stage."""
    params = common.load_params()
    seed = common.checked_seed(params, settings.seed)
    num_classes = int(params["model"]["num_classes"])
    model = common.build_model(params["model"], seed)  # the weights are loaded below
    model.load_state_dict(common.load_tensors(common.MODEL_FILE), strict=True)
    model.eval()
    test = common.load_tensors(common.TEST_FILE)
    labels = test["labels"]
    with torch.no_grad():
        logits = model(test["pixels"])
        loss = float(functional.cross_entropy(logits, labels))
        predicted = logits.argmax(dim=1)

    confusion = [[0] * num_classes for _ in range(num_classes)]
    for truth, guess in zip(labels.tolist(), predicted.tolist(), strict=True):
        confusion[truth][guess] += 1
    correct = sum(confusion[c][c] for c in range(num_classes))
    common.write_json(
        common.METRICS_FILE,
        {
            "accuracy": correct / len(labels),
            "confusion_matrix": confusion,
            "loss": loss,
            "per_class": per_class(confusion),
            "samples": len(labels),
        },
    )


if __name__ == "__main__":
    main()
