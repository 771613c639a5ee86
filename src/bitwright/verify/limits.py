"""The largest inputs ``bitwright verify`` reads: documented defaults, raised by flags.

Standard library only: the command needs these defaults to declare its options before it
imports anything that reads a release.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """The largest inputs verify accepts.

    Attributes:
        document_bytes: links, layout, provenance, release statement, model signature,
            README and keys (default 64 MiB).
        aibom_bytes: the AI BOM, whose schema check costs time in its size (default 8 MiB).
        json_depth: the deepest nesting of a JSON document or payload (default 64).
        entries: files and directories in a release (default 100,000).
    """

    document_bytes: int = 64 << 20
    aibom_bytes: int = 8 << 20
    json_depth: int = 64
    entries: int = 100_000


DEFAULT_LIMITS = Limits()
