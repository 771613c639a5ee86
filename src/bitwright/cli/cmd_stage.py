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
        bool,
        typer.Option(
            "--allow-dirty",
            help="Accepted for old dvc.yaml files; outside a build a dirty tree is fine.",
            hidden=True,
        ),
    ] = False,
) -> None:
    """Run one stage sealed; under `bitwright build`, write its signed link."""
    from bitwright.builder import run_stage  # where used: --help and start-up stay light
    from bitwright.builder.stage import DEVELOPMENT_NOTE

    try:
        outcome = run_stage(Path.cwd(), name, cmd, strict=strict)
    except StageFailed as exc:
        stderr.print(f"[bold red]error:[/] {escape(exc.diagnostics())}")
        code = exc.returncode if exc.returncode and exc.returncode > 0 else 1
        raise typer.Exit(code) from None
    for warning in outcome.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}")
    if outcome.link is None:
        stderr.print(f"[dim]bitwright:[/] stage {name}: {DEVELOPMENT_NOTE}")
    else:
        stderr.print(f"[dim]bitwright:[/] stage {name} linked: {outcome.link}")
