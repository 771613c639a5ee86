"""Signing with a local private key: a DSSE envelope whose signature names the key's id."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from bitwright.attest.dsse import sign_envelope
from bitwright.attest.keys import Signer, load_signer
from bitwright.attest.signers.interface import AttestationSigner, SignedAttestation

__all__ = ["KeySigner"]


class KeySigner(AttestationSigner):
    """Signs with a private key (ECDSA P-256 or ed25519), offline.

    Args:
        signer: a securesystemslib signer, e.g. from :func:`bitwright.attest.keys.load_signer`.
    """

    kind: ClassVar[str] = "key"

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    @classmethod
    def from_file(cls, private_key: Path) -> KeySigner:
        """Load the signing key from a PEM file (as ``bitwright keygen`` writes it).

        Raises:
            KeyProblem: the key is missing, unreadable, encrypted or of an unsupported type.
        """
        return cls(load_signer(private_key))

    @property
    def keyid(self) -> str:
        """The signing key's id (64 hex), as ``in-toto-verify`` computes it."""
        return str(self._signer.public_key.keyid)

    def sign(self, payload: bytes, payload_type: str) -> SignedAttestation:
        """Sign ``payload`` into a DSSE envelope with the key; never touches the network.

        Args:
            payload: the exact bytes to sign.
            payload_type: the DSSE payloadType.

        Returns:
            The envelope, no bundle, and the keyid as ``signer_id``.
        """
        envelope = sign_envelope(payload, payload_type, self._signer)
        return SignedAttestation(envelope=envelope, bundle=None, signer_id=self.keyid)
