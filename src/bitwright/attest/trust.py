"""Whom a verifier trusts, and checking an attestation against that: keys or keyless identities.

A verifier trusts only what it is given, never keys or certificates that travel with what it
checks. Trust comes from a small trust file (TOML or JSON)::

    keys = ["keys/owner.pub"]                  # SubjectPublicKeyInfo PEM files
    trust_config = "sigstore/trust_config.json"  # optional: a private sigstore instance
    [[identities]]                             # keyless signers: certificate SAN + OIDC issuer
    identity = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"
    issuer = "https://token.actions.githubusercontent.com"

Relative paths count from the trust file's directory. A DSSE envelope verifies when a
trusted key signed it; a sigstore bundle verifies when the real sigstore ``Verifier`` accepts
it against the trusted root (certificate chain, SCT, transparency log inclusion proof and
promise) for one of the trusted (identity, issuer) pairs. With ``trust_config`` that is fully
offline; without it, the public-good trusted root is fetched from its TUF repository.

sigstore is imported only to check a bundle or load a trust config: it takes a quarter of a
second, and verifying with keys alone never needs it.
"""

from __future__ import annotations

import base64
import binascii
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.x509 import Certificate, ExtensionNotFound

from bitwright.attest.dsse import verify_envelope
from bitwright.attest.keys import SSlibKey, load_public_key
from bitwright.attest.signers._sigstore_common import (
    certificate_identity,
    certificate_issuer,
    first_line,
    load_trusted_root,
)
from bitwright.errors import OperationalError, UsageError, VerificationFailed
from bitwright.fileio import loads_strict, read_regular

__all__ = [
    "SigstoreIdentity",
    "TrustPolicy",
    "VerifiedPayload",
    "load_trust_file",
    "verify_attestation",
]

_TRUST_FILE_FIELDS = ("keys", "identities", "trust_config")
_REFETCH = "the file is damaged or was altered; fetch or rebuild it again"


@dataclass(frozen=True)
class SigstoreIdentity:
    """A keyless signer a verifier trusts: the certificate identity and its OIDC issuer.

    Attributes:
        identity: the certificate SAN, e.g. ``alice@example.org`` or a workflow URI
            ``https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main``.
        issuer: the OIDC issuer that vouched for it, e.g.
            ``https://token.actions.githubusercontent.com``; required, since any issuer
            could otherwise claim the identity.
    """

    identity: str
    issuer: str


@dataclass(frozen=True)
class TrustPolicy:
    """What a verifier trusts.

    Attributes:
        keys: trusted public keys (DSSE envelopes signed with a key).
        identities: trusted keyless signers (sigstore bundles).
        trust_config: a sigstore ClientTrustConfig or trusted_root.json, read offline;
            ``None``: the public-good instance (its TUF repository, needs network).
    """

    keys: tuple[SSlibKey, ...] = ()
    identities: tuple[SigstoreIdentity, ...] = ()
    trust_config: Path | None = None


@dataclass(frozen=True)
class VerifiedPayload:
    """An authenticated payload and who signed it.

    Attributes:
        payload: the signed bytes.
        payload_type: the DSSE payloadType, as signed.
        signer_id: the keyid of the trusted key, or the trusted identity (SAN).
        method: ``"key"`` or ``"sigstore"``.
    """

    payload: bytes
    payload_type: str
    signer_id: str
    method: str


def load_trust_file(path: Path) -> TrustPolicy:
    """Read a trust file (``.json``: JSON, otherwise TOML) and load the keys it names.

    Args:
        path: the trust file; relative paths in it count from its directory.

    Returns:
        The policy with the public keys loaded and the trust config path resolved.

    Raises:
        OperationalError: the file, a key or the trust config is missing or unreadable.
        KeyProblem: a key file is not a usable public key.
        UsageError: the file is malformed, has unknown fields, trusts nobody, or its trust
            config is not a sigstore trust config.
    """
    data = _read_trust_file(path)
    unknown = sorted(set(data) - set(_TRUST_FILE_FIELDS))
    if unknown:
        raise UsageError(
            f"trust file {path}: unknown field(s) {', '.join(unknown)}",
            hint=f"a trust file has only {', '.join(_TRUST_FILE_FIELDS)}",
        )
    base = path.parent
    key_paths = _string_list(data.get("keys", []), path, "keys")
    keys = tuple(load_public_key(base / p) for p in key_paths)
    identities = tuple(
        _identity(entry, path, i) for i, entry in enumerate(_list(data, "identities", path))
    )
    trust_config: Path | None = None
    if "trust_config" in data:
        if not isinstance(data["trust_config"], str) or not data["trust_config"]:
            raise UsageError(
                f"trust file {path}: trust_config must be a path",
                hint='write trust_config = "sigstore/trust_config.json"',
            )
        trust_config = base / data["trust_config"]
        load_trusted_root(trust_config)  # fail now, with the file named, not mid-verification
    if not keys and not identities:
        raise UsageError(
            f"trust file {path} trusts nobody: no keys and no identities",
            hint="list public key files under keys, or keyless signers under [[identities]]",
        )
    return TrustPolicy(keys=keys, identities=identities, trust_config=trust_config)


