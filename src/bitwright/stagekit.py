"""What stage code calls to apply the declared determinism settings and report a receipt.

A stage script starts with::

    from bitwright import stagekit
    settings = stagekit.begin()        # seeds, torch flags, threads; writes the start receipt

and at interpreter exit a second receipt records the settings as they are then, so a stage
that quietly turned a flag off mid-run is caught. The sealed runner passes the declared
settings in ``BITWRIGHT_DETERMINISM`` (JSON) and the receipt path in ``BITWRIGHT_RECEIPT``;
outside a sealed run the defaults apply and no receipt is written. Receipts are JSON lines,
one :class:`bitwright.model.Receipt` each.

This module is imported inside the stage process, so it imports nothing heavy but torch.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from bitwright.model.jsonable import to_jsonable
from bitwright.model.pins import DeterminismSettings
from bitwright.model.receipt import Receipt

__all__ = ["DETERMINISM_ENV", "RECEIPT_ENV", "begin", "declared", "observe", "used_device"]

DETERMINISM_ENV = "BITWRIGHT_DETERMINISM"
RECEIPT_ENV = "BITWRIGHT_RECEIPT"

_state: dict[str, Any] = {"seed": None, "devices": []}


def declared() -> DeterminismSettings:
    """Return the settings the runner declared for this stage (defaults outside a run)."""
    raw = os.environ.get(DETERMINISM_ENV)
    if not raw:
        return DeterminismSettings()
    return DeterminismSettings(**json.loads(raw))


def used_device(device: str) -> None:
    """Record a device the stage computes on (``cpu``, ``cuda:0``); it goes in the receipt."""
    if device not in _state["devices"]:
        _state["devices"].append(device)


def begin() -> DeterminismSettings:
    """Apply the declared settings to this process, write the start receipt, arm the exit one."""
    settings = declared()
    random.seed(settings.seed)
    _state["seed"] = settings.seed
    try:
        import numpy

        numpy.random.seed(settings.seed)
    except ImportError:  # numpy is optional for a stage
        pass
    import torch

    torch.manual_seed(settings.seed)
    _use_deterministic_algorithms(torch, settings.torch_deterministic)
    torch.backends.cudnn.deterministic = settings.torch_deterministic
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = settings.allow_tf32
    torch.backends.cudnn.allow_tf32 = settings.allow_tf32
    torch.set_num_threads(settings.threads)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(settings.seed)
    _write(observe("start"))
    atexit.register(lambda: _write(observe("exit")))
    return settings


def _use_deterministic_algorithms(torch: Any, mode: bool) -> None:
    """``torch.use_deterministic_algorithms(mode)`` without importing TorchInductor now.

    torch 2.13 imports ``torch._inductor.config`` there only to set its ``deterministic``
    flag, which costs ~1.1 s in every stage process, though most stages never compile. The
    same two settings are made here: the algorithms flag at once, and the inductor flag at
    once if TorchInductor is loaded, else the moment it is imported (a one-shot import hook).
    """
    torch._C._set_deterministic_algorithms(mode, warn_only=False)
    config = sys.modules.get(_INDUCTOR_CONFIG)
    if config is not None:
        _use_deterministic_inductor(config, mode)
        return
    sys.meta_path.insert(
        0, _AfterImport(_INDUCTOR_CONFIG, lambda module: _use_deterministic_inductor(module, mode))
    )


def _use_deterministic_inductor(config: ModuleType, mode: bool) -> None:
    setattr(config, "deterministic", mode)  # noqa: B010 (the module is not typed here)


_INDUCTOR_CONFIG = "torch._inductor.config"


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``then(module)`` right after the module ``name`` is first imported, once."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self._name = name
        self._then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._name:
            return None
        sys.meta_path.remove(self)  # one-shot, and out of the way of the real search
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenLoader(spec.loader, self._then)
        return spec


class _ThenLoader(importlib.abc.Loader):
    """A loader that runs the real one, then a callback on the loaded module."""

    def __init__(self, loader: importlib.abc.Loader, then: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._then = then

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._then(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ... of the real one
        return getattr(self._loader, name)


def observe(phase: str) -> Receipt:
    """Read the settings this process really runs with, from torch and the interpreter."""
    import torch

    names = DeterminismSettings().environment().keys()
    devices = tuple(_state["devices"]) or ("cpu",)
    return Receipt(
        phase=phase,
        seed=-1 if _state["seed"] is None else int(_state["seed"]),
        torch_deterministic=torch.are_deterministic_algorithms_enabled(),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        allow_tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32),
        allow_tf32_cudnn=bool(torch.backends.cudnn.allow_tf32),
        threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        devices=devices,
        env={name: _STARTUP_ENV[name] for name in names if name in _STARTUP_ENV},
        hash_randomization=sys.flags.hash_randomization,
    )


# The environment as it was when this module was first imported, before stage code could
# change it: the variables that matter are read by libraries at start-up.
_STARTUP_ENV = dict(os.environ)


def _write(receipt: Receipt) -> None:
    path = os.environ.get(RECEIPT_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(to_jsonable(receipt), sort_keys=True) + "\n")
