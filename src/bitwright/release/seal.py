"""Sealing a release directory: the signed release statement over every file in it.

:func:`seal_release` is the last step of ``bitwright release``: it lists every regular file
of the assembled directory (``verdicts/`` and the statement itself excepted), hashes it,
and writes ``release.intoto.json`` signed with the owner's key
(:mod:`bitwright.attest.release_statement`). A release may hold regular files and
directories only; anything else is refused before it is signed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope, write_envelope
from bitwright.attest.keys import Signer
from bitwright.attest.release_statement import (
    RELEASE_STATEMENT_FILE,
    UNSIGNED_DIRS,
    build_release_statement,
    release_statement_bytes,
)
from bitwright.digest import sha256_file
from bitwright.errors import OperationalError

__all__ = ["release_files", "seal_release"]


def release_files(root: Path) -> dict[str, Path]:
    """Every file a release statement covers: release-relative POSIX path -> its path.

    Raises:
        OperationalError: the directory holds a symlink, FIFO, socket or device.
    """
    found: dict[str, Path] = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                name = path.relative_to(root).as_posix()
                if name == RELEASE_STATEMENT_FILE or name in UNSIGNED_DIRS:
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(path)
                elif stat.S_ISREG(mode):
                    found[name] = path
                else:
                    raise OperationalError(
                        f"cannot seal {root}: {name} is not a regular file",
                        hint="a release holds regular files only; remove it and release again",
                    )
    return dict(sorted(found.items()))


def seal_release(
    root: Path,
    signer: Signer,
    *,
    repository: str,
    commit: str,
    known: Mapping[str, str] | None = None,
) -> Path:
    """Sign the release statement over every file of ``root``; return the statement's path.

    Args:
        root: the assembled release directory.
        signer: the owner's key.
        repository: the source repository the release was built from.
        commit: the commit it was built from.
        known: sha256 of files hashed already (release-relative path -> digest); only
            digests of the very files in ``root``.

    Raises:
        OperationalError: a file cannot be read or the statement cannot be written.
    """
    digests = {
        name: (known or {}).get(name) or sha256_file(path)
        for name, path in release_files(root).items()
    }
    statement = build_release_statement(digests, repository=repository, commit=commit)
    envelope = sign_envelope(release_statement_bytes(statement), INTOTO_PAYLOAD_TYPE, signer)
    return write_envelope(envelope, root / RELEASE_STATEMENT_FILE)