def verify_attestation(
    *,
    envelope: dict[str, Any] | None,
    bundle: dict[str, Any] | None,
    policy: TrustPolicy,
    expected_payload_type: str,
    source: str = "attestation",
) -> VerifiedPayload:
    """Check that a trusted signer signed the attestation; return its payload.

    A sigstore ``bundle`` is checked keyless (its DSSE envelope inside); a bare
    ``envelope`` is checked against the trusted keys. When both are given, the envelope
    must be the bundle's.

    Args:
        envelope: a DSSE envelope JSON object, or ``None``.
        bundle: a sigstore bundle JSON object, or ``None``.
        policy: whom to trust.
        expected_payload_type: the payloadType the attestation must declare.
        source: what to call the attestation in messages (usually its file).

    Returns:
        The authenticated payload, its type, the signer and the method.

    Raises:
        UsageError: nothing to verify, or the policy has no key / identity for it.
        OperationalError: the trust config cannot be read or the public-good trusted root
            cannot be fetched.
        VerificationFailed: a malformed attestation, a signature, certificate, log entry or
            identity that does not hold, or another payloadType.
    """
    if bundle is not None:
        verified = _verify_keyless(bundle, policy, source)
        if envelope is not None:
            _same_envelope(envelope, bundle, source)
    elif envelope is not None:
        verified = _verify_keyed(envelope, policy, source)
    else:
        raise UsageError(
            f"nothing to verify for {source}: neither a DSSE envelope nor a sigstore bundle",
            hint="pass the attestation file",
        )
    if verified.payload_type != expected_payload_type:
        raise VerificationFailed(
            f"{source} has payloadType {verified.payload_type!r}, "
            f"expected {expected_payload_type!r}",
            hint="this file holds another kind of attestation; check which file was passed",
        )
    return verified


def _verify_keyed(envelope: dict[str, Any], policy: TrustPolicy, source: str) -> VerifiedPayload:
    payload = verify_envelope(envelope, policy.keys, source=source)
    # Which trusted key signed: the first one that verifies alone (keyids are only hints).
    signer_id = ""
    for key in policy.keys:
        try:
            verify_envelope(envelope, [key], source=source)
        except VerificationFailed:
            continue
        signer_id = key.keyid
        break
    return VerifiedPayload(
        payload=payload,
        payload_type=str(envelope["payloadType"]),
        signer_id=signer_id,
        method="key",
    )


def _verify_keyless(
    bundle_json: dict[str, Any], policy: TrustPolicy, source: str
) -> VerifiedPayload:
    if not policy.identities:
        raise UsageError(
            f"cannot verify {source}: it is signed keyless (sigstore bundle) and no trusted "
            "identity is given",
            hint="add the signer's identity and OIDC issuer under [[identities]] in the trust file",
        )
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    try:
        bundle = Bundle.from_json(json.dumps(bundle_json))
    except (SigstoreError, ValueError) as exc:
        raise VerificationFailed(
            f"{source} is not a valid sigstore bundle: {first_line(exc)}", hint=_REFETCH
        ) from exc
    trusted_root = load_trusted_root(policy.trust_config)
    try:
        verifier = Verifier(trusted_root=trusted_root)
    except SigstoreError as exc:
        raise OperationalError(
            f"cannot use the sigstore trusted root: {first_line(exc)}",
            hint="check trust_config in the trust file",
        ) from exc
    identities = _TrustedIdentities(policy.identities)
    try:
        payload_type, payload = verifier.verify_dsse(bundle, identities)
    except (SigstoreError, ValueError, TypeError, ExtensionNotFound) as exc:
        cert = bundle.signing_certificate
        raise VerificationFailed(
            f"{source}: keyless signature check failed (signed as {certificate_identity(cert)!r}"
            f", issuer {certificate_issuer(cert)!r}): {_reason(exc)}",
            hint="the bundle was altered, was signed by an identity you do not trust, or "
            "comes from a sigstore instance your trust config does not name",
        ) from exc
    return VerifiedPayload(
        payload=payload,
        payload_type=payload_type,
        signer_id=identities.matched or certificate_identity(bundle.signing_certificate),
        method="sigstore",
    )


