"""Run a sealed command: stream its output to log files (and the user's stderr), digest it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bitwright.errors import OperationalError, ToolError
from bitwright.fileio import open_atomic
from bitwright.model.digests import Sha256

__all__ = ["Finished", "StatusChannel", "run_logged"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Finished:
    """A finished child: its status and the digests of what it wrote."""

    returncode: int
    stdout_sha256: Sha256
    stderr_sha256: Sha256


def run_logged(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout_log: Path,
    stderr_log: Path,
    echo: bool,
    channel: StatusChannel | None = None,
    pass_fds: Sequence[int] = (),
    umask: int | None = None,
) -> Finished:
    """Run ``command`` to its end with stdin closed, logging and digesting its output.

    Args:
        command: the argv, from a sandbox's ``wrap``.
        env: the complete environment.
        cwd: the working directory (on the host; a sandbox changes it itself).
        stdout_log: where standard output goes (written whole, then renamed into place).
        stderr_log: where standard error goes.
        echo: also copy both streams to this process's standard error as they arrive.
        channel: where the sandbox tool reports whether the stage ran (its write end was
            passed to ``wrap``); a tool that failed before running the stage raises.
        pass_fds: further descriptors the command inherits (the runner receipt's).
        umask: the child's umask; None inherits this process's.

    Raises:
        ToolError: the command could not be started, or the sandbox tool failed to set up.
    """
    argv = list(command)
    try:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(*pass_fds, *((channel.write_fd,) if channel else ())),
            umask=-1 if umask is None else umask,
        )
    except OSError as exc:
        raise ToolError(
            f"cannot start {argv[0]}: {exc.strerror}",
            hint="check that the stage's program exists and is executable",
        ) from exc
    finally:
        if channel:
            channel.close_writer()
    assert proc.stdout is not None and proc.stderr is not None
    pumps = (_Pump(proc.stdout, stdout_log, echo), _Pump(proc.stderr, stderr_log, echo))
    returncode, ran = _wait(proc, pumps, channel)
    if returncode >= 0 and not ran:
        last = pumps[1].tail.decode("utf-8", "replace").strip().splitlines()
        raise ToolError(
            f"{argv[0]} could not set up the sandbox: {last[-1] if last else 'no message'}",
            hint="check that bubblewrap works here: bwrap --ro-bind / / true",
        )
    return Finished(returncode, pumps[0].sha256(), pumps[1].sha256())


def _wait(
    proc: subprocess.Popen[bytes], pumps: Sequence[_Pump], channel: StatusChannel | None
) -> tuple[int, bool]:
    """Pump the output until the command ends; its status and whether the stage ran.

    Raises:
        OperationalError: a log could not be written.
    """
    for pump in pumps:
        pump.start()
    try:
        returncode = proc.wait()
        ran = channel.stage_ran() if channel else True
    except BaseException:  # interrupted: never leave a stage running behind
        proc.kill()
        proc.wait()
        raise
    finally:
        for pump in pumps:
            pump.join()
        if channel:
            channel.close()
    for pump in pumps:
        if pump.error is not None:
            raise OperationalError(
                f"cannot write the stage log {pump.log}: {pump.error.message}",
                hint="check that the log directory is writable and the disk is not full",
            ) from pump.error
    return returncode, ran


class StatusChannel:
    """A pipe on which a sandbox tool reports the stage's exit (bubblewrap's JSON status)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self._writer_open = True
        self._reader_open = True

    def close_writer(self) -> None:
        """Close this process's copy of the write end (the tool keeps its own)."""
        if self._writer_open:
            os.close(self.write_fd)
            self._writer_open = False

    def close(self) -> None:
        """Close both ends (idempotent)."""
        self.close_writer()
        if self._reader_open:
            os.close(self.read_fd)
            self._reader_open = False

    def stage_ran(self) -> bool:
        """Read the reports (after the tool exited); whether the stage's exit was reported."""
        self.close_writer()
        chunks = []
        os.set_blocking(self.read_fd, False)
        while True:
            try:
                chunk = os.read(self.read_fd, _CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
            try:
                if "exit-code" in json.loads(line):
                    return True
            except (ValueError, TypeError):
                continue
        return False


class _Pump(threading.Thread):
    """Copies one output stream to its log file (and stderr), hashing it on the way."""

    def __init__(self, stream: IO[bytes], log: Path, echo: bool) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.log = log
        self.echo = echo
        self.hash = hashlib.sha256()
        self.tail = b""
        self.error: OperationalError | None = None

    def run(self) -> None:
        try:
            self._copy()
        except (OSError, OperationalError) as exc:  # raised again by the caller, in its thread
            self.error = exc if isinstance(exc, OperationalError) else OperationalError(str(exc))
            with contextlib.suppress(OSError):
                while os.read(self.stream.fileno(), _CHUNK):  # never leave the child blocked
                    pass

    def _copy(self) -> None:
        sink = getattr(sys.stderr, "buffer", None) if self.echo else None
        with open_atomic(self.log) as out:
            while chunk := os.read(self.stream.fileno(), _CHUNK):
                self.hash.update(chunk)
                out.write(chunk)
                self.tail = (self.tail + chunk)[-4096:]
                if sink is not None:
                    sink.write(chunk)
                    sink.flush()
        self.stream.close()

    def sha256(self) -> Sha256:
        return Sha256(self.hash.hexdigest())
