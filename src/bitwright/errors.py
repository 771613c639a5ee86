"""The error hierarchy of bitwright: every failure the library reports, with advice.

The CLI catches only :class:`BitwrightError`; anything else is a bug and shows a traceback.
Each error carries a one-line message (what failed, for which file or stage) and a hint
(what to do next), and maps to an exit code of the command-line contract::

    BitwrightError
    ├── UsageError (2)                 the command line or a config is wrong
    ├── OperationalError (3)           missing file, unreadable input, a tool failed
    │   ├── KeyProblem (3)            a signing or verification key is missing or unusable
    │   ├── DirtyTreeError (3)         the working tree differs from the commit
    │   └── ToolError (3)              git, dvc, bwrap ... failed
    └── CheckFailed (1)                a check said no
        ├── StageFailed (1)            a stage exited non-zero or broke its seal
        │   ├── ReceiptMismatch (1)    the stage ran with other settings than declared
        │   └── UndeclaredInput (1)    the stage read a file it does not declare (--strict)
        └── VerificationFailed (1)     a signature, digest or rule did not hold
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "BitwrightError",
    "CheckFailed",
    "DirtyTreeError",
    "ExitCode",
    "KeyProblem",
    "OperationalError",
    "ReceiptMismatch",
    "StageFailed",
    "ToolError",
    "UndeclaredInput",
    "UsageError",
    "VerificationFailed",
]


class ExitCode(IntEnum):
    """Exit codes of every bitwright command."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    OPERATIONAL = 3


class BitwrightError(Exception):
    """Base of every error bitwright reports to a user."""

    exit_code: ExitCode = ExitCode.OPERATIONAL

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """Return the message and, on the same line, the advice for a human."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class UsageError(BitwrightError):
    """The command line, a config file or a pipeline definition is wrong."""

    exit_code = ExitCode.USAGE


class OperationalError(BitwrightError):
    """A file is missing or unreadable, or a tool bitwright relies on failed."""

    exit_code = ExitCode.OPERATIONAL


class KeyProblem(OperationalError):
    """A signing or verification key is missing, unreadable or of an unsupported type."""


class DirtyTreeError(OperationalError):
    """The working tree differs from the commit a build would claim."""


class ToolError(OperationalError):
    """An external tool (git, dvc, bwrap, podman) failed."""


class CheckFailed(BitwrightError):
    """A check said no: the answer is a clear "no", not a malfunction."""

    exit_code = ExitCode.CHECK_FAILED


class StageFailed(CheckFailed):
    """A pipeline stage exited non-zero or broke its seal."""

    def __init__(
        self, stage: str, message: str, *, hint: str = "", returncode: int | None = None
    ) -> None:
        super().__init__(f"stage {stage!r}: {message}", hint=hint)
        self.stage = stage
        self.detail = message
        self.returncode = returncode


class ReceiptMismatch(StageFailed):
    """A stage's receipt contradicts its declared determinism settings."""


class UndeclaredInput(StageFailed):
    """A stage read repository files that are not among its declared deps."""


class VerificationFailed(CheckFailed):
    """A signature, digest, rule or comparison did not hold."""
