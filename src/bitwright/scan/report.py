"""What a scan found: every file with its format and digest, and the findings that judge it.

A finding has a severity; whether it makes the scan unsafe depends on the
:class:`ScanPolicy`: code that would run on load (``unsafe``) always does; code shipped with
the model (``custom-code``) and formats the scanner cannot judge (``unknown``) do unless the
policy allows them; notes never do. Other scanners' results (:class:`ExternalEvidence`) are
kept beside the verdict: they can add unsafe findings, never remove one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bitwright.scan.allowlist import DEFAULT_FAMILIES

__all__ = [
    "ExternalEvidence",
    "Finding",
    "ScanPolicy",
    "ScanReport",
    "ScannedFile",
    "Severity",
]


class Severity(StrEnum):
    """How much a finding weighs."""

    UNSAFE = "unsafe"
    """Loading the file would reach code the allowlist does not admit, or the scanner cannot
    tell what it would reach (a malformed or unmodellable stream)."""
    CUSTOM_CODE = "custom-code"
    """The model ships code (Python files, ``auto_map``, native libraries)."""
    UNKNOWN = "unknown"
    """A format the scanner cannot judge."""
    NOTE = "note"
    """Information only."""


@dataclass(frozen=True)
class Finding:
    """One thing the scan found.

    Attributes:
        path: the file, relative to the scanned root; an archive member as
            ``FILE!MEMBER`` (nested: ``FILE!MEMBER!MEMBER``).
        severity: how much it weighs.
        message: one line: what and why.
    """

    path: str
    severity: Severity
    message: str

    def line(self) -> str:
        """``path: severity: message``."""
        return f"{self.path}: {self.severity.value}: {self.message}"


@dataclass(frozen=True)
class ScannedFile:
    """One file scanned.

    Attributes:
        path: relative to the scanned root (the file's name when a file was scanned).
        format: what its content is (``safetensors``, ``torch-zip``, ``pickle``, ``joblib``,
            ``npy``, ``zip``, ``tar``, ``json``, ``text``, ``python``, ``unknown``...).
        size: its size in bytes.
        sha256: its digest (``""`` when the scan was asked not to hash).
        globals: every global a pickle in it names (``module.name``), sorted.
    """

    path: str
    format: str
    size: int
    sha256: str
    globals: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanPolicy:
    """What a scan admits besides the allowlist.

    Attributes:
        allow_custom_code: code shipped with the model does not make it unsafe.
        allow_unknown_formats: files of formats the scanner cannot judge do not either.
        families: the allowlist families that admit pickle globals.
    """

    allow_custom_code: bool = False
    allow_unknown_formats: bool = False
    families: frozenset[str] = DEFAULT_FAMILIES

    def blocks(self, finding: Finding) -> bool:
        """Whether ``finding`` makes the scan unsafe under this policy."""
        if finding.severity is Severity.UNSAFE:
            return True
        if finding.severity is Severity.CUSTOM_CODE:
            return not self.allow_custom_code
        if finding.severity is Severity.UNKNOWN:
            return not self.allow_unknown_formats
        return False


@dataclass(frozen=True)
class ExternalEvidence:
    """What another scanner said, kept beside the verdict.

    Attributes:
        tool: its name (``picklescan``, ``fickling``, ``modelscan``).
        version: its version.
        verdict: ``clean``, ``unsafe`` or ``error``.
        detail: one line.
    """

    tool: str
    version: str
    verdict: str
    detail: str


@dataclass(frozen=True)
class ScanReport:
    """A scan of a file or directory.

    Attributes:
        root: what was scanned.
        files: every file, sorted by path.
        findings: everything found, in file order.
        policy: what the verdict admits besides the allowlist.
        external: other scanners' evidence (when asked for).
    """

    root: str
    files: tuple[ScannedFile, ...]
    findings: tuple[Finding, ...]
    policy: ScanPolicy = field(default_factory=ScanPolicy)
    external: tuple[ExternalEvidence, ...] = ()

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """The findings that make the scan unsafe."""
        return tuple(f for f in self.findings if self.policy.blocks(f))

    @property
    def clean(self) -> bool:
        """Whether every file is safe to load under the policy."""
        return not self.blocking

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (``bitwright scan --json``)."""
        return {
            "root": self.root,
            "clean": self.clean,
            "policy": {
                "allow_custom_code": self.policy.allow_custom_code,
                "allow_unknown_formats": self.policy.allow_unknown_formats,
                "families": sorted(self.policy.families),
            },
            "files": [
                {
                    "path": f.path,
                    "format": f.format,
                    "size": f.size,
                    "sha256": f.sha256,
                    "globals": list(f.globals),
                }
                for f in self.files
            ],
            "findings": [
                {
                    "path": f.path,
                    "severity": f.severity.value,
                    "message": f.message,
                    "blocking": self.policy.blocks(f),
                }
                for f in self.findings
            ],
            "external": [
                {"tool": e.tool, "version": e.version, "verdict": e.verdict, "detail": e.detail}
                for e in self.external
            ],
        }
