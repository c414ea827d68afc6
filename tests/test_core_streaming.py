"""The stream's rules, table by table, with time passed in (no sockets, no sleeping)."""

from __future__ import annotations

import pytest

from captioner.core.backoff import Backoff
from captioner.core.closecodes import close_meaning, http_meaning, network_meaning
from captioner.core.streaming import (
    GiveUp,
    KeepaliveAction,
    KeepaliveSchedule,
    Pacer,
    ReconnectPolicy,
    Retry,
)

DROP = close_meaning(None, None)  # 1006: retry
NET1 = close_meaning(1011, "NET-0001")
BAD_KEY = http_meaning(401)
OFFLINE = network_meaning("connection refused")


def policy(**options: object) -> ReconnectPolicy:
    return ReconnectPolicy(backoff=Backoff(first=1.0, factor=2.0, cap=8.0, jitter=0.0), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meaning", "retries"),
    [(DROP, True), (NET1, True), (OFFLINE, True), (BAD_KEY, False), (http_meaning(400), False)],
)
def test_what_retrying_can_fix_is_retried(meaning: object, retries: bool) -> None:
    decision = policy().ended(meaning, now=10.0)  # type: ignore[arg-type]
    assert isinstance(decision, Retry) is retries


def test_never_retry_when_reconnecting_is_off() -> None:
    assert policy(reconnect=False).ended(DROP, now=1.0) == GiveUp()


def test_backoff_grows_and_retry_after_is_honoured() -> None:
    p = policy()
    delays = [p.ended(DROP, now=0.0).delay(0.0) for _ in range(5)]  # type: ignore[union-attr]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    later = p.ended(http_meaning(429), now=0.0, retry_after=20.0)
    assert isinstance(later, Retry) and later.delay(0.0) == 20.0


def test_a_stable_connection_resets_the_backoff() -> None:
    p = policy(stable_after=30.0)
    for _ in range(3):
        p.ended(DROP, now=0.0)
    p.opened(100.0)
    assert p.ended(DROP, now=131.0) == Retry(132.0, 1)


@pytest.mark.parametrize(
    ("events", "give_up_at"),
    [
        # (kind, time): "end" a connection ended, "result" a transcript arrived
        ([("end", 0), ("end", 5), ("end", 9.9)], None),
        ([("end", 0), ("end", 5), ("end", 10)], 10),
        # accepted and dropped at once, every time: handshakes do not reset the clock
        ([("open", 0), ("end", 0.1), ("open", 1), ("end", 1.1), ("open", 10), ("end", 10.1)], 10.1),
        # results reset it: the outage is counted from the last one
        ([("end", 0), ("result", 8), ("end", 9), ("end", 17.9)], None),
        ([("end", 0), ("result", 8), ("end", 9), ("end", 18)], 18),
    ],
)
def test_an_outage_is_measured_from_the_last_result(
    events: list[tuple[str, float]], give_up_at: float | None
) -> None:
    p = policy(give_up_after=10.0)
    outcome: list[float] = []
    for kind, at in events:
        if kind == "open":
            p.opened(at)
        elif kind == "result":
            p.progress(at)
        elif isinstance(p.ended(DROP, now=at), GiveUp):
            outcome.append(at)
    assert outcome == ([] if give_up_at is None else [give_up_at])


def test_finishing_allows_a_few_tries_for_the_tail() -> None:
    p = policy(tail_attempts=3)
    p.attempt(finishing=False)
    assert isinstance(p.ended(DROP, now=0.0, finishing=True), Retry)
    decisions = []
    for n in range(3):
        p.attempt(finishing=True)
        decisions.append(p.ended(DROP, now=float(n), finishing=True, stopping=True))
    assert [type(d) for d in decisions] == [Retry, Retry, GiveUp]
    assert all(d.delay(float(n)) <= 1.0 for n, d in enumerate(decisions[:2]))  # type: ignore[union-attr]
    assert "Gave up" in decisions[-1].note  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("elapsed", "sent", "excess"),
    [(0.0, 0.0, 0.0), (0.0, 0.1, 0.1), (1.0, 1.3, 0.1), (10.0, 5.0, -7.0), (10.0, 12.1, 0.1)],
)
def test_the_pacer_keeps_to_its_rate_after_a_burst(
    elapsed: float, sent: float, excess: float
) -> None:
    pacer = Pacer(max_realtime=1.2, burst_seconds=0.1)
    got = pacer.excess(now=100.0 + elapsed, opened=100.0, seconds_sent=sent, chunk=0.1)
    assert got == pytest.approx(excess)
    assert pacer.wait(got) == pytest.approx(max(0.0, excess) / 1.2)


def test_an_unpaced_sender_never_waits() -> None:
    pacer = Pacer(max_realtime=None, burst_seconds=0.1)
    assert pacer.excess(now=0.0, opened=0.0, seconds_sent=1e6, chunk=0.1) == 0.0
    assert pacer.wait(5.0) == 0.0


@pytest.mark.parametrize(
    ("now", "last_frame", "samples", "action"),
    [
        (3.9, 0.0, 1600, KeepaliveAction.NOTHING),
        (4.0, 0.0, 1600, KeepaliveAction.KEEPALIVE),
        (4.0, 0.0, 0, KeepaliveAction.SILENCE),  # never had audio: KeepAlive would not hold
        (5.0, 4.5, 0, KeepaliveAction.SILENCE),  # muted from the start, first_audio_within
        (4.9, 4.5, 0, KeepaliveAction.NOTHING),
    ],
)
def test_keepalive_is_due_after_the_interval_silence_first_without_audio(
    now: float, last_frame: float, samples: int, action: KeepaliveAction
) -> None:
    schedule = KeepaliveSchedule(interval=4.0, first_audio_within=5.0)
    assert (
        schedule.action(now=now, opened=0.0, last_frame=last_frame, samples_sent=samples) is action
    )
    due = schedule.due(opened=0.0, last_frame=last_frame, samples_sent=samples)
    assert (action is KeepaliveAction.NOTHING) == (now < due)
