"""The WebSocket transport to a Deepgram-compatible `/v1/listen` endpoint.

This is the only module that imports websockets. Everything it raises is one of
our own exceptions, translated here in one place, and none of them carries the
request headers: they hold the API key.

What the server sends back is untrusted: every header, body and close reason is read
without raising (a proxy may duplicate a header) and cleaned (`untrusted.clean`) before it
leaves this module. Redirects are never followed: a live stream that moves elsewhere
would send the user's audio to a server they did not choose, so a 3xx is a refusal that
names where it pointed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Literal

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _ws_connect
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.protocol import State as _WsState

from captioner import __version__
from captioner.core import untrusted
from captioner.core.config import StreamSettings

log = logging.getLogger(__name__)

ControlType = Literal["KeepAlive", "Finalize", "CloseStream"]

#: The largest server message we accept. Results with many words stay far below this;
#: anything bigger is hostile or broken and ends the connection with 1009.
MAX_MESSAGE_BYTES = 1 << 20


class TransportError(Exception):
    """Base of everything this module raises."""


@dataclass(eq=False)
class HandshakeRejected(TransportError):
    """The server answered the upgrade with an HTTP status instead of 101."""

    status: int
    dg_error: str | None
    body_text: str
    request_id: str | None
    retry_after: float | None
    location: str | None = None  # where a 3xx pointed (never followed)

    def __str__(self) -> str:
        detail = self.dg_error or self.body_text[:200] or "no reason given"
        return f"HTTP {self.status}: {detail}"


@dataclass(eq=False)
class ConnectFailed(TransportError):
    """The server could not be reached or did not finish the handshake."""

    description: str
    timeout: bool = False
    answered: bool = False  # something answered at that address, not as a WebSocket server

    def __str__(self) -> str:
        return self.description


@dataclass(eq=False)
class ConnectionEnded(TransportError):
    """The WebSocket closed; `code` is None when no close frame was received or sent."""

    code: int | None
    reason: str
    sent_by_client: bool

    def __str__(self) -> str:
        who = "client" if self.sent_by_client else "server"
        return f"connection closed by {who}: {self.code} {self.reason}".rstrip()


def header(headers: Headers, name: str, limit: int = 500) -> str | None:
    """A response header's first value, cleaned; None when absent. Never raises: a header a
    proxy duplicated, or one that is not text, is read rather than trusted."""
    try:
        values = headers.get_all(name)
    except Exception:  # websockets' Headers is ours to read, not to trust
        return None
    for value in values:
        if isinstance(value, str):
            text = untrusted.clean(value, limit).strip()
            return text or None
    return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None


def _body_text(body: bytes | bytearray | None) -> str:
    if not body:
        return ""
    text = bytes(body[:65536]).decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return untrusted.clean(text, 500)
    if isinstance(data, dict):
        for key in ("err_msg", "message", "details", "description"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return untrusted.clean(value, 500)
    return untrusted.clean(text, 500)


def _ended(exc: ConnectionClosed) -> ConnectionEnded:
    """Describe a closed connection by the frame that matters.

    A received close frame is the server's word. With none received, a frame that we
    sent (for example websockets' own `1011 keepalive ping timeout`) explains the end.
    """
    if exc.rcvd is not None:
        reason = untrusted.clean(exc.rcvd.reason, 200)
        return ConnectionEnded(exc.rcvd.code, reason, sent_by_client=False)
    if exc.sent is not None:
        return ConnectionEnded(exc.sent.code, exc.sent.reason, sent_by_client=True)
    return ConnectionEnded(None, "no close frame received", sent_by_client=False)


class _NoRedirects(_ws_connect):
    """websockets' `connect`, answering a redirect with the refusal it is."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class Connection:
    """One open stream. Sending and receiving are independent and may run in separate tasks."""

    def __init__(self, ws: ClientConnection, request_id: str | None) -> None:
        self._ws = ws
        self.request_id = request_id

    async def send_audio(self, chunk: bytes) -> None:
        """Send one audio chunk as a binary frame; an empty chunk is never sent.

        A zero-length binary frame is Deepgram's deprecated end-of-stream signal.
        """
        if not chunk:
            return
        try:
            await self._ws.send(chunk)
        except ConnectionClosed as exc:
            raise _ended(exc) from None

    @property
    def writable(self) -> bool:
        """True when a frame sent now goes straight to the socket without waiting.

        The connection is open and nothing is queued in the transport ahead of the frame,
        so `send_audio` writes and returns in the same event-loop turn: a frame smaller
        than the write limit cannot trip flow control on an empty buffer.
        """
        transport = self._ws.transport
        return (
            self._ws.state is _WsState.OPEN
            and transport is not None
            and transport.get_write_buffer_size() == 0
        )

    async def send_control(self, kind: ControlType) -> None:
        """Send a control message as a text frame, exactly `{"type":"<kind>"}`."""
        try:
            await self._ws.send(json.dumps({"type": kind}, separators=(",", ":")))
        except ConnectionClosed as exc:
            raise _ended(exc) from None

    async def recv(self) -> str | bytes:
        """Wait for the next server message; raises ConnectionEnded when the stream is over."""
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise _ended(exc) from None

    async def close(self, limit: float = 2.0) -> None:
        """Close from our side without waiting longer than `limit` seconds."""
        try:
            async with asyncio.timeout(limit):
                await self._ws.close()
        except (TimeoutError, OSError, ConnectionClosed):
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once (used when a closing handshake stalls)."""
        transport = self._ws.transport
        if transport is not None:
            transport.abort()

    @property
    def closed(self) -> bool:
        return self._ws.close_code is not None


async def connect(
    settings: StreamSettings,
    *,
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
) -> Connection:
    """Open the stream described by `settings` (which must already be valid)."""
    url = settings.listen_url()
    headers: list[tuple[str, str]] = []
    auth = settings.auth_header()
    if auth is not None:
        headers.append(("Authorization", auth))
    untrusted.remember_secret(settings.api_key)
    try:
        ws = await _NoRedirects(
            url,
            additional_headers=headers,
            user_agent_header=f"captioner/{__version__}",
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=2.0,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
            proxy=None,
        )
    except InvalidStatus as exc:
        response = exc.response
        raise HandshakeRejected(
            status=response.status_code,
            dg_error=header(response.headers, "dg-error"),
            body_text=_body_text(response.body),
            request_id=header(response.headers, "dg-request-id", 100),
            retry_after=_retry_after(header(response.headers, "retry-after", 20)),
            location=header(response.headers, "location", 300),
        ) from None
    except TimeoutError:
        raise ConnectFailed(
            f"no answer to the connection request within {open_timeout:g} s", timeout=True
        ) from None
    except InvalidURI as exc:
        raise ConnectFailed(f"invalid URL: {exc.msg}") from None
    except InvalidHandshake as exc:
        detail = untrusted.clean(str(exc), 200)
        raise ConnectFailed(
            f"a server answered, but not with a WebSocket upgrade ({detail})", answered=True
        ) from None
    except ssl.SSLError as exc:
        raise ConnectFailed(f"secure connection failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise ConnectFailed(_describe_os_error(exc)) from None
    request_id = header(ws.response.headers, "dg-request-id", 100) if ws.response else None
    log.info("connected, request id %s", request_id or "(none)")
    return Connection(ws, request_id)


def _describe_os_error(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing is listening at that address"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "the server's name could not be resolved (offline, or a wrong host name)"
    return f"network error: {text}"
