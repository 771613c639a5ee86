"""``bitwright keygen`` as a user runs it: the installed console script, in a fresh directory."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from bitwright.attest import load_public_key, load_signer

BITWRIGHT = Path(sys.executable).parent / "bitwright"


def _keygen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BITWRIGHT), "keygen", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_default_keygen_writes_ecdsa_pair_under_dot_bitwright(tmp_path: Path) -> None:
    result = _keygen(tmp_path)

    assert result.returncode == 0, result.stderr
    private = tmp_path / ".bitwright" / "keys" / "owner.key"
    public = tmp_path / ".bitwright" / "keys" / "owner.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_public_key(public)
    assert key.scheme == "ecdsa-sha2-nistp256"
    assert load_signer(private).public_key.keyid == key.keyid
    assert str(Path(".bitwright") / "keys" / "owner.key") in result.stderr
    assert key.keyid in result.stderr
    assert result.stdout == ""  # stdout is kept for --json


def test_second_keygen_refuses_and_force_replaces(tmp_path: Path) -> None:
    assert _keygen(tmp_path, "--out", "k").returncode == 0
    before = (tmp_path / "k" / "owner.key").read_bytes()

    refused = _keygen(tmp_path, "--out", "k")

    assert refused.returncode == 3
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (tmp_path / "k" / "owner.key").read_bytes() == before
    forced = _keygen(tmp_path, "--out", "k", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "k" / "owner.key").read_bytes() != before


def test_json_output_names_the_pair(tmp_path: Path) -> None:
    result = _keygen(tmp_path, "--out", "k", "--name", "ci", "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scheme"] == "ecdsa-sha2-nistp256"
    assert data["public_key"] == str(Path("k") / "ci.pub")
    assert load_public_key(tmp_path / "k" / "ci.pub").keyid == data["keyid"]


def test_a_key_type_that_cannot_release_is_refused_with_the_reason(tmp_path: Path) -> None:
    result = _keygen(tmp_path, "--type", "ed25519")

    assert result.returncode == 2
    assert "model-signing 1.1 makes with ECDSA keys only" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".bitwright").exists()


def test_usage_errors_exit_2_without_writing(tmp_path: Path) -> None:
    for args in (["--type", "rsa"], ["--name", "../evil"]):
        result = _keygen(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / ".bitwright").exists()
