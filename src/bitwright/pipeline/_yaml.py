"""Strict YAML reading of pipeline files: safe types only, duplicate keys refused.

PyYAML's ``safe_load`` keeps the last of two equal keys, so a stage defined twice in
``dvc.yaml`` would silently vanish; DVC itself (ruamel) refuses such a file, and so do we.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bitwright.errors import OperationalError, UsageError

__all__ = ["DuplicateKeyError", "parse_yaml", "read_text", "strict_load"]


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice."""


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # construct_mapping below reports the unhashable key
        if key in seen:
            raise DuplicateKeyError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strict_load(text: str) -> Any:
    """Parse YAML ``text`` with safe types only, refusing duplicate keys.

    Raises:
        yaml.YAMLError: the text is not valid YAML or repeats a key in a mapping.
    """
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe types only


def read_text(path: Path, file: str, hint: str) -> str:
    """Read a pipeline file; a missing or unreadable one is an :class:`OperationalError`."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OperationalError(f"{file}: missing in {path.parent}", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationalError(f"{file}: unreadable ({exc})", hint=hint) from exc


def parse_yaml(
    text: str, file: str, error: type[UsageError | OperationalError], hint: str = "fix the syntax"
) -> Any:
    """Parse ``text`` strictly; malformed YAML raises ``error`` naming the line and stage."""
    try:
        return strict_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        stage = _stage_at_line(text, mark.line) if mark is not None else None
        within = f" in stage {stage!r}" if stage else ""
        raise error(f"{file}: malformed YAML{at}{within}: {problem}", hint=hint) from exc


def _stage_at_line(text: str, line: int) -> str | None:
    """Return the stage whose block holds ``line`` (0-based), for error messages."""
    stage: str | None = None
    indent: int | None = None
    in_stages = False
    for raw in text.splitlines()[: line + 1]:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        depth = len(raw) - len(raw.lstrip(" "))
        if depth == 0:
            in_stages, stage, indent = stripped.startswith("stages:"), None, None
        elif in_stages:
            indent = depth if indent is None else indent
            if depth == indent and stripped.endswith(":"):
                stage = stripped[:-1].strip("'\"")
    return stage
