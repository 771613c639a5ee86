"""stagekit: seeds and torch flags applied to what the stage loads, with nothing heavy imported."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bitwright import stagekit
from bitwright.model import DeterminismSettings
from bitwright.model.generators import expected_fingerprints

SITECUSTOMIZE = Path(__file__).resolve().parents[2] / "src/bitwright/runner/_trace/sitecustomize.py"


def _probe(code: str, settings: DeterminismSettings, tmp_path: Path) -> dict[str, Any]:
    """Run ``code`` (which prints one JSON line) in a fresh interpreter, as a stage would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITWRIGHT_")}
    env.update(settings.environment())
    env["BITWRIGHT_DETERMINISM"] = json.dumps(settings.to_json())
    env["BITWRIGHT_RECEIPT"] = str(tmp_path / "receipt.jsonl")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_begin_imports_nothing_heavy_the_stage_did_not(tmp_path: Path) -> None:
    code = (
        "import json, sys\nfrom bitwright import stagekit\nstagekit.begin()\n"
        "heavy = ['torch', 'numpy', 'pydantic', 'bitwright.runner', 'bitwright.digest']\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    assert _probe(code, DeterminismSettings(seed=3), tmp_path) == []  # type: ignore[comparison-overlap]


def test_libraries_imported_after_begin_are_seeded_and_set_as_declared(tmp_path: Path) -> None:
    deterministic = True  # the other mode: test_the_cuda_flags_are_set_through_public_torch_api
    code = (
        "import json, sys\nfrom bitwright import stagekit\nstagekit.begin()\n"
        "import numpy, torch\nimport numpy.random as npr\n"
        "state = npr.get_state(legacy=True)\n"
        "import torch._inductor.config as inductor\n"
        "print(json.dumps({'numpy': npr.randint(1 << 30), 'torch_seed': torch.initial_seed(),"
        " 'algorithms': torch.are_deterministic_algorithms_enabled(),"
        " 'inductor': inductor.deterministic, 'threads': torch.get_num_threads()}))\n"
    )
    settings = DeterminismSettings(seed=5, torch_deterministic=deterministic, threads=1)
    seen = _probe(code, settings, tmp_path)
    import numpy

    assert seen == {
        "numpy": int(numpy.random.RandomState(5).randint(1 << 30)),
        "torch_seed": 5,
        "algorithms": deterministic,
        "inductor": deterministic,  # from TORCHINDUCTOR_DETERMINISTIC, set by the runner
        "threads": 1,
    }
    receipts = [
        json.loads(line) for line in (tmp_path / "receipt.jsonl").read_text().split("\n") if line
    ]
    seeded = {k: v for r in receipts for k, v in r["generators"].items()}
    assert seeded == expected_fingerprints(5)
    assert [r["phase"] for r in receipts][0] == "begin" and receipts[-1]["phase"] == "end"


def test_begin_twice_applies_once(tmp_path: Path) -> None:
    code = (
        "import json\nfrom bitwright import stagekit\na = stagekit.begin()\nb = stagekit.begin()\n"
        "print(json.dumps([a == b, stagekit.began()]))\n"
    )
    assert _probe(code, DeterminismSettings(), tmp_path) == [True, True]  # type: ignore[comparison-overlap]
    assert len((tmp_path / "receipt.jsonl").read_text().splitlines()) == 2  # begin and end


class _Recorder(SimpleNamespace):
    """Records the attributes set on it (a test double of torch's flag namespaces)."""


def _fake_torch(*, cuda_initialized: bool = False, memory: tuple[int, ...] = ()) -> Any:
    """A test double of the public torch API that stagekit and the receipt hook use.

    Its CUDA part stands in for a GPU machine (none is present here).
    """
    calls: list[tuple[str, Any]] = []
    state = bytes(range(16))
    return SimpleNamespace(
        calls=calls,
        __version__="2.13.0+cu128",
        manual_seed=lambda seed: calls.append(("manual_seed", seed)),
        set_deterministic_debug_mode=lambda mode: calls.append(("debug_mode", mode)),
        set_num_threads=lambda n: calls.append(("threads", n)),
        get_rng_state=lambda: SimpleNamespace(tolist=lambda: list(state)),
        are_deterministic_algorithms_enabled=lambda: True,
        is_deterministic_algorithms_warn_only_enabled=lambda: False,
        get_num_threads=lambda: 1,
        get_num_interop_threads=lambda: 4,
        initial_seed=lambda: 9,
        backends=SimpleNamespace(
            cudnn=_Recorder(deterministic=False, benchmark=True, allow_tf32=True),
            cuda=SimpleNamespace(matmul=_Recorder(allow_tf32=True)),
            cpu=SimpleNamespace(get_cpu_capability=lambda: "AVX2"),
        ),
        cuda=SimpleNamespace(
            is_initialized=lambda: cuda_initialized,
            device_count=lambda: len(memory),
            max_memory_allocated=lambda i: memory[i],
        ),
    )


def test_the_cuda_flags_are_set_through_public_torch_api() -> None:
    torch = _fake_torch()
    settings = DeterminismSettings(seed=9, torch_deterministic=True, cudnn_benchmark=False)
    generators = stagekit._apply_torch(torch, settings)
    assert ("manual_seed", 9) in torch.calls  # seeds every GPU too, when CUDA starts
    assert ("debug_mode", "error") in torch.calls
    assert ("threads", 1) in torch.calls
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    assert (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32) == (True, False, False)
    assert matmul.allow_tf32 is False
    assert set(generators) == {"torch"}
    permissive = _fake_torch()
    stagekit._apply_torch(
        permissive, DeterminismSettings(torch_deterministic=False, allow_tf32=True)
    )
    assert ("debug_mode", "default") in permissive.calls
    assert permissive.backends.cuda.matmul.allow_tf32 is True


def _hook() -> Any:
    spec = importlib.util.spec_from_file_location("_bitwright_hook_under_test", SITECUSTOMIZE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("BITWRIGHT_")}
    try:
        spec.loader.exec_module(module)  # installs nothing without its variables
    finally:
        os.environ.update(saved)
    return module


def test_the_receipt_hook_reports_the_gpus_cuda_allocated_on() -> None:
    state = _hook()._torch_state(_fake_torch(cuda_initialized=True, memory=(0, 1 << 20)))
    assert state["devices"] == ["cpu", "cuda:1"]  # device 0 was visible but held nothing
    assert state["cudnn_benchmark"] is True and state["allow_tf32_matmul"] is True
    assert state["cpu_capability"] == "AVX2" and state["initial_seed"] == 9
    assert _hook()._torch_state(_fake_torch(memory=(1,)))["devices"] == ["cpu"]
