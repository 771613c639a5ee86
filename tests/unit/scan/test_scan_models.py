"""Real model files that must scan clean: torch, scikit-learn, joblib, numpy, safetensors.

The torch files hold the reference pipeline's model (``pipelines/common.py``, as
``params.yaml`` describes it); the scikit-learn models are fitted on the same digits, as
scikit-learn ships them. A scanner that refuses these is of no use to anyone.
"""

from __future__ import annotations

import pickle
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from bitwright.scan import ScanPolicy, Severity, scan_path

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of real model files, made once for the module."""
    import joblib
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sys.path.insert(0, str(ROOT))
    try:
        from pipelines.common import build_model
    finally:
        sys.path.remove(str(ROOT))
    out = tmp_path_factory.mktemp("models")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    mlp = build_model(params["model"], seed=7)
    optimizer = torch.optim.SGD(mlp.parameters(), lr=0.1, momentum=0.9)
    mlp(torch.zeros(2, 64)).sum().backward()
    optimizer.step()
    torch.save(mlp.state_dict(), out / "reference.pt")
    torch.save(
        {"model": mlp.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3},
        out / "checkpoint.pt",
    )
    torch.save(mlp.state_dict(), out / "legacy.pt", _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in mlp.state_dict().items()}, out / "model.safetensors")

    digits = load_digits()
    x, y = digits.data[:300] / 16.0, digits.target[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        fitted = {
            "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)).fit(x, y),
            "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
            "boosting": HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(x, y),
            "knn": KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        }
    for name, model in fitted.items():
        joblib.dump(model, out / f"{name}.joblib")
        joblib.dump(model, out / f"{name}.joblib.z", compress=3)
        (out / f"{name}.pkl").write_bytes(pickle.dumps(model, protocol=5))
        (out / f"{name}.p2").write_bytes(pickle.dumps(model, protocol=2))
    np.save(out / "features.npy", x)
    np.savez_compressed(out / "split.npz", x=x, y=y)
    return out


def test_real_model_files_scan_clean(models: Path) -> None:
    report = scan_path(models)

    assert report.findings == ()
    assert report.clean


def test_formats_are_told_by_content(models: Path) -> None:
    formats = {f.path: f.format for f in scan_path(models).files}

    assert formats["reference.pt"] == "torch-zip"
    assert formats["legacy.pt"] == "pickle"
    assert formats["model.safetensors"] == "safetensors"
    assert formats["forest.joblib"] == "joblib"
    assert formats["forest.joblib.z"] == "zlib:joblib"
    assert formats["forest.pkl"] == "pickle"
    assert formats["features.npy"] == "npy"
    assert formats["split.npz"] == "npz"


def test_torch_files_reach_only_the_weights_only_set(models: Path) -> None:
    (torch_file,) = [f for f in scan_path(models).files if f.path == "checkpoint.pt"]

    assert "torch._utils._rebuild_tensor_v2" in torch_file.globals
    assert all(g.startswith(("torch.", "collections.", "builtins.")) for g in torch_file.globals)


def test_without_the_sklearn_family_a_sklearn_model_is_unsafe(models: Path) -> None:
    policy = ScanPolicy(families=frozenset({"torch", "numpy", "builtins", "joblib"}))

    report = scan_path(models / "forest.joblib", policy=policy)

    assert not report.clean
    assert any(
        "sklearn.ensemble._forest.RandomForestClassifier" in f.message for f in report.findings
    )


def test_a_whole_pickled_torch_module_is_unsafe(tmp_path: Path) -> None:
    import torch

    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")

    report = scan_path(tmp_path / "whole.pt")

    assert [f.severity for f in report.findings] == [Severity.UNSAFE]
    assert "torch.nn.modules.linear.Linear" in report.findings[0].message
