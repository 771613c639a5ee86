"""Every receipt check fails on a stage that lies, and fails closed when the record is missing.

The first half feeds the checks receipts written by hand (one contradiction each); the second
runs real stages whose processes really ran with other settings than declared.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from runner_project import Project

from bitwright.errors import OperationalError, ReceiptMismatch
from bitwright.model import (
    DeterminismSettings,
    PythonReceipt,
    RunnerReceipt,
    StagekitReceipt,
    StageReceipts,
    StageRun,
    ThreadPool,
    TorchReceipt,
)
from bitwright.model.generators import expected_fingerprints
from bitwright.runner import BubblewrapSandbox, Expectation, NoSandbox, check_receipts, judge
from bitwright.runner.receipt import read_receipts

DECLARED = DeterminismSettings(seed=11, threads=1, pythonhashseed=0)
SEALED_ENV = {**DECLARED.environment(), "TZ": "UTC", "PATH": "/usr/bin"}
PARAMS = {"params.yaml": "a" * 64}
EXPECTED = Expectation(DECLARED, SEALED_ENV, "0022", PARAMS, python=True)
TORCH = TorchReceipt(
    version="2.13.0",
    deterministic_algorithms=True,
    deterministic_warn_only=False,
    cudnn_deterministic=True,
    cudnn_benchmark=False,
    allow_tf32_matmul=False,
    allow_tf32_cudnn=False,
    threads=1,
    interop_threads=2,
    cpu_capability="AVX2",
    initial_seed=11,
    devices=("cpu",),
)
PYTHON = PythonReceipt(
    pid=2,
    ppid=1,
    hash_randomization=0,
    env=DECLARED.environment(),
    frameworks=("numpy", "numpy.random", "torch"),
    torch=TORCH,
    params=dict(PARAMS),
    stagekit=True,
)
FINGERPRINTS = expected_fingerprints(11)
HONEST = StageReceipts(
    runner=RunnerReceipt(pid=2, umask="0022", env=dict(SEALED_ENV)),
    python=(PYTHON,),
    stagekit=(
        StagekitReceipt("begin", 2, 11, {"random": FINGERPRINTS["random"]}),
        StagekitReceipt("seeded", 2, 11, {"torch": FINGERPRINTS["torch"]}),
        StagekitReceipt("seeded", 2, 11, {"numpy": FINGERPRINTS["numpy"]}),
        StagekitReceipt("end", 2, 11, threadpools=(ThreadPool("openmp", "openmp", 1),)),
    ),
)


def _with_runner(**changes: object) -> StageReceipts:
    assert HONEST.runner is not None
    return dataclasses.replace(HONEST, runner=dataclasses.replace(HONEST.runner, **changes))  # type: ignore[arg-type]


def _with_python(**changes: object) -> StageReceipts:
    return dataclasses.replace(HONEST, python=(dataclasses.replace(PYTHON, **changes),))  # type: ignore[arg-type]


def _with_torch(**changes: object) -> StageReceipts:
    return _with_python(torch=dataclasses.replace(TORCH, **changes))


def _with_stagekit(*receipts: StagekitReceipt) -> StageReceipts:
    return dataclasses.replace(HONEST, stagekit=(*HONEST.stagekit, *receipts))


def test_honest_receipts_pass() -> None:
    check_receipts("train", EXPECTED, HONEST)


LIES = {
    "no runner receipt": (
        dataclasses.replace(HONEST, runner=None),
        "runner receipt: declared 'written before the command', observed 'none'",
    ),
    "umask": (_with_runner(umask="0077"), "umask: declared '0022', observed '0077'"),
    "a variable the runner set": (
        _with_runner(env={**SEALED_ENV, "MKL_CBWR": "COMPATIBLE"}),
        "MKL_CBWR: declared 'AVX2,STRICT', observed 'COMPATIBLE' in the runner receipt",
    ),
    "a variable the runner did not set": (
        _with_runner(env={**SEALED_ENV, "LD_PRELOAD": "/tmp/x.so"}),
        "LD_PRELOAD: declared unset, observed '/tmp/x.so'",
    ),
    "no Python receipt of the main process": (
        _with_python(pid=99),
        "Python receipt: declared 'written at exit', observed 'none'",
    ),
    "hash randomization": (
        _with_python(hash_randomization=1),
        "hash_randomization: declared 0, observed 1 in the Python receipt of process 2",
    ),
    "a declared variable missing at interpreter start": (
        _with_python(env={k: v for k, v in PYTHON.env.items() if k != "ATEN_CPU_CAPABILITY"}),
        "ATEN_CPU_CAPABILITY: declared 'avx2', observed unset in the Python receipt",
    ),
    "torch loaded but unreadable": (
        _with_python(torch=None),
        "torch settings: declared 'readable', observed 'unreadable'",
    ),
    "deterministic algorithms": (
        _with_torch(deterministic_algorithms=False),
        "torch_deterministic: declared True, observed False",
    ),
    "warn-only determinism": (
        _with_torch(deterministic_warn_only=True),
        r"torch_deterministic \(warn only\): declared False, observed True",
    ),
    "cudnn deterministic": (
        _with_torch(cudnn_deterministic=False),
        "cudnn.deterministic: declared True, observed False",
    ),
    "cudnn benchmark": (
        _with_torch(cudnn_benchmark=True),
        "cudnn.benchmark: declared False, observed True",
    ),
    "tf32 in matmul": (
        _with_torch(allow_tf32_matmul=True),
        "cuda.matmul.allow_tf32: declared False, observed True",
    ),
    "tf32 in cudnn": (
        _with_torch(allow_tf32_cudnn=True),
        "cudnn.allow_tf32: declared False, observed True",
    ),
    "torch threads": (_with_torch(threads=2), "threads: declared 1, observed 2"),
    "torch seeded otherwise": (
        _with_torch(initial_seed=67280421310721),
        "seed: declared 11, observed 67280421310721",
    ),
    "CPU kernel path": (
        _with_torch(cpu_capability="AVX512"),
        "cpu_capability: declared 'AVX2', observed 'AVX512'",
    ),
    "params read with other bytes": (
        _with_python(params={"params.yaml": "b" * 64}),
        r"params.yaml \(sha256\): declared 'aaaa",
    ),
    "params never read": (
        _with_python(params={}),
        "params.yaml: declared 'read by the stage', observed 'never opened'",
    ),
    "a GPU the stage did not declare": (
        _with_torch(devices=("cpu", "cuda:0")),
        r"devices: declared \['cpu'\], observed \['cuda:0'\]",
    ),
    "a generator seeded otherwise": (
        _with_stagekit(StagekitReceipt("seeded", 2, 11, {"numpy": FINGERPRINTS["torch"]})),
        "numpy generator state: declared 'seeded with 11",
    ),
    "an unknown generator": (
        _with_stagekit(StagekitReceipt("seeded", 2, 11, {"jax": "0" * 64})),
        "generator jax",
    ),
    "a loaded generator left unseeded": (
        dataclasses.replace(HONEST, stagekit=HONEST.stagekit[:1] + HONEST.stagekit[3:]),
        r"generators: declared 'seeded by bitwright.stagekit', observed \"no receipt for",
    ),
    "native thread pool": (
        _with_stagekit(StagekitReceipt("end", 2, 11, threadpools=(ThreadPool("blas", "mkl", 2),))),
        r"threads \(blas mkl\): declared 1, observed 2",
    ),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_each_check_fails_on_a_receipt_that_contradicts_the_declaration(lie: str) -> None:
    receipts, message = LIES[lie]
    with pytest.raises(ReceiptMismatch, match=message):
        check_receipts("train", EXPECTED, receipts)


def test_a_declared_gpu_the_stage_never_used_fails() -> None:
    declared = dataclasses.replace(DECLARED, devices=("cpu", "cuda"))
    expected = dataclasses.replace(EXPECTED, settings=declared)
    env = declared.environment()
    on_cpu = _with_python(env=env)
    with pytest.raises(ReceiptMismatch, match="torch allocated nothing there"):
        check_receipts("train", expected, on_cpu)
    no_torch = _with_python(env=env, torch=None, frameworks=())
    with pytest.raises(ReceiptMismatch, match="no process loaded torch"):
        check_receipts("train", expected, no_torch)
    on_gpu = _with_python(env=env, torch=dataclasses.replace(TORCH, devices=("cpu", "cuda:1")))
    check_receipts("train", expected, on_gpu)


def test_a_stage_without_python_needs_only_the_runner_receipt() -> None:
    shell = StageReceipts(runner=HONEST.runner)
    check_receipts("train", dataclasses.replace(EXPECTED, python=False), shell)


def test_receipts_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "receipt.jsonl"
    lines = [{"kind": "python", **PYTHON.to_json()}]
    lines += [{"kind": "stagekit", **r.to_json()} for r in HONEST.stagekit]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_receipts(path, HONEST.runner) == HONEST
    assert read_receipts(tmp_path / "absent.jsonl", None) == StageReceipts()


WRONG_TYPE = json.dumps({"kind": "python", **PYTHON.to_json(), "pid": "2"})
TOO_DEEP = json.dumps({"kind": "python", "env": [[[[[[[[[[1]]]]]]]]]]})


@pytest.mark.parametrize(
    "line", ["not json", '{"phase": "start"}', '{"kind": "python"}', WRONG_TYPE, TOO_DEEP]
)
def test_a_malformed_receipt_names_the_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "receipt.jsonl"
    path.write_text(json.dumps({"kind": "python", **PYTHON.to_json()}) + "\n" + line + "\n")
    with pytest.raises(OperationalError, match=r"line 2 of the receipt file .*receipt\.jsonl"):
        read_receipts(path, None)


def test_a_receipt_file_that_is_a_fifo_or_a_link_is_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(OperationalError, match="not a regular file"):
        read_receipts(fifo, None)
    link = tmp_path / "link.jsonl"
    link.symlink_to("/etc/passwd")
    with pytest.raises(OperationalError, match="symbolic link"):
        read_receipts(link, None)


# Real stages: what the processes really ran with.

TORCH_STAGE = """
import sys, torch
from bitwright import stagekit
stagekit.begin()
print(float(torch.rand(1)))
if sys.argv[1:] == ["flip"]:
    torch.use_deterministic_algorithms(False)
