"""Receipts confirm the declared determinism settings, or the stage fails closed."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from runner_project import Project

from bitwright.errors import OperationalError, ReceiptMismatch
from bitwright.model import DeterminismSettings, Receipt, StageRun, to_jsonable
from bitwright.runner import BubblewrapSandbox, check_receipts, judge, read_receipts

DECLARED = DeterminismSettings(seed=11, threads=1, pythonhashseed=0)


def _receipt(phase: str, **changes: object) -> Receipt:
    honest = Receipt(
        phase=phase,
        seed=11,
        torch_deterministic=True,
        cudnn_deterministic=True,
        cudnn_benchmark=False,
        allow_tf32_matmul=False,
        allow_tf32_cudnn=False,
        threads=1,
        interop_threads=1,
        devices=("cpu",),
        env=DECLARED.environment(),
        hash_randomization=0,
    )
    return dataclasses.replace(honest, **changes)  # type: ignore[arg-type]


def test_honest_start_and_exit_receipts_pass() -> None:
    check_receipts("train", DECLARED, [_receipt("start"), _receipt("exit")], required=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": 12}, "seed: declared 11, observed 12 in the exit receipt"),
        ({"torch_deterministic": False}, "torch_deterministic: declared True, observed False"),
        ({"cudnn_deterministic": False}, "cudnn.deterministic: declared True, observed False"),
        ({"cudnn_benchmark": True}, "cudnn.benchmark: declared False, observed True"),
        ({"allow_tf32_matmul": True}, "cuda.matmul.allow_tf32: declared False, observed True"),
        ({"allow_tf32_cudnn": True}, "cudnn.allow_tf32: declared False, observed True"),
        ({"threads": 2}, "threads: declared 1, observed 2"),
        ({"hash_randomization": 1}, "hash_randomization: declared 0, observed 1"),
    ],
)
def test_each_contradicted_setting_is_named(changes: dict[str, object], message: str) -> None:
    receipts = [_receipt("start"), _receipt("exit", **changes)]
    with pytest.raises(ReceiptMismatch, match=message.replace(".", r"\.")):
        check_receipts("train", DECLARED, receipts, required=True)


def test_an_environment_variable_missing_at_start_is_named() -> None:
    env = {k: v for k, v in DECLARED.environment().items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    message = "CUBLAS_WORKSPACE_CONFIG: declared ':4096:8', observed unset in the start"
    with pytest.raises(ReceiptMismatch, match=message):
        check_receipts("train", DECLARED, [_receipt("start", env=env)], required=False)


def test_a_nonzero_hash_seed_expects_seeded_randomization() -> None:
    declared = dataclasses.replace(DECLARED, pythonhashseed=5)
    env = declared.environment()
    receipts = [_receipt(p, env=env, hash_randomization=1) for p in ("start", "exit")]
    check_receipts("train", declared, receipts, required=True)


def test_no_receipt_fails_only_when_required() -> None:
    with pytest.raises(ReceiptMismatch, match="not confirmed: the stage wrote no receipt") as err:
        check_receipts("train", DECLARED, [], required=True)
    assert "bitwright.stagekit.begin()" in err.value.hint
    check_receipts("train", DECLARED, [], required=False)


def test_a_missing_exit_receipt_fails_when_required() -> None:
    with pytest.raises(ReceiptMismatch, match="wrote no exit receipt"):
        check_receipts("train", DECLARED, [_receipt("start")], required=True)


def test_receipts_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "receipt.jsonl"
    written = [_receipt("start"), _receipt("exit", devices=("cpu", "cuda:0"))]
    path.write_text("".join(json.dumps(to_jsonable(r)) + "\n" for r in written))
    assert read_receipts(path) == tuple(written)
    assert read_receipts(tmp_path / "absent.jsonl") == ()


WRONG_TYPE = json.dumps({**to_jsonable(_receipt("start")), "seed": "11"})


@pytest.mark.parametrize("line", ["not json", '{"phase": "start"}', WRONG_TYPE])
def test_a_malformed_receipt_names_the_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "receipt.jsonl"
    path.write_text(json.dumps(to_jsonable(_receipt("start"))) + "\n" + line + "\n")
    with pytest.raises(OperationalError, match=r"line 2 of the receipt file .*receipt\.jsonl"):
        read_receipts(path)


STAGEKIT = """
import sys, torch
from bitwright import stagekit
stagekit.begin()
torch.manual_seed(0)
print(float(torch.rand(1)))
if sys.argv[1:] == ["flip"]:
    torch.use_deterministic_algorithms(False)
"""


@pytest.fixture(scope="module")
def torch_runs(
    tmp_path_factory: pytest.TempPathFactory, bwrap: BubblewrapSandbox
) -> dict[str, StageRun]:
    """Run an honest stagekit stage (strict) and one that flips a flag (warn).

    They run side by side: importing torch costs seconds, and the two runs share nothing.
    """
    root = tmp_path_factory.mktemp("torch")
    project = Project(root=root / "repo", logs=root / "logs")
    project.write("params.yaml", "train:\n  epochs: 1\n")
    honest = project.stage("honest", STAGEKIT)
    flipping = project.stage("flipping", STAGEKIT)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {
            "honest": pool.submit(project.run, honest, bwrap, strict=True, settings=DECLARED),
            "flipping": pool.submit(project.run, flipping, bwrap, settings=DECLARED, args=["flip"]),
        }
        return {name: future.result() for name, future in runs.items()}


def test_a_stage_using_stagekit_confirms_its_settings(torch_runs: dict[str, StageRun]) -> None:
    run = torch_runs["honest"]
    assert run.returncode == 0
    assert [r.phase for r in run.receipts] == ["start", "exit"]
    assert run.receipts[0].env == DECLARED.environment()
    assert run.receipts[0].seed == 11
    assert run.undeclared_reads == ()  # bitwright and torch are the toolchain, not inputs
    judge(run, settings=DECLARED, strict=True, receipt_required=True)


def test_a_flag_turned_off_after_begin_is_caught_by_the_exit_receipt(
    torch_runs: dict[str, StageRun],
) -> None:
    run = torch_runs["flipping"]
    assert run.returncode == 0
    assert run.receipts[0].torch_deterministic  # begin() applied the declaration
    with pytest.raises(
        ReceiptMismatch, match="torch_deterministic: declared True, observed False in the exit"
    ):
        judge(run, settings=DECLARED, strict=False, receipt_required=True)


def test_a_stage_without_receipt_fails_when_receipts_are_required(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage("plain", "print('no stagekit here')")
    run = project.run(stage, bwrap)
    assert run.returncode == 0 and run.receipts == ()
    with pytest.raises(ReceiptMismatch, match="the stage wrote no receipt"):
        judge(run, settings=DECLARED, strict=False, receipt_required=True)
    judge(run, settings=DECLARED, strict=False, receipt_required=False)
