"""``bitwright init``: adopt bitwright in an existing git + DVC project; ``--undo`` reverts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr
from bitwright.project import init_project, undo_init

__all__ = ["init_command"]


@app.command("init")
def init_command(
    undo: Annotated[
        bool,
        typer.Option("--undo", help="Unwrap dvc.yaml byte for byte; keep the key and config."),
    ] = False,
    no_key: Annotated[
        bool, typer.Option("--no-key", help="Do not make an owner key when there is none.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine output on stdout.")] = False,
    repo: Annotated[Path, typer.Option("--repo", help="Project root.")] = Path("."),
) -> None:
    """Wrap each dvc.yaml stage with the sealed stage runner; write config, .gitignore, key."""
    result = undo_init(repo) if undo else init_project(repo, make_key=not no_key)
    if json_out:
        emit_json(
            {
                "changes": list(result.changes),
                "wrapped" if not undo else "unwrapped": list(result.wrapped),
                "unchanged": list(result.already),
                "next": list(result.next_steps),
            }
        )
    for line in result.changes:
        stderr.print(f"[green]changed[/] {escape(line)}")
    if result.already:
        what = "not wrapped" if undo else "already wrapped"
        stderr.print(f"{what}: {escape(', '.join(result.already))}")
    if not result.changes:
        stderr.print("nothing to change")
    stderr.print("next:")
    for step in result.next_steps:
        stderr.print(f"  {escape(step)}")
