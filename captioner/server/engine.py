"""Speech engines: the interface the server talks to, and the streaming segmentation they share.

An `Engine` is loaded once per server and hands out one `Recognizer` per connection. A recogniser
is incremental and synchronous: `feed()` takes 16 kHz mono float32 samples and returns whatever
events became known (transcripts, speech onsets, utterance ends); `finalize()` flushes the open
utterance. The server calls these on its decoder thread, never on the event loop.

Most of the streaming logic (where an utterance starts and ends, when to emit interims, how to
split long speech) does not depend on the recogniser model, so it lives in
`SegmentingRecognizer`, which drives any `Decoder` (a function from an audio clip to words).
`WhisperEngine` (in `whisper.py`) plugs faster-whisper in; `TestEngine` plugs in a fake decoder
whose words follow the audio's loud stretches, for protocol tests that must not depend on
decoding speed or accuracy.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from captioner.server.vad import SAMPLE_RATE, EnergyVad, FrameVad, Samples, SpeechGate
from captioner.server.wire import ModelInfo, WordOut


@dataclass(frozen=True)
class RecognizerOptions:
    """Per-connection settings taken from the query string."""

    language: str | None = "en"  # None: detect per utterance
    interim_results: bool = False
    endpointing_ms: int | None = 10  # None: endpointing disabled (no speech_final)
    utterance_end_ms: int | None = None


@dataclass(frozen=True)
class Transcript:
    """A result for the window [start, end] (seconds on the connection's audio clock)."""

    start: float
    end: float
    words: tuple[WordOut, ...]
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False


@dataclass(frozen=True)
class SpeechStart:
    timestamp: float


@dataclass(frozen=True)
class UtteranceEnded:
    last_word_end: float


EngineEvent = Transcript | SpeechStart | UtteranceEnded


class Recognizer(Protocol):
    """One connection's incremental recogniser. Not thread-safe: one caller at a time."""

    def feed(self, samples: Samples) -> list[EngineEvent]: ...

    def finalize(self) -> list[EngineEvent]: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """A loaded model that creates recognisers; shared by every connection of a server."""

    model_info: ModelInfo

    def recognizer(self, options: RecognizerOptions) -> Recognizer: ...

    def close(self) -> None: ...


class Decoder(Protocol):
    """Turns one clip into words; word times are seconds from the start of the clip."""

    def decode(self, audio: Samples, *, final: bool, language: str | None) -> list[WordOut]: ...


@dataclass(frozen=True)
class Tuning:
    """Segmentation constants (seconds unless noted), chosen on espeak-ng speech.

    `min_endpoint_s` is the shortest silence that ends an utterance, whatever `endpointing`
    asks for: Deepgram's default of 10 ms would make a VAD end an utterance at every gap
    between words, so small values are raised to this floor.
    """

    min_endpoint_s: float = 0.3
    no_endpointing_silence_s: float = 0.8  # endpointing=false: finals at longer pauses
    preroll_s: float = 0.3  # audio kept before the detected onset (VADs react late)
    postroll_s: float = 0.2  # audio kept after the last speech frame
    interim_interval_s: float = 1.0
    min_interim_audio_s: float = 0.4
    # an interim is re-decoded only after this much new speech; otherwise (a pause, the
    # silence before an endpoint) the previous hypothesis is sent again with the new window
    interim_new_speech_s: float = 0.3
    max_utterance_s: float = 8.0  # longer speech is split so finals never wait too long
    silence_final_s: float = 3.0  # empty finals keep the window moving through silence
    vad_on: float = 0.5
    vad_off: float = 0.35
    vad_min_on_s: float = 0.06


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


class SegmentingRecognizer:
    """VAD segmentation into utterances, re-decoded for interims and decoded once for finals.

    All positions are sample indices on the connection's 16 kHz clock. `cursor` is where the next
    result window starts (finals tile the timeline without gaps); `floor` is where the audio of
    the last final ended, so an utterance never re-decodes audio that was already finalised.
    """

    def __init__(
        self,
        decoder: Decoder,
        vad: FrameVad,
        options: RecognizerOptions,
        tuning: Tuning | None = None,
    ) -> None:
        self._decoder = decoder
        self._vad = vad
        self._options = options
        self._tuning = tuning or Tuning()
        t = self._tuning
        self._frame = vad.frame_samples
        min_on = max(1, round(t.vad_min_on_s * SAMPLE_RATE / self._frame))
        self._gate = SpeechGate(t.vad_on, t.vad_off, min_on)
        if options.endpointing_ms is None:
            endpoint_s = t.no_endpointing_silence_s
        else:
            endpoint_s = max(options.endpointing_ms / 1000, t.min_endpoint_s)
        self._endpoint = _samples(endpoint_s)
        self._preroll = _samples(t.preroll_s)
        self._postroll = _samples(t.postroll_s)
        self._interim_every = _samples(t.interim_interval_s)
        self._min_interim = _samples(t.min_interim_audio_s)
        self._interim_new_speech = _samples(t.interim_new_speech_s)
        self._max_utterance = _samples(t.max_utterance_s)
        self._silence_final = _samples(t.silence_final_s)
        self._utterance_end = (
            None if options.utterance_end_ms is None else options.utterance_end_ms / 1000
        )

        self._buffer = np.zeros(0, dtype=np.float32)
        self._origin = 0  # clock position of _buffer[0]
        self._probs: list[float] = []  # VAD probability per frame, from frame _probs_origin
        self._probs_origin = 0
        self._total = 0  # samples fed so far
        self._frames = 0  # VAD frames consumed so far
        self._cursor = 0
        self._floor = 0
        self._open = False
        self._utt_start = 0
        self._last_speech_end = 0
        self._last_interim = 0
        self._interim_words: tuple[WordOut, ...] | None = None  # last decoded, this utterance
        self._speech_since_interim = 0  # samples of speech since that decode
        self._last_word_end: float | None = None
        self._utterance_end_due = False
        self._closed = False

    # ------------------------------------------------------------------ public

    @property
    def speech_active(self) -> bool:
        return self._open

    @property
    def clock(self) -> float:
        """Seconds of audio fed so far."""
        return self._total / SAMPLE_RATE

    def feed(self, samples: Samples) -> list[EngineEvent]:
        if self._closed:
            raise RuntimeError("recognizer is closed")
        events: list[EngineEvent] = []
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(samples):
            return events
        self._buffer = np.concatenate([self._buffer, samples])
        self._total += len(samples)
        for probability in self._vad.push(samples):
            self._step(float(probability), events)
        self._maybe_interim(events)
        self._trim()
        return events

    def finalize(self) -> list[EngineEvent]:
        """Flush: the open utterance (or pending silence) becomes a `from_finalize` final."""
        events: list[EngineEvent] = []
        if self._open:
            self._final(events, self._total, self._total, speech_final=True, from_finalize=True)
        elif self._total > self._cursor:
            events.append(self._transcript(self._total, (), final=True, from_finalize=True))
            self._cursor = self._floor = self._total
        self._last_interim = self._total
        return events

    def close(self) -> None:
        self._closed = True
        self._buffer = np.zeros(0, dtype=np.float32)
        self._probs = []

    # ------------------------------------------------------------------ segmentation

    def _step(self, probability: float, events: list[EngineEvent]) -> None:
        index = self._frames
        self._frames += 1
        self._probs.append(probability)
        frame_end = (index + 1) * self._frame
        if self._gate.step(probability):
            self._speech_since_interim += self._frame
            if not self._open:
                onset = max(self._floor, (index - self._gate.min_on_frames + 1) * self._frame)
                self._open = True
                self._utt_start = max(onset - self._preroll, self._floor, self._origin)
                self._last_interim = max(self._last_interim, self._utt_start)
                events.append(SpeechStart(onset / SAMPLE_RATE))
            self._last_speech_end = frame_end
        elif self._open and frame_end - self._last_speech_end >= self._endpoint:
            audio_end = min(self._last_speech_end + self._postroll, self._total)
            self._final(
                events,
                frame_end,
                audio_end,
                speech_final=self._options.endpointing_ms is not None,
                from_finalize=False,
            )
        if self._open and frame_end - self._utt_start >= self._max_utterance:
            self._split(events, frame_end)
        if not self._open:
            self._idle(events, frame_end)

    def _idle(self, events: list[EngineEvent], now: int) -> None:
        """Between utterances: UtteranceEnd when due, and empty finals through long silence."""
        if (
            self._utterance_end_due
            and self._last_word_end is not None
            and self._utterance_end is not None
            and now / SAMPLE_RATE - self._last_word_end >= self._utterance_end
        ):
            events.append(UtteranceEnded(self._last_word_end))
            self._utterance_end_due = False
        if now - self._cursor >= self._silence_final:
            end = now - self._preroll
            if end > self._cursor:
                events.append(self._transcript(end, (), final=True))
                self._cursor = end
                self._floor = max(self._floor, end)

    def _split(self, events: list[EngineEvent], now: int) -> None:
        """End a long utterance at its quietest point in the later part of the window."""
        low = self._utt_start + self._max_utterance // 2
        high = now - _samples(0.3)
        first = max(low // self._frame, self._probs_origin)
        last = min(high // self._frame, self._probs_origin + len(self._probs) - 1)
        if last <= first:
            split = high
        else:
            window = np.asarray(
                self._probs[first - self._probs_origin : last - self._probs_origin + 1]
            )
            smooth = np.convolve(window, np.ones(3) / 3, mode="same")
            best = float(smooth.min())
            # the latest frame within a hair of the minimum: keeps the next window short
            choice = int(np.nonzero(smooth <= best + 0.02)[0][-1])
            split = (first + choice) * self._frame + self._frame // 2
        self._final(events, split, split, speech_final=False, from_finalize=False, keep_open=True)

    def _final(
        self,
        events: list[EngineEvent],
        window_end: int,
        audio_end: int,
        *,
        speech_final: bool,
        from_finalize: bool,
        keep_open: bool = False,
    ) -> None:
        words = self._decode(self._utt_start, audio_end, final=True)
        events.append(
            self._transcript(
                window_end,
                words,
                final=True,
                speech_final=speech_final,
                from_finalize=from_finalize,
            )
        )
        if words:
            self._last_word_end = words[-1].end
            self._utterance_end_due = self._utterance_end is not None
        self._cursor = window_end
        self._floor = audio_end
        self._last_interim = max(self._last_interim, window_end)
        self._interim_words = None
        if keep_open:
            self._utt_start = audio_end
        else:
            self._open = False

    def _maybe_interim(self, events: list[EngineEvent]) -> None:
        if (
            not self._options.interim_results
            or self._total - self._last_interim < self._interim_every
        ):
            return
        if self._open:
            if self._total - self._utt_start < self._min_interim:
                return
            words = self._interim_words
            if words is None or (
                self._speech_since_interim >= self._interim_new_speech and self._gate.speaking
            ):
                words = self._decode(self._utt_start, self._total, final=False)
                self._interim_words = words
                self._speech_since_interim = 0
            events.append(self._transcript(self._total, words, final=False))
        elif self._total > self._cursor:
            events.append(self._transcript(self._total, (), final=False))
        self._last_interim = self._total

    # ------------------------------------------------------------------ helpers

    def _decode(self, start: int, end: int, *, final: bool) -> tuple[WordOut, ...]:
        """Decode [start, end) and move the words onto the connection clock, in order and
        inside the window, since a decoder's timings can stray into the padding."""
        clip = self._buffer[max(0, start - self._origin) : max(0, end - self._origin)]
        if len(clip) < _samples(0.1):
            return ()
        words = self._decoder.decode(clip, final=final, language=self._options.language)
        offset = start / SAMPLE_RATE
        low = self._cursor / SAMPLE_RATE
        high = end / SAMPLE_RATE
        placed: list[WordOut] = []
        for w in words:
            begin = min(max(w.start + offset, low), high)
            finish = min(max(w.end + offset, begin), high)
            placed.append(WordOut(w.word, w.punctuated, begin, finish, w.confidence))
            low = begin
        return tuple(placed)

    def _transcript(
        self,
        window_end: int,
        words: Sequence[WordOut],
        *,
        final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> Transcript:
        return Transcript(
            start=self._cursor / SAMPLE_RATE,
            end=window_end / SAMPLE_RATE,
            words=tuple(words),
            is_final=final,
            speech_final=speech_final,
            from_finalize=from_finalize,
        )

    def _trim(self) -> None:
        """Drop audio no future decode can need: before the open utterance, or before the
        earliest point a new utterance's pre-roll could reach back to."""
        if self._open:
            keep = self._utt_start
        else:
            reach = self._preroll + (self._gate.min_on_frames + 2) * self._frame
            keep = max(self._floor, self._total - reach)
        keep = max(keep, self._origin)
        if keep - self._origin >= SAMPLE_RATE:
            self._buffer = self._buffer[keep - self._origin :].copy()
            self._origin = keep
        keep_frame = keep // self._frame
        if keep_frame - self._probs_origin >= 100:
            del self._probs[: keep_frame - self._probs_origin]
            self._probs_origin = keep_frame


# ---------------------------------------------------------------------- test engine

_NATO = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
)
_TEST_WORDS = _NATO.split()


class FakeDecoder:
    """Deterministic words: one per 0.3 s of loud audio, named from the NATO alphabet.

    `delay` makes every decode take that long (on the decoder thread), to prove the server
    stays responsive while a real model is busy. The counter makes consecutive words differ so
    tests can tell results apart.
    """

    def __init__(self, delay: float = 0.0, word_seconds: float = 0.3) -> None:
        self.delay = delay
        self.word_seconds = word_seconds
        self._names = itertools.cycle(_TEST_WORDS)
        self._lock = threading.Lock()
        self.calls = 0

    def decode(self, audio: Samples, *, final: bool, language: str | None) -> list[WordOut]:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        frame = SAMPLE_RATE // 50
        count = len(audio) // frame
        if not count:
            return []
        levels = np.sqrt(np.mean(audio[: count * frame].reshape(count, frame) ** 2, axis=1))
        loud = np.nonzero(levels > 0.01)[0]
        if not len(loud):
            return []
        first, last = loud[0] * frame / SAMPLE_RATE, (loud[-1] + 1) * frame / SAMPLE_RATE
        n = max(1, round((last - first) / self.word_seconds))
        step = (last - first) / n
        with self._lock:
            names = [next(self._names) for _ in range(n)]
        words = []
        for i, name in enumerate(names):
            punctuated = name.capitalize() if i == 0 else name
            if final and i == n - 1:
                punctuated += "."
            words.append(WordOut(name, punctuated, first + i * step, first + (i + 1) * step, 0.9))
        return words


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
        return SegmentingRecognizer(self.decoder, EnergyVad(), options, self.tuning)

    def close(self) -> None:
        return None
