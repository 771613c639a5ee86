"""The OpenSSF model signature (``model.sig``): sign a model directory, check a signature.

The format is OpenSSF model-signing's v1.0 signature made with an elliptic-curve key, which
``model_signing verify key`` checks::

    model_signing verify key RELEASE/artifacts --signature RELEASE/model.sig --public_key KEY.pub

(model_signing spells the flag ``--public_key``.) The file is a sigstore bundle (v0.3, no
transparency log entry) whose ``publicKey.hint`` is the sha256 of the signer's PEM public
key and whose DSSE envelope carries an in-toto Statement v1 with predicate
``https://model_signing/signature/v1.0``: one resource (path, sha256) per file of the model
directory, sorted by path; one subject, the model directory's name with the sha256 over the
resources' digests in that order; and the serialization settings (whole files, sha256, no
symlinks, the ignored paths).

Both directions are written here with ``cryptography`` alone, from digests bitwright already
has (:mod:`bitwright.digest`): signing needs no second read of the files, and checking a
release imports neither model-signing nor the sigstore client it loads (half a second). A
test runs the real ``model_signing`` CLI against what :func:`sign_model` writes.

Keys: ECDSA on P-256, P-384 or P-521 (hashed with SHA-256, -384, -512), the keys
model-signing 1.1 takes; any other key is refused with the reason. Every read is bounded
(:func:`bitwright.fileio.read_regular`) and every parse depth-checked: a signature is hostile
until it verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bitwright.attest.canonical import canonical_json
from bitwright.attest.keys import load_public_key, load_signer
from bitwright.digest import sha256_file
from bitwright.errors import KeyProblem, OperationalError, UsageError, VerificationFailed
from bitwright.fileio import (
    MAX_DOCUMENT_BYTES,
    MAX_JSON_DEPTH,
    load_json,
    read_regular,
    write_atomic,
)

__all__ = [
    "MODEL_SIGNATURE_FILE",
    "check_model_bundle",
    "ec_public_key",
    "sign_model",
    "verify_model",
]

MODEL_SIGNATURE_FILE = "model.sig"
"""The file name of the model signature in a release (beside ``artifacts/``)."""

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_PAYLOAD_TYPE = "application/vnd.in-toto+json"
# model_signing leaves these out of every signature and every check, at the model's top.
_GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    256: hashes.SHA256,
    384: hashes.SHA384,
    521: hashes.SHA512,
}
_KEY_HINT = (
    "OpenSSF model-signing 1.1 signs with ECDSA keys only (P-256, P-384, P-521); create one "
    "with 'bitwright keygen' (ECDSA P-256)"
)
_BUNDLE = "a valid model-signing bundle"
_DAMAGED = "the signature was truncated or altered; take it from the release again"


@dataclass(frozen=True)
class _Signed:
    """What a verified signature says: the signed file digests and the paths it ignores."""

    resources: dict[str, str]
    ignored: tuple[str, ...]


def ec_public_key(pem: bytes, source: str) -> ec.EllipticCurvePublicKey:
    """Load a PEM public key that model-signing can use (ECDSA on P-256/384/521).

    Raises:
        KeyProblem: not a PEM public key, or another type or curve.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(f"{source} is not a PEM public key ({exc})", hint=_KEY_HINT) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.key_size not in _HASHES:
        raise KeyProblem(
            f"key {source} is not an ECDSA P-256/384/521 key; model-signing cannot use it",
            hint=_KEY_HINT,
        )
    return key


