"""Benchmark: `bitwright scan` against picklescan on the same model files, as commands.

Files written to a temporary directory (removed at the end):

- ``torch``: ``torch.save`` of the reference MLP widened to ``--hidden`` (default three layers
  of 4096: ~150 MiB of float32, one small data.pkl and many storages);
- ``forest``: a scikit-learn random forest of ``--trees`` trees, ``joblib.dump``-ed;
- ``objects``: a plain pickle of ``--objects`` small dicts (millions of opcodes: the worst
  case of a machine that models every opcode in Python);
- ``safetensors``: the same weights as ``torch`` as safetensors (the header alone is read).

Each row is the best of ``--repeat`` runs of ``bitwright scan FILE`` and ``picklescan -p
FILE`` (start-up included), and their ratio; ``in-process`` is ``scan_path`` alone, imports
warm: what the scan itself costs beside bitwright's start-up. picklescan lists globals and
stops; bitwright models every opcode, so huge object pickles cost it most.

    .venv/bin/python bench/scan.py [--hidden 4096,4096,4096] [--trees 200] [--objects 300000]

Goal (printed, never asserted): on model files (torch, forest), the scan itself (in-process)
takes no longer than the picklescan command; the bitwright command adds its start-up.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_call, best_command  # noqa: E402

BIN = Path(sys.executable).parent


def write_files(folder: Path, hidden: list[int], trees: int, objects: int) -> dict[str, Path]:
    import joblib
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from sklearn.ensemble import RandomForestClassifier

    widths = [64, *hidden, 10]
    layers = [torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False)]
    state = torch.nn.Sequential(*layers).state_dict()
    files = {
        "torch": folder / "model.pt",
        "forest": folder / "forest.joblib",
        "objects": folder / "objects.pkl",
        "safetensors": folder / "model.safetensors",
    }
    torch.save(state, files["torch"])
    save_file({k: v.contiguous() for k, v in state.items()}, files["safetensors"])
    rng = np.random.default_rng(0)
    x, y = rng.random((2000, 16)), rng.integers(0, 2, 2000)
    forest = RandomForestClassifier(n_estimators=trees, random_state=0).fit(x, y)
    joblib.dump(forest, files["forest"])
    rows = [{"a": i, "b": [i, i + 1], "c": str(i)} for i in range(objects)]
    files["objects"].write_bytes(pickle.dumps(rows, protocol=4))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="4096,4096,4096")
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--objects", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    picklescan = shutil.which("picklescan", path=str(BIN)) or shutil.which("picklescan")
    if picklescan is None:
        sys.exit("picklescan is not installed (pip install 'bitwright[scanners]')")
    hidden = [int(h) for h in args.hidden.split(",") if h]
    with tempfile.TemporaryDirectory(prefix="bitwright-scan-bench-") as scratch:
        files = write_files(Path(scratch), hidden, args.trees, args.objects)
        from bitwright.scan import scan_path

        print(
            f"{'file':<12} {'MiB':>7} {'in-process':>10} {'bitwright':>10} {'picklescan':>11} ratio"
        )
        for name, path in files.items():
            inside = best_call(lambda p=path: scan_path(p, digests=False), args.repeat)
            ours = best_command([str(BIN / "bitwright"), "scan", str(path)], args.repeat)
            theirs = best_command([picklescan, "-p", str(path)], args.repeat)
            size = path.stat().st_size / (1 << 20)
            met = "met" if inside <= theirs else "missed"
            goal = "" if name in ("objects", "safetensors") else f" (goal {met})"
            print(
                f"{name:<12} {size:>7.1f} {inside:>9.2f}s {ours:>9.2f}s {theirs:>10.2f}s "
                f"{ours / theirs:.2f}x{goal}"
            )


if __name__ == "__main__":
    main()
