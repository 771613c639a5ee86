"""Fetch the released build's data snapshots into the workspace and check them before any stage.

Every data snapshot the provenance lists (a resolved dependency with a ``dvcMd5`` annotation)
is pulled with ``dvc pull`` from the DVC remote the provenance names, from ``--data-remote``,
or, when the recorded remote is a local directory this machine does not have, from the
workspace's own default remote (a relative local remote counts from the checkout's ``.dvc/``,
as DVC reads it). DVC does not re-hash what it downloads, so the pulled bytes are then checked
with the data pin's own code (:func:`bitwright.pins.pin_data`: DVC md5 and sha256 over exactly
the files DVC tracks) against the ``.dvc`` files and the provenance. An altered snapshot is a
finding (the rebuild's verdict), a missing object an operational error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bitwright.attest.statement import Statement
from bitwright.builder.data import dvc_pull
from bitwright.errors import DirtyTreeError, OperationalError
from bitwright.fileio import write_text_atomic
from bitwright.model import Pipeline
from bitwright.pins import pin_data
from bitwright.pins.data import find_dvc_files, read_dvc_file
from bitwright.pins.dvcconfig import default_remote_url
from bitwright.pins.tofu import pins_read_by, read_pins, restore_pinned

__all__ = [
    "fetch_third_party",
    "REBUILD_REMOTE",
    "DataFinding",
    "RecordedSnapshot",
    "check_snapshots",
    "choose_remote",
    "fetch_snapshots",
    "pull_snapshots",
    "recorded_snapshots",
    "use_remote",
]

REBUILD_REMOTE = "bitwright-rebuild"
"""The DVC remote a rebuild writes into the workspace's ``.dvc/config.local``."""

_PULL_HINT = "ask the maintainer to `dvc push` the data, or pass --data-remote URL"


@dataclass(frozen=True)
class RecordedSnapshot:
    """A data snapshot as the provenance records it.

    Attributes:
        path: its repository path (the dependency's name).
        sha256: bitwright's digest of it.
        dvc_md5: DVC's hash (``<md5>.dir`` for a directory).
        uri: the remote the maintainer named, "" when none.
    """

    path: str
    sha256: str
    dvc_md5: str
    uri: str


@dataclass(frozen=True)
class DataFinding:
    """A data snapshot whose fetched bytes are not the ones the release was built from."""

    path: str
    detail: str


def recorded_snapshots(statement: Statement) -> tuple[RecordedSnapshot, ...]:
    """Return the data snapshots among the provenance's resolved dependencies."""
    found: list[RecordedSnapshot] = []
    for dep in statement.predicate.build_definition.resolved_dependencies or ():
        md5 = (dep.annotations or {}).get("dvcMd5")
        if dep.name is None or not isinstance(md5, str) or "sha256" not in (dep.digest or {}):
            continue
        digest = (dep.digest or {})["sha256"]
        found.append(RecordedSnapshot(dep.name, digest, md5, dep.uri or ""))
    return tuple(found)


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if not parts.scheme or len(parts.scheme) == 1:
        return Path(uri)
    return None


def choose_remote(
    workspace: Path, snapshots: tuple[RecordedSnapshot, ...], data_remote: str | None
) -> tuple[str | None, str]:
    """Decide where the snapshots come from; return (URL to configure or None, a note).

    ``None`` means the workspace's own default remote (from the checked-out ``.dvc/config``).
    """
    if data_remote:
        return data_remote, f"data from --data-remote {data_remote}"
    uris = sorted({s.uri for s in snapshots if s.uri})
    if not uris:
        return None, "data from the checkout's DVC default remote"
    recorded = uris[0]
    local = _local_path(recorded)
    if local is None or local.is_dir():
        url = str(local) if local is not None else recorded
        return url, f"data from the recorded DVC remote {recorded}"
    own = default_remote_url(workspace)
    return None, (
        f"the recorded DVC remote {recorded} is not on this machine; "
        f"data from the checkout's default remote {own or '(none)'}"
    )


def use_remote(workspace: Path, url: str) -> None:
    """Make ``url`` the workspace's default DVC remote in ``.dvc/config.local`` (not tracked)."""
    config = workspace / ".dvc" / "config.local"
    text = (
        f"[core]\n    remote = {REBUILD_REMOTE}\n['remote \"{REBUILD_REMOTE}\"']\n    url = {url}\n"
    )
    write_text_atomic(config, text)


