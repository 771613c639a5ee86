"""stagekit sets torch's determinism as torch.use_deterministic_algorithms does, lazily."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_PROBE = """
import json, sys
{before}
from bitwright import stagekit
stagekit.begin()
import torch
loaded_early = "torch._inductor" in sys.modules
import torch._inductor.config as inductor
print(json.dumps({{
    "algorithms": torch.are_deterministic_algorithms_enabled(),
    "inductor": inductor.deterministic,
    "inductor_loaded_by_begin": loaded_early,
}}))
"""


def _probe(*, deterministic: bool, before: str = "") -> dict[str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITWRIGHT_")}
    env["BITWRIGHT_DETERMINISM"] = json.dumps({"torch_deterministic": deterministic})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(before=before)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("deterministic", [True, False])
def test_inductor_flag_follows_when_inductor_is_imported_later(deterministic: bool) -> None:
    seen = _probe(deterministic=deterministic)

    assert seen == {
        "algorithms": deterministic,
        "inductor": deterministic,
        "inductor_loaded_by_begin": False,
    }


def test_inductor_already_loaded_is_set_at_once() -> None:
    seen = _probe(deterministic=True, before="import torch._inductor.config")

    assert seen["algorithms"] is True
    assert seen["inductor"] is True
