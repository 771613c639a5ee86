"""The allowlist: torch's weights_only set exactly, prefixes that cannot be walked through."""

from __future__ import annotations

import pytest

from bitwright.scan.allowlist import ALLOWLIST, Use, allowed_use, constructor_uses


def test_the_torch_family_is_torchs_weights_only_set() -> None:
    # torch publishes no public list; its unpickler's table is the reference we follow.
    from torch._weights_only_unpickler import _get_allowed_globals

    ours = {f"{e.module}.{e.name}" for e in ALLOWLIST if e.family == "torch"}

    assert ours == set(_get_allowed_globals())


@pytest.mark.parametrize(
    ("module", "name", "use"),
    [
        ("sklearn.linear_model._logistic", "LogisticRegression", Use.CONSTRUCT),
        ("sklearn.tree._tree", "Tree", Use.CALL),
        ("sklearn.ensemble._forest", "__pyx_unpickle_Thing", Use.CALL),
        ("__builtin__", "set", Use.CALL),
        ("copy_reg", "_reconstructor", Use.CALL),
        ("numpy.core.multiarray", "_reconstruct", Use.CALL),
        ("scipy.sparse._csr", "csr_matrix", Use.CONSTRUCT),
    ],
)
def test_what_is_admitted(module: str, name: str, use: Use) -> None:
    assert allowed_use(module, name) is use


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.base", "BaseEstimator.__init__.__globals__"),  # dotted: walked by pickle
        ("sklearn.utils", "__builtins__"),
        ("sklearnx", "Model"),  # not a submodule of sklearn
        ("os", "system"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("torch", "load"),
        ("numpy", "load"),
        ("os", "__pyx_unpickle_system"),
    ],
)
def test_what_is_refused(module: str, name: str) -> None:
    assert allowed_use(module, name) is None


def test_families_can_be_left_out() -> None:
    assert allowed_use("torch._utils", "_rebuild_tensor_v2", frozenset({"numpy"})) is None


def test_constructor_helpers_construct_their_first_argument() -> None:
    assert constructor_uses("copy_reg", "_reconstructor") == (Use.CONSTRUCT, Use.CALL)
    assert constructor_uses("sklearn.x", "__pyx_unpickle_Y") == (Use.CONSTRUCT,)
    assert constructor_uses("builtins", "set") == ()
