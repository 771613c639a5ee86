"""``bitwright params``: compose ``params.yaml`` from the Hydra configs, or check it is current."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitwright.cli.app import app, stderr

__all__ = ["params_command"]


@app.command("params")
def params_command(
    write: Annotated[bool, typer.Option("--write", help="Rewrite params.yaml.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Hydra overrides, e.g. train.epochs=5.")
    ] = None,
    repo: Annotated[Path, typer.Option("--repo", help="Project root.")] = Path("."),
) -> None:
    """Check that params.yaml is the composition of configs/ (with --write: rewrite it)."""
    # Imported where used: --help and start-up stay light.
    from bitwright.pipeline import check_params_file, write_params_file

    if write:
        path = write_params_file(repo, overrides or ())
        stderr.print(f"wrote {path}")
        return
    check_params_file(repo)
    stderr.print("params.yaml is the composition of configs/")
