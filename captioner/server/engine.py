"""Speech engines: the interfaces between the server, the streaming policy and a model.

An `Engine` is loaded once per server and hands out one `Recognizer` per connection. A recogniser
is incremental and synchronous: `feed()` takes 16 kHz mono float32 samples and returns whatever
events became known (transcripts, speech onsets, utterance ends); `finalize()` flushes the open
phrase. The server calls these on its decoder thread, never on the event loop.

The streaming logic (where phrases start and end, which words have settled, what context a
decode gets) does not depend on the model, so it lives in `streaming.StreamingRecognizer`,
which drives any `Decoder`: a function from an audio clip, the text before it and a forced
prefix, to words. `WhisperEngine` (in `whisper.py`) plugs faster-whisper in; `FakeEngine` (in
`fake_engine.py`) plugs in a deterministic decoder for tests that must not depend on a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from captioner.server.vad import Samples
from captioner.server.wire import ModelInfo, WordOut


@dataclass(frozen=True)
class RecognizerOptions:
    """Per-connection settings taken from the query string."""

    language: str | None = "en"  # None: detect per phrase
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


@dataclass(frozen=True)
class Hypothesis:
    """What one decode heard after its forced prefix; times are seconds from the clip start."""

    words: tuple[WordOut, ...]
    language: str | None = None  # the language decoded (detected when none was asked for)
    language_probability: float = 1.0  # how sure the detection was (1.0 when asked for)


class Decoder(Protocol):
    """Turns one clip into words.

    `prompt` is text said before the clip (Whisper's previous-text prompt). `prefix` is the
    text of the clip's first words, already settled: the decoder must start its transcript
    with it and return only the words after it. `final` asks for the most accurate decode
    (an endpoint), otherwise the fastest (the agreement decodes between endpoints).
    """

    def decode(
        self,
        audio: Samples,
        *,
        final: bool,
        language: str | None,
        prompt: str = "",
        prefix: str = "",
    ) -> Hypothesis: ...
