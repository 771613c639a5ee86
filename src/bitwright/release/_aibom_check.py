"""Reading an AI BOM back: schema validation and the model file digests it claims.

Kept apart from :mod:`.aibom` (which writes BOMs) because a verifier only reads them; both
functions are re-exported from :mod:`.aibom`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bitwright.digest import tree_sha256
from bitwright.errors import VerificationFailed
from bitwright.model import Sha256, is_sha256
from bitwright.release._bom_schema import bom_validator

__all__ = ["AIBOM_FILE", "aibom_subjects", "validate_aibom"]

AIBOM_FILE = "aibom.cdx.json"
"""The file name of the AI BOM in a release."""

_REGENERATE = (
    "the BOM was altered or written by another tool; regenerate it with 'bitwright release'"
)


def validate_aibom(text: str) -> None:
    """Check an AI BOM against the CycloneDX 1.6 strict JSON schema (offline).

    Args:
        text: the JSON text of ``aibom.cdx.json``.

    Raises:
        VerificationFailed: the text is not JSON or breaks the schema; names the first error.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise VerificationFailed(
            f"{AIBOM_FILE} is not JSON: {exc}",
            hint="the BOM was truncated or altered; take it from the release again",
        ) from exc
    error = next(bom_validator().iter_errors(document), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise VerificationFailed(
            f"{AIBOM_FILE} breaks the CycloneDX 1.6 schema at {where}: "
            f"{_first_line(error.message)}",
            hint=_REGENERATE,
        )


def aibom_subjects(text: str) -> dict[str, Sha256]:
    """Return the file digests an AI BOM claims for its models, to check against the artifacts.

    Args:
        text: the JSON text of ``aibom.cdx.json``.

    Returns:
        Release-relative path -> sha256 of every file of every model.

    Raises:
        VerificationFailed: the BOM has no model, a model without files or sha256 digests,
            a file listed twice, or a model whose tree digest disagrees with its files.
    """
    try:
        document = json.loads(text)
        components = document.get("components", [])
        models = [c for c in components if c.get("type") == "machine-learning-model"]
    except (ValueError, AttributeError, TypeError) as exc:
        raise _malformed(f"it is not a CycloneDX JSON document ({exc})") from exc
    if not models:
        raise _malformed("it describes no model")
    files: dict[str, Sha256] = {}
    for ml_model in models:
        own = _model_files(ml_model)
        for name, digest in own.items():
            if name in files:
                raise _malformed(f"the model file {name!r} is listed twice")
            files[name] = digest
    return files


def _model_files(ml_model: Mapping[str, Any]) -> dict[str, Sha256]:
    files: dict[str, Sha256] = {}
    for item in ml_model.get("components", []):
        if not isinstance(item, dict) or item.get("type") != "file":
            continue
        name, digest = item.get("name"), _sha256_of(item)
        if not isinstance(name, str) or digest is None:
            raise _malformed(f"the model file {name!r} has no sha256 digest")
        if name in files:
            raise _malformed(f"the model file {name!r} is listed twice")
        files[name] = digest
    if not files:
        raise _malformed(f"the model {ml_model.get('name')!r} lists no files")
    if _sha256_of(ml_model) != tree_sha256(files):
        raise _malformed(f"the model {ml_model.get('name')!r} digest disagrees with its files")
    return files


def _sha256_of(component: Mapping[str, Any]) -> Sha256 | None:
    hashes = component.get("hashes", [])
    if not isinstance(hashes, list):
        return None
    for item in hashes:
        if isinstance(item, dict) and item.get("alg") == "SHA-256":
            content = item.get("content")
            if isinstance(content, str) and is_sha256(content):
                return Sha256(content)
    return None


def _malformed(why: str) -> VerificationFailed:
    return VerificationFailed(
        f"{AIBOM_FILE} does not name the model's files: {why}",
        hint=_REGENERATE,
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "invalid"
    return line if len(line) <= 200 else line[:197] + "..."
