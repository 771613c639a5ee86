"""The receipt checks: every declared setting against what a stage's processes really had.

Each check compares a declaration with an observation made by the process itself, never with
another copy of the declaration, and a record the declaration needs but nobody wrote fails:

=====================  =============================================  ========================
setting                observed                                       record
=====================  =============================================  ========================
environment, umask     the sealed process right before ``exec``       runner (always)
determinism variables  each Python process at start-up                Python
hash randomization     ``sys.flags.hash_randomization``               Python
parameter files        sha256 of the bytes each process opened        Python (declared params)
torch flags, threads   torch at exit, in each process that loaded it  Python (torch loaded)
CPU kernel path        ``torch.backends.cpu.get_cpu_capability()``    Python (torch loaded)
seed (torch)           ``torch.initial_seed()`` at exit               Python (torch loaded)
devices                where CUDA allocated memory                    Python (an accelerator)
generator states       fingerprints right after seeding, against the  stagekit (``begin()``)
                       states the declared seed produces, recomputed
                       here without numpy or torch
native thread pools    threadpoolctl at exit                          stagekit (when present)
=====================  =============================================  ========================

The settings apply to what a stage loads: torch's settings are checked in every process that
loaded torch, and never demanded of a shell stage or a Python stage that did not load it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bitwright.errors import ReceiptMismatch
from bitwright.model.generators import GENERATORS, expected_fingerprints
from bitwright.model.pins import DeterminismSettings
from bitwright.model.receipt import PythonReceipt, StageReceipts, TorchReceipt

__all__ = ["Expectation", "check_receipts"]

_HINT_FLAG = (
    "the stage changed it: declare the value under determinism: in params.yaml instead "
    "(bitwright.stagekit.begin() applies the declared torch settings)"
)
_HINT_TORCH = (
    "call bitwright.stagekit.begin() at the start of the stage: it seeds torch and sets "
    "its flags as declared the moment torch is imported"
)
_HINT_ENV = (
    "it is set before the process starts: run the stage through `bitwright stage run` and "
    "do not override it (nor start subprocesses with another environment)"
)
_HINT_SANDBOX = "the sandbox or a wrapper changed it; read the stage's stderr log"
_OWN_VARIABLES = frozenset({"PWD"})  # maintained by a shell the sandbox may run first


@dataclass(frozen=True)
class Expectation:
    """What the runner declared for one run.

    Attributes:
        settings: the declared determinism settings.
        environment: the complete environment the runner gave the stage.
        umask: the umask it gave it (octal, ``"0022"``).
        params: the stage's parameter files -> their sha256 as the runner digested them.
        python: the command is a Python interpreter (its own Python receipt is required).
    """

    settings: DeterminismSettings
    environment: Mapping[str, str]
    umask: str
    params: Mapping[str, str] = field(default_factory=dict)
    python: bool = False


@dataclass(frozen=True)
class _Problem:
    setting: str
    declared: Any
    observed: Any
    where: str
    hint: str
    missing: bool = False  # a record the declaration needs was not written at all

    def message(self) -> str:
        return (
            f"{self.setting}: declared {_show(self.declared)}, observed {_show(self.observed)} "
            f"{self.where}"
        )


def check_receipts(
    stage: str, expected: Expectation, receipts: StageReceipts, *, required: bool = True
) -> None:
    """Check every receipt of a run against what was declared for it.

    Args:
        stage: the stage, for the message.
        expected: what was declared.
        receipts: what the stage's processes wrote.
        required: a record the declaration needs must exist (False: only what was written
            is checked, for runs nothing attests).

    Raises:
        ReceiptMismatch: a record is missing or contradicts the declaration; the message
            names the setting, the declared and the observed value, and where it was seen.
    """
    for problem in _problems(expected, receipts):
        if required or not problem.missing:
            raise ReceiptMismatch(stage, problem.message(), hint=problem.hint)


def _problems(expected: Expectation, receipts: StageReceipts) -> Iterator[_Problem]:
    yield from _runner_problems(expected, receipts)
    yield from _python_problems(expected, receipts)
    yield from _params_problems(expected, receipts.python)
    yield from _device_problems(expected.settings, receipts.python)
    yield from _stagekit_problems(expected.settings, receipts)


def _runner_problems(expected: Expectation, receipts: StageReceipts) -> Iterator[_Problem]:
    runner = receipts.runner
    where = "in the runner receipt"
    if runner is None:
        yield _Problem(
            "runner receipt", "written before the command", "none", "(the stage never started)",
            "the sandbox could not start the stage; read its stderr log", missing=True,
        )  # fmt: skip
        return
    if runner.umask != expected.umask:
        yield _Problem("umask", expected.umask, runner.umask, where, _HINT_SANDBOX)
    for name, value in sorted(expected.environment.items()):
        if runner.env.get(name) != value:
            yield _Problem(name, value, runner.env.get(name), where, _HINT_SANDBOX)
    for name in sorted(set(runner.env) - set(expected.environment) - _OWN_VARIABLES):
        yield _Problem(name, None, runner.env[name], where, _HINT_SANDBOX)


def _python_problems(expected: Expectation, receipts: StageReceipts) -> Iterator[_Problem]:
    settings = expected.settings
    main = receipts.runner.pid if receipts.runner else None
    if expected.python and main is not None and all(r.pid != main for r in receipts.python):
        yield _Problem(
            "Python receipt", "written at exit", "none", "(the stage's Python process)",
            "let the interpreter exit normally: os._exit and signals skip its receipt",
            missing=True,
        )  # fmt: skip
    want_hash = 0 if settings.pythonhashseed == 0 else 1
    for receipt in receipts.python:
        where = f"in the Python receipt of process {receipt.pid}"
        if receipt.hash_randomization != want_hash:
            yield _Problem(
                "hash_randomization", want_hash, receipt.hash_randomization, where, _HINT_ENV
            )
        for name, value in sorted(settings.environment().items()):
            if receipt.env.get(name) != value:
                yield _Problem(name, value, receipt.env.get(name), where, _HINT_ENV)
        if "torch" in receipt.frameworks and receipt.torch is None:
            yield _Problem("torch settings", "readable", "unreadable", where, _HINT_TORCH)
        if receipt.torch is not None:
            yield from _torch_problems(settings, receipt.torch, where)


def _torch_problems(
    settings: DeterminismSettings, torch: TorchReceipt, where: str
) -> Iterator[_Problem]:
    deterministic = settings.torch_deterministic
    checks: list[tuple[str, Any, Any, str]] = [
        ("torch_deterministic", deterministic, torch.deterministic_algorithms, _HINT_TORCH),
        ("torch_deterministic (warn only)", False, torch.deterministic_warn_only, _HINT_FLAG),
        ("cudnn.deterministic", deterministic, torch.cudnn_deterministic, _HINT_TORCH),
        ("cudnn.benchmark", settings.cudnn_benchmark, torch.cudnn_benchmark, _HINT_FLAG),
        ("cuda.matmul.allow_tf32", settings.allow_tf32, torch.allow_tf32_matmul, _HINT_TORCH),
        ("cudnn.allow_tf32", settings.allow_tf32, torch.allow_tf32_cudnn, _HINT_TORCH),
        ("threads", settings.threads, torch.threads, _HINT_FLAG),
        ("seed", settings.seed, torch.initial_seed, _HINT_TORCH + ", or seed torch with it"),
    ]
    if settings.cpu_capability:
        checks.append(
            (
                "cpu_capability",
                settings.cpu_capability.upper(),
                torch.cpu_capability.upper(),
                f"ATEN_CPU_CAPABILITY={settings.cpu_capability} was not honoured: the CPU "
                "lacks it, or torch was built without that kernel path",
            )
        )
    for setting, want, seen, hint in checks:
        if want != seen:
            yield _Problem(setting, want, seen, f"{where} (torch)", hint)


def _params_problems(expected: Expectation, python: Sequence[PythonReceipt]) -> Iterator[_Problem]:
    if not python:
        return  # no Python process: nothing could report what it read
    for path, digest in sorted(expected.params.items()):
        seen = {r.params[path] for r in python if path in r.params}
        if not seen:
            yield _Problem(
                path, "read by the stage", "never opened", "by any Python process",
                "read the parameters from this file, or remove them from the stage's params "
                "in dvc.yaml", missing=True,
            )  # fmt: skip
        for observed in sorted(seen - {digest}):
            yield _Problem(
                f"{path} (sha256)", digest, observed, "as a Python process opened it",
                "the parameter file changed while the stage ran; run it again",
            )  # fmt: skip


def _device_problems(
    settings: DeterminismSettings, python: Sequence[PythonReceipt]
) -> Iterator[_Problem]:
    torches = [r.torch for r in python if r.torch is not None]
    used = sorted({d for t in torches for d in t.devices if d != "cpu"})
    declared = list(settings.devices)
    for device in used:
        if not settings.allows_device(device):
            yield _Problem(
                "devices", declared, used, "(where torch allocated memory)",
                "declare the device under determinism.devices, or keep the stage off it",
            )  # fmt: skip
    for want in (d for d in settings.devices if d != "cpu"):
        if not any(d == want or d.split(":", 1)[0] == want for d in used):
            where = "(torch allocated nothing there)" if torches else "(no process loaded torch)"
            yield _Problem(
                "devices", declared, used or ["cpu"], where,
                f"the stage did not compute on {want}: check that the GPU is visible "
                "(CUDA_VISIBLE_DEVICES) and that the stage moves its model there",
            )  # fmt: skip


def _stagekit_problems(
    settings: DeterminismSettings, receipts: StageReceipts
) -> Iterator[_Problem]:
    expected = expected_fingerprints(settings.seed)
    seeded: dict[int, set[str]] = {}
    for receipt in receipts.stagekit:
        where = f"in the stagekit receipt ({receipt.phase}) of process {receipt.pid}"
        for name, fingerprint in sorted(receipt.generators.items()):
            seeded.setdefault(receipt.pid, set()).add(name)
            want = expected.get(name)
            if want is None:
                yield _Problem(f"generator {name}", list(GENERATORS), name, where, _HINT_FLAG)
            elif fingerprint != want:
                yield _Problem(
                    f"{name} generator state",
                    f"seeded with {settings.seed} ({want[:12]})",
                    f"another state ({fingerprint[:12]})",
                    where,
                    "something re-seeded or replaced the generator's seeding; let "
                    "bitwright.stagekit.begin() seed it with the declared seed",
                )
        for pool in receipt.threadpools:
            if pool.threads != settings.threads:
                yield _Problem(
                    f"threads ({pool.api} {pool.library})", settings.threads, pool.threads,
                    where, _HINT_FLAG,
                )  # fmt: skip
    yield from _unseeded(receipts.python, seeded)


def _unseeded(
    python: Sequence[PythonReceipt], seeded: Mapping[int, set[str]]
) -> Iterator[_Problem]:
    """Processes that ran ``begin()`` must show every generator they loaded as seeded."""
    for receipt in python:
        if not receipt.stagekit:
            continue
        loaded = {"random"} | {g for g in ("numpy.random", "torch") if g in receipt.frameworks}
        wanted = {name.split(".", 1)[0] for name in loaded}
        missing = sorted(wanted - seeded.get(receipt.pid, set()))
        if missing:
            yield _Problem(
                "generators", "seeded by bitwright.stagekit", f"no receipt for {missing}",
                f"in process {receipt.pid}", "the stage must only write receipts through "
                "bitwright.stagekit", missing=True,
            )  # fmt: skip


def _show(value: object) -> str:
    return "unset" if value is None else repr(value)
