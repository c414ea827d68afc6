"""Parse and validate the `/v1/listen` query string the way Deepgram's upgrade does.

The service refuses a bad query at the HTTP upgrade (400 with a `dg-error` header naming the
parameter) rather than after audio starts, so clients can show the reason before streaming. We do
the same, with the service's message shape (`Invalid 'utterance_end_ms' value of '999'.`).
Parameters we do not implement (diarize, keyterm, redact, ...) are accepted and ignored, as the
service ignores parameters it does not know, so a client configured for the cloud still connects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

# Every encoding the service names; only linear16 is decoded here, the rest get a clear 400.
KNOWN_ENCODINGS = frozenset(
    {
        "linear16",
        "linear32",
        "flac",
        "alaw",
        "mulaw",
        "amr-nb",
        "amr-wb",
        "opus",
        "ogg-opus",
        "speex",
        "g729",
    }
)
SUPPORTED_ENCODINGS = frozenset({"linear16"})
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
MAX_MULTICHANNEL = 8
"""Channels transcribed separately at most: each has its own recogniser and voice detector."""
MIN_UTTERANCE_END_MS = 1000
MAX_ENDPOINTING_MS = 60_000

# Languages Whisper knows (ISO 639-1, plus "haw", "yue"); BCP-47 tags are reduced to the
# primary subtag, so en-US and en-GB both decode as English.
_WHISPER_LANGUAGE_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw "
    "he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my "
    "ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt "
    "uk ur uz vi yi yo yue zh"
)
WHISPER_LANGUAGES = frozenset(_WHISPER_LANGUAGE_CODES.split())
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
_INT = re.compile(r"^[0-9]{1,9}$")


class QueryError(ValueError):
    """A refused query: `parameter` is the offending name, `message` the `dg-error` text."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class ListenParams:
    """The parts of the query the offline server acts on (everything else is tolerated)."""

    model: str | None = None
    language: str = "en"
    whisper_language: str | None = "en"  # None = detect (language=multi)
    encoding: str = "linear16"
    sample_rate: int = 16_000
    channels: int = 1
    multichannel: bool = False
    """Each channel transcribed on its own (results carry its `channel_index`); else mixed."""
    interim_results: bool = False
    endpointing_ms: int | None = 10  # None = endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    punctuate: bool = False
    smart_format: bool = False
    extra: tuple[tuple[str, str], ...] = field(default=())
    ignored: tuple[str, ...] = field(default=())

    @property
    def punctuated_transcript(self) -> bool:
        """smart_format implies punctuation, as on the service."""
        return self.punctuate or self.smart_format

    @property
    def bytes_per_frame(self) -> int:
        return 2 * self.channels


_HANDLED = frozenset(
    {
        "model",
        "language",
        "encoding",
        "sample_rate",
        "channels",
        "multichannel",
        "interim_results",
        "endpointing",
        "utterance_end_ms",
        "vad_events",
        "punctuate",
        "smart_format",
        "extra",
        "keywords",
    }
)


def _invalid(name: str, value: str) -> QueryError:
    return QueryError(name, f"Invalid '{name}' value of '{value}'.")


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _invalid(name, value)


