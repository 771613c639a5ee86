"""Stage ``prepare``: check the raw digits, split them per class, scale them, write safetensors.

The split depends only on the seed and the row numbers (each class's rows ordered by
sha256 of ``"{seed}:{row}"``), not on any random generator's implementation, so it is the
same for every numpy and torch version. Pixels are scaled to [0, 1]; the training split's
per-pixel mean and standard deviation go with it for the model to standardize its input.
"""

from __future__ import annotations

from bitwright import stagekit

settings = stagekit.begin()

import gzip  # noqa: E402
import hashlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

# Run as `python pipelines/prepare.py` from the repository root: make `pipelines` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines import common  # noqa: E402


def read_digits(path: Path, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the pixels (n, image_size**2) and labels (n,) of the raw CSV as int64."""
    with gzip.open(path, "rt", encoding="ascii") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)
    features = image_size * image_size
    if table.shape[1] != features + 1:
        raise common.fail(f"{path}: expected {features + 1} columns, got {table.shape[1]}")
    return table[:, :features], table[:, features]


def split_rows(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Return sorted train and test row numbers, holding out ``test_fraction`` of each class."""
    train: list[int] = []
    test: list[int] = []
    for label in sorted(set(labels.tolist())):
        rows = [int(r) for r in np.flatnonzero(labels == label)]
        rows.sort(key=lambda r: hashlib.sha256(f"{seed}:{r}".encode()).hexdigest())
        held_out = int(len(rows) * test_fraction + 0.5)
        test.extend(rows[:held_out])
        train.extend(rows[held_out:])
    return sorted(train), sorted(test)


def main() -> None:
    """Run the stage."""
    params = common.load_params()
    data = params["data"]
    seed = common.checked_seed(params, settings.seed)
    digest = common.sha256_file(common.RAW_FILE)
    if digest != data["sha256"]:
        raise common.fail(
            f"{common.RAW_FILE} has sha256 {digest}, params.yaml pins {data['sha256']}"
        )
    pixels, labels = read_digits(common.RAW_FILE, int(data["image_size"]))
    if labels.min() < 0 or labels.max() >= int(data["num_classes"]):
        raise common.fail(f"{common.RAW_FILE}: labels outside 0..{int(data['num_classes']) - 1}")
    train_rows, test_rows = split_rows(labels, float(data["test_fraction"]), seed)
    scaled = pixels.astype(np.float64) / float(data["max_pixel"])
    mean = scaled[train_rows].mean(axis=0)
    std = scaled[train_rows].std(axis=0)
    std[std == 0.0] = 1.0  # pixels that are blank in every training image stay as they are
    stats = {
        "mean": torch.from_numpy(mean.astype(np.float32)),
        "std": torch.from_numpy(std.astype(np.float32)),
    }
    for path, rows in ((common.TRAIN_FILE, train_rows), (common.TEST_FILE, test_rows)):
        tensors = {
            "pixels": torch.from_numpy(scaled[rows].astype(np.float32)),
            "labels": torch.from_numpy(labels[rows]),
            "rows": torch.tensor(rows, dtype=torch.int64),
        }
        common.save_tensors(path, tensors | stats)


if __name__ == "__main__":
    main()