def sign_model(
    artifacts_dir: Path,
    private_key: Path,
    out: Path,
    *,
    ignore: Sequence[str] = (),
    digests: Mapping[str, str] | None = None,
) -> Path:
    """Sign every file of ``artifacts_dir`` and write the signature to ``out``.

    Args:
        artifacts_dir: the model directory (a release's ``artifacts/``).
        private_key: an unencrypted PEM ECDSA private key (``bitwright keygen``).
        out: the signature file (``model.sig``), written atomically; outside the model
            directory, or left out of the signature when inside it.
        ignore: paths relative to ``artifacts_dir`` to leave unsigned (recorded in the
            signature, so a verifier skips them too).
        digests: sha256 of files of ``artifacts_dir`` already known (relative path ->
            digest), used instead of reading those files again; only pass digests of the
            very files being signed.

    Returns:
        ``out``.

    Raises:
        OperationalError: ``artifacts_dir`` is not a directory, or holds something other
            than regular files (a symlink, a FIFO), or a file cannot be read.
        KeyProblem: the key is missing, unreadable, encrypted or not an ECDSA key.
        UsageError: an ``ignore`` path is absolute or leaves ``artifacts_dir``.
    """
    _require_dir(artifacts_dir)
    private = _ec_private_key(private_key)
    ignored = _ignored_paths(artifacts_dir, out, ignore)
    files = _model_digests(artifacts_dir, ignored, digests, action="sign")
    payload = _statement(artifacts_dir.name, files, ignored)
    curve_hash = _HASHES[private.curve.key_size]()
    signature = private.sign(_pae(payload), ec.ECDSA(curve_hash))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": _key_hint(private.public_key())},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": _PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    write_atomic(out, canonical_json(bundle))
    return out


def verify_model(
    artifacts_dir: Path,
    signature: Path,
    public_key: Path,
    *,
    ignore: Sequence[str] = (),
    digests: Mapping[str, str] | None = None,
) -> None:
    """Check that ``signature`` was made with ``public_key``'s key over ``artifacts_dir`` as is.

    Every file must match its signed digest, and no file may be missing or added (paths
    the signature itself lists as ignored, and ``ignore``, excepted).

    Args:
        artifacts_dir: the model directory (a release's ``artifacts/``).
        signature: the signature file (``model.sig``).
        public_key: the signer's PEM public key; trust only a key you were given.
        ignore: more paths relative to ``artifacts_dir`` to skip.
        digests: sha256 of files of ``artifacts_dir`` the caller hashed already (relative
            path -> digest); those files are not read again, the rest are.

    Raises:
        VerificationFailed: a file differs, is missing or was added; the signature was made
            with another key or altered; or it is not a model-signing bundle.
        OperationalError: ``artifacts_dir`` or ``signature`` is missing or unreadable.
        KeyProblem: the public key is missing, unreadable or not an ECDSA key.
        UsageError: an ``ignore`` path is absolute or leaves ``artifacts_dir``.
    """
    _require_dir(artifacts_dir)
    if not signature.is_file() and not signature.is_symlink():
        raise OperationalError(
            f"model signature {signature} not found",
            hint=f"a release carries {MODEL_SIGNATURE_FILE} beside artifacts/; "
            "sign with 'bitwright release'",
        )
    loaded = load_public_key(public_key)  # a missing or foreign key is named with advice
    if loaded.keytype != "ecdsa":
        raise KeyProblem(
            f"key {public_key} is a {loaded.keytype} key ({loaded.scheme}); model-signing "
            "cannot use it",
            hint=_KEY_HINT,
        )
    key = ec_public_key(read_regular(public_key, limit=1 << 16), str(public_key))
    extra = _ignored_paths(artifacts_dir, signature, ignore)
    signed = _verified(read_regular(signature), key, str(signature), str(public_key))
    ignored = (*signed.ignored, *extra)
    files = _model_digests(artifacts_dir, ignored, digests, action="check")
    _compare(files, signed, ignored, artifacts_dir, signature.name)


def check_model_bundle(
    data: bytes,
    public_pem: bytes,
    digests: Mapping[str, str],
    *,
    source: str,
    key_name: str,
    max_depth: int = MAX_JSON_DEPTH,
) -> None:
    """Check the bytes of a model signature against a key and the model's file digests.

    Args:
        data: the bytes of ``model.sig`` (read bounded by the caller).
        public_pem: the trusted PEM public key.
        digests: every file of the model directory (relative path -> sha256), freshly
            hashed by the caller.
        source: what to call the signature in messages.
        key_name: what to call the key in messages.
        max_depth: the deepest JSON nesting accepted.

    Raises:
        VerificationFailed: not made with this key, altered, malformed, or the digests
            are not the signed ones.
        KeyProblem: ``public_pem`` is not an ECDSA key model-signing can use.
    """
    key = ec_public_key(public_pem, key_name)
    signed = _verified(data, key, source, key_name, max_depth=max_depth)
    kept = {n: d for n, d in digests.items() if not _is_ignored(n, signed.ignored)}
    _compare(kept, signed, signed.ignored, Path("artifacts"), source)


