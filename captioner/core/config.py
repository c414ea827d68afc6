"""Stream settings, their validation, and the `/v1/listen` URL they describe.

The query parameters are described in docs/protocol.md ("Connecting").

The server answers a bad combination with a bare HTTP 400 (or, seen from a browser,
an unexplained 1006), so every rule we know is checked here first and reported
against the setting a person has to change. The API key travels only in the
Authorization header: it is kept out of the URL and out of `repr()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, quote, urlencode, urlsplit, urlunsplit

__all__ = [
    "BUILT_PARAMS",
    "DEEPGRAM_EU_URL",
    "DEEPGRAM_URL",
    "LISTEN_PATH",
    "SettingError",
    "SettingsError",
    "StreamSettings",
    "redact",
]

DEEPGRAM_URL = "wss://api.deepgram.com/v1/listen"
DEEPGRAM_EU_URL = "wss://api.eu.deepgram.com/v1/listen"
LISTEN_PATH = "/v1/listen"

BUILT_PARAMS = frozenset(
    {
        "model",
        "language",
        "encoding",
        "sample_rate",
        "channels",
        "multichannel",
        "interim_results",
        "smart_format",
        "punctuate",
        "endpointing",
        "utterance_end_ms",
        "vad_events",
        "diarize",
        "profanity_filter",
        "keyterm",
        "keywords",
    }
)
"""Query keys the settings own; `extra_params` may not set them a second time."""

MAX_KEYTERMS = 100
MAX_KEYTERM_WORDS = 500
MAX_KEYWORDS = 100
SAMPLE_RATES = (8000, 192000)
MAX_CHANNELS = 20
CHUNK_MS = (20, 250)
MIN_UTTERANCE_END_MS = 1000

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_MODEL = re.compile(r"[A-Za-z0-9][\w.:/+-]*")
_BOOL_SETTINGS = (
    "interim_results",
    "smart_format",
    "vad_events",
    "diarize",
    "profanity_filter",
)


@dataclass(frozen=True, slots=True)
class SettingError:
    """One problem, named by the setting a person has to change."""

    setting: str
    reason: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.reason}"


class SettingsError(ValueError):
    """Settings that would be refused by the server, or make no sense."""

    def __init__(self, errors: Iterable[SettingError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid settings")


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Everything that shapes one live stream; defaults are the ones docs/protocol.md recommends.

    `punctuate` None and `endpointing` None mean "not sent" (the server's default
    applies); `endpointing=False` turns endpointing off.
    """

    url: str = DEEPGRAM_URL
    api_key: str | None = field(default=None, repr=False)
    model: str = "nova-3"
    language: str = "en"
    encoding: str = "linear16"
    sample_rate: int = 16000
    channels: int = 1
    multichannel: bool = False
    """Each channel transcribed on its own (`channels` inputs sent interleaved, e.g. both
    sides of a call); results name their channel."""
    interim_results: bool = True
    smart_format: bool = True
    punctuate: bool | None = None
    endpointing: int | Literal[False] | None = 300
    utterance_end_ms: int | None = 1000
    vad_events: bool = True
    diarize: bool = False
    profanity_filter: bool = False
    keyterms: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    chunk_ms: int = 100
    extra_params: tuple[tuple[str, str], ...] = ()

    @property
    def is_deepgram_cloud(self) -> bool:
        """Whether the URL points at Deepgram's hosted service, which needs a key and TLS."""
        host = _hostname(self.url)
        return host is not None and (host == "deepgram.com" or host.endswith(".deepgram.com"))

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame on the wire: 16-bit samples, one per channel."""
        return 2 * self.channels

    def auth_header(self) -> str | None:
        """The Authorization header value, or None to connect without one (self-hosted)."""
        if not self.api_key:
            return None
        return f"Token {self.api_key}"

    def errors(self) -> tuple[SettingError, ...]:
        """Every problem found, in settings order; empty when the stream can start."""
        found: list[SettingError] = []
        found.extend(self._url_errors())
        found.extend(self._key_errors())
        found.extend(self._format_errors())
        found.extend(self._feature_errors())
        found.extend(self._term_errors())
        found.extend(self._extra_errors())
        return tuple(found)

    def validate(self) -> None:
        """Raise SettingsError naming every problem; return quietly otherwise."""
        problems = self.errors()
        if problems:
            raise SettingsError(problems)

    def listen_url(self, *, check: bool = True) -> str:
        """The WebSocket URL with the full query, e.g. `...?model=nova-3&language=en&...`.

        Repeatable options become repeated keys, booleans `true`/`false`, numbers plain
        integers. `check=False` builds the URL even for invalid settings, for tests that
        need to see the server's own refusal.
        """
        if check:
            self.validate()
        parts = urlsplit(self.url.strip())
        path = parts.path.rstrip("/") or LISTEN_PATH
        query = urlencode(self.query_params(), doseq=True, quote_via=quote)
        return urlunsplit((parts.scheme.lower(), parts.netloc, path, query, ""))

    def query_params(self) -> list[tuple[str, str]]:
        """The query as ordered (key, value) pairs, before encoding."""
        params: list[tuple[str, str]] = [
            ("model", self.model),
            ("language", self.language),
            ("encoding", self.encoding),
            ("sample_rate", _number(self.sample_rate)),
            ("channels", _number(self.channels)),
        ]
        if self.multichannel:
            params.append(("multichannel", "true"))
        params += [
            ("interim_results", _flag(self.interim_results)),
            ("smart_format", _flag(self.smart_format)),
        ]
        if self.punctuate is not None:
            params.append(("punctuate", _flag(self.punctuate)))
        if self.endpointing is False:
            params.append(("endpointing", "false"))
        elif self.endpointing is not None:
            params.append(("endpointing", _number(self.endpointing)))
        if self.utterance_end_ms is not None:
            params.append(("utterance_end_ms", _number(self.utterance_end_ms)))
        params.append(("vad_events", _flag(self.vad_events)))
        if self.diarize:
            params.append(("diarize", "true"))
        if self.profanity_filter:
            params.append(("profanity_filter", "true"))
        params.extend(("keyterm", term) for term in self.keyterms)
        params.extend(("keywords", word) for word in self.keywords)
        params.extend((str(key), str(value)) for key, value in self.extra_params)
        return params

    def _url_errors(self) -> list[SettingError]:
        def bad(reason: str) -> list[SettingError]:
            return [SettingError("url", reason)]

        if not isinstance(self.url, str) or not self.url.strip():
            return bad("the endpoint URL is empty")
        try:
            parts = urlsplit(self.url.strip())
            port = parts.port
        except ValueError as exc:
            return bad(f"not a valid URL ({exc})")
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            secure = "wss" if scheme == "https" else "ws"
            return bad(
                f"live streaming needs a WebSocket URL: use {secure}:// instead of {scheme}://"
            )
        if scheme not in ("ws", "wss"):
            return bad(f"the URL must start with wss:// or ws://, e.g. {DEEPGRAM_URL}")
        if not parts.hostname:
            return bad("the URL has no host name")
        if parts.username is not None or parts.password is not None:
            return bad("do not put credentials in the URL; enter the API key in its own setting")
        if parts.query:
            return bad("the URL must not carry a query string; the settings build it")
        if parts.fragment:
            return bad("the URL must not carry a #fragment")
        if port == 0:
            return bad("port 0 is not a port a server listens on")
        path = parts.path.rstrip("/")
        if path.endswith("/v2/listen"):
            return bad("/v2/listen is Flux, a different protocol; use /v1/listen")
        if path and not path.endswith(LISTEN_PATH):
            return bad(f"the path must be {LISTEN_PATH}, not {parts.path}")
        if self.is_deepgram_cloud and scheme != "wss":
            return bad("Deepgram's cloud needs wss:// (ws:// would send the API key unencrypted)")
        return []

    def _key_errors(self) -> list[SettingError]:
        key = self.api_key
        if key is None or key == "":
            if self.is_deepgram_cloud:
                return [SettingError("api_key", "an API key is required for Deepgram's cloud")]
            return []
        if not isinstance(key, str):
            return [SettingError("api_key", "the API key must be text")]
        if any(c.isspace() for c in key):
            return [
                SettingError(
                    "api_key",
                    "the API key contains spaces or line breaks; paste it again without them",
                )
            ]
        if not key.isascii() or not key.isprintable():
            return [SettingError("api_key", "the API key contains characters a key never has")]
        return []

    def _format_errors(self) -> list[SettingError]:
        found: list[SettingError] = []
        model = self.model
        if not isinstance(model, str) or not _MODEL.fullmatch(model):
            found.append(SettingError("model", "enter a model name such as nova-3"))
        elif model.lower().startswith("flux"):
            found.append(
                SettingError(
                    "model", "Flux models speak a different protocol (/v2/listen); use nova-3"
                )
            )
        language = self.language
        if not isinstance(language, str) or not (
            language == "multi" or _LANGUAGE.fullmatch(language)
        ):
            found.append(
                SettingError(
                    "language", 'use a language code such as "en", "en-US" or "de", or "multi"'
                )
            )
        if self.encoding != "linear16":
            found.append(
                SettingError("encoding", "only linear16 is supported: it is what Captioner sends")
            )
        if not _is_int(self.sample_rate) or not (
            SAMPLE_RATES[0] <= self.sample_rate <= SAMPLE_RATES[1]
        ):
            found.append(
                SettingError(
                    "sample_rate",
                    f"must be a whole number of Hz from {SAMPLE_RATES[0]} to {SAMPLE_RATES[1]}",
                )
            )
        if not _is_int(self.channels) or not 1 <= self.channels <= MAX_CHANNELS:
            found.append(SettingError("channels", f"must be from 1 to {MAX_CHANNELS}"))
        elif self.multichannel and self.channels < 2:
            found.append(SettingError("channels", "multichannel needs at least two channels"))
        elif not self.multichannel and self.channels != 1:
            found.append(
                SettingError(
                    "channels",
                    "more than one channel is sent only with multichannel (each input on its "
                    "own channel); one input is sent as mono",
                )
            )
        if not _is_int(self.chunk_ms) or not CHUNK_MS[0] <= self.chunk_ms <= CHUNK_MS[1]:
            found.append(
                SettingError("chunk_ms", f"must be from {CHUNK_MS[0]} to {CHUNK_MS[1]} ms")
            )
        return found

    def _feature_errors(self) -> list[SettingError]:
        found = [
            SettingError(name, "must be true or false")
            for name in _BOOL_SETTINGS
            if not isinstance(getattr(self, name), bool)
        ]
        if self.punctuate is not None and not isinstance(self.punctuate, bool):
            found.append(SettingError("punctuate", "must be true, false or not set"))
        endpointing = self.endpointing
        off_or_ms = endpointing is None or endpointing is False or _is_int(endpointing)
        if not off_or_ms or (endpointing is not None and endpointing < 0):
            found.append(
                SettingError("endpointing", "must be a whole number of ms (0 or more) or off")
            )
        utterance_end = self.utterance_end_ms
        if utterance_end is not None:
            if not _is_int(utterance_end) or utterance_end < MIN_UTTERANCE_END_MS:
                found.append(
                    SettingError(
                        "utterance_end_ms",
                        f"must be a whole number of ms, at least {MIN_UTTERANCE_END_MS}",
                    )
                )
            elif self.interim_results is not True:
                found.append(SettingError("utterance_end_ms", "needs interim_results to be on"))
        return found

    def _term_errors(self) -> list[SettingError]:
        found: list[SettingError] = []
        nova3 = isinstance(self.model, str) and self.model.lower().startswith("nova-3")
        keyterms, keywords = self.keyterms, self.keywords
        if not _is_text_tuple(keyterms):
            found.append(SettingError("keyterms", "must be a list of terms"))
        elif keyterms:
            if not nova3:
                found.append(SettingError("keyterms", "key terms work only with nova-3 models"))
            if len(keyterms) > MAX_KEYTERMS:
                found.append(SettingError("keyterms", f"at most {MAX_KEYTERMS} key terms"))
            if any(not term.strip() for term in keyterms):
                found.append(SettingError("keyterms", "a key term is empty"))
            if sum(len(term.split()) for term in keyterms) > MAX_KEYTERM_WORDS:
                found.append(
                    SettingError("keyterms", "key terms exceed the server's limit of 500 tokens")
                )
        if not _is_text_tuple(keywords):
            found.append(SettingError("keywords", "must be a list of words"))
        elif keywords:
            if nova3:
                found.append(
                    SettingError("keywords", "nova-3 models do not accept keywords; use keyterms")
                )
            if len(keywords) > MAX_KEYWORDS:
                found.append(SettingError("keywords", f"at most {MAX_KEYWORDS} keywords"))
            if any(not word.strip() for word in keywords):
                found.append(SettingError("keywords", "a keyword is empty"))
        return found

    def _extra_errors(self) -> list[SettingError]:
        found: list[SettingError] = []
        for pair in self.extra_params:
            if not (
                isinstance(pair, tuple)
                and len(pair) == 2
                and isinstance(pair[0], str)
                and isinstance(pair[1], str)
            ):
                found.append(SettingError("extra_params", f"{pair!r} is not a (key, value) pair"))
                continue
            key, value = pair
            if not key.strip():
                found.append(SettingError("extra_params", "a parameter has no name"))
            elif key in BUILT_PARAMS:
                found.append(
                    SettingError("extra_params", f"{key!r} is set by its own setting, not here")
                )
            if self.api_key and self.api_key in value:
                found.append(
                    SettingError("extra_params", "the API key must never be sent in the URL")
                )
        return found


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret replaced by "***", longest first.

    Longest first, so a secret that contains another is hidden whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _hostname(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        parts: SplitResult = urlsplit(url.strip())
        return parts.hostname
    except ValueError:
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text_tuple(value: object) -> bool:
    return isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _number(value: int) -> str:
    return str(int(value))
