"""The draw of segments: distinct, reproducible from a seed, bound to the head; its odds."""

from __future__ import annotations

import pytest

from bitwright.spotcheck import Randomness, choose_segments, detection_probability

HEAD = "ab" * 32


def test_a_seeded_draw_is_reproducible_distinct_and_bound_to_the_head() -> None:
    seeded = Randomness.draw(4)
    chosen = choose_segments(seeded, HEAD, 420, 21)
    assert chosen == choose_segments(Randomness.draw(4), HEAD, 420, 21)
    assert len(set(chosen)) == 21 and list(chosen) == sorted(chosen)
    assert all(0 <= i < 420 for i in chosen)
    assert chosen != choose_segments(seeded, "cd" * 32, 420, 21)
    assert chosen != choose_segments(Randomness.draw(5), HEAD, 420, 21)
    assert seeded.method == "seed" and seeded.seed == 4


def test_a_secret_draw_publishes_only_a_commitment() -> None:
    secret = Randomness.draw()
    assert secret.method == "secret" and secret.seed is None
    assert secret.secret.hex() not in secret.commitment
    assert secret.commitment != Randomness.draw().commitment


def test_a_draw_of_more_than_there_is_takes_everything() -> None:
    assert choose_segments(Randomness.draw(0), HEAD, 5, 21) == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError):
        choose_segments(Randomness.draw(0), HEAD, 0, 3)


def test_every_segment_is_drawn_about_equally_often() -> None:
    counts = [0] * 10
    for seed in range(2000):
        for i in choose_segments(Randomness.draw(seed), HEAD, 10, 1):
            counts[i] += 1
    assert min(counts) > 150 and max(counts) < 250


def test_detection_probability_is_the_hypergeometric_one() -> None:
    assert detection_probability(1000, 0.2, 21) == pytest.approx(0.9909, abs=1e-3)
    assert detection_probability(1000, 0.2, 21) >= 1 - 0.8**21
    assert detection_probability(63, 1 / 3, 21) > 0.9999
    assert detection_probability(63, 0.0, 21) == 0.0
    assert detection_probability(10, 0.5, 6) == 1.0
