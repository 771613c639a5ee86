"""The OpenSSF model signature: sign, verify, and what the real model_signing CLI says."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bitwright.attest.keys import KeyPair
from bitwright.digest import digest_tree
from bitwright.errors import KeyProblem, OperationalError, UsageError, VerificationFailed
from bitwright.model import Sha256
from bitwright.release import MODEL_SIGNATURE_FILE, sign_model, verify_model


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))


def _model_signing_cli() -> str:
    beside = Path(sys.executable).parent / "model_signing"
    found = str(beside) if beside.exists() else shutil.which("model_signing")
    assert found, "the model_signing console script of model-signing 1.1.1 is not installed"
    return found


def _cli_verify(
    release: Path, public_key: Path, signature: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _model_signing_cli(),
            "verify",
            "key",
            str(release / "artifacts"),
            "--signature",
            str(signature),
            "--public_key",
            str(public_key),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _signed(release: Path, keys: KeyPair) -> Path:
    return sign_model(release / "artifacts", keys.private_path, release / MODEL_SIGNATURE_FILE)


def test_roundtrip_writes_a_sigstore_bundle_beside_artifacts(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    signature = _signed(release_dir, owner_keys)

    assert signature == release_dir / "model.sig"
    bundle = json.loads(signature.read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    verify_model(release_dir / "artifacts", signature, owner_keys.public_path)
    leftovers = [p.name for p in release_dir.iterdir() if p.name not in {"artifacts", "model.sig"}]
    assert leftovers == []


def test_real_cli_accepts_the_signature_and_rejects_one_changed_byte(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    signature = _signed(release_dir, owner_keys)

    honest = _cli_verify(release_dir, owner_keys.public_path, signature)
    assert honest.returncode == 0, honest.stderr
    _flip_one_byte(release_dir / "artifacts" / "model.safetensors")
    tampered = _cli_verify(release_dir, owner_keys.public_path, signature)
    assert tampered.returncode != 0
    assert "model.safetensors" in tampered.stderr


def test_tampered_artifact_is_named_in_one_line(release_dir: Path, owner_keys: KeyPair) -> None:
    signature = _signed(release_dir, owner_keys)
    _flip_one_byte(release_dir / "artifacts" / "model.safetensors")

    with pytest.raises(VerificationFailed) as failure:
        verify_model(release_dir / "artifacts", signature, owner_keys.public_path)
    message = failure.value.message
    assert "model.safetensors differs from its signed digest" in message
    assert "\n" not in message


def test_added_and_removed_files_fail(release_dir: Path, owner_keys: KeyPair) -> None:
    artifacts = release_dir / "artifacts"
    signature = _signed(release_dir, owner_keys)

    (artifacts / "backdoor.pt").write_bytes(b"extra")
    with pytest.raises(VerificationFailed, match=r"unsigned file\(s\) added: backdoor\.pt"):
        verify_model(artifacts, signature, owner_keys.public_path)
    (artifacts / "backdoor.pt").unlink()
    (artifacts / "MODEL_CARD.md").unlink()
    with pytest.raises(VerificationFailed, match=r"signed file\(s\) missing: MODEL_CARD\.md"):
        verify_model(artifacts, signature, owner_keys.public_path)


def test_another_key_is_refused(
    release_dir: Path, owner_keys: KeyPair, stranger_keys: KeyPair
) -> None:
    signature = _signed(release_dir, owner_keys)

    with pytest.raises(VerificationFailed, match="made with another key"):
        verify_model(release_dir / "artifacts", signature, stranger_keys.public_path)


def test_altered_or_garbled_signature_fails(release_dir: Path, owner_keys: KeyPair) -> None:
    signature = _signed(release_dir, owner_keys)
    bundle = json.loads(signature.read_text())
    sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = (
        sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
    )
    signature.write_text(json.dumps(bundle))

    with pytest.raises(VerificationFailed, match="does not verify|not a valid"):
        verify_model(release_dir / "artifacts", signature, owner_keys.public_path)
    signature.write_text("not a bundle")
    with pytest.raises(VerificationFailed, match="not a valid model-signing bundle"):
        verify_model(release_dir / "artifacts", signature, owner_keys.public_path)


def test_missing_signature_or_directory_is_operational(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    artifacts = release_dir / "artifacts"
    with pytest.raises(OperationalError, match="model signature .*model.sig not found") as missing:
        verify_model(artifacts, release_dir / "model.sig", owner_keys.public_path)
    assert not isinstance(missing.value, VerificationFailed)
    with pytest.raises(OperationalError, match="model directory .* not found"):
        sign_model(release_dir / "nope", owner_keys.private_path, release_dir / "model.sig")


def test_ed25519_keys_are_a_key_problem_with_advice(
    release_dir: Path, owner_keys: KeyPair, ed25519_keys: KeyPair
) -> None:
    with pytest.raises(KeyProblem, match="ed25519") as signing:
        sign_model(release_dir / "artifacts", ed25519_keys.private_path, release_dir / "model.sig")
    assert "bitwright keygen" in signing.value.hint
    assert not (release_dir / "model.sig").exists()
    signature = _signed(release_dir, owner_keys)
    with pytest.raises(KeyProblem, match="ed25519"):
        verify_model(release_dir / "artifacts", signature, ed25519_keys.public_path)


def test_public_key_in_place_of_private_key_is_a_key_problem(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    with pytest.raises(KeyProblem, match="not a PEM private key"):
        sign_model(release_dir / "artifacts", owner_keys.public_path, release_dir / "model.sig")


def test_signature_inside_the_model_directory_is_left_out(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    artifacts = release_dir / "artifacts"
    sign_model(artifacts, owner_keys.private_path, artifacts / "model.sig")
    # Signing again over the old signature: had it been signed, replacing it would break this.
    signature = sign_model(artifacts, owner_keys.private_path, artifacts / "model.sig")

    verify_model(artifacts, signature, owner_keys.public_path)


def test_ignored_paths_stay_unsigned(release_dir: Path, owner_keys: KeyPair) -> None:
    artifacts = release_dir / "artifacts"
    signature = sign_model(
        artifacts, owner_keys.private_path, release_dir / "model.sig", ignore=["MODEL_CARD.md"]
    )
    (artifacts / "MODEL_CARD.md").write_text("# edited after signing\n")

    verify_model(artifacts, signature, owner_keys.public_path)
    with pytest.raises(UsageError, match="not inside"):
        sign_model(artifacts, owner_keys.private_path, signature, ignore=["../keys"])


def test_symlink_in_the_model_directory_cannot_be_signed(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    artifacts = release_dir / "artifacts"
    (artifacts / "weights.link").symlink_to(artifacts / "model.safetensors")

    with pytest.raises(OperationalError, match="cannot sign .*symlink"):
        _signed(release_dir, owner_keys)
    assert not (release_dir / "model.sig").exists()


def test_digests_the_caller_has_replace_reading_those_files(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    artifacts = release_dir / "artifacts"
    claimed = {"model.safetensors": Sha256("0" * 64)}
    signature = sign_model(
        artifacts, owner_keys.private_path, release_dir / MODEL_SIGNATURE_FILE, digests=claimed
    )

    # What was signed is the digest given, not the file: read afresh, the file differs ...
    with pytest.raises(VerificationFailed, match=r"model\.safetensors differs"):
        verify_model(artifacts, signature, owner_keys.public_path)
    # ... and a verifier handing in the same digest is not reading the file either.
    verify_model(artifacts, signature, owner_keys.public_path, digests=claimed)


def test_signature_from_bitwright_digests_is_what_model_signing_makes(
    release_dir: Path, owner_keys: KeyPair
) -> None:
    artifacts = release_dir / "artifacts"
    digests = digest_tree(artifacts).files
    signature = sign_model(
        artifacts, owner_keys.private_path, release_dir / MODEL_SIGNATURE_FILE, digests=digests
    )

    honest = _cli_verify(release_dir, owner_keys.public_path, signature)
    assert honest.returncode == 0, honest.stderr
    verify_model(artifacts, signature, owner_keys.public_path, digests=digests)


def test_files_without_a_given_digest_are_read(release_dir: Path, owner_keys: KeyPair) -> None:
    artifacts = release_dir / "artifacts"
    signature = _signed(release_dir, owner_keys)
    partial = {"metrics.json": digest_tree(artifacts).files["metrics.json"]}
    _flip_one_byte(artifacts / "model.safetensors")

    with pytest.raises(VerificationFailed, match=r"model\.safetensors differs from its signed"):
        verify_model(artifacts, signature, owner_keys.public_path, digests=partial)
    _flip_one_byte(artifacts / "model.safetensors")
    (artifacts / "extra.bin").write_bytes(b"added after signing")
    with pytest.raises(VerificationFailed, match=r"unsigned file\(s\) added: extra\.bin"):
        verify_model(artifacts, signature, owner_keys.public_path, digests=partial)
