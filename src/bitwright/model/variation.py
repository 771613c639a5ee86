"""Variations of a build: deliberate, recorded differences from the normal sealed run.

A nightly rebuild asks whether a pipeline still gives the same bits when something that
should not matter changes (the time zone, the build path, the host name...), and a bisect asks
which of those changes broke them. Both speak in :class:`Change` values (one atomic difference)
grouped into named :class:`Variation` values; the runner applies the changes it owns (a
stage's environment, umask and host name), the builder those to the declared determinism
settings, and the caller the build path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Change", "ChangeKind", "Variation", "VariationKind"]


class ChangeKind(StrEnum):
    """What an atomic change alters."""

    ENV = "env"
    """Sets the environment variable ``name`` of the stage to ``value``."""
    SETTING = "setting"
    """Declares the determinism setting ``name`` (of ``params.yaml``) as ``value`` (JSON)."""
    UMASK = "umask"
    """Starts the stage with the umask ``value`` (octal)."""
    HOSTNAME = "hostname"
    """Gives the stage's UTS namespace the host name ``value``."""
    BUILD_PATH = "build_path"
    """Builds in a workspace at the relative path ``value`` below the usual one."""
    FS_ORDER = "fs_order"
    """Builds in a workspace whose directories list their entries in shuffled order."""


class VariationKind(StrEnum):
    """Whether a variation changes the build's surroundings or one of its pinned knobs."""

    ENVIRONMENT = "environment"
    """Something the pins claim does not matter: a difference is a reproducibility bug."""
    KNOB = "knob"
    """A declared determinism setting changed on purpose: a difference shows what it pins."""


@dataclass(frozen=True)
class Change:
    """One atomic difference from the normal run (see :class:`ChangeKind` for the fields)."""

    kind: ChangeKind
    name: str
    value: str

    def describe(self) -> str:
        """Return the change as a person reads it, e.g. ``TZ=Pacific/Kiritimati``."""
        if self.kind in (ChangeKind.ENV, ChangeKind.SETTING):
            prefix = "" if self.kind is ChangeKind.ENV else "determinism."
            return f"{prefix}{self.name}={self.value}"
        return f"{self.kind.value} {self.value}"


@dataclass(frozen=True)
class Variation:
    """A named group of changes applied together to every stage of a build.

    Attributes:
        name: the variation's name (``time_zone``), or the names of those it combines
            joined by ``+``.
        kind: environment or knob (see :class:`VariationKind`).
        changes: the atomic changes, in a stable order.
        note: how this machine applies it when that is weaker than the ideal, else "".
    """

    name: str
    kind: VariationKind
    changes: tuple[Change, ...]
    note: str = ""

    def of(self, kind: ChangeKind) -> tuple[Change, ...]:
        """The changes of one kind."""
        return tuple(c for c in self.changes if c.kind is kind)

    def last(self, kind: ChangeKind) -> str | None:
        """The value of the last change of ``kind`` (umask, host name, build path), if any."""
        found = self.of(kind)
        return found[-1].value if found else None

    def describe(self) -> str:
        """Return the changes as one line."""
        return ", ".join(c.describe() for c in self.changes) or "no change"

    @staticmethod
    def combine(name: str, parts: Iterable[Variation | Change]) -> Variation:
        """One variation with the changes of every part (a knob if any part is one)."""
        changes: list[Change] = []
        kind = VariationKind.ENVIRONMENT
        for part in parts:
            if isinstance(part, Change):
                changes.append(part)
                kind = VariationKind.KNOB if part.kind is ChangeKind.SETTING else kind
                continue
            changes.extend(part.changes)
            kind = VariationKind.KNOB if part.kind is VariationKind.KNOB else kind
        return Variation(name, kind, tuple(dict.fromkeys(changes)))
