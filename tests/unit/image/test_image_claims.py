"""What verify checks of a provenance's build image: the links agree, and the image exists."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from tests.unit.attest.attest_factories import make_pins, make_run

from bitwright.attest import build_link
from bitwright.attest.provenance import build_provenance
from bitwright.attest.statement import Statement
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.image.claims import check_claimed_image
from bitwright.image.normtar import write_normalized_tar
from bitwright.image.oci import ImageConfig, read_oci_archive, write_oci_archive
from bitwright.image.store import ImageStore
from bitwright.model import BuildPins, DeterminismSettings, SandboxKind


def statement(pins: BuildPins) -> Statement:
    return build_provenance(
        subjects={"models/model.pt": make_run().products["models/model.pt"]},
        pins=pins,
        source_uri="/src",
        targets=["dvc.yaml"],
        params=pins.params_sha256,
        builder_id="https://bitwright.dev/builders/container/v1",
        invocation_id="1",
        started_on="2026-01-01T00:00:00Z",
        finished_on="2026-01-01T00:01:00Z",
        links={},
        confirmed={},
    )


def links(pins: BuildPins, kind: SandboxKind, digest: str) -> dict[str, dict[str, Any]]:
    run = make_run()
    sandbox = dataclasses.replace(run.sandbox, kind=kind, container_digest=digest)
    link = build_link(
        dataclasses.replace(run, sandbox=sandbox), pins, declared=DeterminismSettings()
    )
    return {"train.12345678.link": link.to_json()}


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.fixture
def held(tmp_path: Path, store: ImageStore) -> BuildPins:
    """Pins of a container build whose image archive is in the store (remote: none here)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello").write_text("hi\n")
    with (tmp_path / "layer").open("wb") as sink:
        layer = write_normalized_tar(root, sink, epoch=1)
    config = ImageConfig(env=(), workdir="/", created="1970-01-01T00:00:01Z")
    with (tmp_path / "a.tar").open("wb") as sink:
        write_oci_archive(
            tmp_path / "layer", layer.sha256, config, name="localhost/t:1", epoch=1, sink=sink
        )
    image = read_oci_archive(tmp_path / "a.tar")
    store.keep(tmp_path / "a.tar", image)
    container = dataclasses.replace(
        make_pins().container,  # type: ignore[type-var]
        image="localhost/t:1",
        digest=image.digest,
        remote_url=str(tmp_path / "no-remote-here"),
    )
    return dataclasses.replace(make_pins(), container=container)


def test_an_image_the_links_ran_in_and_the_store_holds_is_checked(
    held: BuildPins, store: ImageStore
) -> None:
    assert held.container is not None
    digest = held.container.digest
    detail = check_claimed_image(
        statement(held), links(held, SandboxKind.PODMAN, digest), store=store
    )
    assert detail == f"build image {digest} obtained (store) and checked"


def test_a_link_that_ran_on_the_host_contradicts_the_claim(
    held: BuildPins, store: ImageStore
) -> None:
    with pytest.raises(VerificationFailed, match="ran under bubblewrap"):
        check_claimed_image(statement(held), links(held, SandboxKind.BUBBLEWRAP, ""), store=store)


def test_a_link_that_ran_in_another_image_contradicts_the_claim(
    held: BuildPins, store: ImageStore
) -> None:
    other = "sha256:" + "9" * 64
    with pytest.raises(VerificationFailed, match=f"ran in image {other}"):
        check_claimed_image(statement(held), links(held, SandboxKind.PODMAN, other), store=store)


def test_a_link_in_an_image_the_provenance_does_not_name_is_refused(store: ImageStore) -> None:
    pins = dataclasses.replace(make_pins(), container=None)
    with pytest.raises(VerificationFailed, match="does not name"):
        check_claimed_image(
            statement(pins), links(pins, SandboxKind.PODMAN, "sha256:" + "1" * 64), store=store
        )
    host = links(pins, SandboxKind.BUBBLEWRAP, "")
    assert check_claimed_image(statement(pins), host, store=store).startswith("no build image")


def test_an_image_nobody_can_obtain_is_an_operational_error_naming_it(
    held: BuildPins, tmp_path: Path
) -> None:
    assert held.container is not None
    digest = held.container.digest
    empty = ImageStore(tmp_path / "empty")
    with pytest.raises(
        OperationalError, match=rf"build image {digest} \(localhost/t:1\) cannot be obtained"
    ):
        check_claimed_image(statement(held), links(held, SandboxKind.PODMAN, digest), store=empty)
