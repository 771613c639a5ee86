"""What the reference pipeline's stages share: paths, params, the model, deterministic writing.

Every stage that imports this module declares ``pipelines/common.py`` as a dep in
``dvc.yaml``. Paths are relative to the working directory (DVC runs each stage in the
repository root), so no absolute path can leak into an output.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save
from torch import nn

__all__ = [
    "METRICS_FILE",
    "MODEL_FILE",
    "PARAMS_FILE",
    "RAW_FILE",
    "TEST_FILE",
    "TRAIN_FILE",
    "TRAIN_LOG_FILE",
    "DigitsMLP",
    "MomentumSGD",
    "build_model",
    "checked_seed",
    "fail",
    "load_params",
    "load_tensors",
    "save_tensors",
    "sha256_file",
    "write_bytes",
    "write_json",
]

PARAMS_FILE = Path("params.yaml")
RAW_FILE = Path("data/raw/digits.csv.gz")
TRAIN_FILE = Path("data/prepared/train.safetensors")
TEST_FILE = Path("data/prepared/test.safetensors")
MODEL_FILE = Path("models/model.safetensors")
TRAIN_LOG_FILE = Path("models/train_log.json")
METRICS_FILE = Path("reports/metrics.json")

# Exactly one metadata key: safetensors writes several in a random order per process
# (safetensors issue #584), which would make identical weights differ byte-wise.
_SAFETENSORS_METADATA = {"format": "pt"}


def fail(message: str) -> SystemExit:
    """Return a ``SystemExit`` that ends the stage with one line on stderr; raise it."""
    return SystemExit(f"{Path(sys.argv[0]).stem}: {message}")


def load_params() -> dict[str, Any]:
    """Read ``params.yaml`` (the Hydra composition of ``configs/``)."""
    with PARAMS_FILE.open(encoding="utf-8") as fh:
        params = yaml.safe_load(fh)
    if not isinstance(params, dict):
        raise fail(f"{PARAMS_FILE} is not a mapping of parameters")
    return params


def checked_seed(params: dict[str, Any], declared_seed: int) -> int:
    """Return ``determinism.seed`` from ``params``, refusing one the runner did not declare.

    Outside a sealed run (no declared settings) the params alone decide.
    """
    seed = int(params["determinism"]["seed"])
    if os.environ.get("BITWRIGHT_DETERMINISM") and declared_seed != seed:
        raise fail(f"params.yaml seed {seed} differs from the declared seed {declared_seed}")
    return seed


def sha256_file(path: Path) -> str:
    """Return the lowercase hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DigitsMLP(nn.Module):
    """A multilayer perceptron over 8x8 digit images that standardizes its own input.

    Input: 64 pixel values scaled to [0, 1] (raw value / 16), row-major. The buffers
    ``input_mean`` and ``input_std`` (statistics of the training split) travel with the
    weights, so the released file is all a user needs.
    """

    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(self, input_dim: int, hidden: list[int], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return class logits for a batch of scaled pixel vectors."""
        result: torch.Tensor = self.layers((pixels - self.input_mean) / self.input_std)
        return result


def build_model(model_params: dict[str, Any], seed: int) -> DigitsMLP:
    """Build the model ``params.yaml`` describes, its weights initialized from ``seed``."""
    if model_params["name"] != "mlp":
        raise fail(f"unknown model {model_params['name']!r} (this pipeline builds 'mlp')")
    torch.manual_seed(seed)
    return DigitsMLP(
        input_dim=int(model_params["input_dim"]),
        hidden=[int(h) for h in model_params["hidden"]],
        num_classes=int(model_params["num_classes"]),
    )


class MomentumSGD:
    """SGD with momentum and weight decay, as ``torch.optim.SGD`` computes it (no dampening).

    Written out because every ``torch.optim`` step, ``zero_grad`` and ``state_dict`` imports
    TorchDynamo (1-2 s of CPU in every process that trains, a spot-check replay included).
    ``state_dict``/``load_state_dict`` have ``torch.optim``'s shape, so the trajectory's
    torch codec records the momentum buffers.
    """

    def __init__(self, params: Any, *, lr: float, momentum: float, weight_decay: float) -> None:
        self.params: list[torch.Tensor] = list(params)
        self.hyper = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        """Forget the gradients."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update: ``b = momentum * b + g + wd * p`` (first ``g + wd * p``); ``p -= lr * b``."""
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            update = param.grad.add(param, alpha=self.hyper["weight_decay"])
            buffer = self.buffers[index]
            if buffer is None:
                buffer = torch.clone(update).detach()
                self.buffers[index] = buffer
            else:
                buffer.mul_(self.hyper["momentum"]).add_(update)
            param.add_(buffer, alpha=-self.hyper["lr"])

    def state_dict(self) -> dict[str, Any]:
        """The momentum buffers and hyperparameters, shaped like ``torch.optim``'s."""
        state = {i: {"momentum_buffer": b} for i, b in enumerate(self.buffers) if b is not None}
        group = {**self.hyper, "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.hyper = {k: state["param_groups"][0][k] for k in self.hyper}
        self.buffers = [None] * len(self.params)
        for index, values in state["state"].items():
            self.buffers[int(index)] = values["momentum_buffer"].clone()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors as safetensors: sorted names, contiguous, fixed metadata, atomically."""
    ordered = {name: tensors[name].detach().contiguous() for name in sorted(tensors)}
    write_bytes(path, save(ordered, metadata=_SAFETENSORS_METADATA))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU."""
    tensors: dict[str, torch.Tensor] = load_file(path, device="cpu")
    return tensors


def write_json(path: Path, data: Any) -> None:
    """Write JSON with sorted keys, two-space indent and a final newline, atomically.

    Floats are written by ``repr`` (shortest round-trip form): equal bits, equal text.
    """
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
