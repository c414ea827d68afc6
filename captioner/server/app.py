"""The Deepgram-compatible WebSocket server: handshake rules, connection state machine, timers.

Each connection has two tasks. The receiver reads frames and only does cheap work on the event
loop (validation, control messages, the inactivity timer); audio goes into a queue. The
processor takes queued audio (joining what piled up while it was busy) and runs the connection's
`ListenPipeline` on the server's single decoder thread, then sends the resulting messages. So a
slow decode never delays a KeepAlive, a Finalize being queued, or a close, and a client that
sends faster than real time just gets its results later, as on the service.

Every byte a client sends is untrusted. Memory stays bounded whatever it does:

* a frame may be at most `max_message_bytes` (bigger ones close the stream with 1009), and
  websockets buffers at most a few frames;
* each connection queues at most `max_queued_seconds` of audio; beyond that the receiver stops
  reading, so TCP pushes back on the sender until the decoder catches up;
* all connections together queue at most `max_queued_bytes`; a connection past its share while
  the total is full is closed with 1013 (try again later);
* at most `max_connections` streams at once; more are refused at the upgrade with 429;
* a text frame is at most 64 KiB and parsed defensively: anything unreadable is an unknown
  control message, ignored and logged;
* no permessage-deflate, so what a client sends costs it as many bytes as it costs us;
* a stream closed for flooding, bad audio or silence is read and dropped while it closes, so the
  close does not wait behind the audio still in flight.

Texts the server builds from what a client sent (the reason for a refused query) are made safe
for an HTTP header: printable ASCII only, and short.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import enum
import hashlib
import hmac
import ipaddress
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from captioner.server import wire
from captioner.server.engine import Engine
from captioner.server.heap import HeapReleaser
from captioner.server.pipeline import AudioDecodeError, ListenPipeline
from captioner.server.query import ListenParams, QueryError, parse_query

log = logging.getLogger("captioner.server")

LISTEN_PATH = "/v1/listen"
DEFAULT_INACTIVITY_TIMEOUT = 10.0
# The most audio handed to the decoder in one go when a backlog piles up: large enough to
# catch up quickly, small enough that interims and Finalize are not held up for long.
MAX_BATCH_BYTES_SECONDS = 5.0
MAX_CONTROL_CHARS = 64 * 1024
OVERLOADED_REASON = "The offline engine is overloaded: too much audio is waiting. Try again later."

_T = TypeVar("_T")


class InsecureBindError(ValueError):
    """Refusal to listen beyond loopback without a token (anyone could use the engine)."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if token is None and not is_loopback(host):
        raise InsecureBindError(
            f"refusing to listen on {host!r} without --token: only loopback addresses "
            "(127.0.0.1, ::1, localhost) may be served without authentication"
        )


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    inactivity_timeout: float = DEFAULT_INACTIVITY_TIMEOUT
    max_message_bytes: int = 2 * 1024 * 1024
    ping_interval: float | None = 20.0
    max_connections: int = 16
    max_queued_seconds: float = 30.0  # per connection, before the receiver stops reading
    max_queued_bytes: int = 256 * 1024 * 1024  # all connections together


class _End(enum.Enum):
    CLOSE_STREAM = "close-stream"
    TIMEOUT = "timeout"
    BAD_AUDIO = "bad-audio"
    CLIENT_GONE = "client-gone"
    OVERLOADED = "overloaded"


class _Control(enum.Enum):
    FINALIZE = "finalize"
    CLOSE = "close"


@dataclass
class _Handshake:
    request_id: str
    params: ListenParams | None = None


