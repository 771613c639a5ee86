"""Frozen dataclasses of bitwright's domain: digests, stages, pins, receipts, stage runs.

Every other layer speaks in these values; none of them does I/O.
"""

from bitwright.model.digests import ArtifactMap, Sha256, is_sha256
from bitwright.model.jsonable import from_jsonable, to_jsonable
from bitwright.model.pins import (
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
from bitwright.model.receipt import Receipt
from bitwright.model.run import SandboxAllowances, SandboxKind, SandboxReport, StageRun

__all__ = [
    "ArtifactMap",
    "ArtifactSpec",
    "BuildPins",
    "ContainerPin",
    "DataPin",
    "DeterminismSettings",
    "EnvironmentPin",
    "GitPin",
    "GpuInfo",
    "Pipeline",
    "Receipt",
    "SandboxAllowances",
    "SandboxKind",
    "SandboxReport",
    "Sha256",
    "SourceSignature",
    "StageRun",
    "StageSpec",
    "from_jsonable",
    "is_sha256",
    "to_jsonable",
]
