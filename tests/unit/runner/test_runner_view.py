"""What a stage sees of its repository, and where its outs are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitwright.errors import UsageError
from bitwright.runner.view import RepoView, child_toward, out_parents


def _repo(tmp_path: Path) -> Path:
    for rel in ["data/raw/a.csv", "src/x.py", ".git/HEAD", ".dvc/config", ".dvc/cache/ab"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "metrics.json").write_text("{}")
    return tmp_path


def test_out_parents_are_unique_and_shallowest_first() -> None:
    outs = ["models/a/b.pt", "metrics.json", "models/c.pt", "data/prepared/", "models/d.pt"]
    assert out_parents(outs) == (".", "data", "models", "models/a")


def test_warn_mode_shows_every_entry_but_hidden_and_outs(tmp_path: Path) -> None:
    view = RepoView.create(_repo(tmp_path), visible=[], outs=["metrics.json"], strict=False)
    assert view.exposed_inside(".") == (".dvc", "data", "src")
    assert view.hidden_inside(view.exposed_inside(".")) == (".dvc/cache",)


def test_strict_mode_shows_declared_paths_only_and_never_keys(tmp_path: Path) -> None:
    view = RepoView.create(
        _repo(tmp_path),
        visible=["data/raw/a.csv", "data/raw", "src/x.py", ".bitwright/keys/owner.key"],
        outs=["out/m.pt"],
        strict=True,
    )
    assert view.visible == ("data/raw/a.csv", "data/raw", "src/x.py")
    assert view.exposed_inside(".") == ("data/raw", "src/x.py")
    assert view.mount_points_inside(".", [".", "out"]) == {"data", "src", "out"}


def test_paths_outside_the_repository_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a path inside the repository"):
        RepoView.create(tmp_path, visible=["../elsewhere"], outs=[], strict=True)


def test_child_toward() -> None:
    assert child_toward(".", "data/raw/a.csv") == "data"
    assert child_toward("data", "data/raw/a.csv") == "data/raw"
