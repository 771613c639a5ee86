"""The receipt: what a stage process itself reports it ran with."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Receipt"]


@dataclass(frozen=True)
class Receipt:
    """Settings a stage process observed in itself (not what it was told).

    Attributes:
        phase: "start" (after the settings were applied) or "exit" (at interpreter exit).
        seed: the seed the stage seeded its generators with.
        torch_deterministic: ``torch.are_deterministic_algorithms_enabled()``.
        cudnn_deterministic: ``torch.backends.cudnn.deterministic``.
        cudnn_benchmark: ``torch.backends.cudnn.benchmark``.
        allow_tf32_matmul: ``torch.backends.cuda.matmul.allow_tf32``.
        allow_tf32_cudnn: ``torch.backends.cudnn.allow_tf32``.
        threads: ``torch.get_num_threads()``.
        interop_threads: ``torch.get_num_interop_threads()``.
        devices: the devices the stage computed on (``cpu``, ``cuda:0 NVIDIA H100 ...``).
        env: determinism variables as the process saw them at start-up.
        hash_randomization: ``sys.flags.hash_randomization`` (0 when PYTHONHASHSEED=0 held).
    """

    phase: str
    seed: int
    torch_deterministic: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    allow_tf32_matmul: bool
    allow_tf32_cudnn: bool
    threads: int
    interop_threads: int
    devices: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    hash_randomization: int = 0
