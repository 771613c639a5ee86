"""The signer interface: what every way of signing an attestation (key, keyless) provides.

A signer turns payload bytes into a DSSE envelope and says who signed. Backends subclass
:class:`AttestationSigner`; callers (build, release, rebuild) depend on this interface only,
so choosing ``--key`` or keyless signing is one decision at the command line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from bitwright.errors import OperationalError

__all__ = ["AttestationSigner", "SignedAttestation", "SignerError"]


class SignerError(OperationalError):
    """Signing did not produce an attestation (no identity token, service unreachable...)."""


@dataclass(frozen=True)
class SignedAttestation:
    """One signed payload, as a signer produced it.

    Attributes:
        envelope: the DSSE envelope JSON object (``payload``, ``payloadType``,
            ``signatures``); for keyless signing, the envelope inside ``bundle``.
        bundle: the sigstore bundle JSON object (v0.3) for keyless signing, else ``None``.
            It carries the certificate and the transparency log entry a verifier needs;
            write it (``NAME.sigstore.json``) rather than the bare envelope.
        signer_id: who signed: the keyid (64 hex) for a key, the certificate identity
            (the SAN: an email or a workflow URI) for keyless signing.
    """

    envelope: dict[str, Any]
    bundle: dict[str, Any] | None
    signer_id: str


class AttestationSigner(ABC):
    """Signs payloads into DSSE envelopes.

    Attributes:
        kind: ``"key"`` or ``"sigstore"``; the same word
            :class:`bitwright.attest.trust.VerifiedPayload` reports as ``method``.
    """

    kind: ClassVar[str]

    @abstractmethod
    def sign(self, payload: bytes, payload_type: str) -> SignedAttestation:
        """Sign ``payload`` (exact bytes, e.g. canonical JSON) declared as ``payload_type``.

        Args:
            payload: the bytes to sign; the signature covers them and ``payload_type``.
            payload_type: the DSSE payloadType (a media type).

        Returns:
            The envelope (and bundle, for keyless) and the signer's id.

        Raises:
            UsageError: this signer cannot sign that kind of payload.
            SignerError: signing failed (see the backend for when).
        """
