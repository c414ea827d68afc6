"""Server messages of Deepgram's live `/v1/listen` API, parsed tolerantly and defensively.

The server's JSON has drifted over the years (optional fields added, docs printing
Python booleans, third-party servers speaking the protocol loosely), so the parser
never raises: anything it cannot use becomes an `Unknown` that says why. Values of
the wrong type fall back to a documented default instead of poisoning later
arithmetic (a NaN start time would make every comparison in the caption model false).

Nothing from a server is trusted (see `untrusted.py`). Every time must be a finite number
of seconds within a year; a Results, UtteranceEnd or SpeechStarted with one that is not
(1e308, -5, Infinity) is unusable as a whole, since acting on part of it could acknowledge
audio that was never transcribed. Counts and indexes are bounded, confidences clamped to
[0, 1], and every string is cleaned of control characters and the process's secrets
before anything else sees it. Frames over `MAX_TEXT` characters or nested deeper than JSON
allows here are refused before parsing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from captioner.core import untrusted

__all__ = [
    "ErrorMessage",
    "Metadata",
    "Results",
    "ServerMessage",
    "SpeechStarted",
    "Unknown",
    "UtteranceEnd",
    "Word",
    "parse_message",
]

RAW_LIMIT = 500
"""How much of an unusable message `Unknown.raw` keeps: enough to log, not to flood."""

MAX_TEXT = 1 << 20
"""The longest frame parsed (characters); the transport already refuses bigger ones."""
MAX_DEPTH = 64
"""Deeper nesting than any real message has is refused before `json.loads` sees it."""
MAX_WORDS = 20_000
MAX_CHANNELS = 1024
MAX_SPEAKER = 100_000


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times are seconds on the clock of the message it came in."""

    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str | None = None
    speaker: int | None = None
    language: str | None = None

    @property
    def display(self) -> str:
        """The form to show: punctuated and capitalised when the server provided it."""
        return self.punctuated_word or self.word


