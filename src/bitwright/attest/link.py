"""In-toto links: the signed record of one stage run, in the format ``in-toto-verify`` reads.

A link is the legacy in-toto v0.9 ``_type: link`` document (not a Statement v1: that is what
in-toto-python's DSSE verification loads), serialized as RFC 8785 canonical JSON and wrapped
in a DSSE envelope with payloadType ``application/vnd.in-toto+json``. It is stored as
``LINKS_DIR/STAGE.KEYID8.link``, the file name ``in-toto-verify`` looks for.

``byproducts`` and ``environment`` are free-form JSON objects in the in-toto model (it only
checks that they are objects), so they carry bitwright's evidence as plain JSON: integers stay
integers (no protobuf ``Struct``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bitwright.attest.canonical import canonical_json
from bitwright.attest.dsse import (
    INTOTO_PAYLOAD_TYPE,
    read_envelope,
    sign_envelope,
    unverified_payload,
    verify_envelope,
    write_envelope,
)
from bitwright.attest.keys import Key, Signer, keyid8
from bitwright.errors import OperationalError, UsageError, VerificationFailed
from bitwright.model import ArtifactMap, BuildPins, DeterminismSettings, StageRun

__all__ = [
    "LINKS_DIR",
    "Link",
    "build_link",
    "link_filename",
    "read_link",
    "write_link",
]

LINKS_DIR = Path(".bitwright") / "attestations" / "links"
"""Where a build writes its links, relative to the repository root."""

HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]+$")]
HashDict = dict[str, HexDigest]
"""``{"sha256": "<hex>"}``: in-toto's digest set of one artifact."""


class Link(BaseModel):
    """An in-toto v0.9 link (the payload of a ``.link`` envelope); unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type_: Literal["link"] = Field(default="link", alias="_type")
    name: str = Field(min_length=1)
    command: list[str]
    materials: dict[str, HashDict]
    products: dict[str, HashDict]
    byproducts: dict[str, Any]
    environment: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the link as the JSON object in-toto reads (``_type`` included)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data


def build_link(
    run: StageRun,
    pins: BuildPins,
    *,
    declared: DeterminismSettings,
    reused: Mapping[str, str] | None = None,
) -> Link:
    """Turn a finished stage run into its in-toto link.

    Args:
        run: the run as the sealed runner recorded it (materials and products list files).
        pins: the build's pins; recorded whole in ``environment.pins``.
        declared: the determinism settings declared for the stage.
        reused: for a link that attests an earlier run of the stage again (under new pins,
            everything the run depended on unchanged): the earlier link it cites
            (``link``, ``sha256``, ``commit``), recorded as ``byproducts.reused-run``.

    Returns:
        The link: ``name`` is the stage, ``command`` the argv the runner executed,
        ``byproducts`` the exit status, output digests, receipts, sandbox report, undeclared
        reads and the sandbox allowances (when any was given), ``environment`` the pins,
        declared settings and the child's environment variables.

    Raises:
        OperationalError: a digest is not hex, or a value has no canonical JSON form.
    """
    byproducts: dict[str, Any] = {
        "return-value": run.returncode,
        "stdout-sha256": run.stdout_sha256,
        "stderr-sha256": run.stderr_sha256,
        "receipts": run.receipts.to_json(),
        "sandbox": run.sandbox.to_json(),
        "undeclared-reads": list(run.undeclared_reads),
        "started-on": run.started_on,
        "finished-on": run.finished_on,
        "notes": list(run.notes),
    }
    if reused is not None:
        byproducts["reused-run"] = dict(reused)
    if run.allowances.granted:
        byproducts["allowances"] = run.allowances.to_json()
    environment: dict[str, Any] = {
        "pins": pins.to_json(),
        "determinism-declared": declared.to_json(),
        "variables": dict(sorted(run.environment.items())),
    }
    try:
        link = Link(
            name=run.stage,
            command=list(run.command),
            materials=_digest_sets(run.materials),
            products=_digest_sets(run.products),
            byproducts=byproducts,
            environment=environment,
        )
    except ValidationError as exc:
        raise OperationalError(
            f"stage {run.stage!r}: cannot build its link: {_first_error(exc)}",
            hint="this is a bug in what recorded the run; report it",
        ) from exc
    canonical_json(link.to_json())  # fail here, not at signing, on values JSON cannot hold
    return link


def link_filename(stage: str, signer_or_key: Signer | Key | str) -> str:
    """Return ``STAGE.KEYID8.link``, the file name in-toto looks for.

    Raises:
        UsageError: the stage name cannot be a file name.
    """
    if stage in ("", ".", "..") or "/" in stage or "\0" in stage:
        raise UsageError(
            f"stage name {stage!r} cannot name a link file",
            hint="rename the stage in dvc.yaml (no '/')",
        )
    return f"{stage}.{keyid8(signer_or_key)}.link"


def write_link(link: Link, signer: Signer, links_dir: Path) -> Path:
    """Sign ``link`` and write it to ``links_dir/STAGE.KEYID8.link`` atomically.

    Args:
        link: the link to sign (see :func:`build_link`).
        signer: the functionary's signer.
        links_dir: the directory of links (created when missing).

    Returns:
        The path written.

    Raises:
        UsageError: the stage name cannot be a file name.
        OperationalError: the file cannot be written.
    """
    path = links_dir / link_filename(link.name, signer)
    envelope = sign_envelope(canonical_json(link.to_json()), INTOTO_PAYLOAD_TYPE, signer)
    return write_envelope(envelope, path)


def read_link(path: Path, *, keys: Sequence[Key] | None = None) -> tuple[dict[str, Any], str]:
    """Read a link file: parse its envelope and payload, optionally check its signature.

    Args:
        path: a ``.link`` file.
        keys: when given, one of these keys must have signed the envelope; when omitted,
            the signature is NOT checked (use it for display, never for trust).

    Returns:
        The link JSON object (``_type``, ``name``, ``materials``...) and the keyid of the
        envelope's first signature.

    Raises:
        OperationalError: the file is missing or unreadable.
        VerificationFailed: the file is not a DSSE envelope of an in-toto link, or its
            signature does not verify with ``keys``.
        UsageError: ``keys`` is an empty sequence.
    """
    envelope = read_envelope(path)
    if keys is not None:
        payload = verify_envelope(
            envelope, keys, payload_type=INTOTO_PAYLOAD_TYPE, source=str(path)
        )
    else:
        if envelope["payloadType"] != INTOTO_PAYLOAD_TYPE:
            raise VerificationFailed(
                f"{path} has payloadType {envelope['payloadType']!r}, "
                f"expected {INTOTO_PAYLOAD_TYPE!r}",
                hint="this file is not an in-toto link",
            )
        payload = unverified_payload(envelope, source=str(path))
    try:
        data = json.loads(payload)
        link = Link.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VerificationFailed(
            f"{path}: payload is not JSON ({exc})", hint="the link is damaged; rebuild the stage"
        ) from exc
    except ValidationError as exc:
        raise VerificationFailed(
            f"{path} is not an in-toto link: {_first_error(exc)}",
            hint="pass a '.link' file written by bitwright or in-toto",
        ) from exc
    return link.to_json(), str(envelope["signatures"][0]["keyid"])


def _digest_sets(artifacts: ArtifactMap) -> dict[str, dict[str, str]]:
    return {path: {"sha256": str(digest)} for path, digest in sorted(artifacts.items())}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']} ({exc.error_count()} problem(s))"
