"""Build the JSON messages the server sends, in the shapes Deepgram's live API uses.

Key names and nesting follow docs/protocol.md ("Receiving") and the recorded fixtures, so any
Deepgram client (ours, the official SDKs) parses them unchanged. Times are seconds on the
connection's own audio clock, rounded to microseconds so that one final's `start + duration`
equals the next `start`.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

NET0001_REASON = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)
DATA0000_REASON = "DATA-0000"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

JSON = dict[str, Any]


@dataclass(frozen=True)
class ModelInfo:
    """What `metadata.model_info` reports; the UUID is stable per model, like the service's."""

    name: str
    version: str
    arch: str

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"captioner:{self.name}:{self.version}"))

    def as_json(self) -> JSON:
        return {"name": self.name, "version": self.version, "arch": self.arch}


@dataclass(frozen=True)
class WordOut:
    """One recognised word: `word` is the raw lowercase form, `punctuated` the display form."""

    word: str
    punctuated: str
    start: float
    end: float
    confidence: float
    language: str | None = None
    """Only when the language was detected (language=multi): the word's language."""


def seconds(value: float) -> float:
    return round(float(value), 6)


def iso_now() -> str:
    """Service-style timestamp: UTC, milliseconds, `Z` suffix."""
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def transcript_text(words: Sequence[WordOut], punctuated: bool) -> str:
    return " ".join(w.punctuated if punctuated else w.word for w in words)


def results(
    *,
    request_id: str,
    model: ModelInfo,
    start: float,
    end: float,
    words: Sequence[WordOut],
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    punctuate: bool,
    channel: int = 0,
    channels: int = 1,
    extra: Iterable[tuple[str, str]] = (),
) -> JSON:
    """A `Results` message for the window [start, end]."""
    start_s = seconds(start)
    confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
    alternative: JSON = {
        "transcript": transcript_text(words, punctuate),
        "confidence": round(confidence, 6),
        "words": [_word(w) for w in words],
    }
    spoken = list(dict.fromkeys(w.language for w in words if w.language))
    if spoken:  # as Deepgram's multilingual results: the languages heard, most used first
        spoken.sort(key=lambda code: -sum(1 for w in words if w.language == code))
        alternative["languages"] = spoken
    metadata: JSON = {
        "request_id": request_id,
        "model_info": model.as_json(),
        "model_uuid": model.uuid,
    }
    extra_map = dict(extra)
    if extra_map:
        metadata["extra"] = extra_map
    return {
        "type": "Results",
        "channel_index": [channel, channels],
        "duration": seconds(max(0.0, end - start_s)),
        "start": start_s,
        "is_final": is_final,
        "speech_final": speech_final,
        "channel": {"alternatives": [alternative]},
        "metadata": metadata,
        "from_finalize": from_finalize,
    }


def _word(w: WordOut) -> JSON:
    word: JSON = {
        "word": w.word,
        "start": seconds(w.start),
        "end": seconds(w.end),
        "confidence": round(w.confidence, 6),
        "punctuated_word": w.punctuated,
    }
    if w.language:
        word["language"] = w.language
    return word


def metadata(
    *,
    request_id: str,
    created: str,
    duration: float,
    channels: int,
    sha256: str,
    model: ModelInfo | None,
    extra: Iterable[tuple[str, str]] = (),
) -> JSON:
    """The end-of-session summary; `models`/`model_info` only when audio was processed."""
    message: JSON = {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256,
        "created": created,
        "duration": seconds(duration),
        "channels": channels,
    }
    if model is not None:
        message["models"] = [model.uuid]
        message["model_info"] = {model.uuid: model.as_json()}
    extra_map = dict(extra)
    if extra_map:
        message["extra"] = extra_map
    return message


def utterance_end(last_word_end: float, channel: int = 0, channels: int = 1) -> JSON:
    return {
        "type": "UtteranceEnd",
        "channel": [channel, channels],
        "last_word_end": seconds(last_word_end),
    }


def speech_started(timestamp: float, channel: int = 0, channels: int = 1) -> JSON:
    return {
        "type": "SpeechStarted",
        "channel": [channel, channels],
        "timestamp": seconds(timestamp),
    }


def error_body(err_code: str, err_msg: str, request_id: str) -> JSON:
    """The legacy error body shape the service uses for refused upgrades."""
    return {"err_code": err_code, "err_msg": err_msg, "request_id": request_id}
