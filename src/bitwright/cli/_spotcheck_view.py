"""``bitwright rebuild RELEASE --spot-check N``: run the audit, print its verdicts, exit.

Progress and the table of checked segments go to stderr, ``--json`` prints the report on
stdout. Exit 0 when every drawn segment was reproduced and the run's checks held, 1 when a
segment is forged (or missing, mismatched) or a check failed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from bitwright.attest.trust import TrustPolicy
from bitwright.cli.app import emit_json, stderr
from bitwright.errors import ExitCode
from bitwright.rebuild.spotcheck import AuditOptions, spot_check_release

__all__ = ["spot_check_command"]


def spot_check_command(
    release: Path,
    policy: TrustPolicy,
    *,
    segments: int,
    seed: int | None,
    fraction: float | None,
    options: AuditOptions,
    out: Path | None,
    json_out: bool,
) -> None:
    """Audit ``segments`` training segments of ``release`` and report; exit 1 unless passed."""
    report = spot_check_release(
        release,
        policy,
        segments=segments,
        seed=seed,
        fraction=fraction,
        options=options,
        out=out,
        notify=lambda line: stderr.print(f"bitwright: {escape(line)}"),
    )
    for note in report.notes:
        stderr.print(f"note: {escape(note)}")
    for finding in report.findings:
        stderr.print(f"[bold red]finding:[/] {escape(finding)}")
    if report.checks:
        table = Table(title=f"spot-check of {escape(report.release)}", title_justify="left")
        for column in ("segment", "steps", "verdict", "detail"):
            table.add_column(column, overflow="fold")
        for check in report.checks:
            style = "green" if check.verdict.ok else "bold red"
            table.add_row(
                str(check.index),
                check.steps,
                f"[{style}]{check.verdict.value}[/]",
                escape(check.detail),
            )
        stderr.print(table)
    for fraction_text, probability in report.detection.items():
        stderr.print(
            f"caught a run with {float(fraction_text):.0%} forged segments: p = {probability:.4f}"
        )
    if report.cost:
        stderr.print(
            f"cost: replay {report.cost['replay_seconds']:.1f} s in "
            f"{int(report.cost['replay_processes'])} process(es), audit "
            f"{report.cost['audit_seconds']:.1f} s; training took "
            f"{report.cost['training_seconds']:.1f} s (replay "
            f"{report.cost['replay_fraction_of_training']:.1%} of it)"
        )
    if json_out:
        emit_json(report.to_json())
    verdict = "[green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    stderr.print(f"{verdict}: {escape(report.reason)}", markup=True)
    for kind, path in sorted(report.outputs.items()):
        stderr.print(f"{kind}: {escape(path)}")
    if not report.passed:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
