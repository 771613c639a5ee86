"""``bitwright release``: bundle the last build into a signed release directory and a tarball.

``--out`` is checked before any work: a file, a directory that is not an earlier release of
bitwright's, or anything precious (a ``.git``, a private key, the project, the working or
home directory) is refused; ``--force`` replaces only an earlier release. The release is
checked as ``bitwright verify`` would check it before it is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitwright.cli.app import app, emit_json, stderr

__all__ = ["release_command"]


@app.command("release")
def release_command(
    out: Annotated[
        Path, typer.Option("--out", help="Release directory to write.", metavar="DIR")
    ] = Path("dist/release"),
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="Signing key (default .bitwright/keys/owner.key).", metavar="KEY"
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier release at --out.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine output on stdout.")] = False,
    repo: Annotated[Path, typer.Option("--repo", help="Project root.", metavar="DIR")] = Path("."),
) -> None:
    """Bundle the last build into a signed release directory and a tarball."""
    from bitwright.release.bundle import bundle_release
    from bitwright.verify import check_candidate

    result = bundle_release(repo, out, key_path=key, force=force, check=check_candidate)
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
