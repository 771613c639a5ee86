"""The image's inputs kept by content, and the check of what a download delivered.

Both caches (``.deb`` files and wheels) keep a file only under its sha256, re-hash it before
each use, and take a fresh download only when its bytes are those the image lock records:
a source that serves other bytes for a locked version is refused, whatever it claims.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from bitwright.digest import sha256_file
from bitwright.errors import ToolError, VerificationFailed

__all__ = ["holds", "keep_copy", "refuse_other_bytes", "require_delivered"]

_UPDATE = "refusing it; rebuild with `bitwright image build --update` only if you trust it"


def keep_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless it is there; never leave half a file there."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def holds(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a file whose bytes have this sha256."""
    return path.is_file() and sha256_file(path) == sha256


def refuse_other_bytes(name: str, got: str, locked: str, source: str) -> None:
    """Raise VerificationFailed when a download's sha256 is not the locked one."""
    if got != locked:
        raise VerificationFailed(
            f"{source} serve(s) {name} with sha256 {got[:16]}..., the image lock records "
            f"{locked[:16]}...",
            hint=_UPDATE,
        )


def require_delivered(missing: Sequence[str], tool: str, hint: str) -> None:
    """Raise ToolError naming what ``tool`` did not deliver, if anything."""
    if missing:
        raise ToolError(f"{tool} did not deliver {', '.join(missing[:5])}", hint=hint)
