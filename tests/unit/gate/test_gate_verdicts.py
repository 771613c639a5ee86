"""Verdicts kept in a release are hostile input too: each bad one is named, none counts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tests.unit.verify.release_factory import Release, make_keys, make_release, signed_vsa

from bitwright.attest import generate_keypair
from bitwright.attest.keys import KeyPair
from bitwright.digest import digest_tree
from bitwright.errors import CheckFailed, OperationalError
from bitwright.gate.policy import load_policy
from bitwright.gate.verdicts import VERDICTS_DIR, VerdictKind, add_verdicts, read_verdicts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Release:
    keys = make_keys(tmp_path_factory.mktemp("gate-keys"))
    return make_release(tmp_path_factory.mktemp("gate-build"), keys)


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("verifier"), name="alice")


@pytest.fixture
def release(built: Release, tmp_path: Path) -> Path:
    shutil.copytree(built.root, tmp_path / "release")
    return tmp_path / "release"


def _vsa(
    built: Release, key: KeyPair, path: Path, *, subjects: dict[str, str] | None = None
) -> Path:
    return signed_vsa(subjects or built.statement.subject_digests(), key.private_path, path)


def test_vsa_add_keeps_a_matching_verdict_once(
    built: Release, alice: KeyPair, release: Path, tmp_path: Path
) -> None:
    vsa = _vsa(built, alice, tmp_path / "alice.json")
    artifacts = digest_tree(release / "artifacts").files

    first = add_verdicts(release, artifacts, [vsa])
    again = add_verdicts(release, artifacts, [vsa])

    assert first == again
    assert first[0].read_bytes() == vsa.read_bytes()
    assert len(list((release / VERDICTS_DIR).iterdir())) == 1


def test_vsa_add_refuses_other_artifacts_a_fifo_and_a_non_vsa(
    built: Release, alice: KeyPair, release: Path, tmp_path: Path
) -> None:
    artifacts = digest_tree(release / "artifacts").files
    fewer = dict(list(built.statement.subject_digests().items())[:1])
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "plain.json").write_text('{"not": "an envelope"}')

    with pytest.raises(CheckFailed, match="is not a subject of the VSA"):
        add_verdicts(release, artifacts, [_vsa(built, alice, tmp_path / "a.json", subjects=fewer)])
    with pytest.raises(OperationalError, match="not a regular file"):
        add_verdicts(release, artifacts, [tmp_path / "fifo.json"])
    with pytest.raises(Exception, match="not a valid DSSE envelope"):
        add_verdicts(release, artifacts, [tmp_path / "plain.json"])
    assert not (release / VERDICTS_DIR).exists()


def test_hostile_files_among_the_verdicts_are_named_and_never_counted(
    built: Release, alice: KeyPair, release: Path, tmp_path: Path
) -> None:
    from bitwright.attest import load_public_key

    folder = tmp_path / "verdicts"
    folder.mkdir()
    os.mkfifo(folder / "fifo.intoto.json")
    (tmp_path / "outside.json").write_bytes(_vsa(built, alice, tmp_path / "v.json").read_bytes())
    (folder / "link.intoto.json").symlink_to(tmp_path / "outside.json")
    (folder / "huge.intoto.json").write_bytes(b" " * (5 << 20))
    (folder / "deep.intoto.json").write_bytes(b"[" * 200 + b"]" * 200)
    stranger = generate_keypair(tmp_path / "k", name="stranger")
    _vsa(built, stranger, folder / "unsigned-extra.intoto.json")
    files = sorted(folder.iterdir())

    verdicts = read_verdicts(
        files, [load_public_key(alice.public_path)], built.statement.subject_digests()
    )

    problems = {Path(v.file).name: v.problem for v in verdicts}
    assert "not a regular file" in problems["fifo.intoto.json"]
    assert "symbolic link" in problems["link.intoto.json"]
    assert "more than the" in problems["huge.intoto.json"]
    assert "nested" in problems["deep.intoto.json"]
    assert problems["unsigned-extra.intoto.json"] == "signed by no trusted verifier key"
    assert all(v.kind is VerdictKind.OTHER and not v.matches for v in verdicts)


def test_the_gate_counts_verdicts_kept_in_the_release(
    built: Release, alice: KeyPair, release: Path, tmp_path: Path
) -> None:
    from bitwright.gate.evaluate import evaluate

    add_verdicts(
        release,
        digest_tree(release / "artifacts").files,
        [_vsa(built, alice, tmp_path / "alice.json")],
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: bitwright.dev/gate-policy/v1\n"
        "default_profile: p\n"
        "profiles:\n"
        "  p:\n"
        "    signers:\n"
        "      keys:\n"
        f"        - pem: {json.dumps(built.keys.owner.public_path.read_text())}\n"
        "    require: {scan_clean: false}\n"
        "    reproducibility:\n"
        "      verdicts: 1\n"
        "      verifiers:\n"
        f"        - pem: {json.dumps(alice.public_path.read_text())}\n"
    )

    decision = evaluate(release, load_policy(policy))

    assert [r.id for r in decision.failed] == []
    (reproduced,) = [r for r in decision.requirements if r.id == "reproducibility"]
    assert reproduced.summary == "1 trusted verifier(s) reproduced it within 90 days"
