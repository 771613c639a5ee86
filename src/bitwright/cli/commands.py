"""Which module registers each command on :data:`bitwright.cli.app.app`, imported on demand.

A stage run starts a ``bitwright`` process per stage; importing every command's libraries
(sigstore, CycloneDX, model-signing, the rebuilder) would cost seconds each time, so only the
invoked command's module is imported. Help and unknown words import them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "register"]

COMMAND_MODULES = {
    "bisect": "cmd_bisect",
    "build": "cmd_build",
    "digest": "cmd_digest",
    "gate": "cmd_gate",
    "image": "cmd_image",
    "init": "cmd_init",
    "keygen": "cmd_keygen",
    "nightly": "cmd_nightly",
    "params": "cmd_params",
    "pin": "cmd_pin",
    "policy": "cmd_policy",
    "rebuild": "cmd_rebuild",
    "release": "cmd_release",
    "scan": "cmd_scan",
    "stage": "cmd_stage",
    "verify": "cmd_verify",
    "vsa": "cmd_vsa",
}


def register(argv: Sequence[str]) -> None:
    """Import the module of the command named in ``argv`` (all of them if none is named)."""
    words = [arg for arg in argv if not arg.startswith("-")]
    name = words[0] if words else None
    wanted = [COMMAND_MODULES[name]] if name in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in wanted:
        importlib.import_module(f"bitwright.cli.{module}")
