"""A scripted emulator of Deepgram's live speech-to-text WebSocket (``/v1/listen``) for tests.

It is a fake at the network boundary: a real WebSocket server on ``127.0.0.1`` (port 0) that
behaves like ``wss://api.deepgram.com/v1/listen`` as ``docs/protocol.md`` describes it. It
deliberately imports only the standard library, ``websockets`` and ``numpy`` (never the
``captioner`` package), so it stays an independent check of our client.

Usage::

    async with DeepgramEmulator(Script(expected_key="k", inactivity_timeout=1.0)) as emu:
        async with connect(emu.url + "?encoding=linear16&sample_rate=16000",
                           additional_headers={"Authorization": "Token k"}) as ws:
            ...
        rec = emu.connections[0]          # ConnectionRecord, one per upgrade attempt
        assert rec.status == 101 and rec.control_types == ["CloseStream"]

Script options (a mutable dataclass; ``Accept(**changes)`` overrides them per attempt)
--------------------------------------------------------------------------------------
Handshake:
  ``expected_key``      API key accepted with ``Authorization: Token <key>`` (scheme
                        case-insensitive) or the ``token, <key>`` subprotocol. ``None``: any
                        non-empty key. Missing/wrong credentials -> 401 ``INVALID_AUTH``.
  ``expected_tokens``   JWTs accepted with ``Bearer`` / the ``bearer`` subprotocol. ``None``: any
                        token except the API key itself ("Bearer <api key>" fails as in prod).
  ``validate_query``    Query checks of the real service (400 ``INVALID_QUERY_PARAMETER`` with
                        ``dg-error`` = ``err_msg``): ``utterance_end_ms`` integer >= 1000,
                        ``keywords`` with ``nova-3*``, non-BCP-47 ``language``, ``encoding``
                        without ``sample_rate``, unknown ``encoding``, booleans other than
                        ``true``/``false``, non-decimal integers, Flux models, ``diarize_model``
                        other than v1/latest, keyterms over 500 tokens. Wrong path -> 404.
  ``handshakes``        Per-attempt plans, attempt ``i`` uses ``handshakes[i]``:
                        ``Accept(validate=True, **script_changes)``, ``Refuse(status, ...)``,
                        ``Hang()`` (TCP accepted, upgrade never answered).
  ``handshake_hook``    ``f(record) -> plan | None`` for attempts past the list (e.g. "503 for
                        the first 2 s"). Default plan: ``Accept()``.
  ``close_timeout``     Seconds the server waits for the client's close frame (default 2).
After the 101 (per connection):
  ``inactivity_timeout``  NET-0001 timer (default 10 s, ``None`` = off), reset by any text or
                        binary frame but not by pings. Expiry: ``Metadata``, then close 1011
                        with ``NET0001_REASON``.
  ``require_audio_before_keepalive``  Text frames don't reset the timer until audio arrived.
  ``generate``          Transcripts generated from audio byte counts (default: on unless a
                        ``timeline`` is given). Audio clock = bytes / (bytes per sample *
                        sample_rate * channels), 0 at the start of every connection.
  ``interim_every`` / ``final_every``  Seconds of audio between interim ``Results`` (only with
                        ``interim_results=true``) and finals (1.0 / 2.0). Windows are
                        contiguous; a final replaces an interim due at the same time.
  ``words_per_second``  Word slots per second of audio (2.0); slot k spans
                        [k/wps, (k+1)/wps), its word [start+5 %, start+85 %] of the slot.
  ``words``             ``None``: counting words "one", "two", ... (see ``number_word``);
                        a sequence of strings (no more words once exhausted); or a callable
                        ``f(WordSlot) -> str | None``. Restarted for every connection.
  ``speech_final_every``  Every Nth final with words is ``speech_final`` (2; 0 = never); an
                        empty final after words is ``speech_final`` too (endpoint on silence).
  ``silence_is_all_zero``  A linear16 slot whose samples are all zero yields no word.
  ``timeline``          Scripted steps: ``AfterAudio(seconds, send)``, ``OnControl(type, send)``,
                        ``Wait(seconds)``, ``SendText``, ``SendBinary``, ``Close(code, reason,
                        metadata=False)``, ``EndStream()``, ``Drop()``, ``Stall(on)``.
  ``strict_frames``     A binary frame whose length is not a multiple of bytes-per-sample *
                        channels closes 1008 ``DATA-0000`` (always recorded as a violation).
  ``reject_headerless_audio``  Without ``encoding``, audio lacking a container header
                        (RIFF/Ogg/FLAC/MP3/WebM) closes 1008 ``DATA-0000`` (default on).
  ``decode_fail_after`` / ``close_after_audio`` (seconds, code, reason) / ``drop_after_audio``
  / ``stall_after_audio`` / ``end_after_audio`` / ``deaf_after_audio``  Faults fired once
                        when that much audio has arrived on a connection (DATA-0000; any close;
                        TCP abort; stop pongs and sends; unasked flush + ``Metadata`` + 1000;
                        stop reading the socket, so the client's writes back up).
  ``reply_delay``       Every server action of a connection (messages, closes and drops it
                        decides) is delayed by this many seconds; receiving is unaffected.
Hostile server:
  ``response_headers``  Extra headers on the 101, added even when one of that name exists
                        (a duplicated ``dg-request-id``, as a proxy may send).
  ``on_close_stream``   What ``CloseStream`` gets: ``flush`` (finals, Metadata, 1000: the
                        service), ``close-1000`` (1000 without flushing or Metadata),
                        ``close-1011``, ``drop`` (TCP reset) or ``ignore`` (no answer at all).
  Redirects are ``Refuse(302, headers=(("Location", url),))``; junk and escape sequences are
  ``SendText`` steps or ``send_all``.

Control messages: ``KeepAlive`` -> nothing; ``Finalize`` -> the open window as a final with
``from_finalize: true`` (nothing if no audio is pending); ``CloseStream`` or an empty binary
frame -> flush (``from_finalize: true``), ``Metadata``, close 1000. Control JSON in a binary
frame, malformed/unknown text messages and audio after ``CloseStream`` are recorded in
``ConnectionRecord.violations`` and the session continues.

Emulator methods (act on every open connection): ``await close_all(code, reason)`` (now,
bypassing ``reply_delay``), ``drop_all()`` (TCP abort, client sees 1006), ``stall(on)`` (no
pongs, nothing sent; frames are still read and recorded), ``end_stream_all()``,
``send_all(message)``, ``set_reply_delay(seconds)``, ``release_hangs()``,
``await wait_for(predicate, within)``, ``await wait_idle()``. Attributes: ``url``, ``connections``,
``open_connections``, ``max_concurrent`` (most accepted sockets open at once, counted from the
101 until the server saw the TCP connection end).

Notes: a word is emitted only once its whole span was received (a word cut by CloseStream is
lost); ``from_finalize`` finals close the utterance (``speech_final: true`` when it has words,
as in the recorded fixture); Finalize's optional ``channel`` is ignored (all channels flush);
faults fire after the Results generated by the same frame; ``Metadata.channels`` is 0 when no
audio was decoded; a TCP connection that never sends an upgrade request is not recorded; a
record's close fields are final once ``wait_idle()`` returned (or the emulator exited).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import json
import math
import re
import time
import uuid
import weakref
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeAlias
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event, State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

__all__ = [
    "DATA0000_REASON",
    "NET0000_REASON",
    "NET0001_REASON",
    "Accept",
    "AfterAudio",
    "Close",
    "ConnectionRecord",
    "DeepgramEmulator",
    "Drop",
    "EndStream",
    "Frame",
    "HandshakePlan",
    "Hang",
    "OnControl",
    "Refuse",
    "Script",
    "SendBinary",
    "SendText",
    "Stall",
    "Step",
    "Wait",
    "WordSlot",
    "counting_words",
    "number_word",
]

NET0001_REASON = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)
NET0000_REASON = (
    "Deepgram did not provide a response message within the timeout window. "
    "See https://dpgr.am/net0000"
)
DATA0000_REASON = "DATA-0000"

MODEL_VERSION = "2025-04-17.21547"
_EPS = 1e-9

# ----------------------------------------------------------------------------------------------
# Counting words


_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_word(n: int) -> str:
    """English words for ``n`` (0 <= n < 10**9) as one hyphenated token: 21 -> "twenty-one"."""
    if n < 0 or n >= 10**9:
        raise ValueError(f"number_word: {n} out of range")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_word(head)}-{name}" + (f"-{number_word(rest)}" if rest else "")
    raise AssertionError("unreachable")


def counting_words(count: int, start: int = 1) -> list[str]:
    """The default word stream: ``counting_words(3) == ["one", "two", "three"]``."""
    return [number_word(i) for i in range(start, start + count)]


# ----------------------------------------------------------------------------------------------
# Recorded data


FrameKind: TypeAlias = Literal["text", "binary"]


@dataclass(frozen=True)
class Frame:
    """One WebSocket data message received (or sent) by the emulator."""

    kind: FrameKind
    size: int  # payload bytes (UTF-8 bytes for text)
    data: bytes | str
    t: float  # time.monotonic() at arrival (received) or when written (sent)

    @property
    def text(self) -> str:
        return self.data if isinstance(self.data, str) else self.data.decode("utf-8", "replace")

    def json(self) -> Any:
        """Parsed JSON, or None when the payload isn't JSON."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


