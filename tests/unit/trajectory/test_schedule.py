"""The data order: a permutation per epoch from the seed and the data alone, numpy or not."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from bitwright.trajectory import Schedule
from bitwright.trajectory import schedule as schedule_module

DATA = "ab" * 32


def test_each_epoch_is_a_permutation_and_batches_cover_it() -> None:
    s = Schedule(seed=3, data_sha256=DATA, items=50, batch_size=16)
    assert s.steps_per_epoch == 4
    order = list(s.epoch_order(0))
    assert sorted(order) == list(range(50))
    batches = [list(s.batch(t)) for t in range(4)]
    assert [len(b) for b in batches] == [16, 16, 16, 2]
    assert sum(batches, []) == order
    assert list(s.batch(4)) == list(s.epoch_order(1))[:16]


def test_the_order_depends_on_seed_data_and_epoch_only() -> None:
    s = Schedule(3, DATA, 50, 16)
    assert list(s.epoch_order(0)) == list(Schedule(3, DATA, 50, 8).epoch_order(0))
    assert list(s.epoch_order(0)) != list(s.epoch_order(1))
    assert list(s.epoch_order(0)) != list(Schedule(4, DATA, 50, 16).epoch_order(0))
    assert list(s.epoch_order(0)) != list(Schedule(3, "cd" * 32, 50, 16).epoch_order(0))
    assert s.batches_sha256(0, 10) != s.batches_sha256(1, 11)


def test_numpy_and_the_standard_library_give_the_same_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_numpy = list(Schedule(9, DATA, 300, 7).epoch_order(2))
    real_import = builtins.__import__

    def no_numpy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "numpy":
            raise ImportError("no numpy here")
        return real_import(name, *args, **kwargs)

    schedule_module._order.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_numpy)
    assert list(Schedule(9, DATA, 300, 7).epoch_order(2)) == with_numpy
    schedule_module._order.cache_clear()


def test_a_schedule_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Schedule(0, DATA, 0, 16)
    with pytest.raises(ValueError):
        Schedule(0, "abcd", 10, 16)


@pytest.mark.parametrize(("first", "end"), [(0, 1), (3, 4), (2, 13), (0, 12), (7, 30), (4, 8)])
def test_a_run_of_steps_gives_each_steps_batch_across_epochs(first: int, end: int) -> None:
    s = Schedule(seed=1, data_sha256=DATA, items=50, batch_size=16)  # 4 steps an epoch
    assert [list(b) for b in s.batches(first, end)] == [list(s.batch(t)) for t in range(first, end)]
