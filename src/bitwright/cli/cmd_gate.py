"""``bitwright gate TARGET --policy FILE``: admit a model, or deny it naming each requirement.

TARGET is a release directory or a model directory. The table of requirements goes to
stderr; ``--json`` prints the decision on stdout; ``--out DIR --key KEY`` writes the signed
decision record (``decision.intoto.json``), ``decision.md`` and the claims-to-controls report
(``claims.md``, ``claims.json``). Exit 0 admit, 1 deny, 2 usage, 3 operational.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bitwright.cli.app import app, emit_json, stderr
from bitwright.errors import ExitCode, OperationalError, UsageError
from bitwright.fileio import write_text_atomic

if TYPE_CHECKING:
    from bitwright.gate.evaluate import Decision

__all__ = ["gate_command"]


@app.command("gate")
def gate_command(
    target: Annotated[Path, typer.Argument(help="A release directory or a model directory.")],
    policy: Annotated[Path, typer.Option("--policy", help="The policy file (YAML).")],
    profile: Annotated[
        str | None, typer.Option("--profile", help="The profile (default: the policy's).")
    ] = None,
    vsa: Annotated[
        list[Path] | None,
        typer.Option("--vsa", help="A rebuilder's VSA besides RELEASE/verdicts/; repeat."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="The gate's private key, to sign the record.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the signed record and reports here.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Judge a release against a policy: every requirement with its evidence; admit or deny."""
    from bitwright.gate.evaluate import evaluate
    from bitwright.gate.policy import load_policy

    if out is not None and key is None:
        raise UsageError("--out writes a signed record and needs the gate's --key", hint="--key")
    signer = None
    if key is not None:
        from bitwright.attest.signers import KeySigner

        signer = KeySigner.from_file(key)  # a bad key fails before the work, not after
    for path in vsa or ():
        if not path.is_file():
            raise OperationalError(f"VSA {path} not found", hint="check the --vsa path")
    loaded = load_policy(policy, profile=profile)
    decision = evaluate(target, loaded, vsa_files=vsa or ())
    _print_table(decision)
    if out is not None and signer is not None:
        from bitwright.gate.claims import claims_markdown, claims_report
        from bitwright.gate.record import write_decision

        written = write_decision(decision, signer, out)
        claims = claims_report(decision)
        write_text_atomic(out / "claims.json", json.dumps(claims, indent=2, sort_keys=True) + "\n")
        write_text_atomic(out / "claims.md", claims_markdown(claims))
        stderr.print(f"record: {escape(str(written['record']))}")
    if json_out:
        emit_json(decision.to_json())
    if decision.admitted:
        stderr.print(f"[green]admit[/]: {len(decision.requirements)} requirement(s) hold")
        return
    first = decision.failed[0]
    stderr.print(
        f"[bold red]deny[/]: {len(decision.failed)} requirement(s) failed; "
        f"{escape(first.id)}: {escape(first.summary)}",
        markup=True,
    )
    raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _print_table(decision: Decision) -> None:
    table = Table(
        title=f"bitwright gate {escape(decision.target)} ({decision.profile})", title_justify="left"
    )
    for column in ("requirement", "claim", "result", "why"):
        table.add_column(column, overflow="fold")
    for item in decision.requirements:
        result = "[green]pass[/]" if item.passed else "[bold red]FAIL[/]"
        table.add_row(escape(item.id), item.claim, result, escape(item.summary))
    stderr.print(table)