class _WorkQueue:
    """FIFO of audio chunks and control markers; lets the processor take a batch of audio.

    `audio_bytes` counts what waits; `drained` is set whenever it falls to `low_water` or
    below, for a receiver that stopped reading to resume.
    """

    def __init__(self, low_water: int = 0) -> None:
        self._items: collections.deque[bytes | _Control] = collections.deque()
        self._ready = asyncio.Event()
        self.audio_bytes = 0
        self.low_water = low_water
        self.drained = asyncio.Event()
        self.drained.set()

    def put(self, item: bytes | _Control) -> None:
        self._items.append(item)
        if isinstance(item, bytes):
            self.audio_bytes += len(item)
            if self.audio_bytes > self.low_water:
                self.drained.clear()
        self._ready.set()

    async def get_batch(self, max_bytes: int) -> bytes | _Control:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        first = self._items.popleft()
        if isinstance(first, _Control):
            return first
        chunks = [first]
        size = len(first)
        while self._items and isinstance(self._items[0], bytes) and size < max_bytes:
            chunk = self._items.popleft()
            assert isinstance(chunk, bytes)
            chunks.append(chunk)
            size += len(chunk)
        self.audio_bytes -= size
        if self.audio_bytes <= self.low_water:
            self.drained.set()
        return b"".join(chunks)


class ListenServer:
    """Serves `/v1/listen` with one engine; usable as `async with ListenServer(...) as server`."""

    def __init__(
        self,
        engine: Engine,
        config: ServerConfig | None = None,
        *,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or ServerConfig()
        check_bind(self.config.host, self.config.token)
        self._own_executor = executor is None
        # One decoder thread: sessions' jobs run in arrival order, and a connection's cleanup
        # job always runs after its last in-flight decode.
        self.executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="captioner-decoder"
        )
        self.heap = HeapReleaser()
        self._server: Server | None = None
        self._handshakes: dict[ServerConnection, _Handshake] = {}
        self.sessions: set[_Session] = set()
        self.port = 0

    def queued_bytes(self) -> int:
        """Audio waiting for the decoder, over every connection."""
        return sum(session.queue.audio_bytes for session in self.sessions)

    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.port}"

    @property
    def listen_url(self) -> str:
        return self.url + LISTEN_PATH

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=_select_subprotocol,
            max_size=self.config.max_message_bytes,
            max_queue=4,
            # no permessage-deflate: audio hardly compresses, and a client could otherwise send
            # seconds of a compressible sound in a few bytes each and spend our CPU inflating it
            compression=None,
            ping_interval=self.config.ping_interval,
            server_header="captioner",
            logger=logging.getLogger("captioner.server.websockets"),
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        log.info("listening on %s", self.listen_url)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> ListenServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ handshake

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        handshake = _Handshake(str(uuid.uuid4()))
        self._handshakes[connection] = handshake
        split = urlsplit(request.path)
        if split.path.rstrip("/") != LISTEN_PATH:
            return _reject(
                connection,
                404,
                "NOT_FOUND",
                f"Not found: this server answers {LISTEN_PATH}.",
                handshake.request_id,
            )
        if self.config.token is not None and not _authorized(request, self.config.token):
            return _reject(
                connection, 401, "INVALID_AUTH", "Invalid credentials.", handshake.request_id
            )
        if len(self.sessions) >= self.config.max_connections:
            return _reject(
                connection,
                429,
                "TOO_MANY_REQUESTS",
                f"Too many streams at once (at most {self.config.max_connections}).",
                handshake.request_id,
            )
        try:
            handshake.params = parse_query(split.query)
        except QueryError as exc:
            return _reject(
                connection, 400, "INVALID_QUERY_PARAMETER", exc.message, handshake.request_id
            )
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        handshake = self._handshakes.get(connection)
        if handshake is None:  # the request never reached process_request
            handshake = _Handshake(str(uuid.uuid4()))
        response.headers["dg-request-id"] = handshake.request_id
        if response.status_code != 101:
            self._handshakes.pop(connection, None)

    async def _handle(self, connection: ServerConnection) -> None:
        handshake = self._handshakes.pop(connection, None)
        if handshake is None or handshake.params is None:
            return
        session = _Session(self, connection, handshake.params, handshake.request_id)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)


def header_safe(text: str, limit: int = 300) -> str:
    """`text` as an HTTP header value: printable ASCII only (anything else becomes "?"),
    at most `limit` characters. Whatever a client put in its query cannot break the reply."""
    safe = "".join(ch if " " <= ch <= "~" else "?" for ch in text[: limit * 2])
    return safe[:limit].strip()


