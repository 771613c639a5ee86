"""Other pickle scanners as extra evidence: picklescan, fickling, modelscan, when installed.

They are blocklists or heuristics, bypassed before and noisy on honest files (fickling calls
a joblib file "likely overtly malicious"), so what they say is recorded beside the verdict
and never changes it: they cannot admit what the allowlist refused, nor refuse what it
admitted. A policy may still require them to be clean (the gate's ``external-scanners``
signal). Each tool is one :class:`ExternalScanner`; picklescan and fickling are called
through their Python API, modelscan through its command line. Only files that carry pickles
are handed to them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from bitwright.scan.report import ExternalEvidence, ScanReport

__all__ = [
    "PICKLE_FORMATS",
    "SCANNERS",
    "ExternalScanner",
    "FicklingScanner",
    "ModelscanScanner",
    "PicklescanScanner",
    "run_external",
    "with_external_evidence",
]

PICKLE_FORMATS = ("pickle", "joblib", "torch-zip", "npy-object", "zip", "tar")
"""Formats (alone or inside compression) whose files are handed to the other scanners."""

CLEAN, FLAGGED, ERROR = "clean", "flagged", "error"


class ExternalScanner(ABC):
    """One other scanner: whether it is installed, and what it says of some files."""

    tool: ClassVar[str]

    @abstractmethod
    def available(self) -> bool:
        """Whether the tool can run here."""

    @abstractmethod
    def version(self) -> str:
        """The tool's version."""

    @abstractmethod
    def scan(self, files: Sequence[Path]) -> tuple[str, str]:
        """Return (``clean``/``flagged``/``error``, one line of detail) for ``files``."""


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class PicklescanScanner(ExternalScanner):
    """picklescan: flags pickles that name globals on its list of dangerous ones."""

    tool = "picklescan"

    def available(self) -> bool:  # noqa: D102
        return _importable("picklescan.scanner")

    def version(self) -> str:  # noqa: D102
        return _distribution_version("picklescan")

    def scan(self, files: Sequence[Path]) -> tuple[str, str]:  # noqa: D102
        from picklescan.scanner import scan_file_path

        dangerous: list[str] = []
        errors = 0
        for path in files:
            result = scan_file_path(str(path))
            errors += int(bool(result.scan_err))
            dangerous += [
                f"{path.name}: {g.module}.{g.name}"
                for g in result.globals
                if g.safety.value == "dangerous"
            ]
        if dangerous:
            return FLAGGED, f"dangerous globals: {', '.join(sorted(set(dangerous))[:5])}"
        if errors:
            return ERROR, f"could not read {errors} of {len(files)} file(s)"
        return CLEAN, f"{len(files)} file(s), no dangerous global"


class FicklingScanner(ExternalScanner):
    """fickling: a decompiler's judgement of each pickle, on its own severity scale."""

    tool = "fickling"

    def available(self) -> bool:  # noqa: D102
        return _importable("fickling")

    def version(self) -> str:  # noqa: D102
        return _distribution_version("fickling")

    def scan(self, files: Sequence[Path]) -> tuple[str, str]:  # noqa: D102
        import fickling

        worst: dict[str, str] = {}
        for path in files:
            result = fickling.scan_file(str(path), graceful=True)
            if not result.is_safe:
                worst[path.name] = result.severity.name
        if worst:
            named = ", ".join(f"{n}: {s}" for n, s in sorted(worst.items())[:5])
            return FLAGGED, f"not likely safe: {named}"
        return CLEAN, f"{len(files)} file(s) likely safe"


class ModelscanScanner(ExternalScanner):
    """modelscan: protectai's scanner, run as a command (exit 0 clean, 1 issues found)."""

    tool = "modelscan"

    def available(self) -> bool:  # noqa: D102
        return shutil.which("modelscan") is not None

    def version(self) -> str:  # noqa: D102
        return _distribution_version("modelscan")

    def scan(self, files: Sequence[Path]) -> tuple[str, str]:  # noqa: D102
        flagged: list[str] = []
        for path in files:
            code, detail = self._one(path)
            if code == 1:
                flagged.append(f"{path.name}: {detail}")
            elif code != 0:
                return ERROR, f"{path.name}: exit status {code}"
        if flagged:
            return FLAGGED, "; ".join(flagged[:5])
        return CLEAN, f"{len(files)} file(s) without issues"

    def _one(self, path: Path) -> tuple[int, str]:
        command = shutil.which("modelscan") or "modelscan"
        with tempfile.TemporaryDirectory(prefix="bitwright-modelscan-") as scratch:
            out = Path(scratch) / "report.json"
            try:
                done = subprocess.run(
                    [command, "scan", "-p", str(path), "-r", "json", "--output-file", str(out)],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return 3, str(exc)
            issues = "issues found"
            if out.is_file():
                try:
                    summary = json.loads(out.read_text(encoding="utf-8")).get("summary", {})
                    issues = f"{summary.get('total_issues', '?')} issue(s)"
                except (ValueError, AttributeError, OSError):
                    pass
        return done.returncode, issues


SCANNERS: tuple[type[ExternalScanner], ...] = (
    PicklescanScanner,
    FicklingScanner,
    ModelscanScanner,
)
"""Every other scanner bitwright knows how to ask."""


def run_external(
    files: Sequence[Path], scanners: Sequence[ExternalScanner] | None = None
) -> tuple[ExternalEvidence, ...]:
    """Ask every available scanner about ``files``; a tool that crashes is an ``error``."""
    evidence: list[ExternalEvidence] = []
    for scanner in scanners if scanners is not None else [cls() for cls in SCANNERS]:
        if not scanner.available():
            continue
        if not files:
            evidence.append(ExternalEvidence(scanner.tool, scanner.version(), CLEAN, "no pickle"))
            continue
        try:
            verdict, detail = scanner.scan(files)
        except Exception as exc:  # noqa: BLE001  (a third-party tool failing is evidence too)
            verdict, detail = ERROR, f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
        evidence.append(ExternalEvidence(scanner.tool, scanner.version(), verdict, detail))
    return tuple(evidence)


def with_external_evidence(
    report: ScanReport, root: Path, scanners: Sequence[ExternalScanner] | None = None
) -> ScanReport:
    """``report`` with the other scanners' evidence on its pickle-bearing files added."""
    base = root if root.is_dir() else root.parent
    files = [
        base / f.path
        for f in report.files
        if f.format.rpartition(":")[2] in PICKLE_FORMATS or f.globals
    ]
    return dataclasses.replace(report, external=run_external(files, scanners))
