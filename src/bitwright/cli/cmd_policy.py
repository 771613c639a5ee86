"""``bitwright policy init``: print a complete starter policy; ``policy schema``: its schema.

``init`` trusts exactly the ``--signer`` keys, requires every claim, and asks for K
REPRODUCED verdicts from distinct ``--verifier`` keys (K = ``--reproductions``, else one per
verifier). Exit 0, or 2 for a usage error (no signer, K larger than the verifiers), 3 for
an unreadable key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bitwright.cli.app import app

__all__ = ["policy_app", "policy_init_command", "policy_schema_command"]

policy_app = typer.Typer(help="Gate policies: a starter policy, the schema.")
app.add_typer(policy_app, name="policy")


@policy_app.command("init")
def policy_init_command(
    signer: Annotated[
        list[Path], typer.Option("--signer", help="A trusted signer's public key; repeat.")
    ],
    verifier: Annotated[
        list[Path] | None,
        typer.Option("--verifier", help="A trusted rebuilder's public key; repeat."),
    ] = None,
    reproductions: Annotated[
        int | None, typer.Option("--reproductions", help="REPRODUCED verdicts required.")
    ] = None,
    profile: Annotated[str, typer.Option("--profile", help="The profile's name.")] = "production",
) -> None:
    """Print a complete starter policy trusting exactly the keys given."""
    from bitwright.gate.starter import starter_policy

    text = starter_policy(signer, verifier or (), reproductions=reproductions, profile=profile)
    sys.stdout.write(text)


@policy_app.command("schema")
def policy_schema_command() -> None:
    """Print the policy's JSON schema."""
    from bitwright.gate.policy import schema_text

    sys.stdout.write(schema_text())
