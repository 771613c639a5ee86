"""Stage ``train``: fit the MLP on the training split with mini-batch SGD, write its weights.

Weights are initialized from ``determinism.seed``; the batches follow the data order that
:mod:`bitwright.trajectory` derives from the seed and the training data's sha256, so two runs
with the same settings write the same bytes. Training is recorded as a committed trajectory in
``checkpoints/``: every ``train.segment_steps`` steps the whole state (weights, momentum,
generator states, step) is written and committed, so an auditor can replay a few segments
(``bitwright rebuild --spot-check``) instead of the whole run. The per-epoch mean loss goes to
``models/train_log.json``.
"""

from __future__ import annotations

from bitwright import stagekit

settings = stagekit.begin()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from torch.nn import functional  # noqa: E402

from bitwright.trajectory import Recorder  # noqa: E402
from bitwright.trajectory.torchstate import TorchState, as_index  # noqa: E402

# Run as `python pipelines/train.py` from the repository root: make `pipelines` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines import common  # noqa: E402

CHECKPOINTS = Path("checkpoints")


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
    optimizer = common.MomentumSGD(
        model.parameters(),
        lr=float(hp["lr"]),
        momentum=float(hp["momentum"]),
        weight_decay=float(hp["weight_decay"]),
    )
    batch_size = int(hp["batch_size"])
    steps_per_epoch = -(-len(labels) // batch_size)
    run = Recorder(
        CHECKPOINTS,
        state=TorchState(model, optimizer),
        seed=seed,
        data=common.TRAIN_FILE,
        items=len(labels),
        batch_size=batch_size,
        steps=int(hp["epochs"]) * steps_per_epoch,
        segment_steps=int(hp["segment_steps"]),
        model=common.MODEL_FILE,
    )
    losses: list[float] = []
    model.train()
    for segment in run.segments():
        for batch in segment:
            index = as_index(batch)
            loss = functional.cross_entropy(model(pixels[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            losses.append(float(loss.detach()) * len(index))
    run.finish()
    if run.replaying:  # an audit replays a few segments: the run's outputs are not rewritten
        return

    common.save_tensors(common.MODEL_FILE, dict(model.state_dict()))
    epochs = [
        {
            "epoch": e + 1,
            "loss": sum(losses[e * steps_per_epoch : (e + 1) * steps_per_epoch]) / len(labels),
        }
        for e in range(int(hp["epochs"]))
    ]
    common.write_json(
        common.TRAIN_LOG_FILE,
        {
            "epochs": epochs,
            "samples": len(labels),
            "steps": len(losses),
            "segments": run.segment_count,
        },
    )


if __name__ == "__main__":
    main()
