"""Signed source commits: what a build records, and what the allowed-signers check accepts.

Real keys from ``ssh-keygen``, real commits signed by git (``gpg.format ssh``).
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from _pinkit import git

from bitwright.errors import VerificationFailed
from bitwright.pins import pin_git_commit
from bitwright.pins.source_signature import (
    check_source_signature,
    commit_id,
    split_signature,
)

MakeRepo = Callable[..., Path]


def _ssh_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key


def _fingerprint(key: Path) -> str:
    done = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key}.pub"], check=True, capture_output=True, text=True
    )
    return done.stdout.split()[1]


def _allowed(path: Path, principal: str, key: Path) -> Path:
    public = Path(f"{key}.pub").read_text().split()
    path.write_text(f'{principal} namespaces="git" {public[0]} {public[1]}\n')
    return path


@pytest.fixture
def signed_repo(make_repo: MakeRepo, tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo({"README.md": "signed\n"})
    key = _ssh_key(tmp_path, "maintainer")
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(key))
    (repo / "README.md").write_text("signed change\n")
    git(repo, "commit", "-q", "-S", "-am", "a signed commit")
    return repo, key


def test_an_unsigned_commit_records_no_signature(make_repo: MakeRepo) -> None:
    assert pin_git_commit(make_repo()).signature is None


def test_a_signed_commit_records_kind_signer_and_object(signed_repo: tuple[Path, Path]) -> None:
    repo, key = signed_repo
    pin = pin_git_commit(repo)

    assert pin.signature is not None
    assert pin.signature.kind == "ssh"
    assert pin.signature.signer == _fingerprint(key)
    raw = base64.b64decode(pin.signature.commit_object)
    assert commit_id(raw, pin.commit) == pin.commit
    payload, armored = split_signature(raw)
    assert armored is not None and armored.startswith(b"-----BEGIN SSH SIGNATURE-----")
    assert b"gpgsig" not in payload


def test_allowed_signer_verifies_and_a_stranger_does_not(
    signed_repo: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, key = signed_repo
    pin = pin_git_commit(repo)
    allowed = _allowed(tmp_path / "allowed_signers", "maintainer@example.org", key)

    assert check_source_signature(pin.signature, pin.commit, allowed).startswith(
        "maintainer@example.org"
    )
    stranger = _allowed(tmp_path / "others", "stranger@example.org", _ssh_key(tmp_path, "s"))
    with pytest.raises(VerificationFailed, match="made by no key of"):
        check_source_signature(pin.signature, pin.commit, stranger)


def test_an_object_of_another_commit_or_an_altered_one_fails(
    signed_repo: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, key = signed_repo
    pin = pin_git_commit(repo)
    assert pin.signature is not None
    allowed = _allowed(tmp_path / "allowed_signers", "maintainer@example.org", key)
    parent = git(repo, "rev-parse", "HEAD~1")

    with pytest.raises(VerificationFailed, match="is not commit"):
        check_source_signature(pin.signature, parent, allowed)
    raw = base64.b64decode(pin.signature.commit_object)
    raw = raw.replace(b"a signed commit", b"an evil commit")
    altered = replace(pin.signature, commit_object=base64.b64encode(raw).decode())
    with pytest.raises(VerificationFailed, match="is not commit"):
        check_source_signature(altered, pin.commit, allowed)


def test_unsigned_commit_fails_the_requirement(make_repo: MakeRepo, tmp_path: Path) -> None:
    pin = pin_git_commit(make_repo())
    allowed = _allowed(tmp_path / "allowed", "x@example.org", _ssh_key(tmp_path, "k"))

    with pytest.raises(VerificationFailed, match="is not signed"):
        check_source_signature(pin.signature, pin.commit, allowed)
