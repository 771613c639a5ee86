"""``bitwright digest`` as a user runs it: sha256sum lines, tree lines, --json, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bitwright.cli.cmd_digest  # noqa: F401  (registers the command on the app)
from bitwright.cli.app import app

BITWRIGHT = Path(sys.executable).parent / "bitwright"


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.chdir(tmp_path)


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["digest", *args], catch_exceptions=False)
    return result.exit_code, result.stdout


def _files(root: Path) -> None:
    (root / "model").mkdir()
    (root / "model" / "weights.bin").write_bytes(os.urandom(3 << 20))
    (root / "model" / "config.json").write_bytes(b"{}")
    (root / "back\\slash.txt").write_bytes(b"escaped by sha256sum")
    (root / "plain.txt").write_bytes(b"plain")


def test_file_lines_are_accepted_by_sha256sum_check(tmp_path: Path) -> None:
    _files(tmp_path)

    code, out = _invoke("plain.txt", "model/weights.bin", "back\\slash.txt")

    assert code == 0
    assert out.splitlines()[0] == f"{hashlib.sha256(b'plain').hexdigest()}  plain.txt"
    (tmp_path / "SUMS").write_text(out)
    check = subprocess.run(["sha256sum", "-c", "SUMS"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 3


def test_directory_prints_its_tree_digest_with_a_slash(tmp_path: Path) -> None:
    _files(tmp_path)
    shell = "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum"
    expected = subprocess.run(
        ["sh", "-c", shell], cwd=tmp_path / "model", capture_output=True, text=True, check=True
    ).stdout.split()[0]

    code, out = _invoke("model")

    assert code == 0
    assert out == f"{expected}  model/\n"


def test_json_lists_trees_with_their_files_and_the_cache(tmp_path: Path) -> None:
    _files(tmp_path)

    code, out = _invoke("--json", "model", "plain.txt")

    assert code == 0
    data = json.loads(out)
    tree, plain = data["digests"]
    assert tree["path"] == "model/" and tree["type"] == "tree"
    assert set(tree["files"]) == {"config.json", "weights.bin"}
    assert tree["size"] == (3 << 20) + 2
    assert plain == {
        "path": "plain.txt",
        "type": "file",
        "sha256": hashlib.sha256(b"plain").hexdigest(),
        "size": 5,
    }
    assert data["cache"]["path"] == str(tmp_path / "cache.sqlite")


def test_no_cache_leaves_no_cache_file(tmp_path: Path) -> None:
    _files(tmp_path)

    code, out = _invoke("--json", "--no-cache", "plain.txt")

    assert code == 0
    assert json.loads(out)["cache"] is None
    assert not (tmp_path / "cache.sqlite").exists()


def _installed(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BITWRIGHT), "digest", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_missing_file_exits_3_with_one_line(tmp_path: Path) -> None:
    result = _installed("missing.bin", cwd=tmp_path)

    assert result.returncode == 3
    assert result.stdout == ""
    assert "missing.bin: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fifo_exits_3_and_success_exits_0(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "ok").write_bytes(b"ok")

    refused = _installed("pipe", cwd=tmp_path)
    fine = _installed("ok", cwd=tmp_path)

    assert refused.returncode == 3 and "pipe: is a fifo" in refused.stderr
    assert fine.returncode == 0 and fine.stdout.endswith("  ok\n")


def test_progress_goes_to_stderr_for_large_inputs_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    with (tmp_path / "big" / "sparse.bin").open("wb") as stream:
        stream.truncate(300 << 20)  # sparse: no disk, still 300 MiB to hash
    env = {**os.environ, "TTY_COMPATIBLE": "1"}  # rich then treats stderr as a terminal

    result = subprocess.run(
        [str(BITWRIGHT), "digest", "big"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("  big/\n") and len(result.stdout.splitlines()) == 1
    assert "hashing" in result.stderr


def test_a_cache_others_can_write_is_refused_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(shared / "cache.sqlite"))
    (tmp_path / "plain.txt").write_bytes(b"plain")
    done = subprocess.run(
        [str(BITWRIGHT), "digest", "plain.txt"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0
    assert done.stdout.startswith(hashlib.sha256(b"plain").hexdigest())
    assert "warning: not using the digest cache" in done.stderr
    assert "writable by other users" in done.stderr
    assert not (shared / "cache.sqlite").exists()
