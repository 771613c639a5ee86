"""Helpers of the pins tests: run git and dvc in a test repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COMMIT_TIME = 1_700_000_000
DVC = str(Path(sys.executable).with_name("dvc"))


def hermetic_env(home: Path) -> dict[str, str]:
    """Environment additions: no user or system git config, fixed identities and dates."""
    env = {
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "DVC_NO_ANALYTICS": "1",
    }
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"] = "Pin Tester"
        env[f"GIT_{role}_EMAIL"] = "pins@example.org"
        env[f"GIT_{role}_DATE"] = f"@{COMMIT_TIME} +0000"
    return env


def _env(extra: dict[str, str] | None) -> dict[str, str] | None:
    return None if extra is None else {**os.environ, **extra}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in ``repo`` (``env`` added to the environment) and return its stripped output."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=_env(env)
    )
    return done.stdout.strip()


def dvc(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the venv's dvc in ``repo`` (``env`` added) and return its output."""
    done = subprocess.run(
        [DVC, *args], cwd=repo, capture_output=True, text=True, check=False, env=_env(env)
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
