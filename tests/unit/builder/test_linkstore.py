"""When a stored link may stand for a stage DVC did not run: as it is, attested again, or not."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bitwright.attest import build_link, generate_keypair, load_signer, read_link, write_link
from bitwright.attest.keys import Signer
from bitwright.builder.linkstore import LinkStore, Reuse, StageNow, reuse, reuse_stored
from bitwright.model import (
    BuildPins,
    ContainerPin,
    DataPin,
    DeterminismSettings,
    EnvironmentPin,
    GitPin,
    RunnerReceipt,
    SandboxKind,
    SandboxReport,
    Sha256,
    StageReceipts,
    StageRun,
    StageSpec,
)

H = Sha256("a" * 64)
SPEC = StageSpec(
    name="train",
    cmd="bitwright stage run train -- python train.py",
    deps=("train.py",),
    outs=("model.bin",),
)
ENV = {"SOURCE_DATE_EPOCH": "1700000000", "PATH": "/usr/bin"}
PINS = BuildPins(
    git=GitPin("1" * 40, 1_700_000_100, "/repo", source_date_epoch=1_700_000_000),
    data=(DataPin("data/raw", "d" * 32, H, 10, 1),),
    container=None,
    determinism=DeterminismSettings(),
    environment=EnvironmentPin("CPython 3.11", ("torch==2.13.0",), H, "Linux", "x86_64", "cpu", H),
    params_sha256={"params.yaml": H},
)
SEAL = SandboxReport(SandboxKind.BUBBLEWRAP, True, True, False, True)


def _run(**changes: Any) -> StageRun:
    run = StageRun(
        stage="train",
        command=("python", "train.py"),
        returncode=0,
        materials={"train.py": H},
        products={"model.bin": Sha256("b" * 64)},
        stdout_sha256=H,
        stderr_sha256=H,
        sandbox=SEAL,
        environment=dict(ENV),
        receipts=StageReceipts(runner=RunnerReceipt(2, "0022", dict(ENV))),
    )
    return dataclasses.replace(run, **changes)


def _link(run: StageRun | None = None, pins: BuildPins = PINS) -> dict[str, Any]:
    link = build_link(run or _run(), pins, declared=pins.determinism)
    return link.to_json()


def _now(**changes: Any) -> StageNow:
    now = StageNow(
        spec=SPEC,
        pins=PINS,
        materials={"train.py": H},
        products={"model.bin": Sha256("b" * 64)},
        environment=dict(ENV),
        sandbox=SandboxKind.BUBBLEWRAP,
        strict=False,
    )
    return dataclasses.replace(now, **changes)


NEW_COMMIT = dataclasses.replace(PINS, git=dataclasses.replace(PINS.git, commit="2" * 40))


def test_a_link_whose_every_fact_holds_stands_as_it_is() -> None:
    assert reuse(_link(), _now()) == (Reuse.AS_IS, "")


def test_a_link_of_another_commit_is_attested_again_when_nothing_else_moved() -> None:
    assert reuse(_link(), _now(pins=NEW_COMMIT))[0] is Reuse.ATTEST_AGAIN


OTHER_DATA = dataclasses.replace(PINS, data=(dataclasses.replace(PINS.data[0], sha256="e" * 64),))
IN_IMAGE = dataclasses.replace(
    PINS,
    container=ContainerPin(
        "localhost/build:1", "sha256:" + "c" * 64, H, "0" * 32, 1, "", True, "podman"
    ),
)
STALE = {
    "another stage": (_now(spec=dataclasses.replace(SPEC, name="test")), "another stage's"),
    "another command": (
        _now(spec=dataclasses.replace(SPEC, cmd="bitwright stage run train -- python t2.py")),
        "its command differs",
    ),
    "other materials": (_now(materials={"train.py": Sha256("c" * 64)}), "materials differ"),
    "other products": (_now(products={}), "products differ"),
    "a sandbox with other paths": (_now(environment=None), "other paths"),
    "another environment": (
        _now(environment={**ENV, "SOURCE_DATE_EPOCH": "1800000000"}),
        "its environment differs",
    ),
    "another sandbox": (_now(sandbox=SandboxKind.UNSHARE), "another sandbox"),
    "strict now, not then": (_now(strict=True), "strict mode"),
    "other declared settings": (
        _now(pins=dataclasses.replace(PINS, determinism=DeterminismSettings(seed=1))),
        "determinism settings",
    ),
    "other pinned data": (_now(pins=OTHER_DATA), "other pins (data)"),
    "now in a build image": (_now(pins=IN_IMAGE), "other pins (container)"),
}


@pytest.mark.parametrize("case", sorted(STALE))
def test_a_link_that_no_longer_holds_is_not_reused(case: str) -> None:
    now, why = STALE[case]
    verdict, reason = reuse(_link(), now)
    assert verdict is Reuse.NO
    assert why in reason


def test_a_run_that_read_undeclared_files_or_failed_is_not_reused() -> None:
    assert reuse(_link(_run(undeclared_reads=("notes.txt",))), _now())[0] is Reuse.NO
    assert reuse(_link(_run(returncode=3)), _now())[0] is Reuse.NO


def _stored(tmp_path: Path) -> tuple[LinkStore, Path, Signer]:
    """A store holding the signed link of :func:`_run`, the stored file and its signer."""
    pair = generate_keypair(tmp_path / "keys")
    signer = load_signer(pair.private_path)
    earlier = write_link(build_link(_run(), PINS, declared=PINS.determinism), signer, tmp_path)
    store = LinkStore(tmp_path / "store")
    stored = store.put(earlier, read_link(earlier)[0], pair.keyid[:8])
    earlier.unlink()
    return store, stored, signer


def test_attesting_again_cites_the_earlier_link(tmp_path: Path) -> None:
    store, stored, signer = _stored(tmp_path)
    links = tmp_path / "links"
    written, why = reuse_stored(store, _now(pins=NEW_COMMIT), signer, links)
    assert written is not None and why == ""
    payload, _ = read_link(written, keys=[signer.public_key])
    assert payload["environment"]["pins"]["git"]["commit"] == "2" * 40
    cited = payload["byproducts"]["reused-run"]
    assert cited == {"link": stored.name, "sha256": stored.stem, "commit": "1" * 40}
    assert payload["byproducts"]["receipts"]["runner"]["umask"] == "0022"
    assert len(list((tmp_path / "store").rglob("*.link"))) == 2  # the earlier one is kept

    other_key = load_signer(generate_keypair(tmp_path / "other").private_path)
    none, reason = reuse_stored(store, _now(pins=NEW_COMMIT), other_key, tmp_path / "l2")
    assert none is None and reason == "no earlier run made these outputs"


def test_a_stored_link_whose_signature_fails_is_not_reused(tmp_path: Path) -> None:
    store, stored, signer = _stored(tmp_path)
    envelope = json.loads(stored.read_text())
    signature = envelope["signatures"][0]["sig"]
    envelope["signatures"][0]["sig"] = ("B" if signature[0] == "A" else "A") + signature[1:]
    stored.write_text(json.dumps(envelope))
    written, why = reuse_stored(store, _now(), signer, tmp_path / "links")
    assert written is None and "unreadable" in why