@dataclass
class ConnectionRecord:
    """Everything the emulator saw and did for one upgrade attempt (accepted or not)."""

    index: int  # 0-based attempt number
    attempt_at: float  # time.monotonic() when the upgrade request arrived
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # request headers, lowercased names (repeats joined by ", ")
    request_id: str
    plan: str = "accept"  # "accept", "refuse", "hang" or "invalid" (failed validation)
    subprotocols: list[str] = field(default_factory=list)  # offered by the client
    auth_scheme: str | None = None  # "token" / "bearer" (lowercase) if any credential
    auth_via: str | None = None  # "header" / "subprotocol"
    status: int | None = None  # HTTP status answered; None = never answered (Hang)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    opened_at: float | None = None  # 101 sent and session started
    closed_at: float | None = None  # TCP connection gone (or refusal sent)
    frames: list[Frame] = field(default_factory=list)  # received data messages
    sent: list[Frame] = field(default_factory=list)  # data messages written to the client
    pings: list[float] = field(default_factory=list)  # arrival times of WebSocket pings
    violations: list[str] = field(default_factory=list)
    close_sent: tuple[int, str] | None = None
    close_received: tuple[int, str] | None = None
    dropped: bool = False  # we aborted TCP without a close frame
    bytes_per_second: float = 32000.0  # audio clock of this connection

    # --- helpers -----------------------------------------------------------------------------

    @property
    def accepted(self) -> bool:
        return self.status == 101

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self.closed_at is None

    @property
    def binary_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.kind == "binary"]

    @property
    def text_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.kind == "text"]

    @property
    def audio_bytes(self) -> bytes:
        """All non-empty binary payloads received, concatenated."""
        return b"".join(f.data for f in self.frames if isinstance(f.data, bytes))

    @property
    def audio_seconds(self) -> float:
        return len(self.audio_bytes) / self.bytes_per_second

    @property
    def text_messages(self) -> list[Any]:
        """Parsed JSON of every received text frame (None where it wasn't JSON)."""
        return [f.json() for f in self.text_frames]

    @property
    def control_types(self) -> list[str]:
        """``type`` of every received text JSON object, in order."""
        return [
            m["type"]
            for m in self.text_messages
            if isinstance(m, dict) and isinstance(m.get("type"), str)
        ]

    @property
    def sent_messages(self) -> list[Any]:
        """Parsed JSON of the text messages the emulator sent (None where not JSON)."""
        return [f.json() for f in self.sent if f.kind == "text"]

    @property
    def sent_types(self) -> list[str]:
        return [m["type"] for m in self.sent_messages if isinstance(m, dict) and "type" in m]

    @property
    def close_code(self) -> int | None:
        """Close code sent by us, else received; 1006 if an open session ended without one."""
        if self.close_sent is not None:
            return self.close_sent[0]
        if self.close_received is not None:
            return self.close_received[0]
        if self.opened_at is not None and self.closed_at is not None:
            return 1006
        return None

    @property
    def close_reason(self) -> str | None:
        if self.close_sent is not None:
            return self.close_sent[1]
        if self.close_received is not None:
            return self.close_received[1]
        return None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class WordSlot:
    """What a ``words`` callable is asked about: one word slot of one channel."""

    connection: int
    channel: int
    index: int  # slot number on this connection (0-based)
    start: float
    end: float
    audio: bytes  # this channel's samples for [start, end) (all channels when not multichannel)
    silent: bool  # all-zero linear16 samples


