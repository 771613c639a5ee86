"""``bitwright verify`` as a user runs it: table on stderr, --json on stdout, exit codes.

In process (typer's runner) for what the command prints; as a subprocess of the console
script for what a broken release gives: one clear line, the right exit code, no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from release_factory import Release, resign_provenance
from typer.testing import CliRunner

import bitwright.cli.cmd_verify  # noqa: F401  (registers the command on the app)
import bitwright.cli.commands as commands
from bitwright.cli.app import app
from bitwright.errors import UsageError

BITWRIGHT = Path(sys.executable).parent / "bitwright"
# Until cli/commands.py imports cmd_verify, the console script does not know the command;
# this runs the same entry point with the command registered.
_ENTRY = "import bitwright.cli.cmd_verify; from bitwright.cli.main import run; run()"


def bitwright_verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    wired = hasattr(commands, "cmd_verify")
    argv = [str(BITWRIGHT)] if wired else [sys.executable, "-c", _ENTRY]
    return subprocess.run(
        [*argv, "verify", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["verify", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_honest_release_exits_0_with_a_table_and_json(release: Release) -> None:
    done = bitwright_verify(release.root, "--key", release.keys.owner.public_path, "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert {c["status"] for c in report["checks"] if c["name"] != "binding"} == {"passed"}
    assert "layout-signature" in done.stderr and "model-signature" in done.stderr
    assert _last_line(done.stderr).startswith("verified ")


def test_a_trust_file_serves_as_the_key(release: Release, tmp_path: Path) -> None:
    trust = tmp_path / "trust.toml"
    trust.write_text(f'keys = ["{release.keys.owner.public_path}"]\n')

    code, _, err = invoke(release.root, "--trust", trust)

    assert code == 0, err


def test_no_key_is_a_usage_error(release: Release) -> None:
    done = bitwright_verify(release.root)

    assert done.returncode == 2
    assert "verify trusts only keys you give it" in _last_line(done.stderr)
    assert done.stdout == ""


def test_identity_without_issuer_is_a_usage_error(release: Release) -> None:
    with pytest.raises(UsageError, match="1 --identity but 0 --issuer"):
        invoke(release.root, "--identity", "someone@example.org")


def test_tampered_artifact_exits_1_naming_check_and_file(release: Release) -> None:
    path = release.layout.artifact("release/metrics.json")
    path.write_text('{"accuracy": 0.99, "loss": 0.01}\n')

    code, out, err = invoke(release.root, "--key", release.keys.owner.public_path, "--json")

    assert code == 1
    assert _last_line(err).startswith(
        "verification failed: subjects: artifacts/release/metrics.json has sha256"
    )
    assert json.loads(out)["first_failure"] == "subjects"


def test_attackers_key_planted_in_keys_is_not_trusted(release: Release) -> None:
    resign_provenance(release, release.keys.stranger_signer())
    planted = release.layout.keys / "owner.pub"
    planted.write_bytes(release.keys.stranger.public_path.read_bytes())

    code, _, err = invoke(release.root, "--key", release.keys.owner.public_path)

    assert code == 1
    assert "verification failed: provenance-signature:" in _last_line(err)


@pytest.mark.parametrize(
    ("damage", "code", "line"),
    [
        ("truncate-provenance", 1, "provenance.intoto.json is not a DSSE envelope: invalid JSON"),
        ("unknown-predicate", 1, "unknown predicate type 'https://example.org/other/v1'"),
        ("missing-layout", 3, "root.layout not found: the release is incomplete"),
    ],
)
def test_broken_release_gives_one_clear_line_and_no_traceback(
    release: Release, damage: str, code: int, line: str
) -> None:
    if damage == "truncate-provenance":
        data = release.layout.provenance.read_bytes()
        release.layout.provenance.write_bytes(data[: len(data) // 2])
    elif damage == "unknown-predicate":
        resign_provenance(
            release,
            release.keys.owner_signer(),
            lambda s: s.update(predicateType="https://example.org/other/v1"),
        )
    else:
        release.layout.layout.unlink()

    done = bitwright_verify(release.root, "--key", release.keys.owner.public_path)

    assert done.returncode == code
    assert line in _last_line(done.stderr)
    assert "Traceback" not in done.stderr
