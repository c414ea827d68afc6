"""The shaped variants the engine's benchmarks and tests hear (testkit/speech_corpus.py) are
the same on every run, and the noise sits where it is asked to."""

from __future__ import annotations

import numpy as np

from testkit import speech_corpus


def syllables(seconds: float = 3.0) -> np.ndarray:
    """A voice-like test signal: a 150 Hz buzz switched on and off four times a second."""
    t = np.arange(int(seconds * speech_corpus.RATE)) / speech_corpus.RATE
    buzz = np.sign(np.sin(2 * np.pi * 150 * t)) * 0.2
    return (buzz * (np.sin(2 * np.pi * 4 * t) > 0)).astype(np.float32)


def test_every_variant_is_the_same_on_every_run() -> None:
    audio = syllables()
    for shape in (speech_corpus.with_reverb, speech_corpus.faster, speech_corpus.with_pink_noise):
        first, second = shape(audio), shape(audio)
        assert np.array_equal(first, second), shape.__name__
        assert not np.array_equal(first[: len(audio)], audio[: len(first)]), shape.__name__


def test_pink_noise_sits_12_db_below_the_speech() -> None:
    audio = syllables()
    noise = speech_corpus.with_pink_noise(audio, snr_db=12.0) - audio
    ratio = speech_corpus.speech_level(audio) / float(np.sqrt(np.mean(noise**2)))
    assert abs(20 * np.log10(ratio) - 12.0) < 0.5


def test_the_faster_talker_says_it_in_four_fifths_of_the_time() -> None:
    audio = syllables()
    assert abs(len(speech_corpus.faster(audio)) / len(audio) - 0.8) < 0.01
