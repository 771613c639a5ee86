"""``bitwright pin add SOURCE`` / ``pin check``: TOFU pins of third-party models and datasets.

``pin add`` fetches a local path, an ``http(s)`` URL or ``hf://ORG/NAME@REVISION`` into the
repository and records every file's sha256 and size in ``thirdparty.pins.json``; ``pin
check`` fetches again, re-reads the local copies and names every file that changed. Exit 0
ok, 1 changed, 2 usage, 3 a source could not be fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr
from bitwright.errors import ExitCode

__all__ = ["pin_add_command", "pin_app", "pin_check_command"]

pin_app = typer.Typer(help="Trust-on-first-use pins of third-party models and datasets.")
app.add_typer(pin_app, name="pin")

_Repo = Annotated[Path, typer.Option("--repo", help="Project root.")]
_Offline = Annotated[
    bool, typer.Option("--offline", help="Fetch from local caches only (huggingface_hub).")
]
_Json = Annotated[bool, typer.Option("--json", help="Machine output on stdout.")]


@pin_app.command("add")
def pin_add_command(
    source: Annotated[
        str, typer.Argument(help="A local path, an http(s) URL, or hf://ORG/NAME@REVISION.")
    ],
    to: Annotated[
        str | None, typer.Option("--to", help="Repository path for the files (third_party/...).")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="model or dataset.")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Pin a path again, trusting its source anew.")
    ] = False,
    offline: _Offline = False,
    json_out: _Json = False,
    repo: _Repo = Path("."),
) -> None:
    """Fetch a third-party model or dataset and pin every file's sha256 and size."""
    from bitwright.pins.tofu import PINS_FILE, add_pin

    pinned = add_pin(repo, source, to=to, kind=kind, offline=offline, replace=replace)
    if json_out:
        emit_json({"path": pinned.path, **pinned.to_json()})
    revision = f" at {pinned.revision}" if pinned.revision else ""
    stderr.print(
        f"[green]pinned[/] {escape(pinned.path)}: {len(pinned.files)} file(s) of "
        f"{escape(pinned.source)}{escape(revision)}, sha256 {pinned.sha256[:16]}..."
    )
    stderr.print(f"commit {PINS_FILE}; declare {escape(pinned.path)} as a dep of the stages")


@pin_app.command("check")
def pin_check_command(
    paths: Annotated[list[str] | None, typer.Argument(help="Pins to check (default: all).")] = None,
    local_only: Annotated[
        bool, typer.Option("--local-only", help="Re-read the local copies; fetch nothing.")
    ] = False,
    offline: _Offline = False,
    json_out: _Json = False,
    repo: _Repo = Path("."),
) -> None:
    """Fetch every pinned source again and re-read its local copy; fail on any change."""
    from bitwright.pins.tofu import check_pins

    changes = check_pins(repo, paths or (), offline=offline, fetch_sources=not local_only)
    if json_out:
        emit_json(
            {
                "ok": not changes,
                "changes": [
                    {
                        "pin": c.pin,
                        "file": c.file,
                        "what": c.what,
                        "where": c.where,
                        "detail": c.detail,
                    }
                    for c in changes
                ],
            }
        )
    for change in changes:
        stderr.print(f"[bold red]{change.what}[/]: {escape(change.line())}")
    if changes:
        stderr.print(
            f"[bold red]{len(changes)} file(s) differ from their pins[/] (hint: find out why; "
            "`bitwright pin add --replace` trusts the new content)"
        )
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
    stderr.print("[green]every pinned file is as first seen[/]")
