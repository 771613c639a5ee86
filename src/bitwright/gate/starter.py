"""The starter policy ``bitwright policy init`` prints: complete, strict, and meant to be edited.

It trusts exactly the signer keys given (embedded as PEM), requires every claim the gate can
check, allows the builders that seal their stages, and asks for K REPRODUCED verdicts from
distinct verifiers among those given (K = the number of verifiers unless told; 0 without
any). Comments say what to edit; the text parses back to the same policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bitwright.attest.keys import load_public_key
from bitwright.errors import UsageError
from bitwright.gate.policy import API_VERSION, Require, parse_policy
from bitwright.pins import builder_id

__all__ = ["STARTER_FORMATS", "starter_policy"]

STARTER_FORMATS = ("safetensors", "json", "text", "npy", "npz", "empty")
"""Formats a starter policy allows: data only, no pickle at all."""

_SEALED_BUILDERS = ("ci", "container", "sandboxed-host")


def starter_policy(
    signers: Sequence[Path],
    verifiers: Sequence[Path] = (),
    *,
    reproductions: int | None = None,
    profile: str = "production",
) -> str:
    """The YAML of a complete starter policy.

    Args:
        signers: public keys (PEM files) of who signs releases.
        verifiers: public keys of the independent rebuilders whose VSAs count.
        reproductions: REPRODUCED verdicts required (default: one per verifier).
        profile: the profile's name.

    Raises:
        UsageError: no signer, more reproductions than verifiers, or a bad profile name.
        KeyProblem: a key file is missing or not a public key.
    """
    if not signers:
        raise UsageError("a policy needs at least one signer", hint="pass --signer OWNER.pub")
    count = len(verifiers) if reproductions is None else reproductions
    if count < 0 or count > len(verifiers):
        raise UsageError(
            f"{count} reproduction(s) asked of {len(verifiers)} verifier(s)",
            hint="give as many --verifier keys as --reproductions, each a distinct rebuilder",
        )
    lines = [
        "# bitwright gate policy: edit it, then `bitwright gate RELEASE --policy THIS_FILE`.",
        "# Reference: docs/gate.md. Every requirement below is on; turn off what you cannot meet.",
        f"apiVersion: {API_VERSION}",
        f"default_profile: {profile}",
        "profiles:",
        f"  {profile}:",
        "    description: releases admitted to production",
        "    signers:",
        "      keys:",
        *_keys(signers, "        "),
        "      identities: []  # keyless signers: {identity: ..., issuer: https://...}",
        "    builders:  # runDetails.builder.id values allowed",
        *(f"      - {builder_id(kind)}" for kind in _SEALED_BUILDERS),
        "    sources:  # repositories allowed (fnmatch patterns): list yours",
        '      - "*"',
        "    third_party_pins: null  # the trusted thirdparty.pins.json, relative to this file",
        "    require:",
        *(f"      {name}: true" for name in Require.model_fields),
        "    reproducibility:",
        f"      verdicts: {count}  # REPRODUCED VSAs, each from another verifier below",
        "      max_age_days: 30",
        "      allow_tolerance: false",
        "      verifiers:" + ("" if verifiers else " []"),
        *_keys(verifiers, "        "),
        "    deployment:",
        f"      formats: [{', '.join(STARTER_FORMATS)}]  # add pickle, joblib, torch-zip...",
        "      custom_code: false",
        "      trust_remote_code: false",
        "      allowlist: null  # pickle allowlist families; null: all",
        "      max_file_bytes: null",
        "      max_total_bytes: null",
        "    deny:",
        "      packages: []  # e.g. torch==2.5.0, or a name for every version",
        "      containers: []  # sha256:... image digests",
        "    signals: []  # plugin signals that must pass, e.g. external-scanners",
    ]
    text = "\n".join(lines) + "\n"
    parse_policy(text.encode(), source="the starter policy")  # what we print must parse
    return text


def _keys(paths: Sequence[Path], indent: str) -> list[str]:
    lines: list[str] = []
    for path in paths:
        load_public_key(path)  # a usable public key, or KeyProblem naming the file
        pem = path.read_text(encoding="ascii").strip()
        lines.append(f"{indent}- name: {_name(path)}")
        lines.append(f"{indent}  pem: |")
        lines += [f"{indent}    {row}" for row in pem.splitlines()]
    return lines


def _name(path: Path) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in path.stem)
    return cleaned.strip("-.") or "key"
