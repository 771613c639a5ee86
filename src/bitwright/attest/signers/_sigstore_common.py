"""What keyless signing and keyless verification share: sigstore trust material, cert identities.

A sigstore instance is described by a ``ClientTrustConfig`` JSON (its trusted root: the
Fulcio CA, the Rekor and CT log keys; and its signing config: the service URLs). Verification
needs only the trusted root, so a bare ``trusted_root.json`` is accepted there too. Without a
file, the public-good instance's material comes from its TUF repository, which needs network.

sigstore is imported inside the functions that load trust material: it takes a quarter of a
second, and a verifier that trusts only keys never needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from bitwright.errors import OperationalError, UsageError
from bitwright.fileio import loads_strict, read_regular

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig, TrustedRoot

__all__ = [
    "CLIENT_TRUST_CONFIG_MEDIA_TYPE",
    "OIDC_ISSUER_OID",
    "TRUSTED_ROOT_MEDIA_TYPE",
    "certificate_identity",
    "certificate_issuer",
    "first_line",
    "load_client_trust_config",
    "load_trusted_root",
    "public_good_trust_config",
]

CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
"""Fulcio's OIDC issuer extension (raw string), what ``sigstore.verify.policy.Identity`` checks."""

_OTHERNAME_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


def load_client_trust_config(path: Path) -> ClientTrustConfig:
    """Load a sigstore ``ClientTrustConfig`` (trusted root and signing config) from ``path``.

    Raises:
        OperationalError: the file is missing or unreadable.
        UsageError: the file is not a ClientTrustConfig v0.1.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig
    from sigstore_models.trustroot import v1 as trustroot_v1

    data = _read_json(path)
    if data.get("mediaType") != CLIENT_TRUST_CONFIG_MEDIA_TYPE:
        raise UsageError(
            f"{path} is not a sigstore ClientTrustConfig (mediaType {data.get('mediaType')!r})",
            hint=f"signing needs mediaType {CLIENT_TRUST_CONFIG_MEDIA_TYPE!r} with a "
            "trustedRoot and a signingConfig",
        )
    try:
        return ClientTrustConfig(trustroot_v1.ClientTrustConfig.from_json(json.dumps(data)))
    except (ValueError, SigstoreError) as exc:
        raise UsageError(
            f"{path} is not a valid sigstore ClientTrustConfig: {first_line(exc)}",
            hint="regenerate it from your sigstore instance's trusted_root.json and "
            "signing_config.json",
        ) from exc


def load_trusted_root(path: Path | None) -> TrustedRoot:
    """Load the trusted root from ``path`` (ClientTrustConfig or trusted_root.json).

    Args:
        path: a local file: read offline. ``None``: the public-good instance's trusted root,
            refreshed from its TUF repository (needs network).

    Raises:
        OperationalError: the file is missing or unreadable, or the public-good trusted
            root cannot be fetched.
        UsageError: the file is neither a ClientTrustConfig v0.1 nor a trusted root v0.1.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    if path is None:
        return public_good_trust_config().trusted_root
    data = _read_json(path)
    media_type = data.get("mediaType")
    try:
        if media_type == CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            inner = trustroot_v1.ClientTrustConfig.from_json(json.dumps(data))
            root = TrustedRoot(inner.trusted_root)
        elif media_type == TRUSTED_ROOT_MEDIA_TYPE:
            root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(json.dumps(data)))
        else:
            raise UsageError(
                f"{path} is not a sigstore trust config (mediaType {media_type!r})",
                hint=f"pass a ClientTrustConfig ({CLIENT_TRUST_CONFIG_MEDIA_TYPE!r}) or a "
                f"trusted_root.json ({TRUSTED_ROOT_MEDIA_TYPE!r})",
            )
        if not root._inner.tlogs:  # the Verifier refuses a root without a transparency log
            raise UsageError(
                f"{path} names no transparency log (tlogs is empty)",
                hint="a keyless bundle is only checked against a Rekor log key; add the log",
            )
    except (ValueError, SigstoreError) as exc:
        raise UsageError(
            f"{path} is not a valid sigstore trust config: {first_line(exc)}",
            hint="fetch your sigstore instance's trusted_root.json again",
        ) from exc
    return root


def public_good_trust_config() -> ClientTrustConfig:
    """The public-good sigstore instance's trust config, refreshed from its TUF repository.

    Raises:
        OperationalError: the TUF repository cannot be reached or does not verify.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    try:
        return ClientTrustConfig.production()
    except (SigstoreError, OSError) as exc:
        raise OperationalError(
            f"cannot fetch the sigstore public-good trust root (TUF): {first_line(exc)}",
            hint="this needs network access to tuf-repo-cdn.sigstore.dev; offline, pass a "
            "local trust config (trust_config in the trust file)",
        ) from exc


def certificate_identity(cert: x509.Certificate) -> str:
    """Return the identity a Fulcio certificate was issued to: its first SAN (URI/email/other).

    Returns ``"<no identity>"`` when the certificate has no SAN that sigstore recognizes.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "<no identity>"
    names: list[str] = [
        *san.get_values_for_type(x509.UniformResourceIdentifier),
        *san.get_values_for_type(x509.RFC822Name),
        *(
            other.value.decode(errors="replace")
            for other in san.get_values_for_type(x509.OtherName)
            if other.type_id == _OTHERNAME_OID
        ),
    ]
    return names[0] if names else "<no identity>"


def certificate_issuer(cert: x509.Certificate) -> str:
    """Return the OIDC issuer recorded in a Fulcio certificate, or ``"<no issuer>"``."""
    try:
        ext = cert.extensions.get_extension_for_oid(OIDC_ISSUER_OID).value
    except x509.ExtensionNotFound:
        return "<no issuer>"
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    return raw.decode(errors="replace") or "<no issuer>"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_MAX_TRUST_CONFIG = 16 << 20
"""The largest sigstore trust config read (a trusted_root.json is some kilobytes)."""


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise OperationalError(
            f"sigstore trust config {path} not found",
            hint="check the trust_config path (relative paths count from the trust file)",
        )
    # a regular file of bounded size and depth: a FIFO cannot hang the reader
    raw = read_regular(path.resolve(), limit=_MAX_TRUST_CONFIG)
    try:
        data = loads_strict(raw)
    except ValueError as exc:
        raise UsageError(
            f"sigstore trust config {path} is not valid JSON ({first_line(exc)})",
            hint="fetch your sigstore instance's trusted_root.json again",
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(
            f"sigstore trust config {path} is not a JSON object",
            hint="fetch your sigstore instance's trusted_root.json again",
        )
    return data
