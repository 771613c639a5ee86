"""Digest values: sha256 hex strings and maps of repository paths to them."""

from __future__ import annotations

import re
from typing import NewType

__all__ = ["ArtifactMap", "Sha256", "is_sha256"]

Sha256 = NewType("Sha256", str)
"""A lowercase hex sha256 digest (64 characters)."""

ArtifactMap = dict[str, Sha256]
"""Repository-relative POSIX path of a file -> its sha256 (the in-toto materials/products shape)."""

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def is_sha256(text: str) -> bool:
    """Return whether ``text`` is a lowercase hex sha256 digest."""
    return _SHA256_RE.fullmatch(text) is not None
