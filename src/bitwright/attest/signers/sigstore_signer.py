"""Keyless signing with sigstore: an OIDC identity, a short-lived Fulcio certificate, Rekor.

``sign`` gets an identity token (given, or the CI's ambient one), asks Fulcio for a
certificate bound to that identity, signs the in-toto Statement as DSSE with the ephemeral
key and records the signature in Rekor; the result is a sigstore bundle (v0.3). All of that
needs network access to Fulcio and Rekor (and, for the public-good instance, its TUF
repository); constructing a :class:`SigstoreSigner` touches no network.

sigstore-python signs only in-toto Statement v1 payloads this way, so the provenance and
VSAs can be keyless, while in-toto v0.9 links and layouts keep a key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
from sigstore._internal.rekor import RekorClientError
from sigstore._internal.timestamp import TimestampError
from sigstore.dsse import Statement
from sigstore.errors import Error as SigstoreError
from sigstore.models import ClientTrustConfig
from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken, detect_credential
from sigstore.sign import SigningContext

from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE
from bitwright.attest.signers._sigstore_common import (
    certificate_identity,
    first_line,
    load_client_trust_config,
    public_good_trust_config,
)
from bitwright.attest.signers.interface import AttestationSigner, SignedAttestation, SignerError
from bitwright.errors import OperationalError, UsageError

__all__ = ["SigstoreSigner"]

_OFFLINE_HINT = (
    "keyless signing needs network access to Fulcio and Rekor and a valid OIDC identity "
    "token; offline, sign with a key (--key)"
)
# Besides its own Error, sigstore-python raises plain exceptions (some from its _internal
# modules) when Fulcio, Rekor or a TSA answers badly or a certificate/token expires mid-way.
_SIGNING_FAILURES = (
    SigstoreError,
    OSError,  # requests' ConnectionError/Timeout are OSErrors
    FulcioClientError,
    RekorClientError,
    TimestampError,
    ExpiredIdentity,
    ExpiredCertificate,
)


class SigstoreSigner(AttestationSigner):
    """Signs in-toto Statements keyless with sigstore (Fulcio certificate, Rekor entry).

    Args:
        identity_token: an OIDC identity token (JWT, audience ``sigstore``), as
            ``--identity-token`` passes it; ``None``: detect the CI's ambient credential
            (GitHub Actions with ``id-token: write``, GitLab, Buildkite, CircleCI, GCP) when
            signing.
        trust_config: a sigstore ``ClientTrustConfig`` JSON (a private instance); ``None``:
            the public-good instance (fetched from its TUF repository when signing).

    Raises:
        OperationalError: ``trust_config`` is missing or unreadable.
        UsageError: ``trust_config`` is not a ClientTrustConfig.
    """

    kind: ClassVar[str] = "sigstore"

    def __init__(self, identity_token: str | None = None, *, trust_config: Path | None = None):
        self._raw_token = identity_token
        # A local file is read now, so a bad path fails before a long build; nothing remote.
        self._trust_config: ClientTrustConfig | None = (
            load_client_trust_config(trust_config) if trust_config is not None else None
        )

    def sign(self, payload: bytes, payload_type: str) -> SignedAttestation:
        """Sign an in-toto Statement v1 keyless; return the bundle and its DSSE envelope.

        Args:
            payload: the Statement's exact bytes (canonical JSON); they are signed as is.
            payload_type: must be ``application/vnd.in-toto+json``.

        Returns:
            The DSSE envelope inside the bundle, the bundle (v0.3) and the certificate's
            identity as ``signer_id``.

        Raises:
            UsageError: the payload is not an in-toto Statement v1.
            SignerError: no identity token, an invalid or expired one, or Fulcio, Rekor or
                the TUF repository cannot be reached or refuse.
        """
        statement = _statement(payload, payload_type)
        token = self._identity_token()
        config = self._trust_config or _public_good()
        try:
            context = SigningContext.from_trust_config(config)
            with context.signer(token) as signer:
                bundle = signer.sign_dsse(statement)
        except _SIGNING_FAILURES as exc:
            raise SignerError(
                f"keyless signing as {token.identity!r} failed: {_why(exc)}", hint=_OFFLINE_HINT
            ) from exc
        bundle_json: dict[str, Any] = json.loads(bundle.to_json())
        return SignedAttestation(
            envelope=bundle_json["dsseEnvelope"],
            bundle=bundle_json,
            signer_id=certificate_identity(bundle.signing_certificate),
        )

    def _identity_token(self) -> IdentityToken:
        raw = self._raw_token
        if raw is None:
            try:
                raw = detect_credential()
            except IdentityError as exc:
                raise SignerError(
                    f"cannot get the CI's ambient OIDC identity token: {first_line(exc)}",
                    hint="on GitHub Actions grant 'permissions: id-token: write'; or pass "
                    "--identity-token",
                ) from exc
            if raw is None:
                raise SignerError(
                    "keyless signing needs an OIDC identity token and none was found",
                    hint="pass --identity-token TOKEN, run in CI with OIDC enabled, or sign "
                    "with a key (--key)",
                )
        try:
            return IdentityToken(raw)
        except IdentityError as exc:
            raise SignerError(
                f"the OIDC identity token is unusable: {first_line(exc)}",
                hint="get a fresh token for audience 'sigstore' (tokens live minutes)",
            ) from exc


def _statement(payload: bytes, payload_type: str) -> Statement:
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise UsageError(
            f"keyless signing takes payloadType {INTOTO_PAYLOAD_TYPE!r}, not {payload_type!r}",
            hint="sign this attestation with a key (--key)",
        )
    try:
        return Statement(payload)
    except SigstoreError as exc:
        raise UsageError(
            "keyless signing takes only in-toto Statement v1 payloads "
            f"(_type https://in-toto.io/Statement/v1): {first_line(exc)}",
            hint="in-toto v0.9 links and layouts are signed with a key (--key)",
        ) from exc


def _public_good() -> ClientTrustConfig:
    try:
        return public_good_trust_config()
    except OperationalError as exc:
        raise SignerError(
            exc.message,
            hint="keyless signing with the public-good instance needs network access to its "
            "TUF repository, Fulcio and Rekor; offline, sign with a key (--key)",
        ) from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        # requests' errors carry the request, so the message names the service that failed.
        url = getattr(getattr(exc, "request", None), "url", None) or "a sigstore service"
        return f"cannot reach {url} ({type(exc).__name__})"
    if isinstance(exc, FulcioClientError):
        return f"Fulcio refused the certificate request ({first_line(exc)})"
    if isinstance(exc, RekorClientError):
        return f"Rekor refused the entry ({first_line(exc)})"
    if isinstance(exc, ExpiredIdentity | ExpiredCertificate):
        return "the identity token or certificate expired"
    return first_line(exc)
