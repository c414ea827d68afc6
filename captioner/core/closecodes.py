"""What an ending means: close codes, handshake statuses and network failures.

The endings themselves are described in docs/protocol.md ("Endings").

This is the one place that decides what to tell a person and whether to try again;
the session, the CLI and the window all read it, so nobody decides ad hoc. Exit codes
follow the CLI: 0 finished, 3 auth or permission, 4 a refusal retrying cannot fix,
5 network trouble worth retrying.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "EXIT_AUTH",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_REFUSED",
    "Meaning",
    "close_meaning",
    "describe",
    "http_meaning",
    "network_meaning",
    "reason_code",
    "untranscribed_meaning",
]

EXIT_OK = 0
EXIT_AUTH = 3
EXIT_REFUSED = 4
EXIT_NETWORK = 5


@dataclass(frozen=True, slots=True)
class Meaning:
    """How one ending reads to a person, and what the app does about it.

    `retry` is the default policy; a normal close (1000) says False because nothing
    failed, and the session decides whether an unrequested one deserves a reconnect.
    """

    label: str
    title: str
    explanation: str
    action: str
    retry: bool
    exit_code: int
    kind: str


def describe(meaning: Meaning, detail: str = "", note: str = "") -> str:
    """One paragraph a person can act on, the same in the window and the terminal: what
    happened and its code, what the server said (when it adds anything), `note`, what to do."""
    parts = [f"{meaning.title} ({meaning.label})."]
    if meaning.explanation:
        parts.append(meaning.explanation)
    detail = detail.strip()
    if detail and detail not in meaning.explanation and detail not in meaning.label:
        parts.append(f"The server said: “{detail}”.")
    if note:
        parts.append(note)
    if meaning.action:
        parts.append(meaning.action)
    return " ".join(parts)


# Production reasons are sentences ending in a dpgr.am link ("... See https://dpgr.am/net0001");
# the docs show bare codes ("NET-0001"). Both spellings carry the same family and number.
_REASON_CODE = re.compile(r"(?<![a-z0-9])(net|data)[-_ ]?(\d{4})(?!\d)", re.IGNORECASE)


def reason_code(reason: str | None) -> str | None:
    """The Deepgram error code in a close reason, normalised ("NET-0001"), or None."""
    if not reason:
        return None
    match = _REASON_CODE.search(reason)
    if match is None:
        return None
    return f"{match.group(1).upper()}-{match.group(2)}"


_RECONNECTING = "Captioner reconnects by itself and keeps the audio recorded meanwhile."

_NET_0001 = (
    "No audio reached the server for 10 s",
    "The server closes a stream that sends neither audio nor a KeepAlive for about 10 seconds.",
    "Nothing to do unless it keeps happening; then check that the app is not frozen. "
    + _RECONNECTING,
    "idle",
)
_NET_0000 = (
    "The transcription service did not answer in time",
    "The server produced no result within its time limit: a problem on its side, or audio "
    "it could not decode.",
    "If it keeps happening, check status.deepgram.com. " + _RECONNECTING,
    "server",
)
_DATA_0000 = (
    "Audio format not accepted",
    "The server could not decode the audio as the declared encoding and sample rate.",
    "Check the encoding and sample rate settings and the input device, then start again.",
    "data",
)


def close_meaning(code: int | None, reason: str | None, *, sent_by_client: bool = False) -> Meaning:
    """What a WebSocket close means; `code` None means no close frame arrived (1006).

    Deepgram's code in the reason text takes precedence over the numeric close code,
    because the same 1011 covers both an idle client and a server fault.
    """
    reason = (reason or "").strip()
    if sent_by_client:
        return _client_close(code, reason)
    found = reason_code(reason)
    number = 1006 if code is None else code
    if found == "NET-0001":
        return _meaning(f"{number} NET-0001", *_NET_0001, retry=True, exit_code=EXIT_NETWORK)
    if found == "NET-0000":
        return _meaning(f"{number} NET-0000", *_NET_0000, retry=True, exit_code=EXIT_NETWORK)
    if found == "DATA-0000" or number == 1008:
        label = f"{number} DATA-0000" if found == "DATA-0000" else str(number)
        return _meaning(label, *_DATA_0000, retry=False, exit_code=EXIT_REFUSED)
    label = f"{number} {found}" if found else str(number)
    said = f' The server said: "{reason}".' if reason else ""
    known = _CLOSES.get(1012 if number == 1013 else number)
    if known is not None:
        title, explanation, action, retry, kind = known
        exit_code = EXIT_NETWORK if retry else EXIT_OK
        return Meaning(label, title, explanation + said, action, retry, exit_code, kind)
    return Meaning(
        label,
        f"Connection closed (code {number})",
        f"The server closed the connection with code {number}, which Deepgram does not "
        "document for live streaming." + said,
        _RECONNECTING,
        retry=True,
        exit_code=EXIT_NETWORK,
        kind="network",
    )


# close code -> (title, explanation, action, retry, kind); 1013 reads as 1012
_CLOSES: dict[int, tuple[str, str, str, bool, str]] = {
    1000: (
        "Stream finished",
        "The server ended the stream normally.",
        "Nothing to do.",
        False,
        "normal",
    ),
    1001: (
        "The server went away",
        "The server closed the connection, usually because it is restarting.",
        _RECONNECTING,
        True,
        "server",
    ),
    1006: (
        "Connection lost",
        "The connection dropped without a goodbye from the server: a network outage, "
        "a proxy, or the computer sleeping.",
        _RECONNECTING,
        True,
        "network",
    ),
    1011: (
        "Server error",
        "The server hit an internal error and closed the stream.",
        "If it keeps happening, check status.deepgram.com. " + _RECONNECTING,
        True,
        "server",
    ),
    1012: (
        "The server is busy or restarting",
        "The server asked to come back later.",
        _RECONNECTING,
        True,
        "server",
    ),
}


def _client_close(code: int | None, reason: str) -> Meaning:
    number = 1006 if code is None else code
    if number in (1000, 1001):
        return Meaning(
            str(number),
            "Stream finished",
            "Captioner closed the connection.",
            "Nothing to do.",
            retry=False,
            exit_code=EXIT_OK,
            kind="normal",
        )
    if number == 1011 or "ping timeout" in reason.lower():
        explanation = (
            "The server stopped answering Captioner's connection checks for 20 s: the "
            "network stalled, or the app was too busy to listen."
        )
    else:
        said = f' ("{reason}")' if reason else ""
        explanation = f"Captioner closed the connection with code {number}{said}."
    return Meaning(
        f"{number} (sent by Captioner)",
        "Connection lost",
        explanation,
        _RECONNECTING,
        retry=True,
        exit_code=EXIT_NETWORK,
        kind="network",
    )


def _meaning(
    label: str,
    title: str,
    explanation: str,
    action: str,
    kind: str,
    *,
    retry: bool,
    exit_code: int,
) -> Meaning:
    return Meaning(label, title, explanation, action, retry, exit_code, kind)


# status: (title, explanation, action, retry, exit_code, kind)
_HTTP: dict[int, tuple[str, str, str, bool, int, str]] = {
    400: (
        "Settings refused by the server",
        "The server rejected a setting or a combination of settings.",
        "Check the settings (model, language, options) and start again.",
        False,
        EXIT_REFUSED,
        "refused",
    ),
    401: (
        "API key rejected",
        "The server did not accept the API key: it is wrong, revoked, or an expired token.",
        "Check the API key in Settings.",
        False,
        EXIT_AUTH,
        "auth",
    ),
    402: (
        "Deepgram account out of credit",
        "The project has no credit left for transcription.",
        "Add credit to the Deepgram project, or use another key.",
        False,
        EXIT_REFUSED,
        "refused",
    ),
    403: (
        "Model not available for this key",
        "The key is valid but lacks permission, usually for the chosen model.",
        "Choose another model, or use a key of a project that has access to it.",
        False,
        EXIT_AUTH,
        "auth",
    ),
    404: (
        "Bad endpoint URL",
        "Nothing answers at that address: the host or path is wrong.",
        "Check the endpoint URL in Settings; it should end in /v1/listen.",
        False,
        EXIT_REFUSED,
        "refused",
    ),
    405: (
        "Bad endpoint URL",
        "The server does not accept a live stream at that address.",
        "Check the endpoint URL in Settings: use wss:// and the /v1/listen path.",
        False,
        EXIT_REFUSED,
        "refused",
    ),
    408: (
        "Timed out connecting",
        "The server gave up waiting for the connection request.",
        _RECONNECTING,
        True,
        EXIT_NETWORK,
        "network",
    ),
    413: (
        "Too many custom terms",
        "The request was too large for the server, usually because of long key term lists.",
        "Remove some key terms or keywords and start again.",
        False,
        EXIT_REFUSED,
        "refused",
    ),
    414: (
        "Too many custom terms",
        "The address was too long for the server, usually because of long key term lists.",
        "Remove some key terms or keywords and start again.",
        False,
        EXIT_REFUSED,
        "refused",
    ),
    429: (
        "Too many simultaneous sessions",
        "The project has reached its limit of concurrent streams.",
        "Close other sessions using this key. " + _RECONNECTING,
        True,
        EXIT_NETWORK,
        "rate-limit",
    ),
}

_SERVER_TROUBLE = (
    "Deepgram unavailable",
    "The server or a gateway in front of it is having trouble.",
    "If it keeps happening, check status.deepgram.com. " + _RECONNECTING,
    True,
    EXIT_NETWORK,
    "server",
)


def http_meaning(status: int, dg_error: str | None = None) -> Meaning:
    """What a refused WebSocket upgrade means; `dg_error` is quoted verbatim."""
    entry = _HTTP.get(status)
    if entry is None:
        if 500 <= status <= 599:
            entry = _SERVER_TROUBLE
        elif 400 <= status <= 499:
            entry = (
                "Connection refused",
                f"The server refused the connection (HTTP {status}).",
                "Check the endpoint URL, the API key and the settings.",
                False,
                EXIT_REFUSED,
                "refused",
            )
        elif 300 <= status <= 399:
            entry = (
                "The server redirected the connection",
                "Captioner does not follow redirects: the audio would go to a server you "
                "did not choose.",
                "If the new address is right, put it in the endpoint URL in Settings.",
                False,
                EXIT_REFUSED,
                "refused",
            )
        else:
            entry = (
                "Unexpected answer from the server",
                f"The server answered HTTP {status} instead of opening a stream.",
                _RECONNECTING,
                True,
                EXIT_NETWORK,
                "server",
            )
    title, explanation, action, retry, exit_code, kind = entry
    detail = (dg_error or "").strip()
    if detail:
        explanation = f"{explanation} The server said: {detail}"
    return Meaning(f"HTTP {status}", title, explanation, action, retry, exit_code, kind)


_NETWORK_PATTERNS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("not with a websocket upgrade",),
        "Not a live transcription server",
        "Something answered at that address, but not as a live transcription (WebSocket) "
        "server: the URL may point at the wrong port or service.",
    ),
    (
        ("timed out", "timeout"),
        "Timed out connecting",
        "The server did not answer in time.",
    ),
    (
        (
            "name or service not known",
            "getaddrinfo",
            "nodename nor servname",
            "no address associated",
            "temporary failure in name resolution",
            "name resolution",
            "dns",
        ),
        "Server name not found",
        "The server's name could not be looked up: the computer may be offline.",
    ),
    (
        ("refused", "errno 111", "errno 61", "winerror 1225"),
        "Connection refused",
        "Nothing is accepting connections at that address and port.",
    ),
    (
        ("ssl", "tls", "certificate"),
        "Secure connection failed",
        "The encrypted connection could not be set up.",
    ),
)


def untranscribed_meaning(seconds: float, why: str) -> Meaning:
    """The stream ended (after we asked it to) before the last `seconds` of audio were
    transcribed: worth sending that audio again, and never "finished"."""
    return Meaning(
        "unconfirmed",
        "The end of the audio was not transcribed",
        f"The server ({why}) stopped before transcribing the last {seconds:.1f} s of audio.",
        "Everything before it is kept. " + _RECONNECTING,
        retry=True,
        exit_code=EXIT_NETWORK,
        kind="network",
    )


def network_meaning(description: str) -> Meaning:
    """What a failure to reach the server means; always worth retrying."""
    text = description.strip()
    lowered = text.lower()
    title, explanation = "Offline", "The server could not be reached."
    for needles, found_title, found_explanation in _NETWORK_PATTERNS:
        if any(needle in lowered for needle in needles):
            title, explanation = found_title, found_explanation
            break
    if text:
        explanation = f"{explanation} ({text})"
    return Meaning(
        "network",
        title,
        explanation,
        "Check the network connection. " + _RECONNECTING,
        retry=True,
        exit_code=EXIT_NETWORK,
        kind="network",
    )
