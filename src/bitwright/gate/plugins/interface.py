"""The plugin interface of the gate: dynamic signals a policy can require.

Where an organization runs its own tooling (runtime security scanners, model behaviour
tests, an inventory service), each tool can answer the gate as a *signal*: a class that
subclasses :class:`Signal`, registered as a Python entry point in the group
``bitwright.gate.signals``::

    [project.entry-points."bitwright.gate.signals"]
    my-sandbox-run = "my_package.signals:SandboxRun"

A policy requires it by name (``signals: [my-sandbox-run]``); the gate loads only the
signals its policy names, calls :meth:`Signal.evaluate` with what it knows of the target
(:class:`SignalContext`), and records the :class:`SignalResult` as the requirement
``signal:NAME`` with its evidence and the digest of that evidence. A signal that raises, or
that no installed package provides, fails its requirement.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["ENTRY_POINT_GROUP", "Signal", "SignalContext", "SignalResult", "SignalVerdict"]

ENTRY_POINT_GROUP = "bitwright.gate.signals"
"""The entry point group signals register in."""


class SignalVerdict(StrEnum):
    """What a signal says: only ``pass`` satisfies a policy that requires it."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True)
class SignalContext:
    """What the gate hands a signal.

    Attributes:
        target: the release directory or model directory judged.
        files: the model files (absolute paths) -> their sha256.
        formats: the same files -> their format as ``bitwright scan`` names it.
        subjects: the release's subjects (name -> sha256; empty for a bare model directory).
    """

    target: Path
    files: Mapping[Path, str]
    formats: Mapping[Path, str] = field(default_factory=dict)
    subjects: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalResult:
    """A signal's answer.

    Attributes:
        verdict: pass, fail or error.
        summary: one line for the decision.
        evidence: JSON data that backs it (recorded, and digested, in the decision).
    """

    verdict: SignalVerdict
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


class Signal(ABC):
    """A dynamic signal. Subclasses set :attr:`name` and implement :meth:`evaluate`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def evaluate(self, context: SignalContext) -> SignalResult:
        """Judge the target; raise nothing but bugs (the gate records a raise as a failure)."""
