"""Reconnect delays: the schedule, its jitter, the cap and Retry-After."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.core.backoff import MAX_RETRY_AFTER, Backoff


def test_schedule_without_jitter_draw_doubles_to_the_cap() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay(0.0) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.attempt == 9


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999999])
def test_first_retry_is_about_half_a_second_and_never_more(draw: float) -> None:
    delay = Backoff().next_delay(draw)
    assert 0.5 * (1 - 0.25) <= delay <= 0.5


def test_jitter_spreads_clients_that_failed_together() -> None:
    delays = {Backoff().next_delay(draw) for draw in (0.0, 0.3, 0.6, 0.9)}
    assert len(delays) == 4


def test_retry_after_wins_when_longer() -> None:
    backoff = Backoff()
    assert backoff.next_delay(0.0, retry_after=2.0) == 2.0
    assert backoff.next_delay(0.0, retry_after=0.1) == 1.0
    assert backoff.attempt == 2


def test_retry_after_may_exceed_the_cap_up_to_a_limit() -> None:
    assert Backoff().next_delay(0.5, retry_after=45.0) == 45.0
    assert Backoff().next_delay(0.5, retry_after=3600.0) == MAX_RETRY_AFTER == 120.0


@pytest.mark.parametrize("retry_after", [-5.0, 0.0, math.nan, math.inf])
def test_unusable_retry_after_is_ignored(retry_after: float) -> None:
    assert Backoff().next_delay(0.0, retry_after=retry_after) == 0.5


def test_reset_starts_again_from_the_first_step() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.next_delay(0.0)
    assert backoff.next_delay(0.0) == 16.0
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay(0.0) == 0.5


@pytest.mark.parametrize("draw", [-1.0, 1.0, 7.0, math.nan])
def test_out_of_range_draws_are_clamped(draw: float) -> None:
    delay = Backoff().next_delay(draw)
    assert 0.375 <= delay <= 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first": 0.0},
        {"first": -1.0},
        {"first": math.nan},
        {"factor": 0.5},
        {"cap": 0.1},
        {"cap": math.inf},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_nonsense_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_many_attempts_stay_at_the_cap() -> None:
    backoff = Backoff()
    for _ in range(5000):
        delay = backoff.next_delay(0.0)
    assert delay == 30.0


@settings(max_examples=200)
@given(
    first=st.floats(0.01, 5.0),
    factor=st.floats(1.0, 4.0),
    extra=st.floats(0.0, 60.0),
    jitter=st.floats(0.0, 0.9),
    draws=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=40),
)
def test_every_delay_lies_in_its_jitter_band(
    first: float, factor: float, extra: float, jitter: float, draws: list[float]
) -> None:
    cap = first + extra
    backoff = Backoff(first=first, factor=factor, cap=cap, jitter=jitter)
    for attempt, draw in enumerate(draws):
        base = min(cap, first * factor**attempt)
        delay = backoff.next_delay(draw)
        assert base * (1 - jitter) - 1e-9 <= delay <= base + 1e-9
        assert delay <= cap + 1e-9


@settings(max_examples=200)
@given(
    draws=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20),
    retry_after=st.floats(0.001, 1000.0),
)
def test_retry_after_is_a_floor_bounded_by_the_limit(
    draws: list[float], retry_after: float
) -> None:
    backoff = Backoff()
    for draw in draws:
        delay = backoff.next_delay(draw, retry_after=retry_after)
        assert delay >= min(retry_after, MAX_RETRY_AFTER)
        assert delay <= max(30.0, min(retry_after, MAX_RETRY_AFTER))