def _verified(
    data: bytes,
    key: ec.EllipticCurvePublicKey,
    source: str,
    key_name: str,
    *,
    max_depth: int = MAX_JSON_DEPTH,
) -> _Signed:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise VerificationFailed(f"{source} is larger than a model signature can be", hint=_DAMAGED)
    document = load_json(data, source=source, hint=_DAMAGED, what=_BUNDLE, max_depth=max_depth)
    bundle = _object(document, source)
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise _malformed(source, f"mediaType is {str(bundle.get('mediaType'))[:80]!r}")
    hint = _object(_object(bundle.get("verificationMaterial"), source).get("publicKey"), source)
    if hint.get("hint") != _key_hint(key):
        raise VerificationFailed(
            f"model signature {source} was made with another key than {key_name}",
            hint="pass the public key of the release's owner (--key)",
        )
    envelope = _object(bundle.get("dsseEnvelope"), source)
    payload, sig = _envelope_parts(envelope, source)
    try:
        key.verify(sig, _pae(payload), ec.ECDSA(_HASHES[key.curve.key_size]()))
    except InvalidSignature:
        raise VerificationFailed(
            f"model signature {source} does not verify with {key_name}: "
            "the signed content was altered",
            hint="take model.sig from a trusted release again",
        ) from None
    document = load_json(payload, source=source, hint=_DAMAGED, what=_BUNDLE, max_depth=max_depth)
    return _signed_manifest(_object(document, source), source)


def _envelope_parts(envelope: Mapping[str, Any], source: str) -> tuple[bytes, bytes]:
    if envelope.get("payloadType") != _PAYLOAD_TYPE:
        raise _malformed(source, "the DSSE payloadType is not in-toto JSON")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise _malformed(source, "the DSSE envelope needs exactly one signature")
    first = _object(signatures[0], source)
    try:
        payload = base64.b64decode(str(envelope.get("payload")), validate=True)
        sig = base64.b64decode(str(first.get("sig")), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(source, "payload or signature is not base64") from None
    return payload, sig


def _signed_manifest(statement: Mapping[str, Any], source: str) -> _Signed:
    if statement.get("_type") != _STATEMENT_TYPE:
        raise _malformed(source, "the payload is not an in-toto Statement v1")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise _malformed(source, f"predicateType is not {PREDICATE_TYPE}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise _malformed(source, "a model signature has exactly one subject")
    root = _object(_object(subjects[0], source).get("digest"), source).get("sha256")
    predicate = _object(statement.get("predicate"), source)
    settings = _object(predicate.get("serialization"), source)
    if settings.get("method") != "files" or settings.get("hash_type") != "sha256":
        raise VerificationFailed(
            f"{source} signs the model another way than whole files under sha256",
            hint="bitwright checks the signatures 'bitwright release' makes",
        )
    ignored = settings.get("ignore_paths", [])
    if not isinstance(ignored, list) or not all(isinstance(p, str) for p in ignored):
        raise _malformed(source, "ignore_paths is not a list of paths")
    resources = _resources(predicate.get("resources"), source)
    combined = hashlib.sha256(b"".join(bytes.fromhex(d) for d in resources.values()))
    if combined.hexdigest() != root:
        raise _malformed(source, "the subject's digest is not that of its resources")
    return _Signed(dict(resources), tuple(ignored))


def _resources(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, list):
        raise _malformed(source, "resources is not a list")
    resources: dict[str, str] = {}
    for item in value:
        entry = _object(item, source)
        name, digest = entry.get("name"), entry.get("digest")
        if entry.get("algorithm") != "sha256" or not isinstance(name, str):
            raise _malformed(source, "a resource is not a named sha256 digest")
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise _malformed(source, f"resource {name[:80]!r} has no sha256 digest")
        if name in resources:
            raise _malformed(source, f"resource {name[:80]!r} is listed twice")
        resources[name] = digest
    return resources


def _compare(
    files: Mapping[str, str],
    signed: _Signed,
    ignored: Sequence[str],
    artifacts_dir: Path,
    source: str,
) -> None:
    expected = {n: d for n, d in signed.resources.items() if not _is_ignored(n, ignored)}
    problems = [
        f"{artifacts_dir / name} differs from its signed digest"
        for name in sorted(set(files) & set(expected))
        if files[name] != expected[name]
    ]
    added = sorted(set(files) - set(expected))
    missing = sorted(set(expected) - set(files))
    if added:
        problems.append("unsigned file(s) added: " + ", ".join(added[:5]))
    if missing:
        problems.append("signed file(s) missing: " + ", ".join(missing[:5]))
    if problems:
        more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
        raise VerificationFailed(
            f"{artifacts_dir} does not match {source}: {problems[0]}{more}",
            hint="the artifacts changed after signing; do not trust this release",
        )


def _model_digests(
    artifacts_dir: Path,
    ignored: Sequence[str],
    digests: Mapping[str, str] | None,
    *,
    action: str,
) -> dict[str, str]:
    """Every regular file of the model directory that is not ignored -> its sha256."""
    known = dict(digests or {})
    files: dict[str, str] = {}
    for name, path in _regular_files(artifacts_dir, action):
        if not _is_ignored(name, ignored):
            files[name] = known.get(name) or sha256_file(path)
    return dict(sorted(files.items()))


def _regular_files(root: Path, action: str) -> Iterator[tuple[str, Path]]:
    pending = [root]
    while pending:
        directory = pending.pop()
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif stat.S_ISREG(mode):
                yield path.relative_to(root).as_posix(), path
            else:
                kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
                raise OperationalError(
                    f"cannot {action} {root}: {path} is {kind}",
                    hint="the model directory must hold regular, readable files (no symlinks)",
                )


def _statement(name: str, files: Mapping[str, str], ignored: Sequence[str]) -> bytes:
    combined = hashlib.sha256(b"".join(bytes.fromhex(d) for d in files.values())).hexdigest()
    return canonical_json(
        {
            "_type": _STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"sha256": combined}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "serialization": {
                    "method": "files",
                    "hash_type": "sha256",
                    "allow_symlinks": False,
                    "ignore_paths": list(ignored),
                },
                "resources": [
                    {"name": n, "algorithm": "sha256", "digest": d} for n, d in files.items()
                ],
            },
        }
    )


