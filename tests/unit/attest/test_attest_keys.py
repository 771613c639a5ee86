from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from in_toto.models._signer import load_public_key_from_file

from bitwright.attest import (
    KeyPair,
    generate_keypair,
    keyid8,
    load_public_key,
    load_signer,
)
from bitwright.errors import KeyProblem, OperationalError, UsageError


@pytest.mark.parametrize(
    ("key_type", "scheme"), [("ecdsa", "ecdsa-sha2-nistp256"), ("ed25519", "ed25519")]
)
def test_generated_pair_is_private_pem_and_keyid_agrees_with_in_toto(
    tmp_path: Path, key_type: str, scheme: str
) -> None:
    pair = generate_keypair(tmp_path / "keys", key_type=key_type)

    assert pair.private_path == tmp_path / "keys" / "owner.key"
    assert pair.public_path == tmp_path / "keys" / "owner.pub"
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert pair.private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pair.public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert pair.scheme == scheme
    # in-toto-verify derives the keyid from the .pub file: it must be the same id.
    assert load_public_key_from_file(str(pair.public_path))["keyid"] == pair.keyid
    assert load_public_key(pair.public_path).keyid == pair.keyid
    assert load_signer(pair.private_path).public_key.keyid == pair.keyid


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = generate_keypair(tmp_path)
    before = first.private_path.read_bytes()

    with pytest.raises(OperationalError) as err:
        generate_keypair(tmp_path)

    assert "owner.key already exists" in err.value.message
    assert "--force" in err.value.hint
    assert first.private_path.read_bytes() == before
    replaced = generate_keypair(tmp_path, force=True)
    assert replaced.keyid != first.keyid
    assert load_signer(replaced.private_path).public_key.keyid == replaced.keyid


def test_refuses_when_only_the_public_half_exists(tmp_path: Path) -> None:
    (tmp_path / "owner.pub").write_text("old public key")

    with pytest.raises(OperationalError, match="owner.pub already exists"):
        generate_keypair(tmp_path)


@pytest.mark.parametrize(("key_type", "name"), [("rsa", "owner"), ("ecdsa", "../owner")])
def test_rejects_unknown_type_and_path_like_names(tmp_path: Path, key_type: str, name: str) -> None:
    with pytest.raises(UsageError):
        generate_keypair(tmp_path, key_type=key_type, name=name)
    assert list(tmp_path.iterdir()) == []


def test_keygen_leaves_the_tree_clean(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    generate_keypair(tmp_path / ".bitwright" / "keys")

    def status() -> str:
        return subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    ignored = {line[3:] for line in status().splitlines() if line.startswith("!! ")}
    assert ignored >= {".bitwright/keys/owner.key", ".bitwright/keys/owner.pub"}
    assert not [line for line in status().splitlines() if not line.startswith("!! ")]


def _one_line(exc: KeyProblem) -> str:
    text = exc.diagnostics()
    assert "\n" not in text
    return text


def test_missing_signing_key_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyProblem) as err:
        load_signer(tmp_path / "nope.key")
    assert f"{tmp_path / 'nope.key'} not found" in _one_line(err.value)
    assert "bitwright keygen" in err.value.hint


def test_garbage_signing_key_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyProblem) as err:
        load_signer(bad)
    assert f"{bad} is not a PEM private key" in _one_line(err.value)


def test_public_key_given_as_signing_key(owner_pair: KeyPair) -> None:
    with pytest.raises(KeyProblem) as err:
        load_signer(owner_pair.public_path)
    assert "it holds a public key" in _one_line(err.value)


def test_encrypted_signing_key_is_refused_with_advice(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "enc.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(KeyProblem) as err:
        load_signer(path)
    assert "is encrypted" in _one_line(err.value)


def test_unsupported_curve_is_a_key_problem(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    path = tmp_path / "k1.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyProblem) as err:
        load_signer(path)
    assert "unsupported type" in _one_line(err.value)


def test_public_key_errors_name_the_file(tmp_path: Path, owner_pair: KeyPair) -> None:
    with pytest.raises(KeyProblem, match="not found"):
        load_public_key(tmp_path / "missing.pub")
    with pytest.raises(KeyProblem, match="holds a private key"):
        load_public_key(owner_pair.private_path)
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    with pytest.raises(KeyProblem) as err:
        load_public_key(junk)
    assert f"{junk} is not a usable PEM public key" in _one_line(err.value)


def test_keyid8_of_key_signer_and_id(owner_pair: KeyPair) -> None:
    signer = load_signer(owner_pair.private_path)
    expected = owner_pair.keyid[:8]
    assert keyid8(signer) == expected
    assert keyid8(signer.public_key) == expected
    assert keyid8(owner_pair.keyid) == expected
