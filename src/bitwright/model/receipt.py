"""Receipts: what the processes of a stage themselves report they ran with.

Three kinds, from three places, all collected by the runner into :class:`StageReceipts`:

* :class:`RunnerReceipt` -- written by the sealed process itself right before it becomes the
  stage's command (``exec``), for every stage, Python or not: its environment and umask;
* :class:`PythonReceipt` -- written at exit by every Python process of the stage (the
  runner's start-up hook, without importing torch or bitwright): hash randomization, the
  determinism variables it started with, the numerical libraries it loaded, torch's settings
  when torch was loaded, and the digests of the declared parameter files as it opened them;
* :class:`StagekitReceipt` -- written by :mod:`bitwright.stagekit` when stage code calls
  ``begin()``: the fingerprints of the generators right after seeding, and the thread pools
  of the native libraries at exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bitwright.model._json import JsonModel

__all__ = [
    "PythonReceipt",
    "RunnerReceipt",
    "StageReceipts",
    "StagekitReceipt",
    "ThreadPool",
    "TorchReceipt",
]


@dataclass(frozen=True)
class RunnerReceipt(JsonModel):
    """The sealed process right before ``exec`` of the stage command.

    Attributes:
        pid: its process id (the stage's main process keeps it across ``exec``).
        umask: the file mode creation mask, as an octal string (``"0022"``).
        env: the environment as the process saw it.
    """

    pid: int
    umask: str
    env: dict[str, str]


@dataclass(frozen=True)
class TorchReceipt(JsonModel):
    """torch's settings in a process that loaded torch, read at its exit.

    Attributes:
        version: ``torch.__version__``.
        deterministic_algorithms: ``torch.are_deterministic_algorithms_enabled()``.
        deterministic_warn_only: ``torch.is_deterministic_algorithms_warn_only_enabled()``.
        cudnn_deterministic: ``torch.backends.cudnn.deterministic``.
        cudnn_benchmark: ``torch.backends.cudnn.benchmark``.
        allow_tf32_matmul: ``torch.backends.cuda.matmul.allow_tf32``.
        allow_tf32_cudnn: ``torch.backends.cudnn.allow_tf32``.
        threads: ``torch.get_num_threads()``.
        interop_threads: ``torch.get_num_interop_threads()``.
        cpu_capability: the CPU kernel path torch dispatched to
            (``torch.backends.cpu.get_cpu_capability()``: ``AVX2``, ``AVX512``, ``DEFAULT``).
        initial_seed: ``torch.initial_seed()``: the seed torch's generator was last seeded with.
        devices: where tensors lived: ``cpu``, plus ``cuda:N`` for every GPU on which CUDA
            allocated memory.
    """

    version: str
    deterministic_algorithms: bool
    deterministic_warn_only: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    allow_tf32_matmul: bool
    allow_tf32_cudnn: bool
    threads: int
    interop_threads: int
    cpu_capability: str
    initial_seed: int
    devices: tuple[str, ...]


@dataclass(frozen=True)
class PythonReceipt(JsonModel):
    """One Python process of a stage, written at its exit.

    Attributes:
        pid: its process id.
        ppid: its parent's.
        hash_randomization: ``sys.flags.hash_randomization`` (0 when ``PYTHONHASHSEED=0``).
        env: the determinism variables as the interpreter saw them at start-up.
        frameworks: the numerical libraries it had loaded (``numpy``, ``torch``, ...).
        torch: torch's settings, when it had loaded torch.
        params: the declared parameter files it opened, repository path -> sha256 of the
            bytes as it opened them.
        stagekit: whether ``bitwright.stagekit.begin()`` ran in it (its generator receipts
            are then required).
    """

    pid: int
    ppid: int
    hash_randomization: int
    env: dict[str, str]
    frameworks: tuple[str, ...] = ()
    torch: TorchReceipt | None = None
    params: dict[str, str] = field(default_factory=dict)
    stagekit: bool = False


@dataclass(frozen=True)
class ThreadPool(JsonModel):
    """A native thread pool as threadpoolctl sees it (``user_api``, library, threads)."""

    api: str
    library: str
    threads: int


@dataclass(frozen=True)
class StagekitReceipt(JsonModel):
    """What :mod:`bitwright.stagekit` applied and saw in one process.

    Attributes:
        phase: ``begin`` (``begin()`` seeded the generators of the libraries loaded then),
            ``seeded`` (a library imported after ``begin()`` was seeded the moment it was
            imported) or ``end`` (the thread pools at exit).
        pid: the process id.
        seed: the seed it applied (the declared one).
        generators: generator name -> fingerprint of its state right after seeding
            (:mod:`bitwright.model.generators`).
        threadpools: at ``end``, the native thread pools (when threadpoolctl is installed).
    """

    phase: str
    pid: int
    seed: int
    generators: dict[str, str] = field(default_factory=dict)
    threadpools: tuple[ThreadPool, ...] = ()


@dataclass(frozen=True)
class StageReceipts(JsonModel):
    """Every receipt of one stage run."""

    runner: RunnerReceipt | None = None
    python: tuple[PythonReceipt, ...] = ()
    stagekit: tuple[StagekitReceipt, ...] = ()
