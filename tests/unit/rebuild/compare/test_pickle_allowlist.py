"""The comparison admits exactly the globals the one allowlist (the scanner's) admits."""

from __future__ import annotations

import pytest

from bitwright.rebuild.compare._pickle_allowlist import ROLES, role_of
from bitwright.scan.allowlist import FAMILIES, allowed_use


@pytest.mark.parametrize("dotted", sorted(ROLES))
def test_every_special_stand_in_is_on_the_allowlist(dotted: str) -> None:
    module, name = dotted.rsplit(".", 1)
    assert allowed_use(module, name, frozenset(FAMILIES)) is not None
    assert role_of(module, name) == ROLES[dotted]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("__builtin__", "exec"),
        ("subprocess", "Popen"),
        ("sklearn.utils", "__import__"),
        ("numpy", "load"),
    ],
)
def test_what_the_scanner_refuses_is_never_read_as_data(module: str, name: str) -> None:
    assert allowed_use(module, name, frozenset(FAMILIES)) is None
    assert role_of(module, name) is None


def test_other_admitted_globals_are_records_and_python2_names_map() -> None:
    assert role_of("sklearn.ensemble._forest", "RandomForestClassifier") == "class"
    assert role_of("numpy.random.mtrand", "RandomState") == "class"
    assert role_of("numpy.dtypes", "Float64DType") == "class"
    assert role_of("copy_reg", "_reconstructor") == "reconstructor"
    assert role_of("__builtin__", "set") == "set"
