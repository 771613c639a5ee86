"""Frozen dataclasses of bitwright's domain: digests, stages, pins, receipts, stage runs.

Every other layer speaks in these values; none of them does I/O. Each turns into plain JSON
and back through one mechanism (:class:`JsonModel`: ``to_json()`` / ``from_json()``).
"""

from bitwright.model._json import JsonModel
from bitwright.model.digests import ArtifactMap, Sha256, is_sha256
from bitwright.model.pins import (
    CPU_KERNEL_PATHS,
    DETERMINISM_VARIABLES,
    BuildPins,
    ContainerPin,
    DataPin,
    DeterminismSettings,
    EnvironmentPin,
    GitPin,
    GpuInfo,
    SourceSignature,
)
from bitwright.model.pipeline import ArtifactSpec, Pipeline, StageSpec
from bitwright.model.receipt import (
    PythonReceipt,
    RunnerReceipt,
    StagekitReceipt,
    StageReceipts,
    ThreadPool,
    TorchReceipt,
)
from bitwright.model.run import SandboxAllowances, SandboxKind, SandboxReport, StageRun

__all__ = [
    "CPU_KERNEL_PATHS",
    "DETERMINISM_VARIABLES",
    "ArtifactMap",
    "ArtifactSpec",
    "BuildPins",
    "ContainerPin",
    "DataPin",
    "DeterminismSettings",
    "EnvironmentPin",
    "GitPin",
    "GpuInfo",
    "JsonModel",
    "Pipeline",
    "PythonReceipt",
    "RunnerReceipt",
    "SandboxAllowances",
    "SandboxKind",
    "SandboxReport",
    "Sha256",
    "SourceSignature",
    "StageReceipts",
    "StageRun",
    "StageSpec",
    "StagekitReceipt",
    "ThreadPool",
    "TorchReceipt",
    "is_sha256",
]
