"""A deterministic engine for tests: words follow the audio's loud stretches, no model needed.

Protocol tests check handshakes, message shapes, timers and control messages; they must not
depend on a model's speed or accuracy. `TestEngine` runs the real streaming recogniser (VAD,
agreement, context, windows) around `FakeDecoder`, which reads each loud stretch of a clip as
words of 0.3 s, named from the NATO alphabet.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from captioner.server.engine import Hypothesis, Recognizer, RecognizerOptions
from captioner.server.streaming import StreamingRecognizer, Tuning
from captioner.server.vad import SAMPLE_RATE, EnergyVad, Samples
from captioner.server.wire import ModelInfo, WordOut

NATO = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]

_FRAME = SAMPLE_RATE // 50  # 20 ms
_LOUD = 0.01  # RMS


def loud_stretches(audio: Samples) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of loud 20 ms frames in a clip."""
    count = len(audio) // _FRAME
    if not count:
        return []
    levels = np.sqrt(np.mean(audio[: count * _FRAME].reshape(count, _FRAME) ** 2, axis=1))
    loud = np.concatenate([[False], levels > _LOUD, [False]])
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
    return [
        (int(a) * _FRAME / SAMPLE_RATE, int(b) * _FRAME / SAMPLE_RATE)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


class FakeDecoder:
    """Reads each loud stretch as words of `word_seconds` (a remainder of 0.1 s or more is a
    word too), as a model would, deterministically.

    A forced prefix takes the clip's first words; the words after it continue the alphabet from
    the prefix's last word, so two decodes of the same audio agree and neighbouring words
    differ. `delay` makes every decode take that long (on the decoder thread), to prove the
    server stays responsive while a real model is busy.
    """

    def __init__(self, delay: float = 0.0, word_seconds: float = 0.3) -> None:
        self.delay = delay
        self.word_seconds = word_seconds
        self._lock = threading.Lock()
        self.calls = 0

    def spans(self, audio: Samples) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for start, end in loud_stretches(audio):
            position = start
            while end - position >= 0.1 - 1e-9:
                step = self.word_seconds if end - position >= self.word_seconds + 0.1 else None
                finish = end if step is None else position + step
                out.append((position, finish))
                position = finish
        return out

    def decode(
        self,
        audio: Samples,
        *,
        final: bool,
        language: str | None,
        prompt: str = "",
        prefix: str = "",
    ) -> Hypothesis:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        spans = self.spans(np.asarray(audio, dtype=np.float32))
        before = prefix.split()
        spans = spans[len(before) :]
        last = (before or prompt.split() or [""])[-1].strip(".,").lower()
        first = NATO.index(last) + 1 if last in NATO else 0
        words = []
        for i, (start, end) in enumerate(spans):
            name = NATO[(first + i) % len(NATO)]
            punctuated = name.capitalize() if i == 0 and not before else name
            if final and i == len(spans) - 1:
                punctuated += "."
            words.append(WordOut(name, punctuated, start, end, 0.9))
        return Hypothesis(tuple(words), language)


@dataclass
class TestEngine:
    """Energy VAD plus `FakeDecoder`: fast, deterministic, no model files."""

    __test__ = False  # not a pytest test class
    delay: float = 0.0
    tuning: Tuning | None = None
    model_info: ModelInfo = field(default_factory=lambda: ModelInfo("test-engine", "1", "test"))
    decoder: FakeDecoder = field(init=False)

    def __post_init__(self) -> None:
        self.decoder = FakeDecoder(self.delay)

    def recognizer(self, options: RecognizerOptions) -> Recognizer:
        return StreamingRecognizer(self.decoder, EnergyVad(), options, self.tuning)

    def close(self) -> None:
        return None
