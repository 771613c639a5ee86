"""Stage ``package``: gather the released artifacts into ``release/`` with a model card.

``release/model.safetensors`` and ``release/metrics.json`` are byte copies of the trained
model and its metrics; ``release/MODEL_CARD.md`` is written from ``params.yaml`` and those
files alone: no timestamps, no absolute paths, no host names, so it is reproducible too.
"""

from __future__ import annotations

from bitwright import stagekit

settings = stagekit.begin()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

# Run as `python pipelines/package.py` from the repository root: make `pipelines` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines import common  # noqa: E402

RELEASE_DIR = Path("release")


def parameter_count(model: dict[str, Any]) -> int:
    """Return the number of trainable parameters of the MLP ``params.yaml`` describes."""
    widths = [int(model["input_dim"]), *(int(h) for h in model["hidden"])]
    widths.append(int(model["num_classes"]))
    return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))


def model_card(params: dict[str, Any], metrics: dict[str, Any], digests: dict[str, str]) -> str:
    """Return the text of ``MODEL_CARD.md``."""
    model, train, data = params["model"], params["train"], params["data"]
    det = params["determinism"]
    widths = [str(model["input_dim"]), *map(str, model["hidden"]), str(model["num_classes"])]
    classes = "\n".join(
        f"| {label} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |"
        for label, s in sorted(metrics["per_class"].items(), key=lambda kv: int(kv[0]))
    )
    files = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in sorted(digests.items()))
    return f"""# Model card: handwritten digit classifier ({data["name"]} {model["name"]})

Built by the bitwright reference pipeline (`dvc.yaml`: prepare -> train -> evaluate -> package).
Every number below comes from `params.yaml` and the pipeline's outputs.

## Task
Classify 8x8 greyscale images of handwritten digits into the classes 0-9.

## Model
- Architecture: multilayer perceptron {" -> ".join(widths)}, ReLU between layers.
- Parameters: {parameter_count(model)} trainable, plus the input statistics below.
- Input: 64 pixel values in row-major order, each the raw value (0..{data["max_pixel"]}) divided by
  {data["max_pixel"]}. The model standardizes them itself with the buffers `input_mean` and
  `input_std` (per-pixel statistics of the training split) stored with the weights.
- Output: 10 logits; the predicted digit is the arg max.
- File: `model.safetensors` (safetensors, float32; load with `safetensors.torch.load_file`).

## Training
- Data: {1.0 - float(data["test_fraction"]):.0%} of each class (the rest is held out for
  evaluation); the split is fixed by the seed.
- Mini-batch SGD: {train["epochs"]} epochs, batch size {train["batch_size"]}, learning rate \
{train["lr"]}, momentum {train["momentum"]}, weight decay {train["weight_decay"]}.
- Determinism: seed {det["seed"]}, deterministic algorithms {det["torch_deterministic"]}, \
TF32 {det["allow_tf32"]}, {det["threads"]} thread(s), `MKL_CBWR={det["mkl_cbwr"]}`, \
`PYTHONHASHSEED={det["pythonhashseed"]}`, CPU kernel path `{det["cpu_capability"] or "unpinned"}`;
  on CPU, a rebuild reproduces the weights bit for bit on any machine that has that path.

## Dataset
- {data["title"]} ({data["creators"]}), {data["source"]}.
- DOI: [{data["doi"]}](https://doi.org/{data["doi"]}); licence: {data["licence"]}.
- File `data/raw/digits.csv.gz`, sha256 `{data["sha256"]}`.

## Evaluation (held-out split, {metrics["samples"]} images)
- Accuracy: {metrics["accuracy"]:.4f}
- Mean cross-entropy loss: {metrics["loss"]:.4f}

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{classes}

Exact values: `metrics.json`.

## Files
| file | sha256 |
|---|---|
{files}

## Limitations
A small model trained on part of 1797 digits written by 13 people (the UCI test set, as
scikit-learn ships it); it is a reference for reproducible builds, not a production digit reader.
"""


def main() -> None:
    """Run the stage."""
    params = common.load_params()
    common.checked_seed(params, settings.seed)
    model_bytes = common.MODEL_FILE.read_bytes()
    metrics_bytes = common.METRICS_FILE.read_bytes()
    common.write_bytes(RELEASE_DIR / "model.safetensors", model_bytes)
    common.write_bytes(RELEASE_DIR / "metrics.json", metrics_bytes)
    digests = {
        "model.safetensors": common.sha256_file(RELEASE_DIR / "model.safetensors"),
        "metrics.json": common.sha256_file(RELEASE_DIR / "metrics.json"),
    }
    card = model_card(params, json.loads(metrics_bytes), digests)
    common.write_bytes(RELEASE_DIR / "MODEL_CARD.md", card.encode("utf-8"))


if __name__ == "__main__":
    main()
