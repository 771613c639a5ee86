"""Receipts: collect what a stage's processes reported they ran with, and check it, fail closed.

Three sources (:mod:`bitwright.model.receipt`):

* the **runner receipt**, for every stage: the runner starts the stage through a tiny shim
  (``python -I -S``, no site, no hook) which, inside the sandbox, records its process id,
  umask (as the kernel reports it) and environment on a descriptor the runner passed it, an
  unnamed file nothing in the sandbox can reach by path, closes it, and becomes the stage's
  command (``exec``), which keeps the process id and inherits exactly what was recorded;
* the **Python receipt** of every Python process of the stage, written at its exit by the
  runner's start-up hook (``_trace/sitecustomize.py``);
* the **stagekit receipts** of processes whose code called ``bitwright.stagekit.begin()``.

The second and third are appended to one JSON-lines file in the run's private directory. The
checks (:mod:`._receipt_checks`) compare every declared setting with what was observed, and
a missing record that the declaration needs fails the stage.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from bitwright.errors import OperationalError, VerificationFailed
from bitwright.fileio import load_json, read_regular
from bitwright.model.receipt import (
    PythonReceipt,
    RunnerReceipt,
    StagekitReceipt,
    StageReceipts,
)
from bitwright.runner._receipt_checks import Expectation, check_receipts

__all__ = [
    "RUNNER_UMASK",
    "Expectation",
    "check_receipts",
    "is_python_command",
    "parse_runner_receipt",
    "read_receipts",
    "shim_argv",
]

RUNNER_UMASK = 0o022
"""The umask every stage runs with (set by the runner, confirmed by the runner receipt)."""

MAX_RECEIPTS_BYTES = 16 << 20
"""The largest receipt file read (a stage that writes more has broken its receipts)."""

# Run as `python -I -S -c SHIM FD ARGV...`: record pid, umask and environment on FD, then
# become ARGV. The descriptor is closed before exec: the stage itself never holds it.
_SHIM = """\
import os, sys
fd = int(sys.argv[1]); argv = sys.argv[2:]
try:
    with open("/proc/self/status", "rb") as fh:
        umask = [l.split()[1] for l in fh if l.startswith(b"Umask:")][0]
except (OSError, IndexError):
    mask = os.umask(0); os.umask(mask); umask = b"%04o" % mask
env = b"\\0".join(k + b"=" + v for k, v in sorted(os.environb.items()))
os.write(fd, b"%d\\n%s\\n" % (os.getpid(), umask) + env)
os.close(fd)
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write(f"{argv[0]}: cannot run it: {exc.strerror}\\n")
    os._exit(127)
"""

_PYTHON_RE = re.compile(r"python(\d+(\.\d+)?)?")
_HINT_BROKEN = "the stage must only write receipts through bitwright's runner and stagekit"


def shim_argv(argv: Sequence[str], fd: int, python: str = sys.executable) -> list[str]:
    """Return the argv that records the runner receipt on ``fd``, then runs ``argv``.

    ``python`` is the interpreter that runs the shim (the standard library alone suffices).
    """
    return [python, "-I", "-S", "-c", _SHIM, str(fd), *argv]


def is_python_command(argv: Sequence[str]) -> bool:
    """Whether ``argv`` starts a Python interpreter (its own Python receipt is then required)."""
    return bool(argv) and _PYTHON_RE.fullmatch(os.path.basename(argv[0])) is not None


def parse_runner_receipt(data: bytes) -> RunnerReceipt | None:
    """Read what the shim wrote (None when it wrote nothing: it never ran).

    Raises:
        OperationalError: the bytes are not a runner receipt.
    """
    if not data:
        return None
    try:
        pid, umask, env_blob = data.split(b"\n", 2)
        env: dict[str, str] = {}
        for entry in env_blob.split(b"\0") if env_blob else ():
            name, sep, value = entry.partition(b"=")
            if not sep:
                raise ValueError(f"environment entry {entry[:40]!r} has no '='")
            env[os.fsdecode(name)] = os.fsdecode(value)
        return RunnerReceipt(pid=int(pid), umask=umask.decode("ascii"), env=env)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OperationalError(
            f"the runner receipt is malformed: {exc}",
            hint="this is a bug in bitwright's runner; report it",
        ) from exc


def read_receipts(path: Path, runner: RunnerReceipt | None) -> StageReceipts:
    """Return the stage's receipts: ``runner``, and the JSON lines of ``path`` (absent: none).

    Raises:
        OperationalError: the file is not a regular file, is too large, or a line is not a
            receipt (names the file and the line).
    """
    raw = b""
    if path.exists() or path.is_symlink():
        try:
            raw = read_regular(path, limit=MAX_RECEIPTS_BYTES)
        except OperationalError as exc:
            raise OperationalError(
                f"cannot read the receipt file {path}: {exc.message}", hint=_HINT_BROKEN
            ) from exc
    python: list[PythonReceipt] = []
    stagekit: list[StagekitReceipt] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            kind, data = _parse_line(line, path, number)
            if kind == "python":
                python.append(_build(PythonReceipt, data, path, number))
            else:
                stagekit.append(_build(StagekitReceipt, data, path, number))
    return StageReceipts(runner=runner, python=tuple(python), stagekit=tuple(stagekit))


def _parse_line(line: bytes, path: Path, number: int) -> tuple[str, dict[str, Any]]:
    where = f"line {number} of the receipt file {path}"
    try:
        data = load_json(line, source=where, hint=_HINT_BROKEN, what="a receipt", max_depth=8)
    except VerificationFailed as exc:
        raise OperationalError(exc.message, hint=_HINT_BROKEN) from exc
    if not isinstance(data, dict) or data.get("kind") not in ("python", "stagekit"):
        raise OperationalError(
            f"{where} is not a receipt: it has no known 'kind'", hint=_HINT_BROKEN
        )
    kind = str(data.pop("kind"))
    return kind, data


_Receipt = TypeVar("_Receipt", PythonReceipt, StagekitReceipt)


def _build(cls: type[_Receipt], data: dict[str, Any], path: Path, number: int) -> _Receipt:
    try:
        return cls.from_json(data)
    except ValueError as exc:
        raise OperationalError(
            f"line {number} of the receipt file {path} is not a receipt: {exc}",
            hint=_HINT_BROKEN,
        ) from exc
