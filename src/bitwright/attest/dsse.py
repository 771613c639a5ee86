"""DSSE envelopes: sign a payload, check an envelope's signatures, read one from disk.

One envelope format serves every signed thing bitwright writes (links, the layout, the
provenance, VSAs). Signing and verification go through securesystemslib's DSSE code, the same
code ``in-toto-verify`` runs, so what passes here passes there. An envelope is handled as the
plain JSON object of the DSSE spec: ``{"payload": b64, "payloadType": str, "signatures":
[{"keyid": str, "sig": b64}]}``; on disk it is written as canonical JSON.

Envelopes come from releases and stages, so they are hostile until checked: they are read as
bounded regular files (:func:`bitwright.fileio.read_regular`), and the JSON payload of an
in-toto envelope may be nested no deeper than the JSON around it, so that the parsers of
links, layouts and Statements never recurse without bound.
"""

from __future__ import annotations

import binascii
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError, VerificationError

from bitwright.attest.canonical import canonical_json
from bitwright.attest.keys import Key, Signer
from bitwright.errors import UsageError, VerificationFailed
from bitwright.fileio import (
    MAX_DOCUMENT_BYTES,
    MAX_JSON_DEPTH,
    json_depth,
    load_json,
    read_json_object,
    write_atomic,
)

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "parse_envelope",
    "read_envelope",
    "read_json_object",
    "sign_envelope",
    "unverified_payload",
    "verify_envelope",
    "write_envelope",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The payloadType of in-toto links, layouts and Statements (what ``in-toto-verify`` loads)."""

_REFETCH = "the file is damaged or was altered; fetch or rebuild it again"


def sign_envelope(payload: bytes, payload_type: str, signer: Signer) -> dict[str, Any]:
    """Sign ``payload`` and return the DSSE envelope as a JSON object.

    The signature covers DSSE's pre-authentication encoding of the payload type and the
    payload, so neither can be changed without breaking it.

    Args:
        payload: the exact bytes to sign (for JSON, its canonical form).
        payload_type: the media type of the payload.
        signer: the key that signs (see :func:`bitwright.attest.keys.load_signer`).

    Returns:
        ``{"payload", "payloadType", "signatures"}`` with base64 payload and signature.
    """
    envelope = Envelope(payload=payload, payload_type=payload_type, signatures={})
    envelope.sign(signer)
    data: dict[str, Any] = envelope.to_dict()
    return data


def verify_envelope(
    envelope: dict[str, Any],
    keys: Sequence[Key],
    *,
    threshold: int = 1,
    payload_type: str | None = None,
    source: str = "DSSE envelope",
) -> bytes:
    """Check that ``threshold`` of ``keys`` signed ``envelope``; return its payload.

    Args:
        envelope: the envelope JSON object (as :func:`read_envelope` returns it).
        keys: the trusted public keys; signatures by other keys do not count.
        threshold: how many distinct trusted keys must have signed.
        payload_type: when given, the payloadType the envelope must declare.
        source: what to call the envelope in messages (usually its file).

    Returns:
        The payload bytes, authenticated.

    Raises:
        UsageError: no keys, or fewer keys than ``threshold``.
        VerificationFailed: the envelope is malformed, declares another payload type, or
            too few trusted keys signed it.
    """
    if threshold < 1 or len(keys) < threshold:
        raise UsageError(
            f"cannot verify {source}: {len(keys)} trusted key(s) given, {threshold} needed",
            hint="pass the signer's public key (--key PUB)",
        )
    parsed = _parse(envelope, source)
    if payload_type is not None and parsed.payload_type != payload_type:
        raise VerificationFailed(
            f"{source} has payloadType {parsed.payload_type!r}, expected {payload_type!r}",
            hint="this file holds another kind of attestation; check which file was passed",
        )
    try:
        parsed.verify(list(keys), threshold)
    except VerificationError as exc:
        signed_by = ", ".join(k[:8] for k in parsed.signatures) or "nobody"
        trusted = ", ".join(k.keyid[:8] for k in keys)
        raise VerificationFailed(
            f"{source}: signature check failed: needs {threshold} valid signature(s) by "
            f"trusted keys [{trusted}]; signed by [{signed_by}]",
            hint="the payload was altered after signing, or it was signed by a key you do "
            "not trust; pass the right public key or rebuild",
        ) from exc
    return parsed.payload


def unverified_payload(envelope: dict[str, Any], *, source: str = "DSSE envelope") -> bytes:
    """Return the payload of ``envelope`` WITHOUT checking any signature (for display only).

    Raises:
        VerificationFailed: the envelope is malformed.
    """
    return _parse(envelope, source).payload


def read_envelope(
    path: Path,
    *,
    limit: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    inside: Path | None = None,
) -> dict[str, Any]:
    """Read a DSSE envelope from ``path`` and check its shape (not its signatures).

    Args:
        path: a file holding one DSSE envelope as JSON.
        limit: the largest file accepted, in bytes.
        max_depth: the deepest JSON nesting accepted, in the file and in its payload.
        inside: a directory the file must stay inside (see :func:`read_regular`).

    Returns:
        The envelope JSON object.

    Raises:
        NotRegularFile: not a regular file (a FIFO, a device, a symlink), or outside ``inside``.
        OperationalError: the file is missing, unreadable or larger than ``limit``.
        VerificationFailed: the file is not valid JSON (truncated, corrupted), nested too
            deeply, or not a DSSE envelope.
    """
    data = read_json_object(
        path, "a DSSE envelope", hint=_REFETCH, limit=limit, max_depth=max_depth, inside=inside
    )
    _parse(data, str(path), max_depth)
    return data


def parse_envelope(data: bytes, *, source: str, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Parse the bytes of a DSSE envelope already read (bounded) and check its shape.

    Raises:
        VerificationFailed: not JSON, nested too deeply, or not a DSSE envelope.
    """
    envelope = load_json(
        data, source=source, hint=_REFETCH, what="a DSSE envelope", max_depth=max_depth
    )
    _parse(envelope, source, max_depth)
    if not isinstance(envelope, dict):  # _parse refuses anything else; this narrows the type
        raise VerificationFailed(f"{source} is not a DSSE envelope", hint=_REFETCH)
    return envelope


