"""The encoder window the Whisper decoder pads each clip to (captioner/server/whisper.py).

The window sizes are few on purpose: CTranslate2 keeps working memory for each input shape it
has seen, so a window that followed the clip frame by frame made the server grow without
bound (`bench/stream_quality.py --long` measures it).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from captioner.server.whisper import (
    FRAMES_PER_SECOND,
    MAX_WINDOW_FRAMES,
    MIN_INTERIM_WINDOW_FRAMES,
    MIN_WINDOW_FRAMES,
    _window_frames,
)


@given(
    content=st.integers(10, MAX_WINDOW_FRAMES),
    minimum=st.sampled_from([MIN_INTERIM_WINDOW_FRAMES, MIN_WINDOW_FRAMES]),
)
def test_the_window_holds_the_clip_with_room_after_it(content: int, minimum: int) -> None:
    window = _window_frames(content, minimum)
    assert minimum <= window <= MAX_WINDOW_FRAMES
    assert window >= min(content + FRAMES_PER_SECOND, MAX_WINDOW_FRAMES)
    assert window % 2 == 0  # the encoder halves it
    # about 1.5 times the clip plus 2 s, as Whisper needs room after the speech
    assert abs(window - max(minimum, min(MAX_WINDOW_FRAMES, 1.5 * content + 200))) <= 200


def test_an_odd_minimum_still_gives_an_even_window() -> None:
    assert {_window_frames(content, 701) % 2 for content in range(10, 400)} == {0}


def test_every_clip_length_maps_to_a_dozen_window_sizes() -> None:
    for minimum in (MIN_INTERIM_WINDOW_FRAMES, MIN_WINDOW_FRAMES):
        sizes = {_window_frames(content, minimum) for content in range(10, MAX_WINDOW_FRAMES + 1)}
        assert len(sizes) <= 13, sorted(sizes)
