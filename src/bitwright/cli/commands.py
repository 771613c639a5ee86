"""Which module registers each command on :data:`bitwright.cli.app.app`, imported on demand.

A stage run starts a ``bitwright`` process per stage; importing every command's libraries
(sigstore, CycloneDX, the rebuilder, DVC) would cost seconds each time, so only the invoked
command's module is imported. ``bitwright --help`` imports none: it lists the one-line
summaries below (a test holds each to its command's docstring). A command without a summary
here is imported for the help.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "COMMAND_SUMMARIES", "command_word", "register", "summaries"]

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

COMMAND_SUMMARIES = {
    "keygen": "Create a signing key pair: NAME.key (unencrypted PEM, mode 0600) and NAME.pub.",
    "build": "Pin inputs, run `dvc repro` with every stage sealed and linked, sign the layout.",
    "stage": "Run one pipeline stage sealed (what dvc.yaml cmds wrap).",
    "release": "Bundle the last build into a signed release directory and a tarball.",
    "verify": "Check a release without rebuilding it: signatures, in-toto chain, every file.",
    "rebuild": "Rebuild a release independently; compare it stage by stage, tensor by tensor.",
    "params": "Check that params.yaml is the composition of configs/ (with --write: rewrite it).",
    "digest": "Print the sha256 of files (sha256sum format) and the tree digest of directories.",
    "init": "Wrap each dvc.yaml stage with the sealed stage runner; write config, .gitignore, key.",
    "image": "The build image stages of a container build run in.",
    "scan": (
        "Judge model files by content: pickles against the allowlist, safetensors headers, code."
    ),
    "pin": "Trust-on-first-use pins of third-party models and datasets.",
    "policy": "Gate policies: a starter policy, the schema.",
    "vsa": "Verdicts (SLSA VSAs) of independent rebuilders.",
    "gate": "Judge a release against a policy: every requirement with its evidence; admit or deny.",
    "nightly": "Rebuild a release (or HEAD) under variations and keep a history of the nights.",
    "bisect": "Find the minimal change, or the first commit, that moves a stage's bits.",
}
"""The first line of each command's help, in the order ``bitwright --help`` lists them."""


def command_word(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option), or None."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def register(argv: Sequence[str]) -> None:
    """Import the module of the command named in ``argv`` (none for the top-level help).

    An unknown word imports nothing: the parser then says that there is no such command.
    """
    name = command_word(argv)
    if name in COMMAND_MODULES:
        importlib.import_module(f"bitwright.cli.{COMMAND_MODULES[name]}")


def summaries() -> dict[str, str]:
    """Command name -> its one-line summary, for the top-level help."""
    found = {n: s for n, s in COMMAND_SUMMARIES.items() if n in COMMAND_MODULES}
    for name, module in COMMAND_MODULES.items():
        if name not in found:  # a command without a summary here: ask the command itself
            importlib.import_module(f"bitwright.cli.{module}")
            found[name] = _registered_summary(name)
    return found


def _registered_summary(name: str) -> str:
    from bitwright.cli.app import app

    for info in app.registered_commands:
        if info.name == name and info.callback is not None:
            return (info.callback.__doc__ or "").strip().splitlines()[0]
    return ""