def _int(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not _INT.match(text):
        raise _invalid(name, value)
    number = int(text)
    if not low <= number <= high:
        raise _invalid(name, value)
    return number


def parse_query(query: str) -> ListenParams:
    """Validate a raw query string; raises `QueryError` naming the first bad parameter."""
    values, extras, keywords, ignored = _collect(parse_qsl(query, keep_blank_values=True))
    model = values.get("model")
    if keywords and model is not None and model.lower().startswith("nova-3"):
        raise QueryError(
            "keywords", "Keywords are not supported for Nova-3. Please use `keyterm` instead."
        )
    language, whisper_language = _language(values)
    encoding, sample_rate, channels, multichannel = _audio_format(values)
    endpointing, utterance_end = _endpoints(values)
    return ListenParams(
        model=model,
        language=language,
        whisper_language=whisper_language,
        encoding=encoding,
        sample_rate=sample_rate,
        channels=channels,
        multichannel=multichannel,
        interim_results=_bool("interim_results", values.get("interim_results", "false")),
        endpointing_ms=endpointing,
        utterance_end_ms=utterance_end,
        vad_events=_bool("vad_events", values.get("vad_events", "false")),
        punctuate=_bool("punctuate", values.get("punctuate", "false")),
        smart_format=_bool("smart_format", values.get("smart_format", "false")),
        extra=tuple(extras),
        ignored=tuple(ignored),
    )


def _collect(
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, str], list[tuple[str, str]], bool, list[str]]:
    """(scalar values, extra pairs, whether keywords were given, names we do not handle)."""
    values: dict[str, str] = {}
    extras: list[tuple[str, str]] = []
    keywords = False
    ignored: list[str] = []
    for key, value in pairs:
        if key == "extra":
            name, sep, extra_value = value.partition(":")
            if not sep or not name:
                raise _invalid("extra", value)
            extras.append((name, extra_value))
        elif key == "keywords":
            keywords = True
        else:
            values[key] = value  # repeated scalar keys: the last one wins
            if key not in _HANDLED and key not in ignored:
                ignored.append(key)
    return values, extras, keywords, ignored


def _language(values: dict[str, str]) -> tuple[str, str | None]:
    """(the language as asked, Whisper's code for it or None for `multi`)."""
    language = values.get("language", "en").strip() or "en"
    if language.lower() == "multi":
        return language, None
    primary = language.split("-", 1)[0].lower()
    if not _BCP47.match(language) or primary not in WHISPER_LANGUAGES:
        raise _invalid("language", language)
    return language, primary


def _audio_format(values: dict[str, str]) -> tuple[str, int, int, bool]:
    """(encoding, sample rate, channels): raw linear16 only, declared exactly."""
    encoding = values.get("encoding")
    if encoding is None:
        raise QueryError(
            "encoding",
            "Missing 'encoding': this server takes raw audio only; "
            "send encoding=linear16 with sample_rate.",
        )
    encoding = encoding.strip().lower()
    if encoding not in KNOWN_ENCODINGS:
        raise _invalid("encoding", encoding)
    if encoding not in SUPPORTED_ENCODINGS:
        raise QueryError(
            "encoding",
            f"Unsupported 'encoding' value of '{encoding}': this server decodes linear16 only.",
        )
    if "sample_rate" not in values:
        raise QueryError(
            "sample_rate", "Missing 'sample_rate': it is required when 'encoding' is set."
        )
    sample_rate = _int("sample_rate", values["sample_rate"], MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    channels = _int("channels", values.get("channels", "1"), 1, MAX_CHANNELS)
    multichannel = "multichannel" in values and _bool("multichannel", values["multichannel"])
    if multichannel and channels > MAX_MULTICHANNEL:
        raise QueryError(
            "multichannel",
            f"Unsupported 'channels' value of '{channels}' with 'multichannel': this server "
            f"transcribes at most {MAX_MULTICHANNEL} channels separately.",
        )
    return encoding, sample_rate, channels, multichannel and channels > 1


def _endpoints(values: dict[str, str]) -> tuple[int | None, int | None]:
    """(endpointing in ms or None when off, utterance_end_ms or None)."""
    endpointing_text = values.get("endpointing", "10").strip().lower()
    if endpointing_text == "false":
        endpointing: int | None = None
    elif endpointing_text == "true":
        endpointing = 10
    else:
        endpointing = _int("endpointing", endpointing_text, 0, MAX_ENDPOINTING_MS)
    utterance_end: int | None = None
    if "utterance_end_ms" in values:
        raw = values["utterance_end_ms"]
        utterance_end = _int("utterance_end_ms", raw, 0, 10**9)
        if utterance_end < MIN_UTTERANCE_END_MS:
            raise _invalid("utterance_end_ms", raw)
    return endpointing, utterance_end
