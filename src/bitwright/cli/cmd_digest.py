"""``bitwright digest PATH...``: sha256 of files and trees, parallel and cached.

The work is :func:`bitwright.cli.digest_run.run_digest`, which :mod:`.main` also calls
directly for plain command lines (no typer at start-up); this module gives the command its
options and help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitwright.cli.app import app
from bitwright.cli.digest_run import run_digest, sha256sum_line

__all__ = ["digest_command", "sha256sum_line"]


@app.command("digest")
def digest_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files and directories to digest.", show_default=False, metavar="PATH"),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (with per-file digests).")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Read every file; neither use nor fill the cache.")
    ] = False,
) -> None:
    """Print the sha256 of files (sha256sum format) and the tree digest of directories."""
    run_digest(paths, as_json=as_json, no_cache=no_cache)
