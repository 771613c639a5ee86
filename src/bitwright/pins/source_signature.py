"""Git signatures on the source commit: record them at build time, check them at verify time.

``build`` reads the raw commit object (``git cat-file commit``) and, when it carries a
``gpgsig`` header, records the signature's kind (SSH, GPG or X.509, by its armor), who it
names (the SSH key's fingerprint, or the OpenPGP issuer) and the commit object itself
(:class:`~bitwright.model.SourceSignature`). A verifier can then check, offline and without
the repository, that the object hashes to the released commit id and that its signature
holds for a key in an SSH allowed-signers file (the file ``git`` reads as
``gpg.ssh.allowedSignersFile``), with ``ssh-keygen -Y`` as ``git verify-commit`` does.

What git signs is the commit object without its signature header; that is rebuilt here from
the object's bytes. Only SSH signatures are checked (GPG and X.509 need a keyring or a CA,
which an allowed-signers file does not name).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from bitwright.errors import OperationalError, ToolError, VerificationFailed
from bitwright.model import SourceSignature
from bitwright.pins._gitcmd import git_bytes

__all__ = [
    "check_source_signature",
    "commit_id",
    "describe_signature",
    "read_source_signature",
    "split_signature",
]

_SIGNATURE_HEADERS = (b"gpgsig", b"gpgsig-sha256")
_ARMOR_KINDS = {
    b"-----BEGIN SSH SIGNATURE-----": "ssh",
    b"-----BEGIN PGP SIGNATURE-----": "gpg",
    b"-----BEGIN SIGNED MESSAGE-----": "x509",
}
_NAMESPACE = "git"
_HINT = (
    "sign the release's commit (git commit -S with gpg.format=ssh) and pass the "
    "allowed-signers file that names its key"
)


def read_source_signature(repo: Path, commit: str) -> SourceSignature | None:
    """Return the git signature of ``commit`` in ``repo``, or ``None`` when it is unsigned.

    Raises:
        ToolError: git failed.
    """
    raw = git_bytes(repo, "cat-file", "commit", commit)
    _, armored = split_signature(raw)
    if armored is None:
        return None
    kind = _kind(armored)
    return SourceSignature(
        kind=kind,
        signer=_signer(kind, armored),
        commit_object=base64.b64encode(raw).decode("ascii"),
    )


def split_signature(raw: bytes) -> tuple[bytes, bytes | None]:
    """Split a raw commit object into what git signs and the armored signature (or None).

    The signed payload is the object without the ``gpgsig`` (or ``gpgsig-sha256``) header
    and its continuation lines; the signature is that header's value, one line per
    continuation line with its leading space removed.
    """
    head, sep, message = raw.partition(b"\n\n")
    kept: list[bytes] = []
    signature: list[bytes] = []
    inside = False
    for line in head.split(b"\n"):
        if inside and line.startswith(b" "):
            signature.append(line[1:])
            continue
        inside = False
        name, _, value = line.partition(b" ")
        if name in _SIGNATURE_HEADERS and not signature:
            inside = True
            signature.append(value)
            continue
        kept.append(line)
    payload = b"\n".join(kept) + sep + message
    return payload, (b"\n".join(signature) + b"\n") if signature else None


def commit_id(raw: bytes, like: str) -> str:
    """The git object id of the commit object ``raw``, SHA-1 or SHA-256 as ``like`` is."""
    header = b"commit %d\0" % len(raw)
    digest = hashlib.sha256 if len(like) == 64 else hashlib.sha1
    return digest(header + raw).hexdigest()


def check_source_signature(
    signature: SourceSignature | None, commit: str, allowed_signers: Path
) -> str:
    """Check that ``commit`` is signed by a key of the SSH ``allowed_signers`` file.

    Args:
        signature: what the build recorded about the commit's signature.
        commit: the commit id the provenance names.
        allowed_signers: an ``ssh-keygen`` allowed-signers file (principals and keys).

    Returns:
        The principal the signature verifies for, and the key's fingerprint.

    Raises:
        VerificationFailed: the commit is unsigned, signed another way than SSH, the
            recorded object is not that commit, or no allowed signer made the signature.
        OperationalError: the allowed-signers file cannot be read.
        ToolError: ``ssh-keygen`` is missing.
    """
    if signature is None:
        raise VerificationFailed(f"the source commit {commit[:12]} is not signed", hint=_HINT)
    if signature.kind != "ssh":
        raise VerificationFailed(
            f"the source commit {commit[:12]} carries a {signature.kind} signature; "
            "only SSH signatures are checked against an allowed-signers file",
            hint=_HINT,
        )
    try:
        raw = base64.b64decode(signature.commit_object, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if commit_id(raw, commit) != commit:
        raise VerificationFailed(
            f"the recorded commit object is not commit {commit[:12]}",
            hint="the build's record of its source was altered; take the release again",
        )
    payload, armored = split_signature(raw)
    if armored is None:
        raise VerificationFailed(f"the source commit {commit[:12]} is not signed", hint=_HINT)
    if not allowed_signers.is_file():
        raise OperationalError(
            f"allowed-signers file {allowed_signers} not found",
            hint="pass an ssh-keygen allowed-signers file ('PRINCIPAL KEYTYPE KEY' lines)",
        )
    principal = _verify_ssh(payload, armored, allowed_signers, commit)
    return f"{principal} ({signature.signer})"


def _verify_ssh(payload: bytes, armored: bytes, allowed_signers: Path, commit: str) -> str:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise ToolError(
            "ssh-keygen is not installed (needed to check SSH signatures)",
            hint="install OpenSSH's client tools (apt-get install openssh-client)",
        )
    with tempfile.TemporaryDirectory(prefix="bitwright-sshsig-") as scratch:
        sig_file = Path(scratch) / "commit.sig"
        sig_file.write_bytes(armored)
        found = _ssh_keygen(
            [keygen, "-Y", "find-principals", "-s", str(sig_file), "-f", str(allowed_signers)]
        )
        principals = found.stdout.decode(errors="replace").split() if found.returncode == 0 else []
        for principal in principals:
            done = _ssh_keygen(
                [keygen, "-Y", "verify", "-f", str(allowed_signers), "-I", principal]
                + ["-n", _NAMESPACE, "-s", str(sig_file)],
                payload,
            )
            if done.returncode == 0:
                return principal
    raise VerificationFailed(
        f"the signature of source commit {commit[:12]} is made by no key of {allowed_signers}"
        " (or does not verify)",
        hint="ask for the signer's key, or do not trust this release's source",
    )


def _ssh_keygen(args: list[str], data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, input=data, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"ssh-keygen failed: {exc}", hint="check the OpenSSH installation") from exc


def _kind(armored: bytes) -> str:
    first = armored.strip().split(b"\n", 1)[0].strip()
    return _ARMOR_KINDS.get(first, "unknown")


def _signer(kind: str, armored: bytes) -> str:
    try:
        body = _dearmor(armored)
        if kind == "ssh":
            return _ssh_fingerprint(body)
        if kind == "gpg":
            return _pgp_issuer(body)
    except (ValueError, IndexError, struct.error, binascii.Error):
        return ""
    return ""


def _dearmor(armored: bytes) -> bytes:
    lines = [line.strip() for line in armored.strip().split(b"\n")[1:-1]]
    if b"" in lines:  # OpenPGP armor headers end at an empty line
        lines = lines[lines.index(b"") + 1 :]
    body = [line for line in lines if line and not line.startswith(b"=")]
    return base64.b64decode(b"".join(body), validate=True)


def _ssh_fingerprint(blob: bytes) -> str:
    # SSHSIG: magic, uint32 version, string public key, namespace, reserved, hash, signature.
    if not blob.startswith(b"SSHSIG"):
        raise ValueError("not an SSH signature")
    (length,) = struct.unpack(">I", blob[10:14])
    key = blob[14 : 14 + length]
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _pgp_issuer(packet: bytes) -> str:
    # An OpenPGP v4 signature packet: the issuer fingerprint (33) or key id (16) subpacket.
    tag = packet[0]
    # New format (bit 6): a one- or two-octet length suffices for a signature; old: by type.
    new_length = 2 if packet[1] < 192 else 3
    offset = new_length if tag & 0x40 else 1 + (1, 2, 4)[tag & 0x03]
    body = packet[offset:]
    if body[0] != 4:
        raise ValueError("not a version 4 signature")
    hashed_len = struct.unpack(">H", body[4:6])[0]
    hashed = body[6 : 6 + hashed_len]
    rest = body[6 + hashed_len :]
    unhashed = rest[2 : 2 + struct.unpack(">H", rest[0:2])[0]]
    found: dict[int, bytes] = {}
    for area in (hashed, unhashed):
        index = 0
        while index < len(area):
            first = area[index]
            if first < 192:
                size, index = first, index + 1
            elif first < 255:
                size, index = ((first - 192) << 8) + area[index + 1] + 192, index + 2
            else:
                size, index = struct.unpack(">I", area[index + 1 : index + 5])[0], index + 5
            kind, data = area[index] & 0x7F, area[index + 1 : index + size]
            found.setdefault(kind, data)
            index += size
    if 33 in found:
        return found[33][1:].hex().upper()
    if 16 in found:
        return found[16].hex().upper()
    return ""


def describe_signature(signature: SourceSignature | None) -> str:
    """One phrase for humans: ``"unsigned"`` or ``"ssh signature by SHA256:..."``."""
    if signature is None:
        return "unsigned"
    by = f" by {signature.signer}" if signature.signer else ""
    return f"{signature.kind} signature{by}"
