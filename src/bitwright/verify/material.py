"""What verify reads from a release, and how much: bounded, regular, inside, and read once.

A release is hostile until it verifies. Every file verify reads goes through
:class:`ReleaseReader`: a regular file (never a FIFO, device or symlink), inside the release
directory, no larger than its cap, parsed no deeper than its cap, and read once (the bytes
a check judged are the bytes whose digest the coverage check compares). :meth:`inventory`
lists the whole directory without following links or opening anything.

:class:`~bitwright.verify.limits.Limits` holds the caps (documented defaults;
``bitwright verify --max-...`` raises them).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwright.attest.dsse import parse_envelope
from bitwright.errors import OperationalError
from bitwright.fileio import file_kind, load_json, read_regular
from bitwright.verify.limits import DEFAULT_LIMITS, Limits

__all__ = ["DEFAULT_LIMITS", "Inventory", "Limits", "ReleaseReader"]


@dataclass(frozen=True)
class Inventory:
    """Every entry of a release directory, found without following links.

    Attributes:
        files: release-relative POSIX path -> size, of every regular file.
        strange: one phrase per entry that is neither a regular file nor a directory.
    """

    files: dict[str, int]
    strange: tuple[str, ...]


@dataclass
class ReleaseReader:
    """Bounded, cached reads of the files of one release directory."""

    root: Path
    limits: Limits = DEFAULT_LIMITS
    _cache: dict[str, bytes] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """The file ``name`` (release-relative POSIX path)."""
        return self.root / name

    def exists(self, name: str) -> bool:
        """Whether an entry called ``name`` exists (a link counts; nothing is followed)."""
        return os.path.lexists(self.path(name))

    def read(self, name: str, *, limit: int | None = None) -> bytes:
        """The bytes of the regular file ``name``, read once, at most ``limit`` of them.

        Raises:
            NotRegularFile: not a regular file, or it leads outside the release.
            OperationalError: missing, unreadable or larger than the limit.
        """
        cached = self._cache.get(name)
        if cached is None:
            cap = limit if limit is not None else self.limits.document_bytes
            cached = read_regular(self.path(name), limit=cap, inside=self.root)
            self._cache[name] = cached
        return cached

    def json(self, name: str, what: str, *, hint: str, limit: int | None = None) -> Any:
        """The JSON document in ``name``, depth-checked.

        Raises:
            VerificationFailed: not UTF-8 JSON, or nested too deeply.
        """
        return load_json(
            self.read(name, limit=limit),
            source=name,
            hint=hint,
            what=what,
            max_depth=self.limits.json_depth,
        )

    def envelope(self, name: str) -> dict[str, Any]:
        """The DSSE envelope in ``name``, its shape checked (not its signatures).

        Raises:
            VerificationFailed: not a DSSE envelope.
        """
        return parse_envelope(self.read(name), source=name, max_depth=self.limits.json_depth)

    def inventory(self) -> Inventory:
        """List every entry of the release without following links or opening files.

        Raises:
            OperationalError: the release holds more entries than the limit.
        """
        files: dict[str, int] = {}
        strange: list[str] = []
        pending = [self.root]
        count = 0
        while pending:
            directory = pending.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    count += 1
                    if count > self.limits.entries:
                        raise OperationalError(
                            f"{self.root} holds more than {self.limits.entries} entries",
                            hint="a release holds a model and its attestations; this is not one",
                        )
                    name = Path(entry.path).relative_to(self.root).as_posix()
                    mode = entry.stat(follow_symlinks=False).st_mode
                    if stat.S_ISDIR(mode):
                        pending.append(Path(entry.path))
                    elif stat.S_ISREG(mode):
                        files[name] = entry.stat(follow_symlinks=False).st_size
                    else:
                        strange.append(f"{name} is {file_kind(mode)}")
        return Inventory(dict(sorted(files.items())), tuple(sorted(strange)))
