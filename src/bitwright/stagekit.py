"""Optional enrichment of a Python stage: seed its generators, set torch's flags, report both.

The runner already sets, records and confirms everything a process must start with (thread
counts, ``PYTHONHASHSEED``, ``MKL_CBWR``, the CPU kernel path, time zone, locale, umask...)
for every stage, Python or not, and every Python process of a stage reports at exit what it
ran with (torch's flags among it, when it loaded torch). What only code inside the process can
do is left to this module::

    from bitwright import stagekit
    settings = stagekit.begin()

``begin()`` seeds Python's ``random``, numpy's legacy global generator and torch's generators
with the declared seed; sets torch's deterministic algorithms (through
``torch.set_deterministic_debug_mode``, which does not import TorchInductor; the runner sets
TorchInductor's own mode through ``TORCHINDUCTOR_DETERMINISTIC``), cuDNN's flags, TF32 and
torch's thread count; and writes a receipt with the fingerprint of every generator right after
seeding. It imports nothing the stage does not import itself: numpy's random module and torch
are configured the moment the stage imports them (a one-shot import hook), so a stage that
never loads torch never pays for it. At exit a last receipt records the native thread pools
(OpenMP, BLAS) when threadpoolctl is installed (it comes with scikit-learn).

The runner passes the declared settings in ``BITWRIGHT_DETERMINISM`` (JSON) and the receipt
path in ``BITWRIGHT_RECEIPT``; outside a sealed run the defaults apply and nothing is written.
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

from bitwright.model.generators import numpy_fingerprint, random_fingerprint, torch_fingerprint
from bitwright.model.pins import DeterminismSettings
from bitwright.model.receipt import StagekitReceipt, ThreadPool

__all__ = ["DETERMINISM_ENV", "RECEIPT_ENV", "began", "begin", "declared"]

DETERMINISM_ENV = "BITWRIGHT_DETERMINISM"
RECEIPT_ENV = "BITWRIGHT_RECEIPT"

_NUMERIC_LIBRARIES = ("numpy", "scipy", "sklearn", "torch")
_state: dict[str, Any] = {"settings": None}


def declared() -> DeterminismSettings:
    """Return the settings the runner declared for this stage (defaults outside a run)."""
    raw = os.environ.get(DETERMINISM_ENV)
    if not raw:
        return DeterminismSettings()
    return DeterminismSettings.from_json(json.loads(raw))


def began() -> bool:
    """Whether :func:`begin` ran in this process."""
    return _state["settings"] is not None


def begin() -> DeterminismSettings:
    """Apply the declared settings to this process and write the ``begin`` receipt.

    Calling it again returns the settings and changes nothing.
    """
    settings: DeterminismSettings | None = _state["settings"]
    if settings is not None:
        return settings
    settings = declared()
    _state["settings"] = settings
    random.seed(settings.seed)
    generators = {"random": random_fingerprint(random.getstate())}
    for name, apply in _APPLY.items():
        module = sys.modules.get(name)
        if module is not None:
            generators.update(apply(module, settings))
        else:
            sys.meta_path.insert(0, _AfterImport(name, _seed_on_import(apply, settings)))
    _write(StagekitReceipt("begin", os.getpid(), settings.seed, generators))
    atexit.register(_end, settings)
    return settings


def _apply_numpy(random_module: Any, settings: DeterminismSettings) -> dict[str, str]:
    """Seed numpy's legacy global generator (``numpy.random``); its fingerprint."""
    random_module.seed(settings.seed)
    _, keys, pos, has_gauss, gauss = random_module.get_state(legacy=True)
    return {"numpy": numpy_fingerprint(keys.tolist(), int(pos), int(has_gauss), float(gauss))}


def _apply_torch(torch: Any, settings: DeterminismSettings) -> dict[str, str]:
    """Seed torch (CPU, and every GPU when CUDA starts) and set its flags; its fingerprint.

    Only public torch API: ``set_deterministic_debug_mode`` is the documented alternative
    to ``use_deterministic_algorithms`` that does not import TorchInductor (~1 s).
    """
    torch.manual_seed(settings.seed)  # also seeds CUDA, lazily, should it start later
    torch.set_deterministic_debug_mode("error" if settings.torch_deterministic else "default")
    torch.backends.cudnn.deterministic = settings.torch_deterministic
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = settings.allow_tf32
    torch.backends.cudnn.allow_tf32 = settings.allow_tf32
    torch.set_num_threads(settings.threads)
    return {"torch": torch_fingerprint(bytes(torch.get_rng_state().tolist()))}


_APPLY: dict[str, Callable[[Any, DeterminismSettings], dict[str, str]]] = {
    "numpy.random": _apply_numpy,
    "torch": _apply_torch,
}
"""What to configure in each library, keyed by the module whose import triggers it."""


def _seed_on_import(
    apply: Callable[[Any, DeterminismSettings], dict[str, str]], settings: DeterminismSettings
) -> Callable[[ModuleType], None]:
    def configure(module: ModuleType) -> None:
        generators = apply(module, settings)
        _write(StagekitReceipt("seeded", os.getpid(), settings.seed, generators))

    return configure


def _end(settings: DeterminismSettings) -> None:
    pools = _threadpools() if any(n in sys.modules for n in _NUMERIC_LIBRARIES) else ()
    _write(StagekitReceipt("end", os.getpid(), settings.seed, threadpools=pools))


def _threadpools() -> tuple[ThreadPool, ...]:
    """The native thread pools loaded in this process, as threadpoolctl sees them."""
    if importlib.util.find_spec("threadpoolctl") is None:
        return ()
    import threadpoolctl

    return tuple(
        ThreadPool(
            api=str(info.get("user_api", "")),
            library=str(info.get("internal_api") or info.get("prefix") or ""),
            threads=int(info["num_threads"]),
        )
        for info in threadpoolctl.threadpool_info()
    )


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


def _write(receipt: StagekitReceipt) -> None:
    path = os.environ.get(RECEIPT_ENV)
    if not path:
        return
    line = json.dumps({"kind": "stagekit", **receipt.to_json()}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
