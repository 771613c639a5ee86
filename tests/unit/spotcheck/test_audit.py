"""The audit's checks without replay: the signed claim, the run, states and the final model."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy
import pytest
from safetensors.numpy import save_file

from bitwright.spotcheck import (
    Claim,
    check_claim,
    check_run,
    compare_states,
    model_matches_final_state,
)
from bitwright.trajectory import Trajectory, read_trajectory
from bitwright.trajectory.record import SegmentRecord, expected_commitment, seal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trajectory"))
from _trajloop import run_loop  # noqa: E402


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trajectory:
    monkeypatch.chdir(tmp_path)
    Path("data.bin").write_bytes(b"twenty items of training data")
    run_loop(Path("run"), Path("data.bin")).finish()
    return read_trajectory(Path("run/bitwright-trajectory.json"))


def _claim(t: Trajectory) -> Claim:
    return Claim(
        "train",
        "run/bitwright-trajectory.json",
        "e" * 64,
        "f" * 32,
        t.chain_head,
        t.merkle_root,
        len(t.segments),
        t.header.steps,
        "",
    )


def _link(t: Trajectory, claim: Claim) -> dict[str, Any]:
    products = {f"run/{s.file}": {"sha256": s.sha256} for s in t.states}
    products[claim.file] = {"sha256": claim.sha256}
    products["model.json"] = {"sha256": "0" * 64}
    return {
        "materials": {"data.bin": {"sha256": t.header.data_sha256}},
        "products": products,
        "byproducts": {"trajectory": claim.summary()},
    }


def test_an_honest_run_passes_every_check(recorded: Trajectory) -> None:
    claim = _claim(recorded)
    link = _link(recorded, claim)
    assert check_claim(claim, link) == []
    assert check_run(recorded, claim, link, declared_seed=5) == []


def test_a_link_that_disagrees_with_the_provenance_is_named(recorded: Trajectory) -> None:
    claim = _claim(recorded)
    link = _link(recorded, claim)
    link["byproducts"]["trajectory"]["chainHead"] = "0" * 64
    assert check_claim(claim, link) == [
        "the link of stage 'train' and the provenance differ on chainHead"
    ]
    assert check_claim(claim, {"products": {}}) == [
        "the signed link of stage 'train' records no trajectory"
    ]


def test_another_seed_or_unpinned_data_fails(recorded: Trajectory) -> None:
    claim = _claim(recorded)
    link = _link(recorded, claim)
    assert "is not the declared seed 6" in check_run(recorded, claim, link, declared_seed=6)[0]
    link["materials"] = {"data.bin": {"sha256": "1" * 64}}
    assert "must come from the pinned data" in check_run(recorded, claim, link, 5)[0]


def test_convenient_batches_are_caught_even_in_a_resealed_run(recorded: Trajectory) -> None:
    t = recorded
    seg = t.segments[7]
    chosen = replace(seg, batches="2" * 64)
    forged = replace(t, segments=(*t.segments[:7], chosen, *t.segments[8:]))
    chosen = replace(chosen, commitment=expected_commitment(forged, chosen))
    forged = seal(t.header, t.states, (*t.segments[:7], chosen, *t.segments[8:]))
    claim = replace(_claim(forged))
    problems = check_run(forged, claim, _link(forged, claim), 5)
    assert problems == [
        "segment 7 (steps 21-23) trains on batches that the seed and the pinned data do not give"
    ]


def test_states_that_are_not_signed_products_fail(recorded: Trajectory) -> None:
    claim = _claim(recorded)
    link = _link(recorded, claim)
    del link["products"][f"run/{recorded.states[3].file}"]
    assert "state 3" in check_run(recorded, claim, link, 5)[0]


def test_a_broken_chain_is_reported_not_raised(recorded: Trajectory) -> None:
    seg = recorded.segments[2]
    broken = replace(
        recorded,
        segments=(
            *recorded.segments[:2],
            SegmentRecord(2, seg.first, seg.end, seg.batches, "0" * 64),
            *recorded.segments[3:],
        ),
    )
    claim = _claim(recorded)
    assert "segment 2 (steps 6-8)" in check_run(broken, claim, _link(recorded, claim), 5)[0]


def _state(path: Path, weight: numpy.ndarray, momentum: float = 0.0) -> Path:
    save_file(
        {
            "model.weight": weight,
            "optimizer.state.0.momentum_buffer": numpy.full(3, momentum, numpy.float32),
            "step": numpy.array(4, dtype=numpy.int64),
        },
        str(path),
    )
    return path


def test_the_released_model_must_be_the_final_state(tmp_path: Path) -> None:
    w = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    final = _state(tmp_path / "final.safetensors", w)
    model = tmp_path / "model.safetensors"
    save_file({"weight": w}, str(model))
    assert model_matches_final_state(model, final) is None
    save_file({"weight": w + 1e-6}, str(model))
    assert "tensor weight" in str(model_matches_final_state(model, final))
    save_file({"weight": w, "bias": w[0]}, str(model))
    assert "tensors" in str(model_matches_final_state(model, final))


def test_states_compare_within_a_tolerance_or_not(tmp_path: Path) -> None:
    w = numpy.ones((2, 3), numpy.float32)
    a = _state(tmp_path / "a.safetensors", w)
    b = _state(tmp_path / "b.safetensors", w + 1e-4)
    ok, detail = compare_states(a, b, atol=1e-3, rtol=0.0)
    assert ok and "model.weight" in detail
    assert not compare_states(a, b, atol=0.0, rtol=0.0)[0]
    c = _state(tmp_path / "c.safetensors", w, momentum=1.0)
    assert not compare_states(a, c, atol=1e-3, rtol=0.0)[0]
