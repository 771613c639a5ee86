"""Pages for the visual report tests: a night over a few nights, and a rebuild's differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from bitwright.htmlreport import Page, Requirement, TensorRow
from bitwright.nightly.history import first_different
from bitwright.nightly.night import Result
from bitwright.nightly.visual import night_page
from bitwright.rebuild.compare.histogram import difference_histogram
from bitwright.rebuild.visual import tensor_histograms


def tensor_files(tmp: Path) -> tuple[Path, Path]:
    """A released and a rebuilt checkpoint: one tensor a few ULPs off, one forged."""
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(4096).astype(np.float32)
    moved = weights.copy()
    moved[::3] = np.nextafter(moved[::3], np.float32(np.inf))
    bias = np.arange(8, dtype=np.float32)
    forged = bias.copy()
    forged[2] += 0.25
    (tmp / "released").mkdir(exist_ok=True)
    (tmp / "rebuilt" / "models").mkdir(parents=True, exist_ok=True)
    original, rebuilt = (
        tmp / "released" / "model.safetensors",
        tmp / "rebuilt" / "models" / "model.safetensors",
    )
    save_file({"fc1.weight": weights, "fc1.bias": bias}, str(original))
    save_file({"fc1.weight": moved, "fc1.bias": forged}, str(rebuilt))
    return original, rebuilt


def a_night_page(tmp: Path) -> Page:
    """Four nights; on the last, train differs under threads, with histograms drawn."""
    from nightly_factory import night  # the nightly tests' factory, on sys.path under pytest

    nights = [
        night(1, "a"),
        night(2, "b", train=Result.FAILED),
        night(3, "c"),
        night(4, "d", train=Result.DIFFERENT),
    ]
    original, _ = tensor_files(tmp)
    rows = [
        TensorRow("models/model.safetensors", name, "F32", (n,), 1, n, a, 0.1, 1, False, "train")
        for name, n, a in (("fc1.weight", 4096, 1e-7), ("fc1.bias", 8, 0.25))
    ]
    histograms = tensor_histograms(rows, {"models/model.safetensors": original}, tmp / "rebuilt")
    return night_page(nights[-1], first_different(nights), nights, histograms)


def a_gate_page() -> Page:
    """What the gate renders: requirements with verdicts and evidence."""
    return Page(
        title="bitwright gate",
        verdict="DENY",
        reason="1 of 3 requirements failed",
        requirements=(
            Requirement("provenance signed by the owner", "PASS", ("keyid 1a2b3c4d",)),
            Requirement("reproduced by 2 verifiers", "FAIL", ("1 VSA found", "<script>x</script>")),
            Requirement("scan clean", "PASS"),
        ),
    )


__all__ = ["a_gate_page", "a_night_page", "difference_histogram", "tensor_files"]
