"""What the VAD heard, frame by frame: the judge of a decoder's words.

The recogniser keeps each frame's speech probability for the audio it still holds, and asks
two questions of it: is there speech that no word covers (Whisper sometimes leaves a phrase
out), and is there any speech under a word (a word on silence or noise is invented)?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from captioner.server.vad import SAMPLE_RATE
from captioner.server.wire import WordOut

__all__ = ["SpeechRecord"]


class _Thresholds(Protocol):
    @property
    def vad_on(self) -> float: ...
    @property
    def vad_off(self) -> float: ...
    @property
    def unheard_s(self) -> float: ...
    @property
    def word_slack_s(self) -> float: ...


class SpeechRecord:
    """Per-frame speech probabilities from frame `origin` on, and the stretches of speech
    that were decoded again and held no words (not worth decoding a third time)."""

    def __init__(self, frame_samples: int, thresholds: _Thresholds) -> None:
        self._frame = frame_samples
        self._t = thresholds
        self._probs: list[float] = []
        self._origin = 0  # the frame index of _probs[0]
        self._empty: list[tuple[int, int]] = []  # sample ranges decoded again to no words

    def append(self, probability: float) -> None:
        self._probs.append(probability)

    def found_empty(self, low: int, high: int) -> None:
        """Speech in samples [low, high) was decoded on its own and held no word."""
        self._empty.append((low, high))

    def forget_before(self, sample: int) -> None:
        """Drop what lies before `sample` (the audio is gone; nothing will ask about it)."""
        self._empty = [(a, b) for a, b in self._empty if b > sample]
        keep = sample // self._frame
        if keep - self._origin >= 100:
            del self._probs[: keep - self._origin]
            self._origin = keep

    def unheard(self, words: Sequence[WordOut], start: int, end: int) -> tuple[int, int] | None:
        """The first stretch holding at least `unheard_s` of speech frames in [start, end)
        that lie more than `word_slack_s` from every word (and were not already found empty),
        if any; dips of up to 0.2 s between them belong to the stretch."""
        first = max(start // self._frame, self._origin)
        last = min(end // self._frame, self._origin + len(self._probs))
        need = max(1, round(self._t.unheard_s * SAMPLE_RATE / self._frame))
        if last - first < need:
            return None
        probs = np.asarray(self._probs[first - self._origin : last - self._origin])
        speech = probs >= self._t.vad_on
        slack = self._t.word_slack_s * SAMPLE_RATE / self._frame
        for w in words:
            low = max(0, int(w.start * SAMPLE_RATE / self._frame - slack) - first)
            high = min(len(speech), int(np.ceil(w.end * SAMPLE_RATE / self._frame + slack)) - first)
            if high > low:
                speech[low:high] = False
        for a, b in self._empty:
            low = max(0, a // self._frame - first)
            high = min(len(speech), -(-b // self._frame) - first)
            if high > low:
                speech[low:high] = False
        # stretches of unheard speech, bridging the short dips between words
        bridge = round(0.2 * SAMPLE_RATE / self._frame)
        index, count = 0, len(speech)
        while index < count:
            if not speech[index]:
                index += 1
                continue
            low = high = index
            frames = 0
            while index < count and index - high <= bridge:
                if speech[index]:
                    high = index
                    frames += 1
                index += 1
            if frames >= need:
                return (first + low) * self._frame, (first + high + 1) * self._frame
        return None

    def heard(self, start: float, end: float) -> bool:
        """Whether the VAD heard any speech within `word_slack_s` of a word (seconds): a word
        on nothing but silence or noise is one the decoder invented."""
        slack = self._t.word_slack_s
        first = max(int((start - slack) * SAMPLE_RATE) // self._frame, self._origin)
        last = min(
            int(np.ceil((end + slack) * SAMPLE_RATE / self._frame)),
            self._origin + len(self._probs),
        )
        if last <= first:
            return True  # no VAD record of that audio: nothing to judge by
        window = self._probs[first - self._origin : last - self._origin]
        return max(window) >= self._t.vad_off
