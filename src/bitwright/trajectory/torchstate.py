"""The whole training state of a torch loop as one safetensors file, and back.

Tensors, sorted by name: ``model.<name>`` (the state dict: weights and buffers),
``optimizer.state.<param>.<key>`` (each tensor of the optimizer's state, momentum buffers),
``optimizer.json`` (the rest of the optimizer's state dict as canonical JSON bytes: its
param groups and any plain numbers), ``generator.<name>`` (each generator's state, with
``generator.torch`` the global CPU generator) and ``step``. One metadata key only (safetensors
writes several in a random order), so equal states give equal bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import torch
from safetensors.torch import load, save

__all__ = ["OptimizerState", "TorchState", "as_index"]

_METADATA = {"format": "pt"}


def as_index(batch: Any) -> torch.Tensor:
    """The item ids of one step (an ``array('q')``) as an int64 tensor, without copying."""
    return torch.frombuffer(batch, dtype=torch.int64)


class OptimizerState(Protocol):
    """What is recorded of an optimizer: ``torch.optim``'s state dict, or one shaped like it."""

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {param index: {key: tensor or number}}, "param_groups": [...]}``."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class TorchState:
    """A :class:`~bitwright.trajectory.recorder.StateCodec` for a torch model and optimizer.

    Args:
        model: the module being trained.
        optimizer: its optimizer, if any.
        generators: every generator the loop draws from (dropout masks, augmentation),
            by a stable name; the global CPU generator is always included.
    """

    suffix = ".safetensors"
    format = "torch-safetensors/v1"

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: OptimizerState | torch.optim.Optimizer | None = None,
        generators: Mapping[str, torch.Generator] | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.generators = dict(generators or {})

    def tensors(self, step: int) -> dict[str, torch.Tensor]:
        """The state as named tensors (see the module doc)."""
        tensors: dict[str, torch.Tensor] = {
            f"model.{name}": value.detach() for name, value in self.model.state_dict().items()
        }
        if self.optimizer is not None:
            plain: dict[str, Any] = {"param_groups": [], "state": {}}
            state = self.optimizer.state_dict()
            plain["param_groups"] = state["param_groups"]
            for param, values in state["state"].items():
                for key, value in values.items():
                    if isinstance(value, torch.Tensor):
                        tensors[f"optimizer.state.{param}.{key}"] = value.detach()
                    else:
                        plain["state"].setdefault(str(param), {})[key] = value
            text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
            tensors["optimizer.json"] = torch.frombuffer(
                bytearray(text.encode()), dtype=torch.uint8
            )
        for name, generator in sorted(self.generators.items()):
            tensors[f"generator.{name}"] = generator.get_state()
        tensors["generator.torch"] = torch.get_rng_state()
        tensors["step"] = torch.tensor(step, dtype=torch.int64)
        return {name: tensors[name].contiguous() for name in sorted(tensors)}

    def save(self, step: int) -> bytes:
        """Return the state before ``step`` as safetensors bytes."""
        data: bytes = save(self.tensors(step), metadata=_METADATA)
        return data

    def load(self, data: bytes) -> int:
        """Restore the model, optimizer and generators from ``data``; return its step."""
        tensors = load(data)
        model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model, strict=True)
        if self.optimizer is not None:
            plain = json.loads(bytes(tensors["optimizer.json"].tolist()).decode())
            state: dict[int, dict[str, Any]] = {
                int(p): dict(values) for p, values in plain["state"].items()
            }
            for name, value in tensors.items():
                if name.startswith("optimizer.state."):
                    param, key = name.removeprefix("optimizer.state.").split(".", 1)
                    state.setdefault(int(param), {})[key] = value
            self.optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})
        for name, generator in self.generators.items():
            generator.set_state(tensors[f"generator.{name}"])
        torch.set_rng_state(tensors["generator.torch"])
        return int(tensors["step"])
