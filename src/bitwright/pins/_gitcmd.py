"""bitwright's one git access layer: git commands through GitPython, with a careful environment.

Every git command bitwright runs goes through :func:`git_bytes` (pins, work-tree checks, the
rebuild's clone): GitPython runs the git binary (which knows every object format and applies
the repository's filters), and this module decides its environment and turns its failures
into bitwright's errors.

The environment: no optional locks (pinning must not rewrite the index another git process
may hold), no terminal prompt, the C locale (messages matched on stay English). And no
redirection: a pin describes the repository it was asked about, so where the caller's
environment names another repository, index or object store (``GIT_DIR``, ``GIT_INDEX_FILE``
...), that variable is pinned to the value of the repository found from the path itself,
the way git would discover it (GitPython passes the caller's environment through, so a
variable cannot simply be dropped). Where none is set, git discovers the repository itself,
and refuses one owned by another user, as it should.

GitPython is imported on first use: it costs ~0.2 s, which commands that never touch git
(and stage processes) do not pay.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bitwright.errors import OperationalError, ToolError

__all__ = [
    "REDIRECTING_VARS",
    "clone_at_commit",
    "git_bytes",
    "git_paths",
    "git_text",
    "repo_toplevel",
]

REDIRECTING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
)
"""Variables that would point git at another repository than the one named by the path."""

_FIXED = {"LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
_ARGS_PER_CALL = 512  # paths per command line, well below any ARG_MAX


def _discover(path: Path) -> tuple[Path, Path, Path] | None:
    """The work tree, git dir and common dir holding ``path``, found as git finds them."""
    from git.repo.fun import find_submodule_git_dir, is_git_dir

    for top in (path, *path.parents):
        dotgit = top / ".git"
        found = find_submodule_git_dir(dotgit) if dotgit.exists() else None
        if found is not None and is_git_dir(found):
            git_dir = Path(found)
            common = git_dir
            commondir = git_dir / "commondir"
            if commondir.is_file():
                common = (git_dir / commondir.read_text().strip()).resolve()
            return top, git_dir, common
    return None


def _environment(repo: Path, *, new: bool = False) -> dict[str, str]:
    """What to add to the caller's environment for a git command about ``repo``.

    ``new``: ``repo`` is the directory a clone is about to create a repository in.
    """
    env = dict(_FIXED)
    present = [name for name in REDIRECTING_VARS if name in os.environ]
    if not present:
        return env
    found = (repo, repo / ".git", repo / ".git") if new else _discover(repo.resolve())
    if found is None:
        return env  # git will say that this is no repository
    top, git_dir, common = found
    own = {
        "GIT_DIR": str(git_dir),
        "GIT_WORK_TREE": str(top),
        "GIT_INDEX_FILE": str(git_dir / "index"),
        "GIT_OBJECT_DIRECTORY": str(common / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_COMMON_DIR": str(common),
        "GIT_NAMESPACE": "",
    }
    env.update({name: own[name] for name in present})
    return env


def _execute(cwd: Path | None, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, str]:
    from git import Git
    from git.exc import GitCommandNotFound

    try:
        status, out, err = Git(cwd).execute(
            ["git", *argv],
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            env=env,
        )
    except GitCommandNotFound:
        raise ToolError(
            "git is not installed (needed to pin the source commit)",
            hint="install git (apt-get install git) and run again",
        ) from None
    message: Any = err
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return int(status), bytes(out), text


def git_bytes(repo: Path, *args: str) -> bytes:
    """Run ``git ARGS`` in the work tree ``repo`` and return its standard output.

    Raises:
        OperationalError: ``repo`` is not a git work tree, or git refuses it.
        ToolError: git is missing or failed.
    """
    status, out, err = _execute(repo, list(args), _environment(repo))
    if status != 0:
        _fail(repo, args, status, err)
    return out


def git_paths(repo: Path, args: Sequence[str], paths: Sequence[str]) -> Iterator[bytes]:
    """Run ``git ARGS -- PATHS`` in batches (long path lists); yield each batch's output."""
    for start in range(0, len(paths), _ARGS_PER_CALL):
        yield git_bytes(repo, *args, "--", *paths[start : start + _ARGS_PER_CALL])


def _fail(repo: Path, args: Sequence[str], status: int, err: str) -> None:
    message = err.strip().splitlines()
    last = message[-1] if message else f"exit status {status}"
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


def clone_at_commit(source: str, commit: str, workspace: Path) -> None:
    """Clone ``source`` into the empty directory ``workspace`` and check out ``commit``.

    A commit that no branch holds is fetched by its id. The clone prompts for nothing.

    Raises:
        OperationalError: the source cannot be cloned, or does not hold the commit.
        ToolError: git is missing.
    """
    env = {**_environment(workspace, new=True), "GIT_ASKPASS": "true"}
    argv = ["clone", "--quiet", "--no-checkout", source, str(workspace)]
    status, _, err = _execute(None, argv, env)
    if status != 0:
        raise OperationalError(
            f"cannot clone the source {source}: {_last_line(err, status)}",
            hint="pass a reachable clone of the repository with --source PATH|URL",
        )
    env = {**_environment(workspace), "GIT_ASKPASS": "true"}
    if _execute(workspace, ["cat-file", "-e", f"{commit}^{{commit}}"], env)[0] != 0:
        _execute(workspace, ["fetch", "--quiet", "origin", commit], env)
    status, _, err = _execute(workspace, ["checkout", "--quiet", "--detach", commit], env)
    if status != 0:
        raise OperationalError(
            f"the source {source} does not have commit {commit[:12]}: {_last_line(err, status)}",
            hint="pass a clone that has the released commit with --source PATH|URL",
        )


def _last_line(err: str, status: int) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {status}"
