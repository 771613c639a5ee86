"""What ``bitwright digest`` does, without the command-line library: the command's fast path.

``bitwright digest PATH...`` is often run many times by scripts, and a cached pass over a
tree takes milliseconds: the interpreter and typer would be most of its cost. So
:mod:`.main` answers the plain forms (``digest [--json] [--no-cache] [--] PATH...``) here,
importing only :mod:`bitwright.digest`; anything else (``--help``, an unknown option) goes
through the typer command (:mod:`.cmd_digest`), which calls the same :func:`run_digest`.

Files print as ``sha256sum`` lines (``sha256sum -c`` accepts them); a directory prints its tree
digest as ``HEX  DIR/`` (format in :mod:`bitwright.digest.tree`). ``--json`` prints one object
with every per-file digest of each tree. Progress goes to stderr for more than 256 MiB.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress

    from bitwright.digest import DigestCache, TreeDigest
    from bitwright.model.digests import Sha256

__all__ = ["PROGRESS_THRESHOLD", "fast_arguments", "run_digest", "sha256sum_line"]

PROGRESS_THRESHOLD = 256 << 20
"""Inputs larger than this (bytes) get a progress bar, on a terminal."""

_FLAGS = ("--json", "--no-cache")


def fast_arguments(args: Sequence[str]) -> tuple[list[Path], bool, bool] | None:
    """(paths, --json, --no-cache) of a plain ``digest`` command line, or None for the rest."""
    paths: list[str] = []
    flags: set[str] = set()
    only_paths = False
    for arg in args:
        if only_paths or not arg.startswith("-") or arg == "-":
            paths.append(arg)
        elif arg == "--":
            only_paths = True
        elif arg in _FLAGS:
            flags.add(arg)
        else:
            return None  # --help, a typo: the full parser explains
    if not paths:
        return None
    return [Path(p) for p in paths], "--json" in flags, "--no-cache" in flags


def _stderr_is_terminal() -> bool:
    """Whether stderr is a terminal, as rich decides it (its environment overrides first)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    if "FORCE_COLOR" in os.environ:
        return os.environ["FORCE_COLOR"] != ""
    try:
        return sys.stderr.isatty()
    except ValueError:  # a closed stream
        return False


def run_digest(paths: list[Path], *, as_json: bool, no_cache: bool) -> None:
    """Digest ``paths`` and print the result on stdout (progress on a terminal's stderr).

    Raises:
        OperationalError: a path is missing, unreadable, or not a regular file or directory.
    """
    from bitwright.digest import open_default_cache

    on_terminal = _stderr_is_terminal() and not as_json  # --json: quiet, machine output only
    cache, refused = (None, "") if no_cache else open_default_cache()
    if refused:
        sys.stderr.write(f"warning: not using the digest cache: {refused}\n")
    try:
        targets = _plan(paths, sizes_of_trees=on_terminal)
        if sum(t.size for t in targets) > PROGRESS_THRESHOLD and on_terminal:
            from bitwright.cli.app import byte_progress

            with byte_progress() as progress:
                files, trees = _digest_all(targets, cache, progress)
        else:
            files, trees = _digest_all(targets, cache, None)
        if as_json:
            text = json.dumps(_as_json(targets, files, trees, cache), indent=2, sort_keys=True)
            sys.stdout.write(text + "\n")
        else:
            for target in targets:
                if target.is_tree:
                    line = sha256sum_line(trees[target.path].sha256, _tree_name(target.path))
                else:
                    line = sha256sum_line(files[target.path], str(target.path))
                sys.stdout.write(line + "\n")
        sys.stdout.flush()
    finally:
        if cache is not None:
            cache.close()


@dataclass(frozen=True)
class _Target:
    path: Path
    is_tree: bool
    size: int


def sha256sum_line(digest: str, name: str) -> str:
    """Return a line as GNU ``sha256sum`` prints it (escaping names with backslash, LF or CR)."""
    if any(c in name for c in "\\\n\r"):
        escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}"
    return f"{digest}  {name}"


def _plan(paths: list[Path], sizes_of_trees: bool) -> list[_Target]:
    """Classify the paths; walk trees for their size only when progress needs a total."""
    from bitwright.digest import stat_regular, walk_tree

    targets = []
    for path in paths:
        if os.path.isdir(path):
            size = sum(entry.size for entry in walk_tree(path)) if sizes_of_trees else 0
            targets.append(_Target(path, True, size))
        else:
            targets.append(_Target(path, False, stat_regular(path).st_size))
    return targets


def _tree_name(path: Path) -> str:
    return str(path).rstrip("/") + "/" if str(path) != "/" else "/"


def _digest_all(
    targets: list[_Target], cache: DigestCache | None, progress: Progress | None
) -> tuple[dict[Path, Sha256], dict[Path, TreeDigest]]:
    task = None
    if progress is not None:
        task = progress.add_task("hashing", total=sum(t.size for t in targets))

    def advance(n: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, n)

    from bitwright.digest import digest_tree, sha256_files

    on_bytes = advance if progress is not None else None
    files = sha256_files([t.path for t in targets if not t.is_tree], cache, on_bytes=on_bytes)
    trees = {t.path: digest_tree(t.path, cache, on_bytes=on_bytes) for t in targets if t.is_tree}
    return files, trees


def _as_json(
    targets: list[_Target],
    files: dict[Path, Sha256],
    trees: dict[Path, TreeDigest],
    cache: DigestCache | None,
) -> dict[str, Any]:
    digests: list[dict[str, Any]] = []
    for target in targets:
        if target.is_tree:
            tree = trees[target.path]
            digests.append(
                {
                    "path": _tree_name(target.path),
                    "type": "tree",
                    "sha256": tree.sha256,
                    "size": tree.size,
                    "files": tree.files,
                }
            )
        else:
            digests.append(
                {
                    "path": str(target.path),
                    "type": "file",
                    "sha256": files[target.path],
                    "size": target.size,
                }
            )
    cache_info = None
    if cache is not None:
        stats = cache.stats
        cache_info = {"path": str(cache.path), "hits": stats.hits, "misses": stats.misses}
    return {"digests": digests, "cache": cache_info}
