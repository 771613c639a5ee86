"""Whether model files are safe to load: an allowlist judged by content, never by name.

:func:`scan_path` judges a file or directory and returns a :class:`ScanReport`::

    formats           what a file is, by its first bytes (archives, pickles, safetensors...)
    pickle_machine    what a pickle would import and call, without loading it (its opcodes
                      in _opcodes, its symbolic values in _symbols)
    allowlist         the globals a pickle may reach, and how far (the one allowlist)
    safetensors       a header that cannot mislead a loader
    scanner           files, archive members and compressed streams, each judged (the
                      streams, decompressed within a budget, in _streams)
    external          other scanners (picklescan, fickling, modelscan) as extra evidence

Standard library, :mod:`bitwright.fileio` and :mod:`bitwright.digest` only (numpy when a
``.npy`` header is read), so every layer above may scan. The scanner itself (and the digest
machinery it needs) is imported on first use of ``scan_path``.
"""

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names
from bitwright.scan.allowlist import ALLOWLIST, DEFAULT_FAMILIES, FAMILIES, Use, allowed_use
from bitwright.scan.report import (
    ExternalEvidence,
    Finding,
    ScannedFile,
    ScanPolicy,
    ScanReport,
    Severity,
)

if TYPE_CHECKING:
    from bitwright.scan.scanner import ScanLimits, scan_path

__all__ = [
    "ALLOWLIST",
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "ExternalEvidence",
    "Finding",
    "ScanLimits",
    "ScanPolicy",
    "ScanReport",
    "ScannedFile",
    "Severity",
    "Use",
    "allowed_use",
    "scan_path",
]

__getattr__, __dir__ = lazy_names(__name__, {"ScanLimits": "scanner", "scan_path": "scanner"})
