"""``bitwright stage run`` under a build: hand the stage to the build process and wait.

DVC starts one ``bitwright stage run`` per stage. When the build that started DVC serves stage
calls (:mod:`bitwright.builder.stagecall`), this process only forwards its arguments and prints
the answer: it imports nothing but the standard library and the protocol, so a stage costs the
build no second start-up of bitwright. Any other form of the command (no ``--``, an unknown
option) is left to the full command-line parser, which explains what is wrong.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence

from bitwright.builder.stagecall import (
    SOCKET_ENV,
    TOKEN_ENV,
    StageCall,
    StageReply,
    parse_stage_args,
    recv_line,
)

__all__ = ["forward"]

_PREFIX = {"error": "error: ", "warning": "warning: ", "info": "bitwright: "}


def forward(args: Sequence[str]) -> int | None:
    """Send ``args`` (what follows ``stage run``) to the build; return the exit status.

    Returns None when the build does not serve stage calls or ``args`` is not the plain
    ``NAME [options] -- CMD...`` form; the caller then runs the command itself.
    """
    path = os.environ.get(SOCKET_ENV)
    parsed = parse_stage_args(args)
    if not path or parsed is None:
        return None
    name, argv, strict, allow_dirty = parsed
    env = {k: v for k, v in os.environ.items() if k not in (SOCKET_ENV, TOKEN_ENV)}
    call = StageCall(
        name, argv, strict, allow_dirty, os.getcwd(), env, os.environ.get(TOKEN_ENV, "")
    )
    try:
        reply = _exchange(path, call)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:
        print(
            f"error: stage {name}: the build that started it does not answer ({exc})\n"
            "  hint: run the pipeline with `bitwright build`, or unset "
            f"{SOCKET_ENV} to run the stage on its own",
            file=sys.stderr,
        )
        return 3
    for level, text in reply.lines:
        print(_PREFIX.get(level, "") + text, file=sys.stderr)
    return reply.exit_code


def _exchange(path: str, call: StageCall) -> StageReply:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(call.encode())
        conn.shutdown(socket.SHUT_WR)
        line = recv_line(conn)
    if not line:
        raise ValueError("the build closed the connection without an answer")
    return StageReply.decode(line)
