"""``bitwright keygen``: create the signing key pair (private 0600, public PEM).

Only ECDSA P-256 is offered: every release carries an OpenSSF model signature, which
model-signing 1.1 makes with ECDSA keys only, so another key type could build but never
release. ``--type ed25519`` is refused with that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitwright.cli.app import app, emit_json, stderr
from bitwright.errors import UsageError

__all__ = ["keygen_command"]

_OFFERED = "ecdsa"


@app.command("keygen")
def keygen_command(
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory for NAME.key and NAME.pub.", metavar="DIR"),
    ] = Path(".bitwright/keys"),
    key_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="ecdsa: ECDSA P-256, the one type in-toto, DSSE and model-signing all accept.",
            metavar="TYPE",
        ),
    ] = _OFFERED,
    name: Annotated[
        str, typer.Option("--name", help="File stem of the key pair.", metavar="NAME")
    ] = "owner",
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print paths and keyid as JSON.")
    ] = False,
) -> None:
    """Create a signing key pair: NAME.key (unencrypted PEM, mode 0600) and NAME.pub."""
    if key_type != _OFFERED:
        raise UsageError(
            f"key type {key_type!r} is not offered: every release carries an OpenSSF model "
            "signature, which model-signing 1.1 makes with ECDSA keys only",
            hint="use the default ECDSA P-256 key (--type ecdsa)",
        )
    from bitwright.attest import generate_keypair

    pair = generate_keypair(out, name=name, key_type=key_type, force=force)
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