def _reason(exc: BaseException) -> str:
    from sigstore.errors import CertValidationError

    if isinstance(exc, CertValidationError):
        return f"the certificate does not chain to a trusted CA at signing time ({first_line(exc)})"
    return first_line(exc)


class _TrustedIdentities:
    """A sigstore verification policy: any trusted (identity, issuer); remembers which."""

    def __init__(self, identities: tuple[SigstoreIdentity, ...]) -> None:
        self._identities = identities
        self.matched: str | None = None

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError
        from sigstore.verify.policy import Identity

        for trusted in self._identities:
            try:
                Identity(identity=trusted.identity, issuer=trusted.issuer).verify(cert)
            except (VerificationError, ExtensionNotFound):
                continue
            self.matched = trusted.identity
            return
        trusted_list = ", ".join(f"{i.identity} ({i.issuer})" for i in self._identities)
        raise VerificationError(f"the signer is not a trusted identity; trusted: {trusted_list}")


def _same_envelope(envelope: dict[str, Any], bundle: dict[str, Any], source: str) -> None:
    # A keyless envelope has no keyids, so it is compared as data, not parsed as a keyed one.
    inner = bundle.get("dsseEnvelope")
    if not isinstance(inner, dict) or _envelope_parts(envelope) != _envelope_parts(inner):
        raise VerificationFailed(
            f"{source}: the DSSE envelope differs from the one in its sigstore bundle",
            hint="the envelope was altered; verify the bundle (.sigstore.json) alone",
        )


def _envelope_parts(envelope: dict[str, Any]) -> tuple[Any, ...]:
    try:
        payload: bytes | None = base64.b64decode(envelope.get("payload", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        payload = None
    sigs = envelope.get("signatures")
    sig_values = (
        [s.get("sig") for s in sigs if isinstance(s, dict)] if isinstance(sigs, list) else None
    )
    return payload, envelope.get("payloadType"), sig_values


_MAX_TRUST_FILE = 1 << 20
"""The largest trust file read: a list of keys and identities, never megabytes."""


def _read_trust_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise OperationalError(
            f"trust file {path} not found", hint="check the path given with --trust"
        )
    try:  # a regular file of bounded size (a FIFO cannot hang the reader), symlinks resolved
        text = read_regular(path.resolve(), limit=_MAX_TRUST_FILE).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OperationalError(
            f"cannot read trust file {path}: {first_line(exc)}",
            hint="save it as UTF-8",
        ) from exc
    try:
        data = loads_strict(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise UsageError(
            f"trust file {path} is not valid {kind}: {first_line(exc)}",
            hint="fix the syntax (a .json file is read as JSON, anything else as TOML)",
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(
            f"trust file {path} is not a table/object", hint="see the trust file format"
        )
    return data


def _list(data: dict[str, Any], field: str, path: Path) -> list[Any]:
    value = data.get(field, [])
    if not isinstance(value, list):
        raise UsageError(
            f"trust file {path}: {field} must be a list", hint=f"write {field} = [...]"
        )
    return value


def _string_list(value: Any, path: Path, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(
            f"trust file {path}: {field} must be a list of file paths",
            hint=f'write {field} = ["keys/owner.pub"]',
        )
    return value


def _identity(entry: Any, path: Path, index: int) -> SigstoreIdentity:
    if (
        not isinstance(entry, dict)
        or set(entry) != {"identity", "issuer"}
        or not all(isinstance(v, str) and v for v in entry.values())
    ):
        raise UsageError(
            f"trust file {path}: identities[{index}] must have exactly a non-empty "
            "identity and issuer",
            hint='write [[identities]] identity = "..." issuer = "https://..."',
        )
    return SigstoreIdentity(identity=entry["identity"], issuer=entry["issuer"])
