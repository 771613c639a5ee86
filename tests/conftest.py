"""Test-suite order: files with slow tests first, so that two workers finish together.

``make test`` hands whole files to its workers in collection order; a slow file collected
last (the reference pipeline's stage tests are) would run alone at the end while the other
worker idles. The items of a file stay together and in their order, so module fixtures are
set up once, as in a serial run.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the files that hold a ``slow`` test before the others (a stable sort)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)
