"""``bitwright keygen``: create the signing key pair (private 0600, public PEM)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bitwright.attest import DEFAULT_KEY_DIR, generate_keypair
from bitwright.cli.app import app, emit_json, stderr

__all__ = ["KeyTypeChoice", "keygen_command"]


class KeyTypeChoice(StrEnum):
    """Key types ``keygen`` offers."""

    ECDSA = "ecdsa"
    ED25519 = "ed25519"


@app.command("keygen")
def keygen_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for NAME.key and NAME.pub.")
    ] = DEFAULT_KEY_DIR,
    key_type: Annotated[
        KeyTypeChoice,
        typer.Option("--type", help="ecdsa = ECDSA P-256 (in-toto, DSSE, model-signing)."),
    ] = KeyTypeChoice.ECDSA,
    name: Annotated[str, typer.Option("--name", help="File stem of the key pair.")] = "owner",
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print paths and keyid as JSON.")
    ] = False,
) -> None:
    """Create a signing key pair: NAME.key (unencrypted PEM, mode 0600) and NAME.pub."""
    pair = generate_keypair(out, name=name, key_type=key_type.value, force=force)
    stderr.print(f"private key: {pair.private_path} (unencrypted PEM, mode 0600; never commit it)")
    stderr.print(f"public key:  {pair.public_path}")
    stderr.print(f"keyid:       {pair.keyid} ({pair.scheme})")
    if json_out:
        emit_json(
            {
                "private_key": str(pair.private_path),
                "public_key": str(pair.public_path),
                "keyid": pair.keyid,
                "scheme": pair.scheme,
            }
        )
