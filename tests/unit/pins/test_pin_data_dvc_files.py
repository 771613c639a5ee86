"""pin_data with the ``.dvc`` files given: the same pins, and no walk of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitwright.pins import data as pins_data
from bitwright.pins import pin_data
from bitwright.pins.data import find_dvc_files


def test_given_dvc_files_give_the_same_pins(dvc_repo: Path) -> None:
    assert pin_data(dvc_repo, dvc_files=find_dvc_files(dvc_repo)) == pin_data(dvc_repo)


def test_given_dvc_files_are_not_looked_for_again(
    dvc_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = find_dvc_files(dvc_repo)

    def no_walk(repo: Path) -> tuple[Path, ...]:
        raise AssertionError(f"walked {repo} again")

    monkeypatch.setattr(pins_data, "find_dvc_files", no_walk)
    only_raw = tuple(f for f in found if f.name == "raw.csv.dvc")
    assert [pin.path for pin in pin_data(dvc_repo, dvc_files=only_raw)] == ["data/raw.csv"]
    assert pin_data(dvc_repo, dvc_files=()) == ()
    with pytest.raises(AssertionError, match="walked"):
        pin_data(dvc_repo)
