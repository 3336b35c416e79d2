"""The bench's paired ratios: alternated rounds are paired before the median is taken."""

from __future__ import annotations

import pytest

from bench.report import Figure, Ratio, paired


def _figure(name: str, runs: list[float]) -> Figure:
    return Figure(name, sorted(runs)[(len(runs) - 1) // 2], 1.0, 0.0, {"runs_s": runs})


def _speed_up(slow: float, fast: float) -> float:
    return slow / fast


def _held_to(name: str, value: float, limit: float) -> Ratio:
    return Ratio(name, value, f"≥ {limit:g}", value >= limit)


def test_each_round_is_paired_before_the_median() -> None:
    # Rounds drift (the second is 4× slower for both): paired ratios are 2, 2 and 1.5,
    # while the ratio of the two medians would be 2.5 / 1.25 = 2.
    full = _figure("full", [1.0, 4.0, 1.5])
    half = _figure("half", [0.5, 2.0, 1.0])
    median, lowest, highest = paired("speed-up", full, half, _speed_up, _held_to, 1.6)
    assert median == Ratio("speed-up (median of 3 paired rounds)", 2.0, "≥ 1.6", True)
    assert (lowest.name, lowest.value) == ("speed-up, lowest round", 1.5)
    assert (highest.name, highest.value) == ("speed-up, highest round", 2.0)


def test_one_round_gives_the_plain_ratio() -> None:
    (only,) = paired("speed-up", _figure("a", [3.0]), _figure("b", [2.0]), _speed_up, _held_to, 2)
    assert only.name == "speed-up" and only.value == pytest.approx(1.5) and only.met is False
