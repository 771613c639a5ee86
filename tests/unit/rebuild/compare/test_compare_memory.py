"""The comparer streams: a checkpoint is never loaded whole, whatever its size."""

import json
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from compare_kit import WriteST

from bitwright.rebuild import Tolerance, compare_safetensors


def _drifted_pair(write_st: WriteST, elements: int) -> tuple[Path, Path]:
    """Two checkpoints whose every element is one ULP apart (the comparer's worst case)."""
    original = np.random.default_rng(7).standard_normal(elements, dtype=np.float32)
    a = write_st("a.safetensors", {"w": original})
    b = write_st("b.safetensors", {"w": (original.view(np.uint32) + 1).view(np.float32)})
    return a, b


def test_working_memory_is_a_few_chunks_not_the_file(write_st: WriteST) -> None:
    a, b = _drifted_pair(write_st, 8 << 20)  # 32 MiB of float32 per file
    chunk = 1 << 20
    tracemalloc.start()
    try:
        (diff,) = compare_safetensors(a, b, tolerance=Tolerance(atol=1.0), chunk_bytes=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (diff.differing, diff.total, diff.max_ulp, diff.within_tolerance) == (
        8 << 20,
        8 << 20,
        1,
        True,
    )
    # two read buffers plus a few MiB of temporaries, a fraction of either file
    assert peak < 2 * chunk + (3 << 20), f"peak {peak / 2**20:.1f} MiB for 1 MiB chunks"
    assert peak < a.stat().st_size / 4


# VmHWM is the peak RSS of this process's own memory since exec (unlike ru_maxrss, which
# also carries the forking parent's peak); clearing it first drops the imports' peak.
_MEASURE = textwrap.dedent(
    """
    import contextlib, json, re, sys
    from pathlib import Path
    from bitwright.rebuild import Tolerance, compare_safetensors

    def kib(field):
        with open("/proc/self/status") as status:
            return int(re.search(field + r":\\s+(\\d+)", status.read()).group(1))

    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = kib("VmRSS")
    (diff,) = compare_safetensors(Path(sys.argv[1]), Path(sys.argv[2]), tolerance=Tolerance())
    print(json.dumps({"growth_kib": kib("VmHWM") - before, "differing": diff.differing}))
    """
)


@pytest.mark.slow
def test_two_200_mib_checkpoints_compare_with_flat_rss(write_st: WriteST) -> None:
    elements = 50 << 20  # 200 MiB of float32 per file
    a, b = _drifted_pair(write_st, elements)
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(a), str(b)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(run.stdout)
    assert result["differing"] == elements
    growth_mib = result["growth_kib"] / 1024
    # default 8 MiB chunks: two read buffers and a few MiB of temporaries (the interpreter's
    # own growth adds some); loading a file whole would add 200 MiB
    assert growth_mib < 48, f"peak RSS grew by {growth_mib:.0f} MiB"
