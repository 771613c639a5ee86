"""What ``bitwright verify`` imports before it checks anything, and that lazy names still work.

Every ``bitwright verify`` pays for its imports first; sigstore (a quarter of a second),
CycloneDX's model and model-signing are only needed for some releases, so they are imported
when a check needs them. Each import is checked in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

HEAVY = ("sigstore", "sigstore_models", "model_signing", "cyclonedx.model", "requests")
"""Imported only when a keyless bundle, a trust config, a BOM to write or a model.sig needs it."""


def _modules_after(statement: str) -> set[str]:
    """Run ``statement`` in a fresh interpreter; return the modules it left imported."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def _loaded_after(statement: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` ``statement`` imports, in a fresh interpreter."""
    loaded = _modules_after(statement)
    return [name for name in candidates if name in loaded]


def test_the_verify_command_module_leaves_heavy_libraries_unimported() -> None:
    assert _loaded_after("import bitwright.cli.cmd_verify", HEAVY) == []


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("bitwright.attest.keys", ("pydantic", "sigstore")),
        ("bitwright.attest.trust", ("pydantic", "sigstore", "sigstore_models")),
        ("bitwright.release.layout", ("cyclonedx", "model_signing", "sigstore", "jsonschema")),
    ],
)
def test_light_modules_stay_light(module: str, heavy: tuple[str, ...]) -> None:
    assert _loaded_after(f"import {module}", heavy) == []


def test_the_lazy_package_names_are_the_submodules_objects() -> None:
    statement = (
        "import bitwright.attest as a, bitwright.release as r\n"
        "for pkg in (a, r):\n"
        "    for name in pkg.__all__:\n"
        "        assert name in dir(pkg), name\n"
        "        assert getattr(pkg, name) is not None, name\n"
        "from bitwright.attest import Layout, read_link\n"
        "from bitwright.release import build_aibom, validate_aibom, verify_model\n"
        "from bitwright.attest.layout import Layout as L\n"
        "from bitwright.release.aibom import validate_aibom as v\n"
        "assert Layout is L and validate_aibom is v\n"
    )
    _modules_after(statement)  # fails on the first name that does not resolve


@pytest.mark.parametrize("package", ["bitwright.attest", "bitwright.release"])
def test_an_unknown_name_is_an_attribute_error(package: str) -> None:
    module = importlib.import_module(package)

    assert not hasattr(module, "no_such_name")
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
