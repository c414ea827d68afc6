"""Echo and copies between a call's two inputs, on real speech shaped as a room shapes it.

The speech is espeak-ng's; the "room" is a delay, a decaying noise reverb, a quieter level and
background noise, as when the speakers play into the microphone. Nothing of ours is faked:
the blocks go through `Crosstalk` exactly as `CallSource` hands them over.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from captioner.audio.crosstalk import Crosstalk, CrosstalkEvent
from testkit.virtual_mic import make_speech_wav

RATE = 16000


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("crosstalk")
    a = make_speech_wav(folder / "a.wav", "Please send the report by Friday afternoon.", rate=RATE)
    b = make_speech_wav(
        folder / "b.wav", "The weather is lovely today, we will walk.", rate=RATE, voice="en+f3"
    )
    first, second = (soundfile.read(p, dtype="float32")[0] for p in (a, b))
    n = max(len(first), len(second)) + RATE
    return np.pad(first, (0, n - len(first))), np.pad(second, (0, n - len(second)))


def room(speech: np.ndarray, delay: float, seed: int = 1) -> np.ndarray:
    """What a microphone picks up of speakers across a room: later, quieter, reverberant, noisy."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.3 * RATE)) / RATE
    response = rng.standard_normal(len(t)) * np.exp(-t / 0.06)
    # the direct sound, 5 dB above the reverberation (speakers an arm's length away)
    response[0] = np.sqrt(np.dot(response, response) * 10 ** (5 / 10))
    wet = np.convolve(speech, response)[: len(speech)]
    wet *= 0.25 * np.abs(speech).max() / np.abs(wet).max()
    shifted = np.concatenate([np.zeros(int(delay * RATE)), wet])[: len(speech)]
    return (shifted + rng.standard_normal(len(speech)) * 0.002).astype(np.float32)


FOUND_AT: dict[str, float] = {}


def run(you: np.ndarray, others: np.ndarray) -> tuple[list[CrosstalkEvent], np.ndarray]:
    """Blocks of 100 ms through Crosstalk, as the session takes them; `FOUND_AT` keeps the
    second of the stream by which each kind of event had come."""
    crosstalk = Crosstalk(RATE)
    stream = np.stack([you, others], axis=1).astype(np.float32)
    events: list[CrosstalkEvent] = []
    out = []
    FOUND_AT.clear()
    for start in range(0, len(stream), 1600):
        block = stream[start : start + 1600].copy()
        for event in crosstalk.process(block):
            events.append(event)
            FOUND_AT.setdefault(event.kind, (start + len(block)) / RATE)
        out.append(block)
    return events, np.concatenate(out)


def speech_start(x: np.ndarray) -> float:
    return int(np.argmax(np.abs(x) > 0.01)) / RATE


def energy(x: np.ndarray) -> float:
    return float(np.dot(x.astype(np.float64), x))


def test_the_speakers_echo_in_the_microphone_is_found_and_gated(
    talk: tuple[np.ndarray, np.ndarray],
) -> None:
    theirs = np.concatenate([talk[0], talk[0]])  # the far side says it twice
    echo = room(theirs, delay=0.08)
    events, out = run(echo, theirs)
    assert [e.kind for e in events] == ["echo"]
    assert events[0].lag == pytest.approx(0.08, abs=0.03)
    assert FOUND_AT["echo"] - speech_start(theirs) <= 2.5  # seconds of speech to be sure
    after = slice(int(FOUND_AT["echo"] * RATE), None)
    assert energy(out[after, 0]) < 0.2 * energy(echo[after])  # the echo is gone from "You"
    assert np.array_equal(out[:, 1], theirs)  # and the far side untouched


def test_two_people_talking_at_once_are_left_alone(talk: tuple[np.ndarray, np.ndarray]) -> None:
    mine, theirs = talk[1], talk[0]
    events, out = run(mine, theirs)
    assert events == []
    assert np.array_equal(out[:, 0], mine) and np.array_equal(out[:, 1], theirs)


def test_a_system_input_that_records_the_microphone_is_a_copy_and_muted(
    talk: tuple[np.ndarray, np.ndarray],
) -> None:
    mine = talk[1]
    copy = np.concatenate([np.zeros(int(0.04 * RATE), dtype=np.float32), mine])[: len(mine)]
    events, out = run(mine, copy)
    assert [e.kind for e in events] == ["copy"]
    assert FOUND_AT["copy"] - speech_start(mine) <= 2.0
    assert np.array_equal(out[:, 0], mine)  # the microphone keeps every sample
    assert not out[int(FOUND_AT["copy"] * RATE) :, 1].any()


def test_the_echo_ends_when_the_microphone_stops_hearing_the_speakers(
    talk: tuple[np.ndarray, np.ndarray],
) -> None:
    """A headset put on mid-call: the far side goes on, the microphone hears only its own."""
    theirs, mine = talk
    others = np.concatenate([theirs] * 4)
    you = np.concatenate([room(theirs, 0.08), room(theirs, 0.08, seed=2), mine, mine])
    events, _ = run(you, others)
    assert [e.kind for e in events] == ["echo", "echo-gone"]
