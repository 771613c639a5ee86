"""The call a ``bitwright stage run`` makes to the build that started it, and the answer.

Under ``bitwright build``, DVC starts one ``bitwright stage run NAME -- CMD`` per stage. Rather
than import bitwright's machinery and read the build's pins again in every one of them, that
process sends its arguments to the build process, which already holds the pins, the key and
the imports, over a Unix socket whose path and token are in :data:`SOCKET_ENV` and
:data:`TOKEN_ENV` (set only in DVC's environment; a sealed stage never sees them). The build
runs the stage sealed and links it exactly as the standalone command would, and answers with
the exit status and the lines to print.

One JSON object per line each way. This module uses the standard library only: the caller
imports nothing else of bitwright.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_MESSAGE",
    "SOCKET_ENV",
    "TOKEN_ENV",
    "StageCall",
    "StageReply",
    "parse_stage_args",
    "recv_line",
]

SOCKET_ENV = "BITWRIGHT_STAGE_SOCKET"
"""The build's Unix socket for stage calls."""

TOKEN_ENV = "BITWRIGHT_STAGE_TOKEN"
"""The secret a stage call must carry."""

MAX_MESSAGE = 1 << 20
"""The longest request or reply line accepted, in bytes."""

_STRICT = {"--strict": True, "--warn": False}


@dataclass(frozen=True)
class StageCall:
    """What ``bitwright stage run`` was asked to do, and where.

    Attributes:
        name: the stage name.
        argv: the stage command (what follows ``--``).
        strict: ``--strict`` (True), ``--warn`` (False), or neither (None: the build's mode).
        allow_dirty: ``--allow-dirty`` was given (meaningful only outside a build).
        cwd: the directory DVC ran the command in.
        env: the caller's environment (the sealed stage takes only an allowlist from it).
        token: the build's secret, from :data:`TOKEN_ENV`.
    """

    name: str
    argv: tuple[str, ...]
    strict: bool | None
    allow_dirty: bool
    cwd: str
    env: Mapping[str, str]
    token: str

    def encode(self) -> bytes:
        """One JSON line."""
        body = {**self.__dict__, "argv": list(self.argv), "env": dict(self.env)}
        return json.dumps(body, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> StageCall:
        """Read a line :meth:`encode` wrote.

        Raises:
            ValueError: it is not such a line.
        """
        data = _json_object(line, "stage call")
        argv, env = data.get("argv"), data.get("env")
        strict = data.get("strict")
        if not (
            isinstance(data.get("name"), str)
            and isinstance(argv, list)
            and all(isinstance(a, str) for a in argv)
            and strict in (None, True, False)
            and isinstance(data.get("allow_dirty"), bool)
            and isinstance(data.get("cwd"), str)
            and isinstance(env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
            and isinstance(data.get("token"), str)
        ):
            raise ValueError("a stage call lacks a field or has one of the wrong type")
        return cls(
            data["name"], tuple(argv), strict, data["allow_dirty"], data["cwd"], env, data["token"]
        )


@dataclass(frozen=True)
class StageReply:
    """The build's answer: the exit status, and ``(level, text)`` lines for stderr.

    ``level`` is ``error``, ``warning`` or ``info``.
    """

    exit_code: int
    lines: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        """One JSON line."""
        body = {"exit_code": self.exit_code, "lines": [list(line) for line in self.lines]}
        return json.dumps(body).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> StageReply:
        """Read a line :meth:`encode` wrote.

        Raises:
            ValueError: it is not such a line.
        """
        data = _json_object(line, "stage reply")
        code, lines = data.get("exit_code"), data.get("lines")
        if not isinstance(code, int) or not isinstance(lines, list):
            raise ValueError("a stage reply has an exit_code and lines")
        pairs = []
        for item in lines:
            if not (
                isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)
            ):
                raise ValueError("a stage reply line is a [level, text] pair")
            pairs.append((item[0], item[1]))
        return cls(code, tuple(pairs))


def recv_line(conn: socket.socket) -> bytes:
    """Read one line (without its newline) from ``conn``, up to its end or the peer's close.

    Raises:
        ValueError: the line is longer than :data:`MAX_MESSAGE`.
        OSError: the connection failed.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := conn.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
        if size > MAX_MESSAGE:
            raise ValueError(f"a line longer than {MAX_MESSAGE} bytes")
    return b"".join(chunks).split(b"\n", 1)[0]


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"a {what} is a JSON object")
    return data


def parse_stage_args(args: Sequence[str]) -> tuple[str, tuple[str, ...], bool | None, bool] | None:
    """Parse ``NAME [--strict|--warn|--allow-dirty]... -- CMD...`` (what follows ``stage run``).

    Returns:
        ``(name, argv, strict, allow_dirty)``, or None for any other form (a missing ``--``,
        an unknown option, an empty command): the full command-line parser then handles it
        and explains what is wrong.
    """
    if "--" not in args:
        return None
    split = list(args).index("--")
    head, argv = list(args[:split]), tuple(args[split + 1 :])
    names = [a for a in head if not a.startswith("-")]
    if len(names) != 1 or not argv:
        return None
    strict: bool | None = None
    allow_dirty = False
    for option in (a for a in head if a.startswith("-")):
        if option == "--allow-dirty":
            allow_dirty = True
        elif option in _STRICT:
            strict = _STRICT[option]
        else:
            return None
    return names[0], argv, strict, allow_dirty
