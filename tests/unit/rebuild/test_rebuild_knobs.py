"""A stage that diverges is explained by the parallelism knob it declares (n_jobs=2)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bitwright.model import Pipeline, StageSpec
from bitwright.rebuild.compare import FileComparison, Verdict
from bitwright.rebuild.compare.knobs import parallel_knobs
from bitwright.rebuild.flow import RebuildRun, _name_knobs, _reason
from bitwright.rebuild.stages import PathMatch, StageRole, compare_stages

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def test_a_parallel_knob_among_the_declared_params_is_found() -> None:
    params = {"params.yaml": {"train": {"n_jobs": 2, "seed": 7}, "eval": {"n_jobs": 1}}}
    (knob,) = parallel_knobs(params, [("params.yaml", "train"), ("params.yaml", "eval")])
    assert (knob.key, knob.value) == ("train.n_jobs", 2)
    assert "set it to 1" in knob.describe()
    assert parallel_knobs(params, [("params.yaml", "train.seed")]) == ()
    serial = {"params.yaml": {"train": {"n_jobs": None, "nested": {"nthread": 1}}}}
    assert parallel_knobs(serial, [("params.yaml", "train")]) == ()
    everywhere = {"params.yaml": {"train": {"n_jobs": -1, "xgb": {"nthread": 4}}}}
    found = parallel_knobs(everywhere, [("params.yaml", "train")])
    assert {k.key for k in found} == {"train.n_jobs", "train.xgb.nthread"}


def _link(materials: dict[str, str], products: dict[str, str]) -> dict[str, Any]:
    return {
        "materials": {p: {"sha256": d} for p, d in materials.items()},
        "products": {p: {"sha256": d} for p, d in products.items()},
    }


def _no_files(stage: str, differing: Sequence[PathMatch]) -> tuple[FileComparison, ...]:
    return ()


def test_the_divergent_stage_is_named_with_its_knob_and_a_reproduced_one_warned(
    tmp_path: Path,
) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  n_jobs: 2\nevaluate:\n  n_jobs: 4\n")
    pipeline = Pipeline(
        stages=(
            StageSpec("train", "python train.py", ("train.py",), ("model.pkl",),
                      (("params.yaml", "train"),)),
            StageSpec("evaluate", "python evaluate.py", ("evaluate.py",), ("metrics.json",),
                      (("params.yaml", "evaluate"),)),
        )
    )  # fmt: skip
    original = {
        "train": _link({"train.py": A}, {"model.pkl": B}),
        "evaluate": _link({"evaluate.py": A}, {"metrics.json": C}),
    }
    rebuilt = {**original, "train": _link({"train.py": A}, {"model.pkl": D})}
    rows, first = compare_stages(["train", "evaluate"], original, rebuilt, _no_files)
    run = RebuildRun(tmp_path, lambda _: None)
    named = _name_knobs(rows, pipeline, tmp_path, run)
    train, evaluate = named
    assert train.role is StageRole.FIRST_DIVERGENT and train.knobs == ("train.n_jobs=2",)
    assert "train.n_jobs=2" in train.note and "set it to 1" in train.note
    assert evaluate.verdict is Verdict.REPRODUCED and evaluate.knobs == ()
    assert any("stage evaluate (REPRODUCED)" in n and "evaluate.n_jobs=4" in n for n in run.notes)
    reason = _reason(Verdict.DIFFERENT, first, named)
    assert reason == (
        "stage 'train' gave other products from the same materials "
        "(train.n_jobs=2 can make it nondeterministic)"
    )