if sys.argv[1:] == ["reseed"]:
    torch.manual_seed(12345)
"""


@pytest.fixture(scope="module")
def torch_runs(
    tmp_path_factory: pytest.TempPathFactory, bwrap: BubblewrapSandbox
) -> dict[str, StageRun]:
    """An honest torch stage, one that turns determinism off, one that re-seeds torch.

    They run side by side: importing torch costs seconds, and the runs share nothing.
    """
    root = tmp_path_factory.mktemp("torch")
    project = Project(root=root / "repo", logs=root / "logs")
    project.write("params.yaml", "train:\n  epochs: 1\n")
    stages = {name: project.stage(name, TORCH_STAGE) for name in ("honest", "flip", "reseed")}
    args = {"honest": [], "flip": ["flip"], "reseed": ["reseed"]}
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {
            name: pool.submit(
                project.run, stage, bwrap, strict=name == "honest", settings=DECLARED,
                args=args[name],
            )
            for name, stage in stages.items()
        }  # fmt: skip
        return {name: future.result() for name, future in runs.items()}


def test_a_torch_stage_using_stagekit_confirms_everything(
    torch_runs: dict[str, StageRun],
) -> None:
    run = torch_runs["honest"]
    assert run.returncode == 0
    main = run.receipts.python[0]
    assert run.receipts.runner is not None and main.pid == run.receipts.runner.pid
    assert main.torch is not None and main.torch.cpu_capability == "AVX2"
    assert main.torch.initial_seed == 11 and main.stagekit
    assert run.undeclared_reads == ()  # bitwright and torch are the toolchain, not inputs
    judge(run, settings=DECLARED, strict=True, param_files=())


def test_determinism_turned_off_after_begin_is_caught_at_exit(
    torch_runs: dict[str, StageRun],
) -> None:
    with pytest.raises(ReceiptMismatch, match="torch_deterministic: declared True, observed"):
        judge(torch_runs["flip"], settings=DECLARED, strict=False)


def test_torch_reseeded_with_another_seed_is_caught(torch_runs: dict[str, StageRun]) -> None:
    with pytest.raises(ReceiptMismatch, match="seed: declared 11, observed 12345"):
        judge(torch_runs["reseed"], settings=DECLARED, strict=False)


def test_generator_seeding_replaced_by_the_stage_is_caught(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage(
        "noseed",
        "import random\nrandom.seed = lambda *a, **k: None\n"
        "from bitwright import stagekit\nstagekit.begin()\n",
    )
    run = project.run(stage, bwrap, settings=DECLARED)
    assert run.returncode == 0
    with pytest.raises(ReceiptMismatch, match="random generator state: declared 'seeded with 11"):
        judge(run, settings=DECLARED, strict=False)


READS_PARAMS = "import yaml\nprint(yaml.safe_load(open('params.yaml')))\n"


def test_params_read_with_other_bytes_than_declared_are_caught(project: Project) -> None:
    stage = project.stage(
        "rewrite", "open('params.yaml', 'w').write('train:\\n  epochs: 99\\n')\n" + READS_PARAMS
    )
    run = project.run(stage, NoSandbox(), settings=DECLARED)  # bwrap keeps params read-only
    assert run.returncode == 0
    with pytest.raises(ReceiptMismatch, match=r"params.yaml \(sha256\)"):
        judge(run, settings=DECLARED, strict=False, param_files=("params.yaml",))


def test_declared_params_the_stage_never_read_fail(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    honest = project.run(project.stage("reads", READS_PARAMS), bwrap, settings=DECLARED)
    judge(honest, settings=DECLARED, strict=False, param_files=("params.yaml",))
    run = project.run(project.stage("ignores", "print('no params')"), bwrap, settings=DECLARED)
    with pytest.raises(ReceiptMismatch, match="params.yaml: declared 'read by the stage'"):
        judge(run, settings=DECLARED, strict=False, param_files=("params.yaml",))


def test_a_python_subprocess_started_with_other_settings_is_caught(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage(
        "child",
        "import os, subprocess, sys\n"
        "env = {**os.environ, 'OMP_NUM_THREADS': '4'}\n"
        "subprocess.run([sys.executable, '-c', 'pass'], env=env, check=True)\n",
    )
    run = project.run(stage, bwrap, settings=DECLARED)
    assert run.returncode == 0 and len(run.receipts.python) == 2
    with pytest.raises(ReceiptMismatch, match="OMP_NUM_THREADS: declared '1', observed '4'"):
        judge(run, settings=DECLARED, strict=False)


def test_a_python_stage_that_skips_its_exit_fails_closed(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    run = project.run(project.stage("exit", "import os\nos._exit(0)\n"), bwrap, settings=DECLARED)
    assert run.returncode == 0 and run.receipts.python == ()
    with pytest.raises(ReceiptMismatch, match="Python receipt: declared 'written at exit'"):
        judge(run, settings=DECLARED, strict=False)


def test_native_threads_raised_after_begin_are_caught(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage(
        "threads",
        "from bitwright import stagekit\nstagekit.begin()\nimport numpy, threadpoolctl\n"
        "numpy.ones(3).dot(numpy.ones(3))\nthreadpoolctl.threadpool_limits(2)\n",
    )
    run = project.run(stage, bwrap, settings=DECLARED)
    assert run.returncode == 0
    with pytest.raises(ReceiptMismatch, match=r"threads \(blas .*\): declared 1, observed 2"):
        judge(run, settings=DECLARED, strict=False)


class _LyingWrapper(NoSandbox):
    """A sandbox whose wrapper changes what the stage starts with (a test double)."""

    def __init__(self, prefix: list[str]) -> None:
        self.prefix = prefix

    def wrap(self, argv: Sequence[str], **kwargs: Any) -> list[str]:
        return [*self.prefix, *super().wrap(argv, **kwargs)]


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        (["env", "LD_LIBRARY_PATH=/opt/x"], "LD_LIBRARY_PATH: declared unset"),
        (["env", "OMP_NUM_THREADS=8"], "OMP_NUM_THREADS: declared '1', observed '8'"),
        (["sh", "-c", 'umask 077 && exec "$@"', "sh"], "umask: declared '0022', observed '0077'"),
    ],
)
def test_a_shell_stage_confirms_its_environment_and_umask_through_the_runner_receipt(
    project: Project, prefix: list[str], message: str
) -> None:
    stage = dataclasses.replace(project.stage("shell", ""), cmd="sh -c true")
    honest = project.run(stage, NoSandbox(), settings=DECLARED, argv=["sh", "-c", "true"])
    assert honest.receipts.runner is not None and honest.receipts.python == ()
    judge(honest, settings=DECLARED, strict=False)
    run = project.run(stage, _LyingWrapper(prefix), settings=DECLARED, argv=["sh", "-c", "true"])
    with pytest.raises(ReceiptMismatch, match=message):
        judge(run, settings=DECLARED, strict=False)
