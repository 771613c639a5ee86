"""The symbolic values of the pickle machine: what the unpickler would hold, as safety needs.

Strings stay strings, globals stay names, integers keep their value, containers keep a few
items and every global inside them, and a called global's result remembers what made it and
with which arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "StorageRef",
    "Unmodelled",
    "Value",
    "add_items",
    "container",
    "dict_items",
]

MAX_ITEMS = 64
"""Items kept per container: enough to read a state, bounded for huge lists."""


@dataclass(frozen=True)
class StorageRef:
    """A torch storage a pickle refers to by persistent id.

    Attributes:
        key: the archive member name under ``data/``.
        dtype: the storage type's global name (``torch.FloatStorage``).
        numel: the number of elements it declares.
    """

    key: str
    dtype: str
    numel: int


class Unmodelled(Exception):  # noqa: N818  (a control-flow signal inside the machine)
    """The machine cannot follow the stream past this point."""


@dataclass(eq=False, slots=True)
class Value:
    """A symbolic value: what the unpickler would hold, as far as safety needs it."""

    kind: str  # global, text, number, bytes, const, list, tuple, dict, set, made
    text: str | None = None
    number: int | None = None
    name: tuple[str, str] | None = None  # a global's (module, name); what made a "made"
    items: list[Value] = field(default_factory=list)
    refs: frozenset[tuple[str, str]] = frozenset()  # globals in it, made objects excepted
    args: Value | None = None  # the arguments a "made" value was called with
    state: Value | None = None  # the state BUILD gave a "made" value


def dict_items(value: Value | None) -> dict[str, Value]:
    """The string-keyed items of a symbolic dict (what a state holds)."""
    if value is None or value.kind != "dict":
        return {}
    pairs = value.items
    return {k.text: v for k, v in zip(pairs[::2], pairs[1::2], strict=False) if k.text is not None}


def container(kind: str, items: list[Value]) -> Value:
    """A new container of ``kind`` holding ``items``."""
    value = Value(kind)
    add_items(value, items)
    return value


def add_items(target: Value, items: list[Value]) -> None:
    """Add ``items`` to the container ``target``: a few kept, every global inside noted."""
    if len(target.items) < MAX_ITEMS:
        target.items.extend(items[: MAX_ITEMS - len(target.items)])
    for item in items:
        if item.refs:
            target.refs = target.refs | item.refs
