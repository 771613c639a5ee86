"""``bitwright digest PATH...``: sha256 of files and trees, parallel and cached.

Files print as ``sha256sum`` lines (``sha256sum -c`` accepts them); a directory prints its tree
digest as ``HEX  DIR/`` (format in :mod:`bitwright.digest.tree`). ``--json`` prints one object
with every per-file digest of each tree. Progress goes to stderr for more than 256 MiB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bitwright.cli.app import PROGRESS_THRESHOLD, app, byte_progress, emit_json, stderr

if TYPE_CHECKING:
    from rich.progress import Progress

    from bitwright.digest import DigestCache, TreeDigest
    from bitwright.model.digests import Sha256

__all__ = ["digest_command", "sha256sum_line"]


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


@app.command("digest")
def digest_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files and directories to digest.", show_default=False),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (with per-file digests).")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Read every file; neither use nor fill the cache.")
    ] = False,
) -> None:
    """Print the sha256 of files (sha256sum format) and the tree digest of directories."""
    from bitwright.digest import default_cache

    cache = None if no_cache else default_cache()
    try:
        targets = _plan(paths, sizes_of_trees=stderr.is_terminal)
        total = sum(t.size for t in targets)
        if total > PROGRESS_THRESHOLD and stderr.is_terminal:
            with byte_progress() as progress:
                files, trees = _digest_all(targets, cache, progress)
        else:
            files, trees = _digest_all(targets, cache, None)
        if as_json:
            emit_json(_as_json(targets, files, trees, cache))
            return
        for target in targets:
            if target.is_tree:
                line = sha256sum_line(trees[target.path].sha256, _tree_name(target.path))
            else:
                line = sha256sum_line(files[target.path], str(target.path))
            typer.echo(line)
    finally:
        if cache is not None:
            cache.close()
