"""The layout checks: who signed ``root.layout``, until when it holds, and in-toto's own verdict.

The in-toto check calls in-toto's reference verification (``in_toto.verifylib.in_toto_verify``)
on the release's ``root.layout`` and ``links/``: layout signature, expiry, every link's
signature by an authorized functionary, thresholds, and the material and product rules. Its
only trusted key is the verifier's key that signed the layout; keys shipped in the release's
``keys/`` are never read. A layout with inspections is refused rather than run: verifying a
release must not execute commands it carries.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from in_toto.models.metadata import Metadata
from in_toto.verifylib import in_toto_verify

from bitwright.attest import (
    INTOTO_PAYLOAD_TYPE,
    Layout,
    keyid8,
    read_envelope,
    read_layout,
    verify_envelope,
)
from bitwright.attest.keys import SSlibKey
from bitwright.errors import VerificationFailed

__all__ = [
    "TrustedLayout",
    "check_in_toto",
    "check_layout_expiry",
    "check_layout_signature",
    "final_steps",
    "functionary_keys",
]

_EXPIRES_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class TrustedLayout:
    """A layout whose signature a trusted key verified.

    Attributes:
        path: the ``root.layout`` file.
        layout: its payload.
        owner_keys: the trusted keys that signed it (in-toto's layout verification keys).
    """

    path: Path
    layout: Layout
    owner_keys: tuple[SSlibKey, ...]


def check_layout_signature(path: Path, keys: Sequence[SSlibKey]) -> tuple[TrustedLayout, str]:
    """Check that one of the trusted ``keys`` signed the layout at ``path``.

    Raises:
        OperationalError: the file is missing or unreadable.
        VerificationFailed: no trusted key given, the file is not a signed in-toto layout,
            or no trusted key signed it.
    """
    if not keys:
        raise VerificationFailed(
            f"{path} is signed with a key and no trusted public key was given",
            hint="pass the owner's public key (--key)",
        )
    envelope = read_envelope(path)
    signers = tuple(k for k in keys if _signed_by(envelope, k, path))
    if not signers:
        # Again with every key: the error names the keys that signed and those trusted.
        verify_envelope(envelope, keys, payload_type=INTOTO_PAYLOAD_TYPE, source=str(path))
    layout = read_layout(path, signers)
    names = ", ".join(keyid8(k) for k in signers)
    return TrustedLayout(path, layout, signers), f"signed by trusted key {names}"


def check_layout_expiry(trusted: TrustedLayout, now: datetime) -> tuple[None, str]:
    """Check that the layout has not expired at ``now``.

    Raises:
        VerificationFailed: it has.
    """
    expires = datetime.strptime(trusted.layout.expires, _EXPIRES_FORMAT).replace(tzinfo=UTC)
    if expires <= now:
        raise VerificationFailed(
            f"{trusted.path} expired on {trusted.layout.expires}",
            hint="ask the owner for a release with a newly signed layout",
        )
    return None, f"valid until {trusted.layout.expires}"


def check_in_toto(trusted: TrustedLayout, links_dir: Path) -> tuple[None, str]:
    """Run in-toto's reference verification of the layout and the links in ``links_dir``.

    Raises:
        VerificationFailed: in-toto refused the chain (its error type and first line), the
            release has no ``links/``, or the layout asks for inspections.
    """
    if trusted.layout.inspect:
        raise VerificationFailed(
            f"{trusted.path} has {len(trusted.layout.inspect)} inspection(s); "
            "bitwright verify runs no commands from a release",
            hint="bitwright layouts have no inspections; this one was not made by bitwright",
        )
    if not links_dir.is_dir():
        raise VerificationFailed(
            f"{links_dir} is missing: the release carries no links",
            hint="take the release again; every stage leaves a link",
        )
    for link in sorted(links_dir.glob("*.link")):
        read_envelope(link)  # in-toto's own error would not name a damaged file
    key_dict = {k.keyid: {**k.to_dict(), "keyid": k.keyid} for k in trusted.owner_keys}
    with _captured_in_toto_log() as warnings:
        try:
            in_toto_verify(
                Metadata.load(str(trusted.path)),
                key_dict,
                link_dir_path=str(links_dir),
                persist_inspection_links=False,
            )
        # in-toto raises its own errors, securesystemslib's, and plain ValueError/KeyError
        # for malformed links: every one of them means "the chain does not verify".
        except Exception as exc:  # noqa: BLE001
            raise VerificationFailed(
                f"in-toto verification of {links_dir} failed: "
                f"{type(exc).__name__}: {_first_line(exc)}",
                hint="a link is missing, altered, signed by a key the layout does not "
                "authorize, or records artifacts the layout's rules refuse",
            ) from exc
    steps = len(trusted.layout.steps)
    detail = f"{steps} step(s) verified by in-toto {version('in-toto')}"
    if warnings:
        detail += f" ({len(warnings)} warning(s), first: {warnings[0]})"
    return None, detail


def functionary_keys(layout: Layout, step: str) -> list[SSlibKey]:
    """Return the keys the layout authorizes to sign links of ``step`` (none if no such step)."""
    for candidate in layout.steps:
        if candidate.name == step:
            return [
                SSlibKey(k.keyid, k.keytype, k.scheme, dict(k.keyval))
                for keyid in candidate.pubkeys
                if (k := layout.keys.get(keyid)) is not None
            ]
    return []


def final_steps(layout: Layout) -> tuple[str, ...]:
    """Return the steps whose products no other step's material rules match (the chain's end)."""
    upstream = {
        rule[rule.index("FROM") + 1]
        for step in layout.steps
        for rule in step.expected_materials
        if rule and rule[0] == "MATCH" and "FROM" in rule[:-1]
    }
    return tuple(step.name for step in layout.steps if step.name not in upstream)


def _signed_by(envelope: dict[str, Any], key: SSlibKey, path: Path) -> bool:
    try:
        verify_envelope(envelope, [key], payload_type=INTOTO_PAYLOAD_TYPE, source=str(path))
    except VerificationFailed:
        return False
    return True


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def _captured_in_toto_log() -> Iterator[list[str]]:
    """Collect in-toto's warnings instead of letting its stderr handler print them."""
    logger = logging.getLogger("in_toto")
    records: list[str] = []
    saved = (logger.handlers[:], logger.propagate)
    logger.handlers = [_ListHandler(records)]
    logger.propagate = False
    try:
        yield records
    finally:
        logger.handlers, logger.propagate = saved


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else "no detail"
    return line if len(line) <= 300 else line[:297] + "..."
