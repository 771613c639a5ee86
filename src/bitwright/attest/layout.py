"""The in-toto layout: the owner-signed policy of the chain, derived from ``dvc.yaml``.

One step per stage, performed by the functionary keys (threshold 1), no inspections. The
artifact rules make ``in-toto-verify`` check what DVC's graph promises:

* materials: every input that another stage produces must MATCH that stage's products (same
  path, same sha256); whatever of it is left unmatched is then DISALLOWed, so a mismatch
  fails even inside a directory the stage also ALLOWs. Source inputs (code, data, params
  files) are ALLOWed. A final ``DISALLOW *`` rejects any material the stage did not declare.
* products: the stage's outs must be CREATEd (not among its materials); ``DISALLOW *`` rejects
  anything else.

Rule patterns are fnmatch patterns in which ``*`` also matches ``/``. Whether a dep is a file
or a directory is not known from ``dvc.yaml`` alone, so each path gets two patterns: the path
itself and ``PATH/*`` (every file below it). Glob characters in paths are escaped.

What ``in-toto-verify`` needs (measured with in-toto 3.1.0): the layout's ``expires`` must be
in the future (else ``LayoutExpiredError``); links are found by name in ``--link-dir``; the
current directory does not matter (no inspections run, artifacts on disk are not read). A
link's ``command`` that differs from ``expected_command`` only logs a warning.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bitwright.attest.canonical import canonical_json
from bitwright.attest.dsse import (
    INTOTO_PAYLOAD_TYPE,
    read_envelope,
    sign_envelope,
    verify_envelope,
    write_envelope,
)
from bitwright.attest.keys import Key, Signer
from bitwright.errors import UsageError, VerificationFailed
from bitwright.model import Pipeline, StageSpec

__all__ = [
    "DEFAULT_LAYOUT_LIFETIME",
    "LAYOUT_FILE",
    "Layout",
    "LayoutKey",
    "Step",
    "build_layout",
    "read_layout",
    "write_layout",
]

LAYOUT_FILE = Path(".bitwright") / "attestations" / "root.layout"
"""Where a build writes the signed layout, relative to the repository root."""

DEFAULT_LAYOUT_LIFETIME = timedelta(days=365)
"""A suggested validity: ``in-toto-verify`` refuses a layout after its ``expires``."""

_EXPIRES_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


class LayoutKey(BaseModel):
    """A functionary public key as in-toto layouts list it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keyid: str
    keytype: str
    scheme: str
    keyval: dict[str, str]


class Step(BaseModel):
    """One step of the layout: a stage, who may perform it, what it may use and make."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type_: Literal["step"] = Field(default="step", alias="_type")
    name: str = Field(min_length=1)
    expected_command: list[str]
    expected_materials: list[list[str]]
    expected_products: list[list[str]]
    pubkeys: list[str]
    threshold: int = Field(ge=1)


class Layout(BaseModel):
    """An in-toto v0.9 layout (the payload of ``root.layout``); unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type_: Literal["layout"] = Field(default="layout", alias="_type")
    expires: str = Field(pattern=_EXPIRES_RE)
    readme: str = ""
    keys: dict[str, LayoutKey]
    steps: list[Step]
    inspect: list[dict[str, Any]] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the layout as the JSON object in-toto reads (``_type`` included)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data


def build_layout(
    pipeline: Pipeline,
    functionary_keys: Sequence[Key],
    *,
    expires: datetime,
    readme: str = "",
) -> Layout:
    """Derive the layout of ``pipeline``: one step per stage, signed links by ``functionary_keys``.

    Args:
        pipeline: the stages of ``dvc.yaml``.
        functionary_keys: the keys allowed to sign stage links (any one suffices).
        expires: when the layout stops being valid; timezone-aware and in the future.
        readme: a human description stored in the layout.

    Returns:
        The layout, ready for :func:`write_layout`.

    Raises:
        UsageError: no functionary key, a naive or past ``expires``, or a stage whose
            ``cmd`` cannot be split like a shell would.
    """
    if not functionary_keys:
        raise UsageError("a layout needs at least one functionary key", hint="pass --key")
    if expires.tzinfo is None:
        raise UsageError("layout expiry has no time zone", hint="pass an aware datetime (UTC)")
    if expires <= datetime.now(UTC):
        raise UsageError(
            f"layout expiry {expires.isoformat()} is in the past",
            hint="in-toto-verify refuses expired layouts; pick a later date",
        )
    keys = {
        k.keyid: LayoutKey(keyid=k.keyid, keytype=k.keytype, scheme=k.scheme, keyval=k.keyval)
        for k in functionary_keys
    }
    steps = [_step(pipeline, spec, list(keys)) for spec in pipeline.stages]
    return Layout(
        expires=expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        readme=readme,
        keys=keys,
        steps=steps,
    )


