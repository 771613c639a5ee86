"""The layout checks: who signed ``root.layout``, until when it holds, and in-toto's own verdict.

The in-toto check calls in-toto's reference verification (``in_toto.verifylib.in_toto_verify``)
on the release's layout and links: layout signature, expiry, every link's signature by an
authorized functionary, thresholds, and the material and product rules. Its only trusted key
is the verifier's key that signed the layout; keys shipped in the release's ``keys/`` are
never read. in-toto reads links by name from a directory: it gets a private copy holding only
the bytes verify already read (bounded, regular files), so nothing in the release can make
it block or read outside. A layout with inspections is refused rather than run: verifying a
release must not execute commands it carries.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE, verify_envelope
from bitwright.attest.keys import SSlibKey, keyid8
from bitwright.attest.layout import Layout
from bitwright.errors import VerificationFailed
from bitwright.fileio import load_json
from bitwright.verify.material import ReleaseReader

__all__ = [
    "LAYOUT_FILE",
    "LINKS_DIR",
    "TrustedLayout",
    "check_in_toto",
    "check_layout_expiry",
    "check_layout_signature",
    "final_steps",
    "functionary_keys",
    "link_names",
    "parse_layout",
]

LAYOUT_FILE = "root.layout"
LINKS_DIR = "links"
_EXPIRES_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_NOT_LAYOUT = "pass the root.layout written by bitwright build"


@dataclass(frozen=True)
class TrustedLayout:
    """A layout whose signature a trusted key verified.

    Attributes:
        envelope: its DSSE envelope, as read.
        layout: its payload.
        owner_keys: the trusted keys that signed it (in-toto's layout verification keys).
    """

    envelope: dict[str, Any]
    layout: Layout
    owner_keys: tuple[SSlibKey, ...]


def check_layout_signature(
    reader: ReleaseReader, keys: Sequence[SSlibKey]
) -> tuple[TrustedLayout, str]:
    """Check that one of the trusted ``keys`` signed the release's ``root.layout``.

    Raises:
        OperationalError: the file is missing, unreadable or too large.
        VerificationFailed: no trusted key given, the file is not a signed in-toto layout,
            or no trusted key signed it.
    """
    if not keys:
        raise VerificationFailed(
            f"{LAYOUT_FILE} is signed with a key and no trusted public key was given",
            hint="pass the owner's public key (--key)",
        )
    envelope = reader.envelope(LAYOUT_FILE)
    signers = tuple(k for k in keys if _signed_by(envelope, k))
    # With no trusted signer, again with every key: the error names who signed and who is trusted.
    payload = verify_envelope(
        envelope, signers or keys, payload_type=INTOTO_PAYLOAD_TYPE, source=LAYOUT_FILE
    )
    layout = parse_layout(payload, max_depth=reader.limits.json_depth)
    names = ", ".join(keyid8(k) for k in signers)
    return TrustedLayout(envelope, layout, signers), f"signed by trusted key {names}"


def parse_layout(payload: bytes, *, max_depth: int) -> Layout:
    """Parse an (authenticated) layout payload, depth-checked.

    Raises:
        VerificationFailed: not JSON, nested too deeply, or not an in-toto layout.
    """
    document = load_json(payload, source=LAYOUT_FILE, hint=_NOT_LAYOUT, max_depth=max_depth)
    try:
        layout = Layout.model_validate(document)
        datetime.strptime(layout.expires, _EXPIRES_FORMAT)
    except (ValidationError, ValueError) as exc:
        raise VerificationFailed(
            f"{LAYOUT_FILE} is not an in-toto layout: {str(exc).splitlines()[0][:300]}",
            hint=_NOT_LAYOUT,
        ) from None
    return layout


def check_layout_expiry(trusted: TrustedLayout, now: datetime) -> tuple[None, str]:
    """Check that the layout has not expired at ``now``.

    Raises:
        VerificationFailed: it has.
    """
    expires = datetime.strptime(trusted.layout.expires, _EXPIRES_FORMAT).replace(tzinfo=UTC)
    if expires <= now:
        raise VerificationFailed(
            f"{LAYOUT_FILE} expired on {trusted.layout.expires}",
            hint="ask the owner for a release with a newly signed layout",
        )
    return None, f"valid until {trusted.layout.expires}"


def link_names(reader: ReleaseReader) -> list[str]:
    """The ``*.link`` entries of ``links/`` (release-relative), sorted; none when it is absent.

    Raises:
        VerificationFailed: ``links`` is not a directory.
    """
    directory = reader.path(LINKS_DIR)
    if not directory.exists() and not directory.is_symlink():
        return []
    if directory.is_symlink() or not directory.is_dir():
        raise VerificationFailed(
            f"{LINKS_DIR} is not a directory", hint="take the release again; links are files"
        )
    return sorted(f"{LINKS_DIR}/{p.name}" for p in directory.iterdir() if p.name.endswith(".link"))


def check_in_toto(trusted: TrustedLayout, reader: ReleaseReader) -> tuple[None, str]:
    """Run in-toto's reference verification of the layout and the release's links.

    Raises:
        VerificationFailed: in-toto refused the chain (its error type and first line), the
            release has no links, a link is not a DSSE envelope, or the layout asks for
            inspections.
        OperationalError: a link cannot be read (not a regular file, too large).
    """
    if trusted.layout.inspect:
        raise VerificationFailed(
            f"{LAYOUT_FILE} has {len(trusted.layout.inspect)} inspection(s); "
            "bitwright verify runs no commands from a release",
            hint="bitwright layouts have no inspections; this one was not made by bitwright",
        )
    names = link_names(reader)
    if not names:
        raise VerificationFailed(
            f"{LINKS_DIR} is missing or empty: the release carries no links",
            hint="take the release again; every stage leaves a link",
        )
    for name in names:
        reader.envelope(name)  # in-toto's own error would not name a damaged file
    key_dict = {k.keyid: {**k.to_dict(), "keyid": k.keyid} for k in trusted.owner_keys}
    with tempfile.TemporaryDirectory(prefix="bitwright-in-toto-") as scratch:
        for name in names:
            (Path(scratch) / Path(name).name).write_bytes(reader.read(name))
        warnings = _run_in_toto(trusted.envelope, key_dict, Path(scratch))
    from in_toto import __version__ as in_toto_version

    steps = len(trusted.layout.steps)
    detail = f"{steps} step(s) verified by in-toto {in_toto_version}"
    if warnings:
        detail += f" ({len(warnings)} warning(s), first: {warnings[0]})"
    return None, detail


def _run_in_toto(envelope: dict[str, Any], key_dict: dict[str, Any], links_dir: Path) -> list[str]:
    from in_toto.models.metadata import Metadata
    from in_toto.verifylib import in_toto_verify

    with _captured_in_toto_log() as warnings:
        try:
            in_toto_verify(
                Metadata.from_dict(envelope),
                key_dict,
                link_dir_path=str(links_dir),
                persist_inspection_links=False,
            )
        # in-toto raises its own errors, securesystemslib's, and plain ValueError/KeyError
        # for malformed links: every one of them means "the chain does not verify".
        except Exception as exc:  # noqa: BLE001
            raise VerificationFailed(
                f"in-toto verification of {LINKS_DIR} failed: "
                f"{type(exc).__name__}: {_first_line(exc)}",
                hint="a link is missing, altered, signed by a key the layout does not "
                "authorize, or records artifacts the layout's rules refuse",
            ) from exc
    return warnings


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


def _signed_by(envelope: dict[str, Any], key: SSlibKey) -> bool:
    try:
        verify_envelope(envelope, [key], payload_type=INTOTO_PAYLOAD_TYPE, source=LAYOUT_FILE)
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
