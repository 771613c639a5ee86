"""``bitwright scan PATH``: whether model files are safe to load, judged by content.

Findings go to stderr, one line each; ``--json`` prints the report on stdout. Exit 0 clean,
1 unsafe (code that would run on load, code shipped with the model, or a format the scanner
cannot judge, unless allowed), 2 usage, 3 unreadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr
from bitwright.errors import ExitCode, UsageError
from bitwright.scan import FAMILIES, ScanPolicy

__all__ = ["scan_command"]


@app.command("scan")
def scan_command(
    path: Annotated[Path, typer.Argument(help="A model file or a directory of them.")],
    allow_custom_code: Annotated[
        bool, typer.Option("--allow-custom-code", help="Code shipped with the model is no fault.")
    ] = False,
    allow_unknown: Annotated[
        bool,
        typer.Option("--allow-unknown-formats", help="Files of formats it cannot judge pass."),
    ] = False,
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--allow", help=f"Allowlist families to admit (default all: {', '.join(FAMILIES)})."
        ),
    ] = None,
    external: Annotated[
        bool,
        typer.Option("--external", help="Also run picklescan/fickling/modelscan when installed."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Judge model files by content: pickles against the allowlist, safetensors headers, code."""
    families = frozenset(family or FAMILIES)
    unknown = sorted(families - set(FAMILIES))
    if unknown:
        raise UsageError(
            f"unknown allowlist family {unknown[0]!r}", hint=f"use {', '.join(FAMILIES)}"
        )
    policy = ScanPolicy(
        allow_custom_code=allow_custom_code,
        allow_unknown_formats=allow_unknown,
        families=families,
    )
    from bitwright.scan import scan_path

    report = scan_path(path, policy=policy, digests=json_out)
    if external:
        from bitwright.scan.external import with_external_evidence

        report = with_external_evidence(report, path)
    for finding in report.findings:
        style = "bold red" if policy.blocks(finding) else "yellow"
        stderr.print(f"[{style}]{finding.severity.value}[/] {escape(finding.line())}")
    for evidence in report.external:
        stderr.print(f"{evidence.tool} {evidence.version}: {evidence.verdict}: {evidence.detail}")
    if json_out:
        emit_json(report.to_json())
    files = len(report.files)
    if report.clean:
        stderr.print(f"[green]clean[/]: {files} file(s) safe to load")
        return
    stderr.print(
        f"[bold red]unsafe[/]: {len(report.blocking)} blocking finding(s) in {files} file(s)"
    )
    raise typer.Exit(int(ExitCode.CHECK_FAILED))