WordSource: TypeAlias = Sequence[str] | Callable[[WordSlot], str | None] | None

# ----------------------------------------------------------------------------------------------
# Timeline steps and handshake plans

Sendable: TypeAlias = str | bytes | Sequence[str | bytes]


@dataclass(frozen=True)
class AfterAudio:
    """Wait until this connection received ``seconds`` of audio, then send ``send``."""

    seconds: float
    send: Sendable = ()


@dataclass(frozen=True)
class OnControl:
    """Wait for the next (not yet consumed) control message of ``type``, then send ``send``.

    Runs before the emulator's own reaction, so ``OnControl("CloseStream", send=...)`` goes out
    before the ``Metadata`` and close 1000."""

    type: str
    send: Sendable = ()


@dataclass(frozen=True)
class Wait:
    """Wall-clock pause of the timeline."""

    seconds: float


@dataclass(frozen=True)
class SendText:
    text: str


@dataclass(frozen=True)
class SendBinary:
    data: bytes


@dataclass(frozen=True)
class Close:
    code: int
    reason: str = ""
    metadata: bool = False  # send Metadata first


@dataclass(frozen=True)
class EndStream:
    """As if the client sent CloseStream: flush, Metadata, close 1000."""


@dataclass(frozen=True)
class Drop:
    """Abort the TCP connection without a close frame."""


@dataclass(frozen=True)
class Stall:
    """Stop (``on=True``) or resume answering pings and sending."""

    on: bool = True


Step: TypeAlias = (
    AfterAudio | OnControl | Wait | SendText | SendBinary | Close | EndStream | Drop | Stall
)


class Accept:
    """Answer 101 (after the usual auth/query validation unless ``validate=False``).

    Keyword arguments are ``Script`` fields to change for this connection only, e.g.
    ``Accept(drop_after_audio=2.0)`` or ``Accept(timeline=[...])``."""

    def __init__(self, *, validate: bool = True, **changes: Any) -> None:
        unknown = set(changes) - {f.name for f in dataclasses.fields(Script)}
        if unknown:
            raise TypeError(f"Accept: unknown Script fields {sorted(unknown)}")
        self.validate = validate
        self.changes: dict[str, Any] = changes

    def __repr__(self) -> str:
        args = [f"validate={self.validate}"] if not self.validate else []
        args += [f"{k}={v!r}" for k, v in self.changes.items()]
        return f"Accept({', '.join(args)})"


@dataclass(frozen=True)
class Refuse:
    """Answer an HTTP error instead of upgrading.

    Body is ``{"err_code","err_msg","request_id"}`` (defaults per status, e.g. 401
    ``INVALID_AUTH``/"Invalid credentials."), ``dg-error`` = ``err_msg`` unless ``dg_error`` is
    given ("" omits it), ``body`` replaces the JSON body verbatim (text/plain)."""

    status: int
    retry_after: float | None = None
    err_code: str | None = None
    err_msg: str | None = None
    dg_error: str | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Hang:
    """Accept TCP, read the upgrade request, never answer (until the client gives up, the
    emulator exits, or ``release_hangs()`` -> 503)."""


HandshakePlan: TypeAlias = Accept | Refuse | Hang


_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_QUERY_PARAMETER", "Bad Request"),
    401: ("INVALID_AUTH", "Invalid credentials."),
    402: (
        "ASR_PAYMENT_REQUIRED",
        "Project does not have enough credits for an ASR request and does not have an "
        "overage agreement.",
    ),
    403: ("INSUFFICIENT_PERMISSIONS", "Project does not have access to the requested model."),
    404: ("NOT_FOUND", "Not Found"),
    405: ("METHOD_NOT_ALLOWED", "Method Not Allowed"),
    408: ("SLOW_UPLOAD", "Request Timeout"),
    413: ("PAYLOAD_TOO_LARGE", "Payload Too Large"),
    414: ("URI_TOO_LONG", "URI Too Long"),
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please try again later"),
    500: ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
    502: ("BAD_GATEWAY", "Bad Gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable"),
    504: ("GATEWAY_TIMEOUT", "Gateway Timeout"),
}


# ----------------------------------------------------------------------------------------------
# Script


@dataclass
class Script:
    """All emulator options; see the module docstring."""

    # handshake
    expected_key: str | None = None
    expected_tokens: Collection[str] | None = None
    validate_query: bool = True
    handshakes: Sequence[HandshakePlan] = ()
    handshake_hook: Callable[[ConnectionRecord], HandshakePlan | None] | None = None
    close_timeout: float = 2.0
    # inactivity
    inactivity_timeout: float | None = 10.0
    require_audio_before_keepalive: bool = False
    # generated transcripts
    generate: bool | None = None
    interim_every: float = 1.0
    final_every: float = 2.0
    words_per_second: float = 2.0
    words: WordSource = None
    spoken_language: str = "en"
    """With language=multi, the language every word is tagged with (as Deepgram's
    multilingual results do)."""
    speech_final_every: int = 2
    silence_is_all_zero: bool = True
    # scripted timeline
    timeline: Sequence[Step] | None = None
    # audio validation
    strict_frames: bool = False
    reject_headerless_audio: bool = True
    decode_fail_after: float | None = None
    # faults
    close_after_audio: tuple[float, int, str] | None = None
    drop_after_audio: float | None = None
    stall_after_audio: float | None = None
    end_after_audio: float | None = None
    deaf_after_audio: float | None = None
    reply_delay: float = 0.0
    # hostile server
    response_headers: Sequence[tuple[str, str]] = ()
    on_close_stream: Literal["flush", "drop", "close-1011", "ignore", "close-1000"] = "flush"


# ----------------------------------------------------------------------------------------------
# Upgrade validation

_BOOL_PARAMS = (
    *("interim_results", "multichannel", "vad_events", "punctuate", "smart_format", "no_delay"),
    *("numerals", "profanity_filter", "filler_words", "dictation", "diarize", "mip_opt_out"),
    "detect_entities",
)
_INT_PARAMS = ("sample_rate", "channels", "utterance_end_ms")
_ENCODINGS = frozenset(
    ("linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus")
) | {"speex", "g729"}
_REDACT = frozenset(("true", "false", "numbers", "pci", "aggressive_numbers", "ssn"))
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_DIGITS = re.compile(r"^[0-9]+$")


def _invalid(msg: str) -> Refuse:
    return Refuse(400, err_code="INVALID_QUERY_PARAMETER", err_msg=msg)