def _reject(
    connection: ServerConnection, status: int, err_code: str, message: str, request_id: str
) -> Response:
    body = json.dumps(wire.error_body(err_code, message, request_id))
    response = connection.respond(status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    response.headers["dg-error"] = header_safe(message)
    log.info("refused upgrade %s: %d %s", request_id, status, header_safe(message))
    return response


def _offered_subprotocols(headers: Headers) -> list[str]:
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        offered.extend(part.strip() for part in value.split(",") if part.strip())
    return offered


def _authorized(request: Request, token: str) -> bool:
    """`Authorization: Token T` / `Bearer T`, or the browser form: subprotocols `token, T`."""
    candidates: list[str] = []
    header = request.headers.get("Authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() in ("token", "bearer"):
            candidates.append(value.strip())
    offered = _offered_subprotocols(request.headers)
    if len(offered) >= 2 and offered[0].lower() in ("token", "bearer"):
        candidates.append(offered[1])
    expected = token.encode()
    return any(hmac.compare_digest(c.encode(), expected) for c in candidates)


def _select_subprotocol(connection: ServerConnection, subprotocols: Any) -> Subprotocol | None:
    """Echo `token`/`bearer` when a browser client authenticates through subprotocols."""
    offered = list(subprotocols)
    if offered and offered[0].lower() in ("token", "bearer"):
        return Subprotocol(offered[0])
    return None


# ---------------------------------------------------------------------- connections


class _Session:
    """One accepted connection, from the 101 to the close frame."""

    def __init__(
        self,
        server: ListenServer,
        connection: ServerConnection,
        params: ListenParams,
        request_id: str,
    ) -> None:
        self.server = server
        self.connection = connection
        self.params = params
        self.request_id = request_id
        self.created = wire.iso_now()
        self.pipeline = ListenPipeline(params, server.engine, request_id)
        bytes_per_second = params.sample_rate * params.bytes_per_frame
        self._queue_limit = max(1, int(bytes_per_second * server.config.max_queued_seconds))
        self.queue = _WorkQueue(low_water=self._queue_limit // 2)
        self.audio_bytes = 0
        self.digest = hashlib.sha256()
        self.end: _End | None = None
        # held while a message is being written, so cancelling the processor never
        # interrupts a frame half-way through
        self._send_lock = asyncio.Lock()
        self._batch_bytes = max(1, int(bytes_per_second * MAX_BATCH_BYTES_SECONDS))

    async def run(self) -> None:
        log.info("connection %s opened: %s", self.request_id, _describe(self.params))
        receiver = asyncio.create_task(self._receive())
        processor = asyncio.create_task(self._process())
        try:
            done, _ = await asyncio.wait({receiver, processor}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                self.end = receiver.result()
                if self.end is _End.CLOSE_STREAM:
                    self.queue.put(_Control.CLOSE)
                    await processor
                else:
                    async with self._send_lock:
                        processor.cancel()
                    await asyncio.gather(processor, return_exceptions=True)
                    if self.end is _End.TIMEOUT:
                        await self._send([self._metadata()])
                        await self._close(1011, wire.NET0001_REASON)
                    elif self.end is _End.BAD_AUDIO:
                        await self._close(1008, wire.DATA0000_REASON)
                    elif self.end is _End.OVERLOADED:
                        await self._close(1013, OVERLOADED_REASON)
            else:
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
                processor.result()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("connection %s failed", self.request_id)
            await self.connection.close(1011, "Internal error in the offline engine.")
        finally:
            for task in (receiver, processor):
                task.cancel()
            # queued behind any decode still running for this connection (one decoder thread)
            try:
                self.server.executor.submit(self.pipeline.close)
            except RuntimeError:  # executor already shut down with the server
                self.pipeline.close()
            log.info(
                "connection %s closed (%s) after %.1f s of audio",
                self.request_id,
                self.end.value if self.end else "error",
                self.audio_bytes / (self.params.sample_rate * self.params.bytes_per_frame),
            )

    async def _close(self, code: int, reason: str) -> None:
        """Close, reading and dropping whatever the client still sends meanwhile.

        A client that floods (the reason for 1013) has megabytes in flight, and its reply to
        our Close frame waits behind them. Without reading them the closing handshake could
        not finish until the close timeout (10 s) ran out.
        """

        async def discard() -> None:
            while True:
                await self.connection.recv()

        draining = asyncio.create_task(discard())
        try:
            await self.connection.close(code, reason)
        finally:
            draining.cancel()
            await asyncio.gather(draining, return_exceptions=True)

    async def _receive(self) -> _End:
        timeout = self.server.config.inactivity_timeout
        while True:
            if self.queue.audio_bytes >= self._queue_limit:
                # far ahead of the decoder: stop reading, so TCP pushes back on the sender
                if self.server.queued_bytes() > self.server.config.max_queued_bytes:
                    return _End.OVERLOADED
                await self.queue.drained.wait()
                continue
            try:
                async with asyncio.timeout(timeout):
                    message = await self.connection.recv()
            except TimeoutError:
                return _End.TIMEOUT
            except ConnectionClosed:
                return _End.CLIENT_GONE
            if isinstance(message, bytes):
                if not message:
                    return _End.CLOSE_STREAM  # the deprecated end-of-stream signal
                if len(message) % 2:
                    log.info("connection %s: %d-byte audio frame", self.request_id, len(message))
                    return _End.BAD_AUDIO
                self.audio_bytes += len(message)
                self.digest.update(message)
                self.queue.put(message)
                continue
            kind = control_type(message)
            if kind == "KeepAlive":
                continue
            if kind == "Finalize":
                self.queue.put(_Control.FINALIZE)
            elif kind == "CloseStream":
                return _End.CLOSE_STREAM
            else:
                log.info(
                    "connection %s: ignored text message %r",
                    self.request_id,
                    header_safe(message, 80),
                )

    async def _process(self) -> None:
        while True:
            item = await self.queue.get_batch(self._batch_bytes)
            if isinstance(item, bytes):
                try:
                    messages = await self._run(self.pipeline.push_audio, item)
                except AudioDecodeError:
                    await self.connection.close(1008, wire.DATA0000_REASON)
                    return
                await self._send(messages)
            elif item is _Control.FINALIZE:
                await self._send(await self._run(self.pipeline.finalize))
            else:
                messages = await self._run(self.pipeline.finish)
                await self._send([*messages, self._metadata()])
                await self.connection.close(1000)
                return

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.server.executor, self._work, function, *args)

    def _work(self, function: Callable[..., _T], *args: Any) -> _T:
        """On the decoder thread: the work, then (now and then) freed memory back to the OS."""
        try:
            return function(*args)
        finally:
            self.server.heap.after_work()

    async def _send(self, messages: list[wire.JSON]) -> None:
        async with self._send_lock:
            for message in messages:
                await self.connection.send(json.dumps(message))

    def _metadata(self) -> wire.JSON:
        has_audio = self.audio_bytes > 0
        return wire.metadata(
            request_id=self.request_id,
            created=self.created,
            duration=self.audio_bytes / (self.params.sample_rate * self.params.bytes_per_frame),
            channels=self.params.channels if has_audio else 0,
            sha256=self.digest.hexdigest(),
            model=self.pipeline.model if has_audio else None,
            extra=self.params.extra,
        )


def control_type(message: str) -> str | None:
    """The `type` of a client's control message; None for anything unreadable: too long,
    nested too deep, not JSON, not an object."""
    if len(message) > MAX_CONTROL_CHARS:
        return None
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return str(data["type"])
    return None


def _describe(params: ListenParams) -> str:
    return (
        f"{params.encoding} {params.sample_rate} Hz x{params.channels}, "
        f"language={params.language}, interim={params.interim_results}, "
        f"endpointing={params.endpointing_ms}, utterance_end_ms={params.utterance_end_ms}, "
        f"vad_events={params.vad_events}"
    )