def pull_snapshots(workspace: Path, paths: tuple[str, ...]) -> None:
    """``dvc pull`` the ``.dvc`` files tracking ``paths`` into the workspace.

    Raises:
        OperationalError: a snapshot has no ``.dvc`` file at the commit, or DVC could not
            fetch it (no remote, an object missing from it).
    """
    wanted = set(paths)
    tracked: dict[str, str] = {}
    for dvc_file in find_dvc_files(workspace):
        for out in read_dvc_file(workspace, dvc_file):
            if out.path in wanted:
                tracked[out.path] = out.dvc_file
    for path in sorted(wanted):
        if path not in tracked:
            raise OperationalError(
                f"data snapshot {path} has no .dvc file at the released commit",
                hint="the release does not match its source; pass the right --source",
            )
        reason = dvc_pull(workspace, tracked[path])
        if reason is not None or not (workspace / path).exists():
            raise OperationalError(
                f"cannot fetch data snapshot {path}: `dvc pull {tracked[path]}` failed: "
                f"{reason or 'it did not arrive'}",
                hint=_PULL_HINT,
            )


def check_snapshots(
    workspace: Path, snapshots: tuple[RecordedSnapshot, ...]
) -> tuple[DataFinding, ...]:
    """Check the fetched snapshots against their ``.dvc`` files and the provenance.

    Digests are computed from the bytes (no digest cache: a verifier trusts nothing local).

    Returns:
        One finding per snapshot whose bytes or hashes are not the recorded ones; empty
        when every snapshot is exactly what the release was built from.
    """
    try:
        pins = {pin.path: pin for pin in pin_data(workspace, cache=None)}
    except DirtyTreeError as exc:
        culprit = next((s.path for s in snapshots if exc.message.startswith(s.path)), "")
        return (DataFinding(culprit or "data", f"fetched data is altered: {exc.message}"),)
    findings: list[DataFinding] = []
    for snap in snapshots:
        pin = pins.get(snap.path)
        if pin is None:
            findings.append(DataFinding(snap.path, "not tracked by DVC at the released commit"))
        elif pin.dvc_md5 != snap.dvc_md5:
            findings.append(
                DataFinding(
                    snap.path, f"DVC md5 {pin.dvc_md5} at the commit, recorded {snap.dvc_md5}"
                )
            )
        elif pin.sha256 != snap.sha256:
            findings.append(
                DataFinding(snap.path, f"sha256 {pin.sha256[:16]}, recorded {snap.sha256[:16]}")
            )
    return tuple(findings)


def fetch_snapshots(
    workspace: Path, snapshots: tuple[RecordedSnapshot, ...], data_remote: str | None
) -> tuple[str, tuple[DataFinding, ...]]:
    """Pull ``snapshots`` into the workspace from the remote :func:`choose_remote` picks, and check.

    Returns:
        The note saying where the data came from, and :func:`check_snapshots`' findings.

    Raises:
        OperationalError: as :func:`pull_snapshots`.
    """
    url, note = choose_remote(workspace, snapshots, data_remote)
    if url is not None:
        use_remote(workspace, url)
    pull_snapshots(workspace, tuple(s.path for s in snapshots))
    return note, check_snapshots(workspace, snapshots)


def fetch_third_party(
    workspace: Path, pipeline: Pipeline, statement: Statement
) -> tuple[str, list[str]]:
    """Fetch the pinned third-party inputs the checkout lacks, and check them against the pins.

    The pins file is the one of the pinned commit; what the provenance says each input was
    (``resolvedDependencies`` with ``pinning: tofu``) must be what that file pins.

    Returns:
        A note for the report, and one line per input that is not what the release was built
        from (empty when all are).

    Raises:
        OperationalError: a source cannot be fetched.
    """
    pinned = pins_read_by(pipeline, read_pins(workspace))
    if not pinned:
        return "no pinned third-party inputs", []
    recorded = {
        dep.name: (dep.digest or {}).get("sha256")
        for dep in statement.predicate.build_definition.resolved_dependencies or ()
        if (dep.annotations or {}).get("pinning") == "tofu" and dep.name
    }
    problems = [
        f"{pin.path}: the provenance records sha256 {recorded[pin.path]}, the pins file "
        f"{pin.sha256}"
        for pin in pinned
        if pin.path in recorded and recorded[pin.path] != pin.sha256
    ]
    problems += [f"{pin.path}: not in the provenance" for pin in pinned if pin.path not in recorded]
    fetched, changes = restore_pinned(workspace, pinned)
    problems += [change.line() for change in changes]
    note = f"{len(pinned)} pinned third-party input(s), {len(fetched)} fetched from their sources"
    return note, problems
