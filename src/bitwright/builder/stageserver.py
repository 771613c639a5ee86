"""Serve the stage calls of one build from inside the build process (see :mod:`.stagecall`).

While ``dvc repro`` runs, :class:`StageServer` listens on a Unix socket in a private temporary
directory (mode 0700) and answers each ``bitwright stage run`` that DVC starts: it checks the
call's token and working directory, runs the stage with :func:`~bitwright.builder.stage.run_stage`
(sealed, judged and linked exactly as the standalone command does, with the build's context
already in memory) and replies with the exit status and the lines to print. Calls are served
one at a time, in one thread; ``dvc repro`` runs stages one at a time too.

A stage cannot reach the server: the socket's path and token are only in DVC's environment,
and a sealed stage starts from a cleared one with a private ``/tmp``.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import shutil
import socket
import tempfile
import threading
import traceback
from pathlib import Path
from types import TracebackType

from bitwright.builder.context import BuildContext
from bitwright.builder.stage import run_stage
from bitwright.builder.stagecall import (
    SOCKET_ENV,
    TOKEN_ENV,
    StageCall,
    StageReply,
    recv_line,
)
from bitwright.errors import BitwrightError, ExitCode, StageFailed

__all__ = ["StageServer"]

_READ_TIMEOUT = 30.0


class StageServer:
    """Runs the stage calls of one build; a context manager around ``dvc repro``.

    Entering starts the server and returns the variables to add to DVC's environment;
    leaving stops it and removes the socket.
    """

    def __init__(self, repo: Path, context: BuildContext) -> None:
        self._repo = repo.resolve()
        self._context = context
        self._token = secrets.token_hex(16)
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._dir: Path | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> dict[str, str]:
        self._dir = Path(tempfile.mkdtemp(prefix="bitwright-"))
        path = self._dir / "stages.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            listener.listen(4)
        except OSError:
            listener.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name="bitwright-stages", daemon=True)
        self._thread.start()
        return {SOCKET_ENV: str(path), TOKEN_ENV: self._token}

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes a blocked accept() at once on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
        # A call still running means DVC went away mid-stage; the process is ending and
        # the stage's sandbox dies with it, so only an idle server is waited for.
        if self._thread is not None and not self._busy.is_set():
            self._thread.join()
        if self._listener is not None:
            self._listener.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()  # shutdown() in __exit__ ends the wait
            except OSError:
                return
            self._busy.set()
            try:
                with conn:
                    self._answer(conn)
            finally:
                self._busy.clear()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(_READ_TIMEOUT)
        try:
            call = StageCall.decode(recv_line(conn))
        except OSError:
            return
        except ValueError as exc:
            reply = _refusal(f"malformed stage call: {exc}")
        else:
            if not hmac.compare_digest(call.token.encode(), self._token.encode()):
                reply = _refusal("stage call with a wrong token refused")
            else:
                conn.settimeout(None)
                reply = self.run(call)
        with contextlib.suppress(OSError):  # the caller is gone (DVC was interrupted)
            conn.sendall(reply.encode())

    def run(self, call: StageCall) -> StageReply:
        """Run one stage call as ``bitwright stage run`` would, and say how it went."""
        cwd = Path(call.cwd).resolve()
        if cwd != self._repo:
            return _refusal(
                f"stage {call.name}: runs in {cwd}, not in the repository root {self._repo} "
                "(hint: remove `wdir:` from the stage in dvc.yaml)"
            )
        try:
            outcome = run_stage(
                self._repo,
                call.name,
                call.argv,
                strict=call.strict,
                context=self._context,
                host_env=call.env,
            )
        except StageFailed as exc:
            code = exc.returncode if exc.returncode and exc.returncode > 0 else 1
            return StageReply(code, (("error", exc.diagnostics()),))
        except BitwrightError as exc:
            return StageReply(int(exc.exit_code), (("error", exc.diagnostics()),))
        except Exception as exc:  # a bug must not leave DVC waiting on a dead server
            traceback.print_exc()
            return StageReply(
                int(ExitCode.CHECK_FAILED),
                (("error", f"stage {call.name}: internal error {type(exc).__name__}: {exc}"),),
            )
        lines = [("warning", warning) for warning in outcome.warnings]
        lines.append(("info", f"stage {call.name} linked: {outcome.link}"))
        return StageReply(0, tuple(lines))


def _refusal(message: str) -> StageReply:
    return StageReply(int(ExitCode.USAGE), (("error", message),))
