"""Nights made by hand, for the history, report and chart tests."""

from __future__ import annotations

from bitwright.nightly.night import (
    CONTROL,
    MovedTensor,
    Night,
    Result,
    SkippedVariation,
    StageResult,
    VariationResult,
)

STAGES = ("prepare", "train", "evaluate")


def night(
    day: int,
    commit: str,
    *,
    train: Result = Result.REPRODUCED,
    skipped: tuple[SkippedVariation, ...] = (),
    stages: tuple[str, ...] = STAGES,
    varied: str = "train",
) -> Night:
    """A night on 2026-03-DAY at COMMIT: ``varied`` came out ``train`` under ``threads``.

    Every other stage reproduced.
    """

    def results(under_threads: bool) -> tuple[StageResult, ...]:
        out = []
        for stage in stages:
            result = train if under_threads and stage == varied else Result.REPRODUCED
            moved = ()
            if result is Result.DIFFERENT:
                moved = (
                    MovedTensor("models/model.safetensors", "fc1.weight", 1.2e-7, 3, 17, 4096),
                )
            out.append(
                StageResult(stage, result, "" if result.reproduced else "differs", {}, moved)
            )
        return tuple(out)

    return Night(
        night=f"2026-03-{day:02d}T02:00:00Z",
        finished=f"2026-03-{day:02d}T02:10:00Z",
        release="/releases/r",
        commit=commit * 40 if len(commit) == 1 else commit,
        stages=stages,
        edges=tuple(zip(stages, stages[1:], strict=False)),
        environment={"python": "CPython 3.11", "sandbox": "bubblewrap"},
        subjects={"models/model.safetensors": "a" * 64},
        variations=(
            VariationResult(CONTROL, CONTROL, (), results(False), "reproduced"),
            VariationResult("threads", "knob", ("determinism.threads=2",), results(True), "x"),
        ),
        skipped=skipped,
    )