def write_envelope(envelope: dict[str, Any], path: Path) -> Path:
    """Write ``envelope`` to ``path`` as canonical JSON, atomically; return ``path``.

    Raises:
        OperationalError: the file cannot be written.
    """
    write_atomic(path, canonical_json(envelope))
    return path


def _parse(envelope: dict[str, Any], source: str, max_depth: int = MAX_JSON_DEPTH) -> Envelope:
    """Parse the JSON object into securesystemslib's Envelope, one clear line if malformed."""
    problem = _shape_problem(envelope)
    if problem is None:
        try:
            # from_dict rewrites the signature dicts in place: give it a copy.
            parsed = Envelope.from_dict(copy.deepcopy(envelope))
        except (KeyError, TypeError, ValueError, FormatError, binascii.Error) as exc:
            problem = f"bad payload or signature encoding ({exc})"
        else:
            problem = _payload_problem(parsed, max_depth)
            if problem is None:
                return parsed
    raise VerificationFailed(f"{source} is not a valid DSSE envelope: {problem}", hint=_REFETCH)


def _payload_problem(parsed: Envelope, max_depth: int) -> str | None:
    # Links, layouts and Statements are parsed by recursive JSON parsers: a payload nested
    # thousands deep would crash them, so it is refused here, for every reader at once.
    if parsed.payload_type == INTOTO_PAYLOAD_TYPE:
        depth = json_depth(parsed.payload)
        if depth > max_depth:
            return f"its payload is nested {depth} levels deep, more than the {max_depth} accepted"
    return None


def _shape_problem(envelope: Any) -> str | None:
    if not isinstance(envelope, dict):
        return "not a JSON object"
    for field in ("payload", "payloadType"):
        if not isinstance(envelope.get(field), str):
            return f"{field!r} missing or not a string"
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return "'signatures' missing or empty"
    for sig in signatures:
        if not (
            isinstance(sig, dict)
            and isinstance(sig.get("keyid"), str)
            and isinstance(sig.get("sig"), str)
        ):
            return "a signature lacks a string 'keyid' or 'sig'"
    return None