def write_layout(layout: Layout, owner_signer: Signer, path: Path) -> Path:
    """Sign ``layout`` with the owner key (DSSE) and write it to ``path`` atomically.

    Returns:
        The path written.

    Raises:
        OperationalError: the file cannot be written.
    """
    envelope = sign_envelope(canonical_json(layout.to_json()), INTOTO_PAYLOAD_TYPE, owner_signer)
    return write_envelope(envelope, path)


def read_layout(path: Path, owner_keys: Sequence[Key]) -> Layout:
    """Read ``root.layout`` and check that one of ``owner_keys`` signed it.

    Raises:
        OperationalError: the file is missing or unreadable.
        UsageError: no owner key given.
        VerificationFailed: not a signed in-toto layout, or not signed by an owner key.
    """
    envelope = read_envelope(path)
    payload = verify_envelope(
        envelope, owner_keys, payload_type=INTOTO_PAYLOAD_TYPE, source=str(path)
    )
    try:
        return Layout.model_validate(json.loads(payload))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise VerificationFailed(
            f"{path} is not an in-toto layout: {str(exc).splitlines()[0]}",
            hint="pass the root.layout written by bitwright build",
        ) from exc


def _step(pipeline: Pipeline, spec: StageSpec, keyids: list[str]) -> Step:
    try:
        command = shlex.split(spec.inner_cmd)
    except ValueError as exc:
        raise UsageError(
            f"stage {spec.name!r}: cannot split its cmd ({exc})",
            hint="fix the quoting of the cmd in dvc.yaml",
        ) from exc
    return Step(
        name=spec.name,
        expected_command=command,
        expected_materials=_material_rules(pipeline, spec),
        expected_products=_product_rules(spec),
        pubkeys=keyids,
        threshold=1,
    )


def _material_rules(pipeline: Pipeline, spec: StageSpec) -> list[list[str]]:
    matches: list[list[str]] = []
    guards: list[list[str]] = []
    allows: list[list[str]] = []
    for path in dict.fromkeys((*spec.deps, *spec.param_files)):
        produced = False
        for region, producer, covers in _produced_regions(pipeline, spec.name, path):
            produced = produced or covers
            for pattern in _patterns(region):
                matches.append(["MATCH", pattern, "WITH", "PRODUCTS", "FROM", producer])
                guards.append(["DISALLOW", pattern])
        if not produced:
            allows.extend(["ALLOW", pattern] for pattern in _patterns(path))
    return [*_unique(matches), *_unique(guards), *_unique(allows), ["DISALLOW", "*"]]


def _product_rules(spec: StageSpec) -> list[list[str]]:
    creates = [["CREATE", pattern] for out in spec.outs for pattern in _patterns(out)]
    return [*_unique(creates), ["DISALLOW", "*"]]


def _produced_regions(pipeline: Pipeline, stage: str, path: str) -> Iterator[tuple[str, str, bool]]:
    """Yield ``(region, producer, covers)`` for every out of another stage overlapping ``path``.

    ``region`` is the deeper of the two paths (what both share); ``covers`` says whether
    the out contains all of ``path``.
    """
    for other in pipeline.stages:
        if other.name == stage:
            continue
        for out in other.outs:
            if _within(path, out):
                yield _norm(path), other.name, True
            elif _within(out, path):
                yield _norm(out), other.name, False


def _within(inner: str, outer: str) -> bool:
    inner, outer = _norm(inner), _norm(outer)
    return outer == "." or inner == outer or inner.startswith(outer + "/")


def _norm(path: str) -> str:
    trimmed = path.strip("/")
    while trimmed.startswith("./"):
        trimmed = trimmed[2:]
    return trimmed or "."


def _patterns(path: str) -> list[str]:
    norm = _norm(path)
    if norm == ".":
        return ["*"]
    escaped = re.sub(r"([*?\[])", r"[\1]", norm)  # fnmatch's own escape: [*] [?] [[]
    return [escaped, f"{escaped}/*"]


def _unique(rules: list[list[str]]) -> list[list[str]]:
    seen: set[tuple[str, ...]] = set()
    kept: list[list[str]] = []
    for rule in rules:
        if tuple(rule) not in seen:
            seen.add(tuple(rule))
            kept.append(rule)
    return kept
