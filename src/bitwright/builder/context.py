"""The build context: what ``bitwright build`` pinned once, handed to every ``stage run``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from bitwright.errors import OperationalError, UsageError
from bitwright.fileio import write_text_atomic
from bitwright.model import BuildPins, JsonModel, SandboxKind
from bitwright.model.pins import DeterminismSettings
from bitwright.model.variation import ChangeKind, Variation
from bitwright.pins.determinism import SECTION, pin_determinism

__all__ = [
    "CONTEXT_ENV",
    "BuildContext",
    "read_context",
    "vary_settings",
    "with_variation",
    "write_context",
]

CONTEXT_ENV = "BITWRIGHT_BUILD_CONTEXT"
"""Environment variable naming the context file of the build in progress."""


@dataclass(frozen=True)
class BuildContext(JsonModel):
    """Facts fixed for the whole build.

    Attributes:
        pins: the build's pins, recorded in every link.
        key_path: the private key that signs the links.
        strict: undeclared reads fail the stage instead of warning.
        sandbox: the sealing mechanism every stage uses.
        invocation_id: a unique id of this build.
        started_on: RFC 3339 UTC start time of the build.
        variation: what a nightly rebuild varies in every stage (None for a normal build);
            its knobs are already in ``pins.determinism``.
    """

    pins: BuildPins
    key_path: str
    strict: bool
    sandbox: SandboxKind
    invocation_id: str
    started_on: str
    variation: Variation | None = None


def vary_settings(
    settings: DeterminismSettings, variation: Variation | None
) -> DeterminismSettings:
    """Return the declared settings with the variation's knobs changed, checked as params are.

    Raises:
        UsageError: a change names an unknown setting or gives it a value it cannot take.
    """
    changes = variation.of(ChangeKind.SETTING) if variation else ()
    if not changes:
        return settings
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    for change in changes:
        current = values.get(change.name)
        if current is None:
            raise UsageError(
                f"variation {variation.name if variation else ''} changes the unknown "
                f"setting {change.name}",
                hint=f"known settings: {', '.join(sorted(values))}",
            )
        values[change.name] = _typed(change.value, current)
    return pin_determinism({SECTION: values})


def _typed(text: str, like: object) -> object:
    if isinstance(like, bool):
        return {"true": True, "false": False}.get(text.lower(), text)
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            return text
    return text


def with_variation(context: BuildContext, variation: Variation | None) -> BuildContext:
    """Return ``context`` building under ``variation``: its knobs declared, the rest recorded.

    Raises:
        UsageError: the variation gives a setting a value it cannot take.
    """
    if variation is None:
        return context
    determinism = vary_settings(context.pins.determinism, variation)
    pins = dataclasses.replace(context.pins, determinism=determinism)
    return dataclasses.replace(context, pins=pins, variation=variation)


def write_context(context: BuildContext, path: Path) -> None:
    """Write ``context`` to ``path`` atomically."""
    write_text_atomic(path, json.dumps(context.to_json(), indent=1, sort_keys=True))


def read_context(path: Path) -> BuildContext:
    """Read a context written by :func:`write_context`.

    Raises:
        OperationalError: the file is missing or not a build context.
    """
    try:
        return BuildContext.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise OperationalError(
            f"build context {path} is missing", hint="run the pipeline through `bitwright build`"
        ) from None
    except (ValueError, TypeError) as exc:
        raise OperationalError(
            f"build context {path} is unreadable: {exc}", hint="run `bitwright build` again"
        ) from None