def _check_query(record: ConnectionRecord) -> Refuse | None:
    q = record.query

    def bad(name: str, value: str) -> Refuse:
        return _invalid(f"Invalid '{name}' value of '{value}'.")

    for name in _BOOL_PARAMS:
        for value in q.get(name, []):
            if value not in ("true", "false"):
                return bad(name, value)
    for name in _INT_PARAMS:
        for value in q.get(name, []):
            if not _DIGITS.match(value) or int(value) == 0:
                return bad(name, value)
    for value in q.get("endpointing", []):
        if value not in ("true", "false") and not _DIGITS.match(value):
            return bad("endpointing", value)
    for value in q.get("utterance_end_ms", []):
        if int(value) < 1000:
            return bad("utterance_end_ms", value)
    encoding = record.param("encoding")
    if encoding is not None:
        if encoding not in _ENCODINGS:
            return bad("encoding", encoding)
        if record.param("sample_rate") is None:
            return _invalid("Missing 'sample_rate': it is required when 'encoding' is set.")
    for value in q.get("language", []):
        if value != "multi" and not _BCP47.match(value):
            return bad("language", value)
    for value in q.get("redact", []):
        if value not in _REDACT:
            return bad("redact", value)
    for value in q.get("diarize_model", []):
        if value not in ("v1", "latest"):
            return bad("diarize_model", value)
    model = (record.param("model") or "").lower()
    if model.startswith("flux"):
        return Refuse(
            400,
            err_code="V2_MODEL_ON_V1_LISTEN_ENDPOINT",
            err_msg=f"Model '{model}' is only available on /v2/listen.",
        )
    if q.get("keywords") and model.startswith("nova-3"):
        return _invalid("Keywords are not supported for Nova-3. Please use `keyterm` instead.")
    if sum(len(term.split()) for term in q.get("keyterm", [])) > 500:
        return _invalid(
            "Keyterm limit exceeded. The maximum number of tokens across all keyterms is 500."
        )
    return None


def _check_auth(record: ConnectionRecord, script: Script) -> Refuse | None:
    scheme: str | None = None
    credential = ""
    header = record.headers.get("authorization", "").strip()
    if header:
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        record.auth_via = "header"
    elif len(record.subprotocols) >= 2 and record.subprotocols[0].lower() in ("token", "bearer"):
        scheme, credential = record.subprotocols[0].lower(), record.subprotocols[1]
        record.auth_via = "subprotocol"
    record.auth_scheme = scheme
    ok = False
    if scheme == "token" and credential:
        ok = script.expected_key is None or credential == script.expected_key
    elif scheme == "bearer" and credential:
        if script.expected_tokens is not None:
            ok = credential in script.expected_tokens
        else:
            ok = script.expected_key is None or credential != script.expected_key
    return None if ok else Refuse(401)


# ----------------------------------------------------------------------------------------------
# Transcript generation


def _model_info(model: str | None) -> dict[str, str]:
    m = (model or "base").lower()
    if m.startswith("nova-3"):
        variant = m[len("nova-3") :].lstrip("-") or "general"
        return {"name": f"{variant}-nova-3", "version": MODEL_VERSION, "arch": "nova-3"}
    if m.startswith("nova-2"):
        variant = m[len("nova-2") :].lstrip("-") or "general"
        return {"name": f"2-{variant}-nova", "version": "2024-01-18.26916", "arch": "nova-2"}
    if m.startswith("nova"):
        variant = m[len("nova") :].lstrip("-") or "general"
        return {"name": f"{variant}-nova", "version": "2024-01-18.26916", "arch": "nova"}
    for arch in ("enhanced", "base"):
        if m.startswith(arch):
            variant = m[len(arch) :].lstrip("-") or "general"
            return {"name": variant, "version": "2024-01-26.8851", "arch": arch}
    return {"name": m, "version": "2024-01-26.8851", "arch": "base"}


def _r(x: float) -> float:
    return round(x, 6)


@dataclass
class _Word:
    word: str
    start: float
    end: float
    confidence: float


@dataclass
class _Channel:
    index: int
    source: Callable[[WordSlot], str | None]
    heard: list[_Word] = field(default_factory=list)  # decided, not yet finalized
    utterance_words: int = 0  # finalized words of the open utterance
    finals_with_words: int = 0  # since the last speech_final
    last_word_end: float | None = None
    speech_started: bool = False


def _make_source(words: WordSource) -> Callable[[WordSlot], str | None]:
    if words is None:
        counter = iter(range(1, 10**9))
        return lambda slot: None if slot.silent else number_word(next(counter))
    if callable(words):
        return words
    items = iter(words.split() if isinstance(words, str) else list(words))
    return lambda slot: None if slot.silent else next(items, None)


