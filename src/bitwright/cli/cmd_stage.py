"""``bitwright stage run NAME -- CMD...``: what each ``dvc.yaml`` cmd wraps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import stage_app, stderr
from bitwright.errors import StageFailed

__all__ = ["stage_run_command"]


@stage_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def stage_run_command(
    name: Annotated[str, typer.Argument(help="The stage name in dvc.yaml.")],
    cmd: Annotated[list[str], typer.Argument(help="The stage command, after `--`.")],
    strict: Annotated[
        bool | None,
        typer.Option("--strict/--warn", help="Undeclared inputs fail (default: the build's mode)."),
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="When run outside a build: allow a dirty tree.")
    ] = False,
) -> None:
    """Run one stage sealed and write its signed link; exit with the stage's status."""
    from bitwright.builder import run_stage  # where used: --help and start-up stay light

    try:
        outcome = run_stage(Path.cwd(), name, cmd, allow_dirty=allow_dirty, strict=strict)
    except StageFailed as exc:
        stderr.print(f"[bold red]error:[/] {escape(exc.diagnostics())}")
        code = exc.returncode if exc.returncode and exc.returncode > 0 else 1
        raise typer.Exit(code) from None
    for warning in outcome.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}")
    stderr.print(f"[dim]bitwright:[/] stage {name} linked: {outcome.link}")
