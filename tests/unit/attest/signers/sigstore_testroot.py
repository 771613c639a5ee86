"""A private, offline sigstore instance for tests: own Fulcio-like CA, CT log and Rekor log.

It issues what the public-good instance would: a short-lived leaf certificate with the
identity as SAN, the OIDC issuer extensions (1.3.6.1.4.1.57264.1.1 and .1.8) and an
embedded precertificate SCT signed by the CT log key; a DSSE envelope signed by the leaf
key; and a Rekor v1 ``dsse/0.0.1`` log entry with an inclusion promise (SET) and a Merkle
inclusion proof whose checkpoint is signed by the log key. The real
``sigstore.verify.Verifier`` accepts the bundle against :meth:`PrivateSigstore.trusted_root`,
with no network.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

__all__ = ["CLOSED_URL", "OIDC_ISSUER_OID", "OIDC_ISSUER_V2_OID", "PrivateSigstore", "b64"]

OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_V01 = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
CLIENT_TRUST_CONFIG_V01 = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
SIGNING_CONFIG_V02 = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
# A port nothing listens on: signing against this instance fails fast, even with a network.
CLOSED_URL = "http://127.0.0.1:9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 key id: sha256 over the DER SubjectPublicKeyInfo (what sigstore uses)."""
    return hashlib.sha256(_spki_der(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class PrivateSigstore:
    """One private sigstore instance: its CA, CT log and Rekor log keys."""

    name: str
    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rekor_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    epoch: dt.datetime = field(default_factory=lambda: _now() - dt.timedelta(days=1))

    @cached_property
    def ca_cert(self) -> x509.Certificate:
        return _ca_cert(self)

    def trusted_root(self) -> dict[str, Any]:
        """The ``trusted_root.json`` (v0.1) naming this instance's CA, Rekor and CT log."""
        since = {"start": _iso(self.epoch)}

        def log(url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(_spki_der(key.public_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": since,
                },
                "logId": {"keyId": b64(_key_id(key.public_key()))},
            }

        return {
            "mediaType": TRUSTED_ROOT_V01,
            "tlogs": [log(CLOSED_URL, self.rekor_key)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": self.name, "commonName": f"{self.name} CA"},
                    "uri": CLOSED_URL,
                    "certChain": {
                        "certificates": [
                            {"rawBytes": b64(self.ca_cert.public_bytes(serialization.Encoding.DER))}
                        ]
                    },
                    "validFor": since,
                }
            ],
            "ctlogs": [log(CLOSED_URL, self.ct_key)],
            "timestampAuthorities": [],
        }

    def client_trust_config(self) -> dict[str, Any]:
        """A ``ClientTrustConfig`` (v0.1): the trusted root plus a signing config (closed port)."""

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": _iso(self.epoch)},
                "operator": self.name,
            }

        return {
            "mediaType": CLIENT_TRUST_CONFIG_V01,
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": SIGNING_CONFIG_V02,
                "caUrls": [service(CLOSED_URL)],
                "oidcUrls": [service(CLOSED_URL)],
                "rekorTlogUrls": [service(CLOSED_URL)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
            },
        }

    def sign_dsse(
        self, payload: bytes, payload_type: str, *, identity: str, issuer: str
    ) -> dict[str, Any]:
        """Do what Fulcio + Rekor do for ``sigstore sign``; return the bundle (v0.3) JSON."""
        now = _now()
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _leaf_cert(self, leaf_key, identity=identity, issuer=issuer, now=now)
        signature = _sign(leaf_key, _pae(payload_type, payload))
        envelope = {
            "payload": b64(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": b64(signature)}],
        }
        entry = _log_entry(self, leaf, envelope, integrated=now - dt.timedelta(seconds=5))
        return {
            "mediaType": BUNDLE_V03,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [entry],
            },
            "dsseEnvelope": envelope,
        }


def _pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (
        len(payload_type.encode()),
        payload_type.encode(),
        len(payload),
        payload,
    )


def _ca_cert(instance: PrivateSigstore) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, instance.name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{instance.name} CA"),
        ]
    )
    public = instance.ca_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        # Deterministic from the key so that every call gives the same certificate.
        .serial_number(int.from_bytes(_key_id(public)[:16], "big") >> 1)
        .not_valid_before(instance.epoch)
        .not_valid_after(instance.epoch + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(instance.ca_key, hashes.SHA256())
    )


