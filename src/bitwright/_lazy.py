"""Package names imported on first use (:pep:`562`), for packages with slow submodules.

A package lists which submodule each lazy name lives in and installs the pair this returns::

    __getattr__, __dir__ = lazy_names(__name__, {"build": "orchestrate", ...})

``from package import name`` then imports only that name's submodule, once; the name is kept
in the package afterwards. Standard library only, so any layer may use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_names"]


def lazy_names(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        homes: each lazy name -> the submodule (relative to ``package``) it comes from.
    """

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__
