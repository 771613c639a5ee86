"""``policy init``, ``policy schema`` and ``gate`` as scripts call them: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bitwright.attest import generate_keypair
from bitwright.attest.keys import KeyPair
from bitwright.gate.policy import SCHEMA_FILE, parse_policy

BITWRIGHT = Path(sys.executable).parent / "bitwright"


def bitwright(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BITWRIGHT), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    folder = tmp_path_factory.mktemp("keys")
    return {n: generate_keypair(folder, name=n) for n in ("owner", "alice", "bob")}


def test_policy_init_prints_a_complete_policy(keys: dict[str, KeyPair]) -> None:
    done = bitwright(
        "policy", "init", "--signer", keys["owner"].public_path,
        "--verifier", keys["alice"].public_path, "--verifier", keys["bob"].public_path,
        "--reproductions", "2", "--profile", "release",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    policy = parse_policy(done.stdout.encode())
    assert policy.default_profile == "release"
    assert policy.profiles["release"].reproducibility.verdicts == 2


@pytest.mark.parametrize(
    "args",
    [
        ["policy", "init"],
        ["policy", "init", "--signer", "{owner}", "--reproductions", "1"],
    ],
)
def test_policy_init_usage_errors_exit_2(keys: dict[str, KeyPair], args: list[str]) -> None:
    done = bitwright(*(a.format(owner=keys["owner"].public_path) for a in args))

    assert done.returncode == 2
    assert done.stdout == ""


def test_policy_schema_prints_the_published_schema() -> None:
    done = bitwright("policy", "schema")

    assert done.returncode == 0
    assert json.loads(done.stdout) == json.loads(SCHEMA_FILE.read_text())


def test_gate_exit_codes_for_bad_input(keys: dict[str, KeyPair], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(bitwright("policy", "init", "--signer", keys["owner"].public_path).stdout)
    (tmp_path / "model").mkdir()

    missing = bitwright("gate", tmp_path / "nothing", "--policy", policy)
    bad_policy = bitwright("gate", tmp_path / "model", "--policy", tmp_path / "model")
    unsigned_out = bitwright("gate", tmp_path / "model", "--policy", policy, "--out", tmp_path)
    unknown_profile = bitwright("gate", tmp_path / "model", "--policy", policy, "--profile", "x")

    assert missing.returncode == 3 and "is not a directory" in missing.stderr
    assert bad_policy.returncode == 3 and "not a regular file" in bad_policy.stderr
    assert unsigned_out.returncode == 2 and "needs the gate's --key" in unsigned_out.stderr
    assert unknown_profile.returncode == 2 and "no profile 'x'" in unknown_profile.stderr
    assert "Traceback" not in missing.stderr + bad_policy.stderr + unsigned_out.stderr


def test_gate_on_a_bare_model_directory_denies_naming_provenance(
    keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(bitwright("policy", "init", "--signer", keys["owner"].public_path).stdout)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")

    done = bitwright("gate", tmp_path / "model", "--policy", policy, "--json")

    assert done.returncode == 1
    decision = json.loads(done.stdout)
    assert decision["decision"] == "deny"
    assert decision["requirements"][0]["id"] == "provenance"
    assert "deny:" in done.stderr and "provenance" in done.stderr
