"""Signers of attestations behind one interface: a local key, or sigstore keyless.

::

    interface.AttestationSigner.sign(payload, payload_type) -> SignedAttestation
    key_signer.KeySigner          a private key on disk; offline; DSSE envelope
    sigstore_signer.SigstoreSigner  OIDC identity -> Fulcio certificate -> Rekor; bundle

Verification of what they produce lives in :mod:`bitwright.attest.trust`.
"""

from bitwright.attest.signers.interface import AttestationSigner, SignedAttestation, SignerError
from bitwright.attest.signers.key_signer import KeySigner

__all__ = ["AttestationSigner", "KeySigner", "SignedAttestation", "SignerError", "SigstoreSigner"]


def __getattr__(name: str) -> object:
    # sigstore takes half a second to import; only keyless signing needs it
    if name == "SigstoreSigner":
        from bitwright.attest.signers.sigstore_signer import SigstoreSigner

        return SigstoreSigner
    raise AttributeError(name)
