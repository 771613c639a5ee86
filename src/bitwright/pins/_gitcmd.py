"""Run the git binary for the pins layer: one place for its environment and its failures."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bitwright.errors import OperationalError, ToolError

__all__ = ["git_bytes", "git_text", "repo_toplevel"]

# Variables that would point git at another repository, index or object store than the
# one named by ``-C``: a pin describes the repository it was asked about, nothing else.
_REDIRECTING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_VARS}
    # C locale: messages we match on stay English; no optional locks: pinning must not
    # rewrite the index (another git process may hold it) nor wait for a password prompt.
    env.update(LC_ALL="C", GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    return env


def git_bytes(repo: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    """Run ``git -C repo ARGS`` and return its standard output.

    Raises:
        OperationalError: ``repo`` is not a git work tree.
        ToolError: git is missing or failed.
    """
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input_bytes,
            capture_output=True,
            env=_environment(),
            check=False,
        )
    except FileNotFoundError:
        raise ToolError(
            "git is not installed (needed to pin the source commit)",
            hint="install git (apt-get install git) and run again",
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        last = message[-1] if message else f"exit status {done.returncode}"
        if "not a git repository" in last or "must be run in a work tree" in last:
            raise OperationalError(
                f"{repo} is not a git work tree",
                hint="run bitwright in a git clone of the project (git init, git commit)",
            )
        if "dubious ownership" in " ".join(message):
            raise OperationalError(
                f"git refuses {repo}: it is owned by another user",
                hint=f"git config --global --add safe.directory {repo}",
            )
        raise ToolError(f"git {args[0]} failed in {repo}: {last}", hint="check the repository")
    return done.stdout


def git_text(repo: Path, *args: str) -> str:
    """Run git like :func:`git_bytes` and return its output as stripped text."""
    return git_bytes(repo, *args).decode("utf-8", errors="surrogateescape").strip()


def repo_toplevel(repo: Path) -> Path:
    """Return the top directory of the work tree that holds ``repo``.

    Raises:
        OperationalError: ``repo`` does not exist or is not in a git work tree.
    """
    if not repo.is_dir():
        raise OperationalError(
            f"{repo} is not a directory", hint="pass the root of the project's git clone"
        )
    return Path(git_text(repo, "rev-parse", "--show-toplevel"))