@dataclass(frozen=True, slots=True)
class Results:
    """A transcript of one window of audio: an interim hypothesis or a final."""

    channel: int
    channels: int
    start: float
    duration: float
    is_final: bool
    speech_final: bool
    from_finalize: bool
    transcript: str
    confidence: float
    words: tuple[Word, ...]
    request_id: str | None
    model_name: str | None

    @property
    def end(self) -> float:
        """End of the window: where the next final's window begins."""
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Metadata:
    """The session summary the server sends just before it closes."""

    request_id: str | None
    duration: float
    channels: int
    created: str | None
    sha256: str | None
    models: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    """No new word for `utterance_end_ms`; `last_word_end` < 0 means nothing to close."""

    channel: int
    channels: int
    last_word_end: float


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Voice activity began; a UI hint only, never text or a word time."""

    channel: int
    channels: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """An informational `Error`/`Warning` frame; the close frame stays authoritative."""

    kind: str
    description: str
    message: str
    variant: str
    code: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """Anything that is not a usable server message, kept for logging."""

    type: str | None
    raw: str
    reason: str


ServerMessage = Results | Metadata | UtteranceEnd | SpeechStarted | ErrorMessage | Unknown


class _Unusable(Exception):
    """A known message type whose required field cannot be used."""


def parse_message(text: str | bytes) -> ServerMessage:
    """Parse one frame from the server; never raises.

    Binary frames are reported as `Unknown`: the live API only ever sends text, so a
    binary frame means something other than Deepgram is answering.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        data = bytes(text)
        return Unknown(
            None,
            data[:RAW_LIMIT].decode("utf-8", "replace"),
            f"binary frame of {len(data)} bytes; the server only sends text",
        )
    if not isinstance(text, str):
        return Unknown(None, repr(text)[:RAW_LIMIT], f"not text: {type(text).__name__}")
    raw = untrusted.clean(text[:RAW_LIMIT], None)
    if len(text) > MAX_TEXT:
        return Unknown(None, raw, f"a text frame of {len(text)} characters")
    if _too_deep(text):
        return Unknown(None, raw, f"not JSON we read (nested deeper than {MAX_DEPTH} levels)")
    text = _valid_unicode(text)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return Unknown(None, raw, "not JSON")
    if not isinstance(obj, dict):
        return Unknown(None, raw, f"JSON {type(obj).__name__}, not an object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        return Unknown(None, raw, "no type field")
    kind = untrusted.clean(kind, 100)
    parser = _PARSERS.get(kind)
    if parser is None:
        return Unknown(kind, raw, f"unknown type {kind!r}")
    try:
        return parser(obj)
    except _Unusable as exc:
        return Unknown(kind, raw, str(exc))
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        return Unknown(kind, raw, f"unusable {kind}: {type(exc).__name__}")


def _too_deep(text: str) -> bool:
    """Whether brackets nest deeper than MAX_DEPTH (strings are not parsed: a bracket inside
    one counts too, which can only make a real message look deeper than it is, never less)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _valid_unicode(text: str) -> str:
    """Replace lone surrogates so later encoding (logs, files) cannot fail."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _int(value: Any) -> int | None:
    """A whole number from an int, an integral float or a digit string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = untrusted.number(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _bool(value: Any) -> bool | None:
    """A boolean from true/false, "true"/"false" (any case), 0/1 or "0"/"1"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return None


def _str(value: Any, limit: int | None = 2000) -> str | None:
    """Server text, cleaned (see `untrusted.clean`); None when it is not a string."""
    return untrusted.clean(value, limit) if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _channel_pair(value: Any) -> tuple[int, int]:
    """`[index, total]` with anything unusable read as mono channel 0."""
    if not isinstance(value, list | tuple) or not value:
        return 0, 1
    index = _int(value[0])
    if index is None or index < 0:
        index = 0
    if index >= MAX_CHANNELS:
        raise _Unusable(f"a channel index of {index}")
    total = _int(value[1]) if len(value) > 1 else None
    if total is None or total <= index or total > MAX_CHANNELS:
        total = index + 1
    return index, total


def _required_seconds(
    obj: dict[str, Any], key: str, kind: str, *, allow_negative_one: bool = False
) -> float:
    number = untrusted.seconds(obj.get(key), allow_negative_one=allow_negative_one)
    if number is None:
        raise _Unusable(f"{kind} without a usable {key!r} (a time in seconds)")
    return number


def _confidence(value: Any) -> float:
    number = untrusted.number(value)
    return 0.0 if number is None else min(1.0, max(0.0, number))


def _parse_word(value: Any) -> Word | None:
    """One word; None for a word without text or usable times. A time that is a number out
    of range (negative, beyond a year) makes the whole message unusable (raises)."""
    if not isinstance(value, dict):
        return None
    word = _str(value.get("word"), 200)
    start, end = untrusted.number(value.get("start")), untrusted.number(value.get("end"))
    if word is None or start is None or end is None:
        # mistyped or missing (a string, null, NaN): this word is unusable, the rest is not
        return None
    start, end = untrusted.seconds(start), untrusted.seconds(end)
    if start is None or end is None:
        raise _Unusable("a word whose start or end is out of range")
    speaker = _int(value.get("speaker"))
    return Word(
        word=word,
        start=start,
        end=max(start, end),
        confidence=_confidence(value.get("confidence")),
        punctuated_word=_str(value.get("punctuated_word"), 200) or None,
        speaker=speaker if speaker is not None and 0 <= speaker <= MAX_SPEAKER else None,
        language=_str(value.get("language"), 35),
    )


def _parse_results(obj: dict[str, Any]) -> Results:
    start = _required_seconds(obj, "start", "Results")
    duration = _required_seconds(obj, "duration", "Results")
    if start + duration > untrusted.MAX_SECONDS:
        raise _Unusable("Results whose window ends beyond any real stream")
    is_final = _bool(obj.get("is_final"))
    if is_final is None:
        raise _Unusable("Results without a usable 'is_final'")
    alternatives = _dict(obj.get("channel")).get("alternatives")
    best: dict[str, Any] = {}
    if isinstance(alternatives, list) and alternatives:
        best = _dict(alternatives[0])
    raw_words = best.get("words")
    words: tuple[Word, ...] = ()
    if isinstance(raw_words, list):
        if len(raw_words) > MAX_WORDS:
            raise _Unusable(f"Results with {len(raw_words)} words")
        words = tuple(w for w in map(_parse_word, raw_words) if w is not None)
    transcript = _str(best.get("transcript"), 100_000)
    if transcript is None:
        transcript = " ".join(w.display for w in words)
    metadata = _dict(obj.get("metadata"))
    channel, channels = _channel_pair(obj.get("channel_index"))
    return Results(
        channel=channel,
        channels=channels,
        start=start,
        duration=duration,
        is_final=is_final,
        speech_final=_bool(obj.get("speech_final")) or False,
        from_finalize=_bool(obj.get("from_finalize")) or False,
        transcript=transcript,
        confidence=_confidence(best.get("confidence")),
        words=words,
        request_id=_str(metadata.get("request_id"), 100),
        model_name=_str(_dict(metadata.get("model_info")).get("name"), 100),
    )


def _parse_metadata(obj: dict[str, Any]) -> Metadata:
    # duration and channels are required: consumers read "0 and 0" as "no audio was
    # decoded", so inventing zeros for missing fields would raise a false alarm.
    duration = _required_seconds(obj, "duration", "Metadata")
    channels = _int(obj.get("channels"))
    if channels is None or not 0 <= channels <= MAX_CHANNELS:
        raise _Unusable("Metadata without a usable 'channels'")
    models = obj.get("models")
    model_ids: tuple[str, ...] = ()
    if isinstance(models, list):
        model_ids = tuple(untrusted.clean(m, 100) for m in models[:16] if isinstance(m, str))
    return Metadata(
        request_id=_str(obj.get("request_id"), 100),
        duration=duration,
        channels=channels,
        created=_str(obj.get("created"), 100),
        sha256=_str(obj.get("sha256"), 100),
        models=model_ids,
    )


def _channel_of(obj: dict[str, Any]) -> tuple[int, int]:
    return _channel_pair(obj["channel"] if "channel" in obj else obj.get("channel_index"))


def _parse_utterance_end(obj: dict[str, Any]) -> UtteranceEnd:
    channel, channels = _channel_of(obj)
    last = _required_seconds(obj, "last_word_end", "UtteranceEnd", allow_negative_one=True)
    return UtteranceEnd(channel, channels, last)


def _parse_speech_started(obj: dict[str, Any]) -> SpeechStarted:
    channel, channels = _channel_of(obj)
    return SpeechStarted(channel, channels, _required_seconds(obj, "timestamp", "SpeechStarted"))


def _text_of(obj: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            return untrusted.clean(value, 500)
    return ""


def _parse_error(obj: dict[str, Any]) -> ErrorMessage:
    return ErrorMessage(
        kind=untrusted.clean(obj["type"], 50),
        description=_text_of(obj, "description", "err_msg"),
        message=_text_of(obj, "message"),
        variant=_text_of(obj, "variant"),
        code=_text_of(obj, "code", "err_code"),
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], ServerMessage]] = {
    "Results": _parse_results,
    "Metadata": _parse_metadata,
    "UtteranceEnd": _parse_utterance_end,
    "SpeechStarted": _parse_speech_started,
    "Error": _parse_error,
    "Warning": _parse_error,
}
