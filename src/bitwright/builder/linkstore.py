"""A content-addressed store of every link a project's builds wrote.

DVC skips a stage whose deps and outs are unchanged, and restores a stage's outputs from its
run-cache without running the command; neither writes a link. The store finds the signed link of
the run that really produced those outputs from those materials, so the build can reuse it; the
key is the stage name with its materials and products, so a link is reused only for exactly the
files it attests, and only if the current key signed it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bitwright.fileio import write_atomic
from bitwright.model import ArtifactMap

__all__ = ["LinkStore", "artifact_key"]


def artifact_key(stage: str, materials: ArtifactMap, products: ArtifactMap) -> str:
    """Return the store key of a stage run with these materials and products."""
    canonical = json.dumps(
        {"stage": stage, "materials": materials, "products": products},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _digests(section: dict[str, Any]) -> ArtifactMap:
    return {path: hashes["sha256"] for path, hashes in section.items()}


class LinkStore:
    """Links kept under ``root/KEYID8/STAGE/KEY.link``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, link_path: Path, link: dict[str, Any], keyid8: str) -> Path:
        """Keep a copy of the link at ``link_path`` whose payload is ``link``."""
        stage = str(link["name"])
        key = artifact_key(stage, _digests(link["materials"]), _digests(link["products"]))
        target = self.root / keyid8 / stage / f"{key}.link"
        write_atomic(target, link_path.read_bytes())
        return target

    def find(
        self, stage: str, keyid8: str, materials: ArtifactMap, products: ArtifactMap
    ) -> Path | None:
        """Return the stored link of ``stage`` for exactly these files, signed by ``keyid8``."""
        candidate = self.root / keyid8 / stage / f"{artifact_key(stage, materials, products)}.link"
        return candidate if candidate.is_file() else None
