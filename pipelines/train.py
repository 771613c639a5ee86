"""Stage ``train``: fit the MLP on the training split with mini-batch SGD, write its weights.

Weights are initialized from ``determinism.seed`` and the batches are drawn from a
generator seeded with it, so two runs with the same settings write the same bytes. The
per-epoch mean loss goes to ``models/train_log.json`` (as deterministic as the weights).
"""

from __future__ import annotations

from bitwright import stagekit

settings = stagekit.begin()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch.nn import functional  # noqa: E402

# Run as `python pipelines/train.py` from the repository root: make `pipelines` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines import common  # noqa: E402


def main() -> None:
    """Run the stage."""
    params = common.load_params()
    seed = common.checked_seed(params, settings.seed)
    hp = params["train"]
    data = common.load_tensors(common.TRAIN_FILE)
    pixels, labels = data["pixels"], data["labels"]

    model = common.build_model(params["model"], seed)
    model.input_mean.copy_(data["mean"])
    model.input_std.copy_(data["std"])
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=float(hp["lr"]),
        momentum=float(hp["momentum"]),
        weight_decay=float(hp["weight_decay"]),
    )
    batches = torch.Generator().manual_seed(seed)
    batch_size = int(hp["batch_size"])
    epochs: list[dict[str, float | int]] = []
    model.train()
    for epoch in range(1, int(hp["epochs"]) + 1):
        order = torch.randperm(len(labels), generator=batches)
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            loss = functional.cross_entropy(model(pixels[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * len(index)
        epochs.append({"epoch": epoch, "loss": total / len(order)})

    common.save_tensors(common.MODEL_FILE, dict(model.state_dict()))
    steps = len(epochs) * -(-len(labels) // batch_size)
    common.write_json(
        common.TRAIN_LOG_FILE, {"epochs": epochs, "samples": len(labels), "steps": steps}
    )


if __name__ == "__main__":
    main()