def _pae(payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of an in-toto JSON payload."""
    kind = _PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _key_hint(key: ec.EllipticCurvePublicKey) -> str:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _ec_private_key(private_key: Path) -> ec.EllipticCurvePrivateKey:
    # load_signer reports a missing, unreadable, encrypted or foreign key with advice.
    public = load_signer(private_key).public_key
    try:
        key = serialization.load_pem_private_key(
            read_regular(private_key, limit=1 << 16), password=None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(f"cannot read private key {private_key}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.key_size not in _HASHES:
        raise KeyProblem(
            f"key {private_key} is a {public.keytype} key ({public.scheme}); model-signing "
            "cannot sign with it",
            hint=_KEY_HINT,
        )
    return key


def _ignored_paths(artifacts_dir: Path, signature: Path, ignore: Sequence[str]) -> list[str]:
    """Validate ``ignore``; add model-signing's git paths and the signature when inside."""
    paths: list[str] = list(_GIT_PATHS)
    for entry in ignore:
        pure = PurePosixPath(entry)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise UsageError(
                f"ignore path {entry!r} is not inside {artifacts_dir}",
                hint="give paths relative to the model directory, e.g. 'README.md'",
            )
        paths.append(pure.as_posix())
    resolved = signature.resolve()
    if resolved.is_relative_to(artifacts_dir.resolve()):
        paths.append(resolved.relative_to(artifacts_dir.resolve()).as_posix())
    return sorted(set(paths))


def _is_ignored(name: str, ignored: Sequence[str]) -> bool:
    path = PurePosixPath(name)
    return any(path.is_relative_to(PurePosixPath(p)) for p in ignored if p)


def _require_dir(artifacts_dir: Path) -> None:
    if not artifacts_dir.is_dir():
        raise OperationalError(
            f"model directory {artifacts_dir} not found",
            hint="pass a release's artifacts/ directory",
        )


def _object(value: Any, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(source, "a part of it is not a JSON object")
    return value


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _malformed(source: str, why: str) -> VerificationFailed:
    return VerificationFailed(f"{source} is not {_BUNDLE}: {why}", hint=_DAMAGED)
