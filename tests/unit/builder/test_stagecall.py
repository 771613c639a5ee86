"""Stage calls: the wire format, the argument forms forwarded, and the server's refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from bitwright.builder.context import BuildContext
from bitwright.builder.stagecall import (
    SOCKET_ENV,
    TOKEN_ENV,
    StageCall,
    StageReply,
    parse_stage_args,
)
from bitwright.builder.stageserver import StageServer
from bitwright.cli._stage_client import forward

NO_CONTEXT = cast(BuildContext, None)  # the refusals tested here never reach the pins


def _call(**changes: object) -> StageCall:
    fields: dict[str, object] = {
        "name": "train",
        "argv": ("python", "train.py"),
        "strict": None,
        "allow_dirty": False,
        "cwd": "/repo",
        "env": {"PATH": "/bin"},
        "token": "t0k",
    }
    fields.update(changes)
    return StageCall(**fields)  # type: ignore[arg-type]


def test_call_and_reply_survive_the_wire() -> None:
    call = _call(strict=True, argv=("python", "-c", "print('a b\\n')"))
    reply = StageReply(7, (("error", "stage train: boom\n  hint: fix it"), ("info", "done")))

    assert StageCall.decode(call.encode()) == call
    assert StageReply.decode(reply.encode()) == reply


@pytest.mark.parametrize("line", [b"[]", b'{"name": "x"}', b"not json", b'{"name": 1}'])
def test_malformed_calls_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        StageCall.decode(line)


@pytest.mark.parametrize(
    "line", [b"[]", b'{"exit_code": "0", "lines": []}', b'{"exit_code": 0, "lines": [["x"]]}']
)
def test_malformed_replies_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        StageReply.decode(line)


def test_plain_forms_are_parsed_and_the_rest_left_to_the_full_parser() -> None:
    assert parse_stage_args(["train", "--", "python", "t.py"]) == (
        "train",
        ("python", "t.py"),
        None,
        False,
    )
    assert parse_stage_args(["train", "--strict", "--allow-dirty", "--", "x"]) == (
        "train",
        ("x",),
        True,
        True,
    )
    assert parse_stage_args(["--warn", "train", "--", "x", "--strict"]) == (
        "train",
        ("x", "--strict"),
        False,
        False,
    )
    for other in (["train", "python", "t.py"], ["train", "--"], ["--", "x"], ["a", "b", "--", "x"]):
        assert parse_stage_args(other) is None
    assert parse_stage_args(["train", "--verbose", "--", "x"]) is None


def _send(path: str, payload: bytes) -> StageReply:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        data = b"".join(iter(lambda: conn.recv(65536), b""))
    return StageReply.decode(data)


def test_server_refuses_a_wrong_token_a_garbled_call_and_another_directory(
    tmp_path: Path,
) -> None:
    with StageServer(tmp_path, NO_CONTEXT) as env:
        path, token = env[SOCKET_ENV], env[TOKEN_ENV]
        assert os.stat(Path(path).parent).st_mode & 0o077 == 0  # a private directory

        wrong = _send(path, _call(cwd=str(tmp_path), token="guess").encode())
        garbled = _send(path, b'{"name": 1}\n')
        elsewhere = _send(path, _call(cwd="/", token=token).encode())

    assert (wrong.exit_code, wrong.lines[0][1]) == (2, "stage call with a wrong token refused")
    assert garbled.exit_code == 2 and "malformed stage call" in garbled.lines[0][1]
    assert elsewhere.exit_code == 2
    assert "not in the repository root" in elsewhere.lines[0][1]
    assert not Path(path).exists()  # the socket is gone once the build is done


def test_client_forwards_to_the_build_and_prints_its_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")  # not the repository root: the server refuses, with a reason
    with StageServer(tmp_path, NO_CONTEXT) as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = forward(["train", "--", "python", "train.py"])

    assert code == 2
    assert capsys.readouterr().err.startswith("error: stage train: runs in /, not in the")


def test_client_steps_aside_without_a_build_and_reports_a_gone_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    assert forward(["train", "--", "python", "train.py"]) is None

    monkeypatch.setenv(SOCKET_ENV, str(tmp_path / "gone.sock"))
    assert forward(["train", "python", "train.py"]) is None  # the full parser explains
    assert forward(["train", "--", "python", "train.py"]) == 3
    err = capsys.readouterr().err
    assert "the build that started it does not answer" in err
    assert "hint:" in err


def test_forwarding_imports_nothing_heavy() -> None:
    script = (
        "import sys, bitwright.cli.main, bitwright.cli._stage_client; "
        "heavy = [m for m in ('typer', 'rich', 'torch', 'dvc', 'pydantic', 'bitwright.runner', "
        "'bitwright.attest', 'bitwright.builder.stage') if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
