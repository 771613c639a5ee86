"""``bitwright release``: bundle the last build into a release directory and a tarball."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitwright.cli.app import app, emit_json, stderr
from bitwright.release.bundle import bundle_release

__all__ = ["release_command"]


@app.command("release")
def release_command(
    out: Annotated[Path, typer.Option("--out", help="Release directory to write.")] = Path(
        "dist/release"
    ),
    key: Annotated[
        Path | None, typer.Option("--key", help="Signing key (default .bitwright/keys/owner.key).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing release.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine output on stdout.")] = False,
    repo: Annotated[Path, typer.Option("--repo", help="Project root.")] = Path("."),
) -> None:
    """Bundle artifacts, provenance, links, layout, keys, AI BOM and model signature."""
    result = bundle_release(repo, out, key_path=key, force=force)
    if json_out:
        emit_json(
            {
                "directory": str(result.directory),
                "tarball": str(result.tarball),
                "commit": result.commit,
                "subjects": result.subjects,
            }
        )
    stderr.print(f"[green]released[/] {len(result.subjects)} artifact(s) of {result.commit[:12]}")
    stderr.print(f"directory: {result.directory}")
    stderr.print(f"tarball:   {result.tarball}")
