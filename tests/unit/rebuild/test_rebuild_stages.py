"""Stage comparison on synthetic links: first divergent stage, inherited stages, tolerances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bitwright.errors import UsageError
from bitwright.rebuild.compare import FileComparison, Tolerance, Verdict
from bitwright.rebuild.stages import (
    PathMatch,
    PathStatus,
    StageRole,
    compare_stages,
    match_paths,
    stage_tolerances,
)

A, B, C, D, E = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64)
ORDER = ("prepare", "train", "package")


def link(materials: dict[str, str], products: dict[str, str]) -> dict[str, Any]:
    return {
        "materials": {p: {"sha256": d} for p, d in materials.items()},
        "products": {p: {"sha256": d} for p, d in products.items()},
    }


ORIGINAL = {
    "prepare": link({"prepare.py": A}, {"data/prepared": B}),
    "train": link({"train.py": A, "data/prepared": B}, {"model.st": C}),
    "package": link({"model.st": C}, {"release/model.st": C}),
}


def no_files(stage: str, differing: Sequence[PathMatch]) -> tuple[FileComparison, ...]:
    return ()


def test_identical_links_reproduce_every_stage() -> None:
    rows, first = compare_stages(ORDER, ORIGINAL, ORIGINAL, no_files)
    assert first is None
    assert [r.verdict for r in rows] == [Verdict.REPRODUCED] * 3
    assert all(r.materials_matched and r.products_matched for r in rows)
    assert rows[1].summary("materials") == "2/2 matched"


def test_same_materials_other_products_is_the_first_divergent_stage_and_later_inherit() -> None:
    rebuilt = {
        "prepare": ORIGINAL["prepare"],
        "train": link({"train.py": A, "data/prepared": B}, {"model.st": D}),
        "package": link({"model.st": D}, {"release/model.st": D}),
    }
    rows, first = compare_stages(ORDER, ORIGINAL, rebuilt, no_files)
    assert first == "train"
    roles = [r.role for r in rows]
    assert roles == [StageRole.REPRODUCED, StageRole.FIRST_DIVERGENT, StageRole.INHERITED]
    assert rows[1].verdict is Verdict.DIFFERENT
    assert "inherited from train" in rows[2].note
    assert rows[2].summary("materials") == "0/1 matched, 1 differs"
    # products without original bytes are judged by digest only, and say so
    (only,) = rows[1].files
    assert only.kind == "digest" and "not in the release" in only.detail


def test_a_second_independent_divergence_is_reported_as_divergent_not_inherited() -> None:
    rebuilt = {
        "prepare": link({"prepare.py": A}, {"data/prepared": E}),
        "train": link({"train.py": A, "data/prepared": E}, {"model.st": D}),
        "package": link({"model.st": C}, {"release/model.st": D}),
    }
    rows, first = compare_stages(ORDER, ORIGINAL, rebuilt, no_files)
    assert first == "prepare"
    assert [r.role for r in rows] == [
        StageRole.FIRST_DIVERGENT,
        StageRole.INHERITED,
        StageRole.DIVERGENT,
    ]


def test_products_within_tolerance_are_not_divergent() -> None:
    rebuilt = dict(ORIGINAL, train=link({"train.py": A, "data/prepared": B}, {"model.st": D}))

    def within(stage: str, differing: Sequence[PathMatch]) -> tuple[FileComparison, ...]:
        return tuple(
            FileComparison(m.path, "safetensors", Verdict.REPRODUCED_WITHIN_TOLERANCE, "close")
            for m in differing
        )

    rows, first = compare_stages(ORDER, ORIGINAL, rebuilt, within)
    assert first is None
    assert rows[1].role is StageRole.WITHIN_TOLERANCE
    assert Verdict.combine(r.verdict for r in rows) is Verdict.REPRODUCED_WITHIN_TOLERANCE


def test_a_stage_the_rebuild_did_not_link_fails() -> None:
    rebuilt = {k: v for k, v in ORIGINAL.items() if k != "package"}
    rows, _ = compare_stages(ORDER, ORIGINAL, rebuilt, no_files)
    assert rows[2].verdict is Verdict.FAILED and rows[2].role is StageRole.NOT_REBUILT
    assert [p.status for p in rows[2].products] == [PathStatus.MISSING]


def test_match_paths_names_missing_and_extra_paths() -> None:
    got = {m.path: m.status for m in match_paths({"x": A, "y": B}, {"y": C, "z": D})}
    assert got == {"x": PathStatus.MISSING, "y": PathStatus.DIFFERS, "z": PathStatus.EXTRA}


def test_tolerances_come_from_params_unless_overridden() -> None:
    params = {"compare": {"train": {"atol": 1e-6, "rtol": 0.0}}}
    got = stage_tolerances(params, ORDER, None)
    assert got["train"] == Tolerance(1e-6, 0.0)
    assert got["prepare"] == Tolerance()
    forced = stage_tolerances(params, ORDER, Tolerance(0.5, 0.0))
    assert set(forced.values()) == {Tolerance(0.5, 0.0)}
    with pytest.raises(UsageError, match=r"compare\.train"):
        stage_tolerances({"compare": {"train": {"atol": 1, "slack": 2}}}, ORDER, None)
