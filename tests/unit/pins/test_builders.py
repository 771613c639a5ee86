"""BUILD_TYPE, builder_id and builder_kind, and the specifications in builders/ they point to."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitwright.errors import UsageError
from bitwright.model import SandboxKind
from bitwright.pins import BUILD_TYPE, BUILDER_KINDS, builder_id, builder_kind

BUILDERS = Path(__file__).resolve().parents[3] / "builders"


@pytest.mark.parametrize("kind", BUILDER_KINDS)
def test_every_builder_id_is_specified(kind: str) -> None:
    uri = builder_id(kind)
    assert uri == f"https://bitwright.dev/builders/{kind}/v1"
    spec = (BUILDERS / f"{kind}.md").read_text()
    assert uri in spec
    assert uri in (BUILDERS / "README.md").read_text()


def test_build_type_is_specified() -> None:
    assert BUILD_TYPE == "https://bitwright.dev/buildtypes/dvc-pipeline/v1"
    spec = (BUILDERS / "buildtypes/dvc-pipeline/v1.md").read_text()
    assert BUILD_TYPE in spec
    for field in ("externalParameters", "repository", "commit", "targets", "params", "builder"):
        assert f"`{field}`" in spec or field in spec


def test_unknown_builder_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown builder 'laptop'") as caught:
        builder_id("laptop")
    assert "sandboxed-host" in caught.value.hint


@pytest.mark.parametrize(
    ("sandbox", "ci", "dirty", "expected"),
    [
        (SandboxKind.PODMAN, False, False, "container"),
        (SandboxKind.BUBBLEWRAP, False, False, "sandboxed-host"),
        (SandboxKind.UNSHARE, False, False, "local-host"),
        (SandboxKind.NONE, False, False, "local-host"),
        (SandboxKind.BUBBLEWRAP, True, False, "ci"),
        (SandboxKind.PODMAN, True, False, "ci"),
        (SandboxKind.UNSHARE, True, False, "local-host"),
        (SandboxKind.BUBBLEWRAP, True, True, "sandboxed-host"),
    ],
)
def test_builder_kind_claims_only_what_the_sealing_meets(
    sandbox: SandboxKind, ci: bool, dirty: bool, expected: str
) -> None:
    assert builder_kind(sandbox, ci=ci, dirty=dirty) == expected
    assert builder_id(expected)
