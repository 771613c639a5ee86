"""The CycloneDX 1.6 strict JSON schema as a validator that scales with the BOM's size.

The validator is the one cyclonedx-python-lib builds (Draft 7, the CycloneDX 1.6 schema and
the SPDX, JSF and cryptography definitions it refers to, format checks on), over copies of
those schemas in ``schemas/`` (the library keeps its own in a private module), with one
keyword replaced: jsonschema checks ``uniqueItems`` by comparing every pair of items, which costs
most of a verify on an AI BOM listing a few hundred packages. Here every item gets a
hashable key that equal items (in jsonschema's sense: ``1 == 1.0``, ``True != 1``, key
order ignored) always share, so distinct keys prove the items unique in one pass; when two
keys collide, jsonschema's own pairwise check decides and reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import Draft7Validator, extend
from referencing import Registry
from referencing.jsonschema import DRAFT7

__all__ = ["bom_validator", "item_key"]

_SCHEMA_PREFIX = "http://cyclonedx.org/schema/"
_PAIRWISE = Draft7Validator.VALIDATORS["uniqueItems"]


def item_key(item: Any) -> Any:
    """A hashable key of a JSON value; values jsonschema calls equal have equal keys."""
    if isinstance(item, bool):
        return ("b", item)
    if isinstance(item, int | float):
        try:
            return ("n", float(item))  # 1 == 1.0; huge ints may collide, which is only slower
        except OverflowError:
            return ("n", item)
    if isinstance(item, str):
        return ("s", item)
    if isinstance(item, dict):
        return ("o", frozenset((key, item_key(value)) for key, value in item.items()))
    if isinstance(item, list):
        return ("a", tuple(item_key(value) for value in item))
    return ("z", repr(item))  # None (and anything json.loads does not make)


def _unique_items(
    validator: Validator, unique: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    if len({item_key(item) for item in instance}) == len(instance):
        return
    yield from _PAIRWISE(validator, unique, instance, schema)


_BomValidator = extend(Draft7Validator, validators={"uniqueItems": _unique_items})  # type: ignore[no-untyped-call]


@cache
def bom_validator() -> Validator:
    """The CycloneDX 1.6 strict validator (built once per process)."""
    registry: Registry[Any] = Registry().with_resources(
        (_SCHEMA_PREFIX + name, DRAFT7.create_resource(_load(name))) for name in _REFERENCED
    )
    validator: Validator = _BomValidator(
        _load(_BOM_SCHEMA), registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER
    )
    return validator


_BOM_SCHEMA = "bom-1.6.SNAPSHOT.schema.json"
_REFERENCED = (
    "spdx.SNAPSHOT.schema.json",
    "cryptography-defs.SNAPSHOT.schema.json",
    "jsf-0.82.SNAPSHOT.schema.json",
)


def _load(name: str) -> Any:
    """A schema of ``schemas/`` (package data)."""
    return json.loads((resources.files("bitwright.release") / "schemas" / name).read_bytes())
