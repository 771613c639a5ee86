from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from attest_factories import make_pins, make_run, sha
from in_toto.models._signer import load_public_key_from_file
from in_toto.models.link import Link as InTotoLink
from in_toto.models.metadata import Metadata

from bitwright.attest import (
    INTOTO_PAYLOAD_TYPE,
    KeyPair,
    Link,
    build_link,
    canonical_json,
    read_link,
    sign_envelope,
    write_envelope,
    write_link,
)
from bitwright.attest.keys import Signer
from bitwright.errors import OperationalError, UsageError, VerificationFailed
from bitwright.model import DeterminismSettings, Sha256


def _link(**kwargs: Any) -> Link:
    return build_link(make_run(**kwargs), make_pins(), declared=DeterminismSettings())


def test_link_records_the_run_as_in_toto_expects() -> None:
    run = make_run(returncode=0)
    link = build_link(run, make_pins(), declared=DeterminismSettings(seed=7)).to_json()

    assert link["_type"] == "link"
    assert link["name"] == "train"
    assert link["command"] == ["python", "pipelines/train.py"]
    assert link["materials"]["pipelines/train.py"] == {
        "sha256": run.materials["pipelines/train.py"]
    }
    assert link["products"] == {"models/model.pt": {"sha256": run.products["models/model.pt"]}}
    assert link["byproducts"]["return-value"] == 0
    assert link["byproducts"]["receipts"]["runner"]["umask"] == "0022"
    assert link["byproducts"]["receipts"]["python"][0]["torch"]["cpu_capability"] == "AVX2"
    assert link["byproducts"]["sandbox"]["kind"] == "bubblewrap"
    assert link["environment"]["determinism-declared"]["seed"] == 7
    assert link["environment"]["pins"]["git"]["commit"] == make_pins().git.commit
    # in-toto's own model accepts it (it only checks that byproducts/environment are objects).
    assert InTotoLink.read(json.loads(canonical_json(link))).name == "train"


def test_written_link_is_named_stage_keyid8_and_reads_back(tmp_path: Path, owner: Signer) -> None:
    link = build_link(make_run(), make_pins(), declared=DeterminismSettings())
    path = write_link(link, owner, tmp_path / "links")

    assert path == tmp_path / "links" / f"train.{owner.public_key.keyid[:8]}.link"
    data, keyid = read_link(path, keys=[owner.public_key])
    assert data == link.to_json()
    assert keyid == owner.public_key.keyid
    # Integers stay integers through signing and reading (no protobuf Struct floats).
    assert isinstance(data["byproducts"]["return-value"], int)
    assert isinstance(data["environment"]["pins"]["git"]["commit_time"], int)


def test_in_toto_loads_and_verifies_a_written_link(
    tmp_path: Path, owner: Signer, owner_pair: KeyPair
) -> None:
    link = build_link(make_run(), make_pins(), declared=DeterminismSettings())
    path = write_link(link, owner, tmp_path)

    metadata = Metadata.load(str(path))
    metadata.verify_signature(load_public_key_from_file(str(owner_pair.public_path)))
    payload = metadata.get_payload()
    assert payload.products == link.to_json()["products"]
    assert payload.byproducts["return-value"] == 0


def test_reading_with_the_wrong_key_fails(tmp_path: Path, owner: Signer, stranger: Signer) -> None:
    path = write_link(
        build_link(make_run(), make_pins(), declared=DeterminismSettings()), stranger, tmp_path
    )
    with pytest.raises(VerificationFailed, match="signature check failed"):
        read_link(path, keys=[owner.public_key])
    _, keyid = read_link(path)  # unverified read still tells who claims to have signed
    assert keyid == stranger.public_key.keyid


def test_a_link_with_an_altered_product_fails_to_verify(tmp_path: Path, owner: Signer) -> None:
    path = write_link(
        build_link(make_run(), make_pins(), declared=DeterminismSettings()), owner, tmp_path
    )
    envelope = json.loads(path.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["products"]["models/model.pt"]["sha256"] = sha("other weights")
    envelope["payload"] = base64.b64encode(canonical_json(payload)).decode()
    path.write_bytes(canonical_json(envelope))

    with pytest.raises(VerificationFailed):
        read_link(path, keys=[owner.public_key])


def test_a_signed_document_with_unknown_fields_is_not_a_link(tmp_path: Path, owner: Signer) -> None:
    payload = canonical_json({**_link().to_json(), "extra": 1})
    path = write_envelope(sign_envelope(payload, INTOTO_PAYLOAD_TYPE, owner), tmp_path / "x.link")
    with pytest.raises(VerificationFailed, match="is not an in-toto link: extra"):
        read_link(path, keys=[owner.public_key])


def test_other_payload_types_are_not_links(tmp_path: Path, owner: Signer) -> None:
    payload = canonical_json(_link().to_json())
    path = write_envelope(sign_envelope(payload, "text/plain", owner), tmp_path / "x.link")
    with pytest.raises(VerificationFailed, match="payloadType"):
        read_link(path)


def test_bad_digest_is_reported_for_the_stage() -> None:
    with pytest.raises(OperationalError, match="stage 'train': cannot build its link"):
        _link(products={"models/model.pt": Sha256("not-hex!")})


def test_stage_names_that_are_not_file_names_are_refused(tmp_path: Path, owner: Signer) -> None:
    link = _link(stage="a/b")
    with pytest.raises(UsageError, match="cannot name a link file"):
        write_link(link, owner, tmp_path)
