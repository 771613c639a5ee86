"""Signing keys: generate a key pair on disk, load a signer or a public key, name keys by keyid.

Keys are PEM files that in-toto, DSSE and OpenSSF model-signing all read: the private key as
unencrypted PKCS#8 (mode 0600), the public key as SubjectPublicKeyInfo. The default type is
ECDSA P-256 (``ecdsa-sha2-nistp256``); ed25519 on request. A key's id is securesystemslib's
default keyid (sha256 over the canonical public key), the same id ``in-toto-verify`` computes
from the ``.pub`` file, so ``STAGE.KEYID8.link`` file names agree with it.

The private key is stored unencrypted on purpose: builds run unattended (CI, ``dvc repro``)
and the library never prompts for a password. Protect it with file permissions, keep it out
of version control (``generate_keypair`` drops a ``.gitignore`` next to it) and prefer a
per-project key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.exceptions import KeyMismatchError

# securesystemslib.signer has no __all__, so mypy --strict calls these names private although
# they are its documented public API; they are re-exported from here for the other layers.
from securesystemslib.signer import (  # type: ignore[attr-defined]
    CryptoSigner,
    Key,
    Signer,
    SSlibKey,
)

from bitwright.errors import KeyProblem, OperationalError, UsageError
from bitwright.fileio import write_atomic

__all__ = [
    "DEFAULT_KEY_DIR",
    "KEY_TYPES",
    "Key",
    "KeyPair",
    "SSlibKey",
    "Signer",
    "generate_keypair",
    "keyid8",
    "load_public_key",
    "load_signer",
]

DEFAULT_KEY_DIR = Path(".bitwright") / "keys"
"""Where ``bitwright keygen`` writes keys, relative to the current directory."""

KEY_TYPES = ("ecdsa", "ed25519")
"""Key types ``generate_keypair`` creates; ``ecdsa`` means ECDSA P-256 with SHA-256."""

_GITIGNORE = (
    "# written by bitwright keygen: keys stay out of version control, so a key never leaves\n"
    "# the working tree dirty (publish the .pub with a release; `git add -f` to commit it)\n*\n"
)


@dataclass(frozen=True)
class KeyPair:
    """A key pair written to disk.

    Attributes:
        private_path: the private key (PKCS#8 PEM, unencrypted, mode 0600).
        public_path: the public key (SubjectPublicKeyInfo PEM).
        keyid: the securesystemslib keyid (64 hex) of the public key.
        scheme: the signature scheme (``ecdsa-sha2-nistp256`` or ``ed25519``).
    """

    private_path: Path
    public_path: Path
    keyid: str
    scheme: str


def generate_keypair(
    out_dir: Path, *, name: str = "owner", key_type: str = "ecdsa", force: bool = False
) -> KeyPair:
    """Generate a key pair and write ``out_dir/NAME.key`` and ``out_dir/NAME.pub``.

    Args:
        out_dir: the directory for both files; created (mode 0700) when missing.
        name: the file stem; a plain file name, no path separators.
        key_type: ``"ecdsa"`` (P-256, the default) or ``"ed25519"``.
        force: replace existing files of that name.

    Returns:
        Where the keys are and the public key's id and scheme.

    Raises:
        UsageError: unknown key type or a name that is not a plain file name.
        OperationalError: a key file already exists and ``force`` is false, or the files
            cannot be written.
    """
    if key_type not in KEY_TYPES:
        raise UsageError(
            f"unknown key type {key_type!r}", hint="use 'ecdsa' (P-256, default) or 'ed25519'"
        )
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise UsageError(
            f"key name {name!r} is not a plain file name", hint="use a name like 'owner'"
        )
    private_path = out_dir / f"{name}.key"
    public_path = out_dir / f"{name}.pub"
    existing = [p for p in (private_path, public_path) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise OperationalError(
            f"{existing[0]} already exists; refusing to overwrite a key",
            hint="pass --force to replace it (what the old key signed will no longer "
            "verify with the new public key)",
        )
    private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if key_type == "ecdsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    signer = CryptoSigner(private)
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise OperationalError(
            f"cannot create key directory {out_dir}: {exc.strerror or exc}",
            hint="pass --out with a writable directory",
        ) from exc
    private_pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    write_atomic(private_path, private_pem, mode=0o600)
    write_atomic(public_path, public_pem, mode=0o644)
    gitignore = out_dir / ".gitignore"
    if not gitignore.exists():
        write_atomic(gitignore, _GITIGNORE.encode(), mode=0o644)
    return KeyPair(
        private_path=private_path,
        public_path=public_path,
        keyid=signer.public_key.keyid,
        scheme=signer.public_key.scheme,
    )


def load_signer(private_key: Path) -> Signer:
    """Load a signer from an unencrypted PEM private key (PKCS#8, or PKCS#1/SEC1).

    Args:
        private_key: the private key file (as ``bitwright keygen`` writes it).

    Returns:
        A securesystemslib ``CryptoSigner`` whose ``public_key`` carries the keyid.

    Raises:
        KeyProblem: the file is missing, unreadable, encrypted, not a private key, or of
            a type in-toto cannot verify.
    """
    data = _read_key_file(private_key, "signing key")
    try:
        crypto_key = load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography: "Password was not given but private key is encrypted"
        raise KeyProblem(
            f"signing key {private_key} is encrypted",
            hint="bitwright reads unencrypted PEM keys; decrypt a copy with "
            "'openssl pkey -in KEY -out KEY.plain' and protect it with mode 0600",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(
            f"{private_key} is not a PEM private key{_public_instead(data)}",
            hint="pass the private '.key' file written by 'bitwright keygen'",
        ) from exc
    try:
        return CryptoSigner(crypto_key)
    except (ValueError, KeyMismatchError) as exc:
        raise KeyProblem(
            f"signing key {private_key} has an unsupported type ({exc})",
            hint="use an ECDSA P-256 or ed25519 key ('bitwright keygen')",
        ) from exc


def load_public_key(public_pem: Path) -> SSlibKey:
    """Load a public key from a SubjectPublicKeyInfo PEM file.

    Args:
        public_pem: the public key file (``NAME.pub``).

    Returns:
        The securesystemslib key, with the same keyid ``in-toto-verify`` gives it.

    Raises:
        KeyProblem: the file is missing, unreadable, not a public key, or of an
            unsupported type.
    """
    data = _read_key_file(public_pem, "public key")
    if b"PRIVATE KEY" in data:
        raise KeyProblem(
            f"{public_pem} holds a private key, not a public one",
            hint="pass the '.pub' file; never hand out the '.key' file",
        )
    try:
        return SSlibKey.from_crypto(load_pem_public_key(data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(
            f"{public_pem} is not a usable PEM public key ({_first_line(exc)})",
            hint="pass a SubjectPublicKeyInfo PEM file ('-----BEGIN PUBLIC KEY-----'), "
            "ECDSA P-256 or ed25519",
        ) from exc


def keyid8(key: Key | Signer | str) -> str:
    """Return the first 8 hex digits of a key's id (the ``KEYID8`` of link file names).

    Args:
        key: a public key, a signer (its public key counts) or a keyid.
    """
    if isinstance(key, str):
        return key[:8]
    if isinstance(key, Signer):
        return str(key.public_key.keyid)[:8]
    return key.keyid[:8]


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyProblem(
            f"{what} {path} not found",
            hint="create a key pair with 'bitwright keygen' or pass the right path",
        ) from exc
    except OSError as exc:
        raise KeyProblem(
            f"cannot read {what} {path}: {exc.strerror or exc}",
            hint="check the path and its permissions",
        ) from exc


def _public_instead(data: bytes) -> str:
    return " (it holds a public key)" if b"PUBLIC KEY" in data else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
