"""``bitwright image build``: the reproducible build image, its digest into the image lock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr

__all__ = ["image_app", "image_build_command"]

image_app = typer.Typer(help="The build image stages of a container build run in.")
app.add_typer(image_app, name="image")


@image_app.command("build")
def image_build_command(
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Resolve the inputs anew (apt sources, project lock) and relock."
        ),
    ] = False,
    push: Annotated[
        bool, typer.Option("--push", help="Store the image archive in the project's DVC remote.")
    ] = False,
    load: Annotated[
        bool, typer.Option("--load/--no-load", help="Load the image into podman (the default).")
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Machine output on stdout.")] = False,
    repo: Annotated[Path, typer.Option("--repo", help="Project root.")] = Path("."),
) -> None:
    """Build the image of containers/image.toml bit for bit; pin it in containers/images.lock."""
    from bitwright.image.build import build_image  # mmdebstrap, wheels, OCI: only here

    result = build_image(
        repo,
        update=update,
        load=load,
        push=push,
        notify=lambda line: stderr.print(f"[dim]bitwright:[/] {escape(line)}"),
    )
    if json_out:
        emit_json(
            {
                "name": result.lock.name,
                "digest": result.image.digest,
                "archive": str(result.archive),
                "archive_sha256": result.lock.archive_sha256,
                "archive_md5": result.lock.archive_md5,
                "archive_size": result.lock.archive_size,
                "reproduced": result.reproduced,
                "resolved": result.resolved,
                "loaded": result.loaded,
                "pushed": result.pushed,
            }
        )
    how = "reproduced the locked" if result.reproduced else "built and locked"
    stderr.print(f"[green]{how}[/] image {result.lock.name}@{result.image.digest}")
    stderr.print(f"archive: {result.archive}")
    if not result.loaded and load:
        stderr.print("[yellow]warning:[/] podman is not installed: the image was not loaded")
