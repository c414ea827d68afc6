"""The audio backlog: replay after a reconnect is byte for byte what was captured."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from captioner.core.backlog import AudioBacklog, AudioChunk, pad_to_minimum

RATE = 16000
CHUNK = 1600


def audio(start: int, n: int) -> bytes:
    """Samples whose values are their own capture index (mod 2**15): easy to check."""
    return (np.arange(start, start + n) % 32768).astype("<i2").tobytes()


def capture(backlog: AudioBacklog, start: int, chunks: int) -> int:
    for i in range(chunks):
        backlog.add(AudioChunk(audio(start + i * CHUNK, CHUNK), start + i * CHUNK))
    return start + chunks * CHUNK


def drain(backlog: AudioBacklog) -> list[AudioChunk]:
    out = []
    while (chunk := backlog.take()) is not None:
        out.append(chunk)
    return out


@settings(max_examples=200, deadline=None)
@given(
    before=st.integers(1, 40),
    sent=st.integers(0, 40),
    ack=st.integers(0, 40 * CHUNK),
    after=st.integers(0, 20),
)
def test_rewind_replays_exactly_the_unacknowledged_audio(
    before: int, sent: int, ack: int, after: int
) -> None:
    backlog = AudioBacklog(RATE, CHUNK, window_seconds=600)
    end = capture(backlog, 0, before)
    taken = [backlog.take() for _ in range(min(sent, before))]
    sent_until = sum(c.n_samples for c in taken if c is not None)
    acked = min(ack, sent_until)
    backlog.ack(acked)
    end = capture(backlog, end, after)
    assert backlog.rewind() is None
    replay = drain(backlog)
    data = b"".join(c.data for c in replay)
    expected = audio(acked, end - acked)
    # a lone piece shorter than 20 ms is padded with silence, never sent tiny
    assert data[: len(expected)] == expected
    assert data[len(expected) :] == bytes(len(data) - len(expected))
    assert len(data) - len(expected) < 640
    assert all(c.data for c in replay)
    assert all(640 <= len(c.data) <= 8000 for c in replay[:-1])
    position = acked
    for chunk in replay:
        assert chunk.capture_sample == position
        position += chunk.n_samples


def test_audio_beyond_the_window_is_reported_as_a_gap() -> None:
    backlog = AudioBacklog(RATE, CHUNK, window_seconds=1.0)
    capture(backlog, 0, 5)
    drain(backlog)
    backlog.ack(2 * CHUNK)  # finals up to 0.2 s
    capture(backlog, 5 * CHUNK, 30)  # 3 s more during an outage, 1 s window
    gap = backlog.rewind()
    assert gap is not None
    assert gap.start_sample == 2 * CHUNK
    replay = drain(backlog)
    assert gap.end_sample == replay[0].capture_sample
    assert replay[-1].end_sample == 35 * CHUNK
    assert sum(c.n_samples for c in replay) == RATE  # exactly the window


def test_acknowledged_audio_is_released() -> None:
    backlog = AudioBacklog(RATE, CHUNK)
    capture(backlog, 0, 10)
    drain(backlog)
    assert backlog.unacked_samples == 10 * CHUNK
    backlog.ack(10 * CHUNK)
    assert backlog.unacked_samples == 0
    assert backlog.rewind() is None
    assert drain(backlog) == []


def test_mute_gaps_are_not_losses() -> None:
    backlog = AudioBacklog(RATE, CHUNK)
    capture(backlog, 0, 3)
    capture(backlog, 10 * CHUNK, 3)  # 7 chunks muted in between
    drain(backlog)
    assert backlog.rewind() is None
    replay = drain(backlog)
    assert [c.capture_sample for c in replay] == [
        0,
        CHUNK,
        2 * CHUNK,
        10 * CHUNK,
        11 * CHUNK,
        12 * CHUNK,
    ]


def test_pad_to_minimum() -> None:
    assert pad_to_minimum(b"\x01\x00", RATE) == b"\x01\x00" + bytes(638)
    assert pad_to_minimum(bytes(640), RATE) == bytes(640)


def test_peek_shows_the_next_chunk_without_taking_it() -> None:
    backlog = AudioBacklog(RATE, CHUNK)
    assert backlog.peek() is None
    capture(backlog, 0, 2)
    first = backlog.peek()
    assert first is not None and first.capture_sample == 0
    assert backlog.peek() is first and len(backlog) == 2
    assert backlog.take() is first
    second = backlog.peek()
    assert second is not None and second.capture_sample == CHUNK
    backlog.rewind()  # nothing acknowledged: the taken chunk is first again
    assert backlog.peek() == first
