"""``bitwright nightly [RELEASE] --out DIR``: rebuild under variations, report, keep history.

Without RELEASE, HEAD of ``--repo`` is built in a clean clone and released with a fresh key
first. Exit 0 every stage reproduced under every variation applied, 1 a stage differs or
failed, 2 usage, 3 operational. ``--json`` prints the night's record on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bitwright.cli.app import app, emit_json, stderr
from bitwright.cli.cmd_verify import trust_policy
from bitwright.cli.options import DataRemoteOption, KeyOption, SourceOption, TrustOption
from bitwright.cli.progress import live_progress
from bitwright.errors import ExitCode
from bitwright.nightly.night import Night, Result
from bitwright.nightly.run import NightlyOutcome, run_nightly
from bitwright.rebuild.compare import Tolerance
from bitwright.runner.variations import CATALOG

__all__ = ["nightly_command"]

_STYLE = {
    Result.REPRODUCED: "green",
    Result.WITHIN_TOLERANCE: "yellow",
    Result.DIFFERENT: "bold red",
    Result.FAILED: "bold red",
}


@app.command("nightly")
def nightly_command(
    release: Annotated[
        Path | None, typer.Argument(help="The release to rebuild (default: build HEAD).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Reports, history and workspaces go here.")
    ] = Path("nightly"),
    key: KeyOption = None,
    trust: TrustOption = None,
    variation: Annotated[
        list[str] | None,
        typer.Option(
            "--variation", help=f"A variation to apply; repeat (known: {', '.join(CATALOG)})."
        ),
    ] = None,
    all_variations: Annotated[
        bool, typer.Option("--all", help="Apply every known variation, knobs included.")
    ] = False,
    history: Annotated[
        Path | None, typer.Option("--history", help="The history file (default OUT/history.jsonl).")
    ] = None,
    repo: Annotated[Path, typer.Option("--repo", help="Project whose HEAD is built.")] = Path("."),
    source: SourceOption = None,
    data_remote: DataRemoteOption = None,
    atol: Annotated[float | None, typer.Option("--atol", help="Absolute tolerance.")] = None,
    rtol: Annotated[float | None, typer.Option("--rtol", help="Relative tolerance.")] = None,
    keep_workspaces: Annotated[
        bool, typer.Option("--keep-workspaces", help="Keep every rebuild's workspace.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the night as JSON.")] = False,
) -> None:
    """Rebuild a release (or HEAD) under variations and keep a history of the nights."""
    policy = None
    if release is not None:
        policy = trust_policy(key or [], trust, [], [], None)
    tolerance = None
    if atol is not None or rtol is not None:
        tolerance = Tolerance(atol or 0.0, rtol or 0.0)
    names = list(CATALOG) if all_variations else (variation or None)
    with live_progress("nightly", json_out=json_out) as notify:
        outcome = run_nightly(
            release,
            policy,
            out=out,
            names=names,
            history=history,
            repo=repo,
            source=source,
            data_remote=data_remote,
            tolerance=tolerance,
            keep_workspaces=keep_workspaces,
            notify=notify,
        )
    _print_summary(outcome)
    if json_out:
        emit_json(outcome.night.to_record())
    if not outcome.night.result.reproduced:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _print_summary(outcome: NightlyOutcome) -> None:
    night: Night = outcome.night
    table = Table(title=f"bitwright nightly {escape(night.commit[:12])}", title_justify="left")
    table.add_column("variation")
    for stage in night.stages:
        table.add_column(escape(stage))
    for v in night.variations:
        cells = []
        for stage in night.stages:
            found = v.stage(stage)
            cells.append(f"[{_STYLE[found.result]}]{found.result.value}[/]" if found else "not run")
        table.add_row(escape(v.name), *cells)
    stderr.print(table)
    for skipped in night.skipped:
        stderr.print(f"[yellow]not applied:[/] {escape(skipped.name)}: {escape(skipped.reason)}")
    for since in outcome.since:
        stderr.print(f"[bold red]{escape(since.describe())}[/]")
    if outcome.skipped_history_lines:
        lines = ", ".join(str(n) for n in outcome.skipped_history_lines[:10])
        stderr.print(f"[yellow]note:[/] history lines that are not records were skipped: {lines}")
    style = _STYLE[night.result]
    stderr.print(f"[{style}]{night.result.value}[/] ({len(night.variations)} rebuilds)")
    for kind, path in sorted(outcome.outputs.items()):
        stderr.print(f"{kind}: {escape(path)}")