def _leaf_cert(
    instance: PrivateSigstore,
    leaf_key: ec.EllipticCurvePrivateKey,
    *,
    identity: str,
    issuer: str,
    now: dt.datetime,
) -> x509.Certificate:
    """A Fulcio-style leaf with an embedded precertificate SCT signed by the CT log key."""
    ca = instance.ca_cert
    san: x509.GeneralName = (
        x509.RFC822Name(identity)
        if "@" in identity and ":" not in identity
        else x509.UniformResourceIdentifier(identity)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(minutes=9))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(instance.ca_key.public_key()),
            critical=False,
        )
        # An empty subject requires a critical SAN (RFC 5280 4.2.1.6), as Fulcio does.
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_OID, issuer.encode()), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(OIDC_ISSUER_V2_OID, asn1.encode_der(issuer)),
            critical=False,
        )
    )
    # The SCT signs the TBSCertificate without the SCT extension: build that first, then the
    # same certificate with the SCT list appended last (what removing it gives back).
    precert = builder.sign(instance.ca_key, hashes.SHA256())
    sct = _precert_sct(instance, precert.tbs_certificate_bytes, ca, now)
    sct_list = struct.pack("!H", len(sct)) + sct
    sct_list = struct.pack("!H", len(sct_list)) + sct_list
    leaf = builder.add_extension(
        x509.UnrecognizedExtension(
            ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, _der_octet_string(sct_list)
        ),
        critical=False,
    ).sign(instance.ca_key, hashes.SHA256())
    assert leaf.tbs_precertificate_bytes == precert.tbs_certificate_bytes
    return leaf


def _precert_sct(
    instance: PrivateSigstore, tbs: bytes, issuer: x509.Certificate, now: dt.datetime
) -> bytes:
    """One RFC 6962 SignedCertificateTimestamp (v1, precert entry), TLS-encoded."""
    timestamp_ms = int(now.timestamp()) * 1000
    issuer_key_hash = _key_id(issuer.public_key())  # type: ignore[arg-type]
    signed = (
        struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, precert_entry
        + issuer_key_hash
        + struct.pack("!I", len(tbs))[1:]  # opaque TBSCertificate<1..2^24-1>
        + tbs
        + struct.pack("!H", 0)  # no CtExtensions
    )
    signature = _sign(instance.ct_key, signed)
    return (
        struct.pack("!B", 0)
        + _key_id(instance.ct_key.public_key())
        + struct.pack("!QH", timestamp_ms, 0)
        + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
        + signature
    )


def _der_octet_string(data: bytes) -> bytes:
    length = len(data)
    if length < 0x80:
        return bytes([0x04, length]) + data
    size = (length.bit_length() + 7) // 8
    return bytes([0x04, 0x80 | size]) + length.to_bytes(size, "big") + data


def _log_entry(
    instance: PrivateSigstore,
    leaf: x509.Certificate,
    envelope: dict[str, Any],
    *,
    integrated: dt.datetime,
) -> dict[str, Any]:
    """A Rekor v1 ``dsse/0.0.1`` entry with its SET, inclusion proof and signed checkpoint."""
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
    payload = base64.b64decode(envelope["payload"])
    # Rekor hashes the envelope as it received it; verifiers cannot recompute that hash.
    envelope_hash = hashlib.sha256(rfc8785.dumps(envelope)).hexdigest()
    spec: dict[str, Any] = {
        "envelopeHash": {"algorithm": "sha256", "value": envelope_hash},
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
        "signatures": [{"signature": envelope["signatures"][0]["sig"], "verifier": b64(leaf_pem)}],
    }
    body = rfc8785.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": spec})
    log_id = _key_id(instance.rekor_key.public_key())
    # Our entry sits among others, so the proof has real inner and border hashes.
    leaves = [_leaf_hash(b"other entry %d" % i) for i in range(6)]
    index = 4
    leaves.insert(index, _leaf_hash(body))
    root = _tree_hash(leaves)
    integrated_time = int(integrated.timestamp())
    promise = rfc8785.dumps(
        {
            "body": b64(body),
            "integratedTime": integrated_time,
            "logID": log_id.hex(),
            "logIndex": index,
        }
    )
    note = f"{instance.name} rekor - 1\n{len(leaves)}\n{b64(root)}\n"
    note_sig = b64(log_id[:4] + _sign(instance.rekor_key, note.encode()))
    return {
        "logIndex": str(index),
        "logId": {"keyId": b64(log_id)},
        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
        "integratedTime": str(integrated_time),
        "inclusionPromise": {"signedEntryTimestamp": b64(_sign(instance.rekor_key, promise))},
        "inclusionProof": {
            "logIndex": str(index),
            "rootHash": b64(root),
            "treeSize": str(len(leaves)),
            "hashes": [b64(h) for h in _inclusion_path(index, leaves)],
            "checkpoint": {"envelope": f"{note}\n\u2014 {instance.name}-rekor {note_sig}\n"},
        },
        "canonicalizedBody": b64(body),
    }


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (RFC 6962 2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(_tree_hash(leaves[:k]), _tree_hash(leaves[k:]))


def _inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): the audit path from the leaf up to the root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_inclusion_path(index, leaves[:k]), _tree_hash(leaves[k:])]
    return [*_inclusion_path(index - k, leaves[k:]), _tree_hash(leaves[:k])]