class _Transcriber:
    """Deterministic Results/SpeechStarted/UtteranceEnd from the audio received so far."""

    def __init__(
        self,
        script: Script,
        *,
        connection: int,
        request_id: str,
        model: str | None,
        sample_rate: int,
        channels: int,
        sample_width: int,
        linear16: bool,
        multichannel: bool,
        interim: bool,
        punctuate: bool,
        vad_events: bool,
        utterance_end: bool,
        multilingual: bool = False,
    ) -> None:
        self.script = script
        self.multilingual = multilingual
        self.connection = connection
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_bytes = sample_width * channels
        self.linear16 = linear16
        self.multichannel = multichannel and channels > 1
        self.interim = interim and script.interim_every > 0
        self.punctuate = punctuate
        self.vad_events = vad_events
        self.utterance_end = utterance_end
        self.slot_len = 1.0 / script.words_per_second if script.words_per_second > 0 else math.inf
        self.window_start = 0.0
        self.next_slot = 0
        self.final_n = 0
        self.interim_n = 0
        n = channels if self.multichannel else 1
        self.total = n
        self.chans = [_Channel(i, _make_source(script.words)) for i in range(n)]
        info = _model_info(model)
        self.metadata = {
            "request_id": request_id,
            "model_info": info,
            "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "dg-emulator:" + info["name"])),
        }

    # times of the next events
    def _slot_word(self, k: int) -> tuple[float, float]:
        base = k * self.slot_len
        return base + 0.05 * self.slot_len, base + 0.85 * self.slot_len

    def _t_final(self) -> float:
        every = self.script.final_every
        return (self.final_n + 1) * every if every > 0 else math.inf

    def _t_interim(self) -> float:
        return (self.interim_n + 1) * self.script.interim_every if self.interim else math.inf

    def advance(self, audio: bytearray, now: float) -> list[dict[str, Any]]:
        """Process every slot decision, interim and final due up to ``now`` seconds of audio,
        in time order (so the outcome doesn't depend on how the audio was chunked)."""
        out: list[dict[str, Any]] = []
        while True:
            t_slot = self._slot_word(self.next_slot)[1] if self.slot_len < math.inf else math.inf
            t_final, t_interim = self._t_final(), self._t_interim()
            t = min(t_slot, t_final, t_interim)
            if t > now + _EPS:
                return out
            if t_slot <= t_final and t_slot <= t_interim:
                self._decide_slot(audio, out)
            elif t_final <= t_interim + _EPS:
                if abs(t_interim - t_final) <= _EPS:
                    self.interim_n += 1  # the final replaces the interim due at the same time
                self.final_n += 1
                if t_final > self.window_start + _EPS:
                    out += self._final(t_final, from_finalize=False)
            else:
                self.interim_n += 1
                if t_interim > self.window_start + _EPS:
                    out += [
                        self._results(c, t_interim, c.heard, False, False, False)
                        for c in self.chans
                    ]

    def finalize(self, now: float) -> list[dict[str, Any]]:
        """Finalize / CloseStream: the open window as a final with from_finalize (if any)."""
        if now <= self.window_start + _EPS:
            return []
        return self._final(now, from_finalize=True)

    def _decide_slot(self, audio: bytearray, out: list[dict[str, Any]]) -> None:
        k = self.next_slot
        self.next_slot += 1
        start, end = self._slot_word(k)
        i0 = round(start * self.sample_rate) * self.frame_bytes
        i1 = round(end * self.sample_rate) * self.frame_bytes
        raw = bytes(audio[i0:i1])
        samples = None
        if self.linear16:
            usable = len(raw) - len(raw) % self.frame_bytes
            samples = np.frombuffer(raw[:usable], dtype="<i2").reshape(-1, self.channels)
        for chan in self.chans:
            data, silent = raw, False
            if samples is not None:
                part = samples[:, chan.index] if self.multichannel else samples
                data = part.tobytes()
                silent = self.script.silence_is_all_zero and not bool(np.any(part))
            text = chan.source(WordSlot(self.connection, chan.index, k, start, end, data, silent))
            if not text:
                continue
            chan.heard.append(_Word(text, start, end, round(0.9 + 0.01 * (k % 10), 4)))
            if self.vad_events and not chan.speech_started:
                chan.speech_started = True
                out.append(
                    {
                        "type": "SpeechStarted",
                        "channel": [chan.index, self.total],
                        "timestamp": _r(start),
                    }
                )

    def _final(self, end: float, *, from_finalize: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chan in self.chans:
            words, chan.heard = chan.heard, []
            if words:
                chan.finals_with_words += 1
            every = self.script.speech_final_every
            if from_finalize:
                speech_final = bool(words) or chan.utterance_words > 0
            elif words:
                speech_final = every > 0 and chan.finals_with_words >= every
            else:
                speech_final = chan.utterance_words > 0
            out.append(self._results(chan, end, words, True, speech_final, from_finalize))
            chan.utterance_words += len(words)
            if words:
                chan.last_word_end = words[-1].end
            if speech_final:
                if self.utterance_end and chan.last_word_end is not None:
                    out.append(
                        {
                            "type": "UtteranceEnd",
                            "channel": [chan.index, self.total],
                            "last_word_end": _r(chan.last_word_end),
                        }
                    )
                chan.utterance_words = chan.finals_with_words = 0
                chan.last_word_end = None
                chan.speech_started = False
        self.window_start = end
        return out

    def _results(
        self,
        chan: _Channel,
        end: float,
        words: list[_Word],
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> dict[str, Any]:
        rendered: list[dict[str, Any]] = []
        for i, w in enumerate(words):
            punctuated = w.word
            if self.punctuate:
                if i == 0 and chan.utterance_words == 0:
                    punctuated = punctuated[:1].upper() + punctuated[1:]
                if speech_final and i == len(words) - 1:
                    punctuated += "."
            rendered.append(
                {
                    "word": w.word,
                    "start": _r(w.start),
                    "end": _r(w.end),
                    "confidence": w.confidence,
                    "punctuated_word": punctuated,
                }
            )
            if self.multilingual:
                rendered[-1]["language"] = self.script.spoken_language
        key = "punctuated_word" if self.punctuate else "word"
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        alternative: dict[str, Any] = {
            "transcript": " ".join(w[key] for w in rendered),
            "confidence": round(confidence, 6),
            "words": rendered,
        }
        if self.multilingual and rendered:
            alternative["languages"] = [self.script.spoken_language]
        return {
            "type": "Results",
            "channel_index": [chan.index, self.total],
            "duration": _r(end - self.window_start),
            "start": _r(self.window_start),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [alternative]},
            "metadata": self.metadata,
        }


# ----------------------------------------------------------------------------------------------
# Connections and sessions


_CONTAINER_MAGIC = (b"RIFF", b"OggS", b"fLaC", b"ID3", b"\x1aE\xdf\xa3", b"\xff\xfb", b"\xff\xf3")
_LIVE_CONNECTIONS: weakref.WeakSet[_EmuConnection] = weakref.WeakSet()


class _EmuConnection(ServerConnection):
    """ServerConnection that timestamps frames on arrival and can withhold pongs."""

    def __init__(self, protocol: ServerProtocol, server: Server, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.emu_record: ConnectionRecord | None = None
        self.emu_script: Script | None = None
        self.stalled = False
        self.arrivals: deque[float] = deque()
        _LIVE_CONNECTIONS.add(self)
        send_frame = protocol.send_frame

        def send_frame_unless_stalled(frame: WsFrame) -> None:
            if self.stalled and frame.opcode is Opcode.PONG:
                return  # a stalled server doesn't answer pings
            send_frame(frame)

        protocol.send_frame = send_frame_unless_stalled  # type: ignore[method-assign]

    def process_event(self, event: Event) -> None:
        if isinstance(event, WsFrame):
            now = time.monotonic()
            if event.opcode is Opcode.PING:
                if self.emu_record is not None:
                    self.emu_record.pings.append(now)
            elif event.fin and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self.arrivals.append(now)
        super().process_event(event)


@dataclass
class _Out:
    due: float
    kind: Literal["text", "binary", "close", "drop", "stall"]
    payload: str | bytes = ""
    code: int = 1000
    reason: str = ""
    on: bool = True  # for "stall"


def _sendables(send: Sendable) -> list[str | bytes]:
    return [send] if isinstance(send, str | bytes) else list(send)


class _Session:
    """One accepted WebSocket: receive loop, delayed sender, inactivity timer, timeline."""

    def __init__(
        self, emu: DeepgramEmulator, ws: _EmuConnection, record: ConnectionRecord, script: Script
    ) -> None:
        self.emu, self.ws, self.record, self.script = emu, ws, record, script
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[_Out] = asyncio.Queue()
        self.unstalled = asyncio.Event()
        self.unstalled.set()
        self.closing = False  # a terminal action was decided: stop reacting to input
        self.close_stream_received = False
        self.last_activity = time.monotonic()
        self.audio = bytearray()
        self.undecodable = False
        self.created = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        self.fired: set[str] = set()
        self.controls: Counter[str] = Counter()
        self.consumed: Counter[str] = Counter()
        self.step = 0
        self.wait_until: float | None = None
        self.wait_handle: asyncio.TimerHandle | None = None

        def param(name: str) -> str | None:
            return record.param(name)

        def intparam(name: str, default: int) -> int:
            value = param(name)
            return int(value) if value is not None and value.isdigit() and int(value) else default

        self.encoding = param("encoding")
        self.sample_rate = intparam("sample_rate", 16000) if self.encoding else 16000
        self.channels = intparam("channels", 1) if self.encoding else 1
        width = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
        self.sample_width = width.get(self.encoding or "linear16", 2)
        self.frame_bytes = self.sample_width * self.channels
        record.bytes_per_second = float(self.frame_bytes * self.sample_rate)
        self.generate = script.generate if script.generate is not None else script.timeline is None
        self.timeline: Sequence[Step] = script.timeline or ()
        self.model_info = _model_info(param("model"))
        self.transcriber = _Transcriber(
            script,
            connection=record.index,
            request_id=record.request_id,
            model=param("model"),
            sample_rate=self.sample_rate,
            channels=self.channels,
            sample_width=self.sample_width,
            linear16=self.encoding == "linear16",
            multichannel=param("multichannel") == "true",
            interim=param("interim_results") == "true",
            punctuate=param("punctuate") == "true" or param("smart_format") == "true",
            vad_events=param("vad_events") == "true",
            utterance_end=param("utterance_end_ms") is not None,
            multilingual=param("language") == "multi",
        )

    @property
    def audio_seconds(self) -> float:
        return len(self.audio) / self.record.bytes_per_second

    # --- output ----------------------------------------------------------------------------

    def _put(self, kind: Literal["text", "binary", "close", "drop", "stall"], **kw: Any) -> None:
        self.queue.put_nowait(_Out(self.loop.time() + self.script.reply_delay, kind, **kw))

    def send(self, message: str | bytes | dict[str, Any]) -> None:
        if isinstance(message, dict):
            self._put("text", payload=json.dumps(message))
        elif isinstance(message, str):
            self._put("text", payload=message)
        else:
            self._put("binary", payload=message)

    def metadata(self) -> dict[str, Any]:
        decoded = bool(self.audio) and not self.undecodable
        meta: dict[str, Any] = {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.record.request_id,
            "sha256": hashlib.sha256(self.audio).hexdigest(),
            "created": self.created.replace("+00:00", "Z"),
            "duration": _r(self.audio_seconds),
            "channels": self.channels if decoded else 0,
        }
        if decoded:
            model_uuid = self.transcriber.metadata["model_uuid"]
            meta["models"] = [model_uuid]
            meta["model_info"] = {model_uuid: self.model_info}
        return meta

    def close(self, code: int, reason: str, *, metadata: bool = False) -> None:
        if metadata:
            self.send(self.metadata())
        self.closing = True
        self._put("close", code=code, reason=reason)

    def end_stream(self) -> None:
        """Flush finals, Metadata, close 1000 (CloseStream, empty frame, or unasked)."""
        if self.closing:
            return
        if self.generate:
            for message in self.transcriber.finalize(self.audio_seconds):
                self.send(message)
        self.close(1000, "", metadata=True)

    def data0000(self, why: str | None = None) -> None:
        if why:
            self.record.violations.append(why)
        self.undecodable = True
        self.close(1008, DATA0000_REASON)

    def drop(self) -> None:
        """Abort TCP now, without a close frame."""
        self.closing = True
        self.record.dropped = True
        self.ws.transport.abort()

    def set_stall(self, on: bool) -> None:
        self.ws.stalled = on
        if on:
            self.unstalled.clear()
        else:
            self.unstalled.set()

    async def close_now(self, code: int, reason: str, *, metadata: bool = False) -> None:
        self.closing = True
        try:
            if metadata:
                await self.write(json.dumps(self.metadata()))
        except ConnectionClosed:
            return
        await self.ws.close(code, reason)

    async def _sender(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                delay = item.due - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if item.kind == "drop":
                    self.drop()
                    return
                if item.kind == "stall":
                    self.set_stall(item.on)
                    continue
                await self.unstalled.wait()
                if item.kind == "close":
                    await self.ws.close(item.code, item.reason)
                    return
                await self.write(item.payload)
        except ConnectionClosed:
            return

    async def write(self, payload: str | bytes) -> None:
        await self.ws.send(payload)
        kind: FrameKind = "text" if isinstance(payload, str) else "binary"
        size = len(payload.encode() if isinstance(payload, str) else payload)
        self.record.sent.append(Frame(kind, size, payload, time.monotonic()))
        self.emu._notify()

    async def _inactivity(self) -> None:
        timeout = self.script.inactivity_timeout
        if timeout is None:
            return
        while not self.closing:
            remaining = self.last_activity + timeout - time.monotonic()
            if remaining <= 0:
                self.close(1011, NET0001_REASON, metadata=True)
                return
            await asyncio.sleep(remaining)

    # --- input -----------------------------------------------------------------------------

    async def run(self) -> None:
        record = self.record
        record.opened_at = time.monotonic()
        self.emu._notify()
        tasks = [
            asyncio.create_task(self._sender()),
            asyncio.create_task(self._inactivity()),
        ]
        try:
            self.advance_timeline()
            while True:
                message = await self.ws.recv()
                t = self.ws.arrivals.popleft() if self.ws.arrivals else time.monotonic()
                self.on_message(message, t)
                self.emu._notify()
        except ConnectionClosed:
            pass
        finally:
            if self.wait_handle is not None:
                self.wait_handle.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            protocol = self.ws.protocol
            if protocol.close_sent is not None:
                record.close_sent = (protocol.close_sent.code, protocol.close_sent.reason)
            if protocol.close_rcvd is not None:
                record.close_received = (protocol.close_rcvd.code, protocol.close_rcvd.reason)
            record.closed_at = time.monotonic()
            self.emu._notify()

    def on_message(self, message: str | bytes, t: float) -> None:
        record = self.record
        if isinstance(message, bytes):
            record.frames.append(Frame("binary", len(message), message, t))
            self.last_activity = time.monotonic()
            self.on_audio(message)
        else:
            record.frames.append(Frame("text", len(message.encode()), message, t))
            if not self.script.require_audio_before_keepalive or self.audio:
                self.last_activity = time.monotonic()
            self.on_text(message)

    def on_audio(self, chunk: bytes) -> None:
        if self.closing:
            if self.close_stream_received and chunk:
                self.record.violations.append(f"audio frame ({len(chunk)} B) after CloseStream")
            return
        if not chunk:
            self.end_stream()  # deprecated end-of-stream signal
            return
        if chunk[:1] == b"{":
            try:
                parsed = json.loads(chunk)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and "type" in parsed:
                self.record.violations.append(
                    f"control message {parsed['type']!r} sent as a binary frame"
                )
        if len(chunk) % self.frame_bytes:
            why = f"binary frame of {len(chunk)} B is not a multiple of {self.frame_bytes} B"
            if self.script.strict_frames:
                self.data0000(why)
                return
            self.record.violations.append(why)
        if (
            not self.audio
            and self.encoding is None
            and self.script.reject_headerless_audio
            and not chunk.startswith(_CONTAINER_MAGIC)
        ):
            self.data0000("raw audio without 'encoding' (no container header)")
            return
        self.audio += chunk
        if self.generate:
            for message in self.transcriber.advance(self.audio, self.audio_seconds):
                self.send(message)
        self.check_faults()
        self.advance_timeline()

    def check_faults(self) -> None:
        s, seconds = self.script, self.audio_seconds + _EPS

        def due(name: str, at: float | None) -> bool:
            if at is None or name in self.fired or seconds < at:
                return False
            self.fired.add(name)
            return True

        if due("decode", s.decode_fail_after):
            self.data0000()
        if s.close_after_audio is not None and due("close", s.close_after_audio[0]):
            self.close(s.close_after_audio[1], s.close_after_audio[2])
        if due("end", s.end_after_audio):
            self.end_stream()
        if due("stall", s.stall_after_audio):
            self._put("stall", on=True)
        if due("drop", s.drop_after_audio):
            self.closing = True
            self._put("drop")
        if due("deaf", s.deaf_after_audio):
            self.ws.transport.pause_reading()

    def on_text(self, text: str) -> None:
        try:
            parsed = json.loads(text)
        except ValueError:
            self.record.violations.append(f"malformed JSON text frame: {text[:80]!r}")
            return
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if not isinstance(kind, str):
            self.record.violations.append(f"text frame without a 'type': {text[:80]!r}")
            return
        if kind not in ("KeepAlive", "Finalize", "CloseStream", "Configure"):
            self.record.violations.append(f"unknown control message type {kind!r}")
        if self.closing:
            return
        self.controls[kind] += 1
        self.advance_timeline()
        if kind == "Finalize" and self.generate and not self.closing:
            for message in self.transcriber.finalize(self.audio_seconds):
                self.send(message)
        elif kind == "CloseStream":
            self.close_stream_received = True
            mode = self.script.on_close_stream
            if mode == "flush":
                self.end_stream()
            elif mode == "drop":
                self.drop()
            elif mode == "close-1011":
                self.close(1011, "Internal server error", metadata=False)
            elif mode == "close-1000":
                self.close(1000, "")  # no flush, no Metadata: the tail is never transcribed

    # --- timeline --------------------------------------------------------------------------

    def advance_timeline(self) -> None:
        steps = self.timeline
        while self.step < len(steps):
            step = steps[self.step]
            if isinstance(step, AfterAudio):
                if self.audio_seconds + _EPS < step.seconds:
                    return
                for item in _sendables(step.send):
                    self.send(item)
            elif isinstance(step, OnControl):
                if self.controls[step.type] <= self.consumed[step.type]:
                    return
                self.consumed[step.type] += 1
                for item in _sendables(step.send):
                    self.send(item)
            elif isinstance(step, Wait):
                now = self.loop.time()
                if self.wait_until is None:
                    self.wait_until = now + step.seconds
                    self.wait_handle = self.loop.call_later(step.seconds, self.advance_timeline)
                    return
                if now < self.wait_until:
                    return
                self.wait_until = self.wait_handle = None
            elif isinstance(step, SendText):
                self.send(step.text)
            elif isinstance(step, SendBinary):
                self.send(step.data)
            elif isinstance(step, Close):
                self.close(step.code, step.reason, metadata=step.metadata)
            elif isinstance(step, EndStream):
                self.end_stream()
            elif isinstance(step, Drop):
                self.closing = True
                self._put("drop")
            else:
                self._put("stall", on=step.on)
            self.step += 1


# ----------------------------------------------------------------------------------------------
# The emulator


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # Deepgram echoes the auth scheme of a ["token", KEY] / ["bearer", JWT] offer.
    if offered and offered[0].lower() in ("token", "bearer"):
        return offered[0]
    return None


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class DeepgramEmulator:
    """A scripted ``/v1/listen`` server on 127.0.0.1; use as ``async with``."""

    def __init__(self, script: Script | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.script = script if script is not None else Script()
        self.host = host
        self.port = port
        self.connections: list[ConnectionRecord] = []
        self.max_concurrent = 0
        self._sessions: list[_Session] = []
        self._server: Server | None = None
        self._release = asyncio.Event()
        self._changed = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._release = asyncio.Event()
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=_select_subprotocol,
            compression=None,
            server_header=None,
            open_timeout=None,
            ping_interval=None,
            ping_timeout=None,
            close_timeout=self.script.close_timeout,
            max_size=2**24,
            create_connection=_EmuConnection,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._release.set()
        server.close()  # open sockets get 1001
        for conn in list(_LIVE_CONNECTIONS):
            if conn.server is server and conn.emu_record is None:
                conn.transport.abort()  # TCP connected but never sent an upgrade request
        try:
            await asyncio.wait_for(server.wait_closed(), self.script.close_timeout + 1.0)
        except TimeoutError:
            for conn in list(_LIVE_CONNECTIONS):
                if conn.server is server:
                    conn.transport.abort()
            await server.wait_closed()
        self._server = None

    @property
    def base_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/listen"

    # --- inspection ------------------------------------------------------------------------

    @property
    def open_connections(self) -> list[ConnectionRecord]:
        return [s.record for s in self._sessions]

    @property
    def accepted(self) -> list[ConnectionRecord]:
        return [r for r in self.connections if r.accepted]

    async def wait_for(self, predicate: Callable[[], object], within: float = 5.0) -> None:
        """Wait until ``predicate()`` is truthy (re-checked whenever the emulator records
        something, and every 50 ms); raise TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within):
            while not predicate():
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 0.05)

    async def wait_idle(self, within: float = 5.0) -> None:
        """Wait until every accepted connection has fully closed on the server side (so its
        record's close fields are final)."""
        await self.wait_for(
            lambda: all(r.closed_at is not None for r in self.connections if r.accepted), within
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- fault injection -------------------------------------------------------------------

    async def close_all(
        self, code: int = 1000, reason: str = "", *, metadata: bool = False
    ) -> None:
        """Close every open socket now (bypasses ``reply_delay`` and pending messages);
        returns when the closing handshakes are done (at most ``close_timeout``)."""
        sessions = list(self._sessions)
        await asyncio.gather(*(s.close_now(code, reason, metadata=metadata) for s in sessions))

    def drop_all(self) -> None:
        """Abort every open TCP connection without a close frame (client sees 1006)."""
        for s in list(self._sessions):
            s.drop()

    def stall(self, on: bool = True) -> None:
        """Stop (or resume) answering pings and sending on every open connection."""
        for s in self._sessions:
            s.set_stall(on)

    def end_stream_all(self) -> None:
        """Unasked end of stream on every open connection: flush, Metadata, close 1000."""
        for s in self._sessions:
            s.end_stream()

    def send_all(self, message: str | bytes) -> None:
        """Queue a raw text/binary message on every open connection (honours reply_delay)."""
        for s in self._sessions:
            s.send(message)

    def set_reply_delay(self, seconds: float) -> None:
        self.script.reply_delay = seconds
        for s in self._sessions:
            s.script.reply_delay = seconds

    def release_hangs(self) -> None:
        """Let pending ``Hang()`` attempts finish with 503."""
        self._release.set()

    # --- websockets hooks ------------------------------------------------------------------

    def _plan_for(self, record: ConnectionRecord) -> HandshakePlan:
        if record.index < len(self.script.handshakes):
            return self.script.handshakes[record.index]
        if self.script.handshake_hook is not None:
            plan = self.script.handshake_hook(record)
            if plan is not None:
                return plan
        return Accept()

    def _refusal(self, conn: ServerConnection, record: ConnectionRecord, plan: Refuse) -> Response:
        default_code, default_msg = _STATUS_ERRORS.get(plan.status, ("ERROR", "Error"))
        err_msg = plan.err_msg if plan.err_msg is not None else default_msg
        if plan.body is None:
            body = json.dumps(
                {
                    "err_code": plan.err_code or default_code,
                    "err_msg": err_msg,
                    "request_id": record.request_id,
                },
                separators=(",", ":"),
            )
        else:
            body = plan.body
        response = conn.respond(plan.status, body)
        if plan.body is None:
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
        dg_error = plan.dg_error if plan.dg_error is not None else err_msg
        if dg_error:
            response.headers["dg-error"] = dg_error
        response.headers["dg-request-id"] = record.request_id
        if plan.retry_after is not None:
            response.headers["Retry-After"] = _format_seconds(plan.retry_after)
        for name, value in plan.headers:
            response.headers[name] = value
        return response

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        assert isinstance(conn, _EmuConnection)
        url = urlsplit(request.path)
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        record = ConnectionRecord(
            index=len(self.connections),
            attempt_at=time.monotonic(),
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=headers,
            request_id=str(uuid.uuid4()),
            subprotocols=[p for p in offered if p],
        )
        self.connections.append(record)
        conn.emu_record = record
        self._notify()
        plan = self._plan_for(record)
        if isinstance(plan, Hang):
            record.plan = "hang"
            release = asyncio.ensure_future(self._release.wait())
            lost = asyncio.ensure_future(conn.wait_closed())
            await asyncio.wait([release, lost], return_when=asyncio.FIRST_COMPLETED)
            release.cancel()
            lost.cancel()
            await asyncio.gather(release, lost, return_exceptions=True)
            return conn.respond(503, "Server is shutting down.\n")
        if isinstance(plan, Refuse):
            record.plan = "refuse"
            return self._refusal(conn, record, plan)
        script = dataclasses.replace(self.script, **plan.changes) if plan.changes else self.script
        conn.emu_script = script
        if plan.validate:
            refusal: Refuse | None = None
            if record.path != "/v1/listen":
                refusal = Refuse(404)
            else:
                refusal = _check_auth(record, script)
                if refusal is None and script.validate_query:
                    refusal = _check_query(record)
            if refusal is not None:
                record.plan = "invalid"
                return self._refusal(conn, record, refusal)
        return None

    def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> None:
        assert isinstance(conn, _EmuConnection)
        record = conn.emu_record
        if record is None:
            return
        if "dg-request-id" not in response.headers:
            response.headers["dg-request-id"] = record.request_id
        script = getattr(conn, "emu_script", None) or self.script
        if response.status_code == 101:
            for name, value in script.response_headers:
                response.headers[name] = value
        self._notify()
        if conn.state is State.CLOSED:
            record.closed_at = time.monotonic()  # the client gave up before we answered
            return
        record.status = response.status_code
        record.response_headers = {k.lower(): v for k, v in response.headers.raw_items()}
        record.response_body = bytes(response.body).decode("utf-8", "replace")
        if response.status_code != 101:
            record.closed_at = time.monotonic()

    async def _handler(self, conn: ServerConnection) -> None:
        assert isinstance(conn, _EmuConnection)
        record, script = conn.emu_record, conn.emu_script
        if record is None or script is None:
            return
        session = _Session(self, conn, record, script)
        self._sessions.append(session)
        self.max_concurrent = max(self.max_concurrent, len(self._sessions))
        try:
            await session.run()
        finally:
            self._sessions.remove(session)
