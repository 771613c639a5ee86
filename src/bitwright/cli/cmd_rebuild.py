"""``bitwright rebuild RELEASE --compare``: rebuild a release independently and compare it.

Trusts only the keys given (``--key``, ``--trust``). ``--out`` is checked before any work (a
new or empty directory, or an earlier report). Progress and a table of stages (and of
tensors or fields that differ) go to stderr; ``--json`` prints the report on stdout. Exit 0
reproduced (bitwise or within tolerance), 1 different or failed, 2 usage, 3 operational.
The rebuild always compares; ``--compare`` is accepted for the spelling DESIGN.md uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bitwright.cli.app import app, emit_json, stderr
from bitwright.cli.cmd_build import Builder
from bitwright.cli.cmd_verify import trust_policy
from bitwright.cli.options import DataRemoteOption, KeyOption, SourceOption, TrustOption
from bitwright.cli.progress import live_progress, progress_wanted
from bitwright.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from bitwright.rebuild.report import RebuildReport

__all__ = ["rebuild_command"]

_STYLE = {
    "REPRODUCED": "green",
    "REPRODUCED_WITHIN_TOLERANCE": "yellow",
    "DIFFERENT": "bold red",
    "FAILED": "bold red",
}
_MAX_ROWS = 20


@app.command("rebuild")
def rebuild_command(
    release: Annotated[Path, typer.Argument(help="The release directory.", metavar="RELEASE")],
    compare: Annotated[
        bool, typer.Option("--compare", help="Compare with the release (always done).")
    ] = True,
    key: KeyOption = None,
    trust: TrustOption = None,
    source: SourceOption = None,
    data_remote: DataRemoteOption = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="An empty directory to rebuild in.", metavar="DIR"),
    ] = None,
    strict_env: Annotated[
        bool, typer.Option("--strict-env", help="Any environment drift fails the rebuild.")
    ] = False,
    stage: Annotated[
        str | None,
        typer.Option("--stage", help="Rebuild only this stage from its materials.", metavar="NAME"),
    ] = None,
    verifier_key: Annotated[
        Path | None,
        typer.Option(
            "--verifier-key", help="Your private key to sign the rebuild and VSA.", metavar="KEY"
        ),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option("--atol", help="Absolute tolerance for every stage.", metavar="X"),
    ] = None,
    rtol: Annotated[
        float | None,
        typer.Option("--rtol", help="Relative tolerance for every stage.", metavar="X"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write report.md, report.html, report.json and vsa.intoto.json here.",
            metavar="DIR",
        ),
    ] = None,
    builder: Annotated[
        Builder,
        typer.Option("--builder", help="Rebuild sealed on this host, or in the build image."),
    ] = Builder.SANDBOX,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    spot_check: Annotated[
        int | None,
        typer.Option("--spot-check", help="Audit N training segments instead of a full rebuild."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Draw the segments from this seed (repeatable).")
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option("--fraction", help="Also report the odds for this forged fraction."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Replay segments in N processes.")] = 1,
    ray_address: Annotated[
        str | None, typer.Option("--ray", help="Replay segments on this Ray cluster.")
    ] = None,
) -> None:
    """Rebuild a release independently; compare it stage by stage, tensor by tensor."""
    from rich.markup import escape

    from bitwright.rebuild.compare import Tolerance
    from bitwright.rebuild.flow import rebuild_release

    if spot_check is not None and stage is not None:  # a usage error before any key is read
        raise UsageError(
            "--spot-check audits training segments; it cannot be combined with --stage",
            hint="drop --stage, or drop --spot-check to rebuild one stage",
        )
    policy = trust_policy(key or [], trust, [], [], None)
    tolerance = None
    if atol is not None or rtol is not None:
        tolerance = Tolerance(atol or 0.0, rtol or 0.0)
    if spot_check is not None:
        from bitwright.cli._spotcheck_view import spot_check_command
        from bitwright.rebuild.spotcheck import AuditOptions

        options = AuditOptions(
            jobs, ray_address, source, data_remote, workspace, verifier_key, tolerance
        )
        return spot_check_command(
            release,
            policy,
            segments=spot_check,
            seed=seed,
            fraction=fraction,
            options=options,
            out=out,
            json_out=json_out,
        )
    with live_progress("rebuild", json_out=json_out) as notify:
        report = rebuild_release(
            release,
            policy,
            source=source,
            data_remote=data_remote,
            workspace=workspace,
            strict_env=strict_env,
            stage=stage,
            verifier_key=verifier_key,
            tolerance=tolerance,
            out=out,
            sandbox=builder.sandbox,
            notify=notify,
            quiet_tools=progress_wanted(json_out),
        )
    _print_tables(report)
    if json_out:
        emit_json(report.to_json())
    style = _STYLE[report.verdict.value]
    stderr.print(f"[{style}]{report.verdict.value}[/]: {escape(report.reason)}")
    for kind, path in sorted(report.outputs.items()):
        stderr.print(f"{kind}: {escape(path)}")
    if not report.reproduced:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _print_tables(report: RebuildReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    for line in report.notes:
        stderr.print(f"note: {escape(line)}")
    for line in report.drift:
        stderr.print(f"[yellow]drift:[/] {escape(line)}")
    for data in report.data:
        if not data.ok:
            stderr.print(f"[bold red]data {escape(data.path)}:[/] {escape(data.detail)}")
    if report.stages:
        table = Table(title=f"bitwright rebuild {escape(report.release)}", title_justify="left")
        for column in ("stage", "materials", "products", "verdict", "note"):
            table.add_column(column, overflow="fold")
        for s in report.stages:
            style = _STYLE[s.verdict.value]
            table.add_row(
                escape(s.stage),
                s.summary("materials"),
                s.summary("products"),
                f"[{style}]{s.verdict.value}[/] ({s.role.value})",
                escape(s.note),
            )
        stderr.print(table)
    _print_differences(report)


def _print_differences(report: RebuildReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    files = report.differing_files()
    tensors = [(f.path, t) for f in files for t in f.tensors if not t.bit_exact]
    fields = [(f.path, d) for f in files for d in f.fields]
    if tensors:
        table = Table(title="tensors that differ", title_justify="left")
        for column in ("file", "tensor", "differing", "max abs", "max rel", "max ULP"):
            table.add_column(column)
        for path, t in tensors[:_MAX_ROWS]:
            table.add_row(
                escape(path),
                escape(t.name),
                f"{t.differing}/{t.total}",
                f"{t.max_abs:.3g}",
                f"{t.max_rel:.3g}",
                str(t.max_ulp),
            )
        stderr.print(table)
    if fields:
        table = Table(title="fields that differ", title_justify="left")
        for column in ("file", "field", "original", "rebuilt"):
            table.add_column(column, overflow="fold")
        for path, d in fields[:_MAX_ROWS]:
            table.add_row(
                escape(path), escape(d.path), escape(str(d.original)), escape(str(d.rebuilt))
            )
        stderr.print(table)
    for f in files:
        if not f.tensors and not f.fields:
            stderr.print(f"{escape(f.path)}: {f.verdict.value}: {escape(f.detail)}")
