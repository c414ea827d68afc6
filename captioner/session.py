"""One captioning session: the only owner of asyncio tasks for a stream.

Capture runs from Start to Stop and feeds an outbox of chunks. Each connection runs
three independent tasks: send (outbox -> socket), receive (socket -> parser -> caption
model) and keepalive. Sending never waits for a reply; receiving never waits for a
send. When the send task is idle and the socket would take a frame at once, capture
writes its new chunk itself (see `_hand_over`), so live audio leaves in the event-loop
turn it arrived in; capture never waits on the network either way. Everything the
outside world needs to know flows through a plain observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from captioner.audio.resilient import SourceEvent
from captioner.audio.sources import AudioSource
from captioner.core.backlog import AudioBacklog, AudioChunk, pad_to_minimum
from captioner.core.backoff import Backoff
from captioner.core.captions import CaptionEvent, CaptionModel
from captioner.core.chunker import Chunker
from captioner.core.closecodes import (
    EXIT_NETWORK,
    Meaning,
    close_meaning,
    http_meaning,
    network_meaning,
    untranscribed_meaning,
)
from captioner.core.config import StreamSettings
from captioner.core.messages import (
    ErrorMessage,
    Metadata,
    Results,
    ServerMessage,
    SpeechStarted,
    Unknown,
    UtteranceEnd,
    parse_message,
)
from captioner.core.streaming import (
    GiveUp,
    KeepaliveAction,
    KeepaliveSchedule,
    Pacer,
    ReconnectPolicy,
)
from captioner.core.timeline import (
    ConnectionClock,
    results_on_capture_clock,
    utterance_end_on_capture_clock,
)
from captioner.net.client import (
    ConnectFailed,
    Connection,
    ConnectionEnded,
    HandshakeRejected,
    connect,
)

log = logging.getLogger(__name__)

TAIL_SLACK_SECONDS = 0.25
"""Unconfirmed audio at the end that is not worth a reconnect: less than a word."""


class State(enum.StrEnum):
    IDLE = "Idle"
    CONNECTING = "Connecting"
    LIVE = "Live"
    RECONNECTING = "Reconnecting"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    ERROR = "Error"


@dataclass(frozen=True)
class Status:
    """What the status bar (or stderr) shows."""

    state: State
    detail: str = ""
    meaning: Meaning | None = None
    request_id: str | None = None
    #: the server's own words for the last end: a close reason or a dg-error text
    reason: str = ""


@dataclass(frozen=True)
class SessionEnd:
    """How a session ended: `exit_code` follows the command line's convention."""

    ok: bool
    exit_code: int
    meaning: Meaning | None = None
    detail: str = ""
    """The server's own words about the end (a close reason, a dg-error), if any."""
    note: str = ""
    """Ours: why retrying stopped, and how much audio was never transcribed."""


@dataclass
class SessionStats:
    """Counters for the status bar, the command line and the benchmarks."""

    chunks_sent: int = 0
    bytes_sent: int = 0
    keepalives_sent: int = 0
    messages_received: int = 0
    unknown_messages: int = 0
    results_received: int = 0
    chunks_muted: int = 0
    #: the newest chunk captured (muted or not): `level_dbfs` is computed from it when read
    last_chunk: bytes = field(default=b"", repr=False)
    #: seconds from a chunk being ready (its last block left the audio callback) to its
    #: bytes handed to the socket; bounded so hours of streaming stay small
    send_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    #: seconds from a Results message arriving to the caption model updated
    caption_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    #: capture seconds minus the end of the newest result: how far behind captions are
    lag_seconds: float = 0.0

    @property
    def level_dbfs(self) -> float:
        """Level of the newest captured chunk, in dB below full scale.

        Computed when read: a meter polls a few times a second, chunks arrive ten times a
        second, and on a cold cache one computation cost nearly half of a chunk's capture
        path (see docs/performance.md).
        """
        return chunk_dbfs(self.last_chunk)


class SessionObserver(Protocol):
    def status_changed(self, status: Status) -> None: ...

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None: ...

    def message_received(self, message: ServerMessage) -> None: ...

    def source_changed(self, event: SourceEvent) -> None:
        """The microphone was lost, came back, or went digitally silent (or sounds again)."""


def chunk_dbfs(data: bytes) -> float:
    """Level of a 16-bit chunk in dB below full scale (for meters and silence warnings)."""
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return -120.0
    mean_square = float(np.dot(samples, samples)) / samples.size
    if mean_square <= 0:
        return -120.0
    return max(-120.0, 10.0 * math.log10(mean_square / (32768.0 * 32768.0)))


@dataclass(frozen=True, slots=True)
class _Sender:
    """One connection's send task, as capture sees it when handing a chunk over."""

    conn: Connection
    clock: ConnectionClock
    opened: float


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How a session behaves, apart from what it streams (`StreamSettings`)."""

    keepalive_interval: float = 4.0
    """A KeepAlive whenever no frame went out for this long (the server closes after 10 s)."""
    first_audio_within: float = 5.0
    """A connection that has had no audio this long gets a chunk of silence."""
    drain_timeout: float = 5.0
    """How long, after CloseStream, to wait for the last finals."""
    open_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    finalize_on_stop: bool = False
    max_realtime: float | None = 1.2
    """How fast queued audio may go (the service takes at most 1.25x real time); None: as
    fast as the socket takes it (files in --fast mode)."""
    burst_seconds: float | None = None
    """Audio that may go at once before `max_realtime` applies (None: one chunk)."""
    reconnect: bool = True
    give_up_after: float | None = None
    """How long an outage may last before the session ends with an error (None: never)."""
    replay_seconds: float = 60.0
    """How much unconfirmed audio is kept to send again after a drop."""
    stable_after: float = 30.0
    """A connection that stayed up this long resets the backoff."""
    tail_attempts: int = 3
    """Connections tried for the last audio, once capture has ended, before giving up."""


class Session:
    """Stream one audio source until it ends or Stop is asked, reconnecting as needed.

    Retryable ends (network drops, 1011, 1001, 429, 5xx, our own ping timeout) lead to a
    new connection after a backoff, with the unacknowledged audio replayed first; ends
    that retrying cannot fix (400, 401, 402, 403, 404, 1008) stop at once. The rules
    (when to retry, how fast to replay, when a KeepAlive is due) are `core/streaming`'s;
    this class runs the tasks that follow them. `SessionOptions` tunes them.
    """

    def __init__(
        self,
        settings: StreamSettings,
        source: AudioSource,
        observer: SessionObserver,
        options: SessionOptions | None = None,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.source = source
        self.observer = observer
        self.options = options = options or SessionOptions()
        chunk_seconds = settings.chunk_ms / 1000
        self._policy = ReconnectPolicy(
            reconnect=options.reconnect,
            give_up_after=options.give_up_after,
            stable_after=options.stable_after,
            tail_attempts=options.tail_attempts,
            backoff=backoff,
        )
        burst = options.burst_seconds
        self._pacer = Pacer(options.max_realtime, chunk_seconds if burst is None else burst)
        self._keepalive_schedule = KeepaliveSchedule(
            options.keepalive_interval, options.first_audio_within
        )
        self._now = clock
        self.captions = CaptionModel(language=settings.language)
        self.stats = SessionStats()
        self.request_id: str | None = None
        self.last_metadata: Metadata | None = None
        self.connections = 0
        chunk_samples = settings.sample_rate * settings.chunk_ms // 1000
        self.backlog = AudioBacklog(settings.sample_rate, chunk_samples, options.replay_seconds)
        self._audio_ready = asyncio.Event()
        self._idle_sender: _Sender | None = None  # the send task, while it waits for audio
        self._stop_requested = asyncio.Event()
        self._capture_done = False
        self._muted = False
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._capture_sample = 0
        self._last_frame_sent = 0.0
        self._close_stream_sent = False
        self._status = Status(State.IDLE)
        self._next_frame: int | None = None
        set_listener = getattr(source, "set_listener", None)
        if callable(set_listener):
            set_listener(self._on_source_event)

    # -- controls (safe to call from the loop thread at any time) --------------------

    def mute(self, on: bool) -> None:
        """Stop sending audio (it is discarded); KeepAlive holds the connection."""
        self._muted = on

    def pause(self, on: bool) -> None:
        """Hold audio back without discarding it; it is sent when the pause ends."""
        if on:
            self._unpaused.clear()
        else:
            self._unpaused.set()

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def request_stop(self) -> None:
        """Begin a graceful stop: no more capture, CloseStream, drain the last finals."""
        if not self._stop_requested.is_set():
            self._stop_requested.set()
            self._unpaused.set()
            self.source.close()

    @property
    def status(self) -> Status:
        return self._status

    # -- the run --------------------------------------------------------------------

    async def run(self) -> SessionEnd:
        """Run to the end; raises SettingsError for settings that make no sense."""
        self.settings.validate()
        chunker = Chunker(
            in_rate=self.source.sample_rate,
            in_channels=self.source.channels,
            out_rate=self.settings.sample_rate,
            chunk_ms=self.settings.chunk_ms,
        )
        await self.source.start()
        capture = asyncio.create_task(self._capture(chunker), name="capture")
        try:
            return await self._connect_loop()
        finally:
            self.source.close()
            capture.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await capture
            self._emit(self.captions.finish())

    async def _connect_loop(self) -> SessionEnd:
        """Connect, stream, and reconnect after retryable ends, as `ReconnectPolicy` says."""
        policy = self._policy
        while True:
            state = State.CONNECTING if self.connections == 0 else State.RECONNECTING
            self._set_status(state, "connecting" if state is State.CONNECTING else "reconnecting")
            policy.attempt(finishing=self._capture_done)
            meaning, detail, retry_after = await self._attempt()
            if meaning is None:  # the stream ended as asked, every second of it transcribed
                return self._conclude_stopped()
            now = self._now()
            decision = policy.ended(
                meaning,
                now=now,
                retry_after=retry_after,
                finishing=self._capture_done,
                random=random.random(),
            )
            if isinstance(decision, GiveUp) and not decision.note:
                return self._fail(meaning, detail)  # retrying cannot fix this ending
            if self._stop_requested.is_set():
                # Stop was asked and the server is away: end now, saying what was lost
                return self._conclude_stopped(interrupted=True)
            if isinstance(decision, GiveUp):
                return self._fail(meaning, detail, self._gave_up(policy.outage(now)))
            delay = decision.delay(now)
            self._set_status(
                State.RECONNECTING,
                f"Reconnecting in {delay:.0f} s (attempt {decision.attempt}, audio kept)"
                if delay >= 1
                else f"Reconnecting (attempt {decision.attempt}, audio kept)",
                meaning,
                reason=detail,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay)
            if self._stop_requested.is_set():
                return self._conclude_stopped(interrupted=True)

    async def _attempt(self) -> tuple[Meaning | None, str, float | None]:
        """One connection, from the upgrade to its end; (None, ...) when it ended as asked."""
        try:
            conn = await connect(
                self.settings,
                open_timeout=self.options.open_timeout,
                ping_interval=self.options.ping_interval,
                ping_timeout=self.options.ping_timeout,
            )
        except HandshakeRejected as exc:
            self.request_id = exc.request_id
            said = exc.dg_error or exc.body_text
            if 300 <= exc.status <= 399:
                said = f"it pointed to {exc.location}" if exc.location else "it named no address"
            return http_meaning(exc.status, said), said, exc.retry_after
        except ConnectFailed as exc:
            return network_meaning(exc.description), exc.description, None
        self._policy.opened(self._now())
        self.connections += 1
        self.request_id = conn.request_id
        if self.connections > 1:
            self._replay_from_ack()
        try:
            ended, _ = await self._stream(conn)
        finally:
            await conn.close()
        if self._close_stream_sent:
            unconfirmed = self.unconfirmed_seconds
            if unconfirmed <= TAIL_SLACK_SECONDS:
                return None, "", None
            # the stream ended before a final covered the last audio: send that again
            if ended is None:
                why = "no answer in time"
            elif ended.code is None:
                why = "connection dropped"
            else:
                why = f"closed with {ended.code}"
            log.warning("the last %.1f s were not transcribed (%s)", unconfirmed, why)
            return untranscribed_meaning(unconfirmed, why), ended.reason if ended else "", None
        if ended is None:
            return network_meaning("the connection ended unexpectedly"), "", None
        meaning = close_meaning(ended.code, ended.reason, sent_by_client=ended.sent_by_client)
        if ended.code == 1000 and not meaning.retry:
            meaning = network_meaning("the server ended the stream before we asked it to")
        return meaning, ended.reason, None

    def _replay_from_ack(self) -> None:
        """Send again what the last connection received but never finalised."""
        gap = self.backlog.rewind()
        rate = self.settings.sample_rate
        self._emit(self.captions.set_offset(0.0))
        if gap is not None:
            log.warning(
                "the outage outlived the replay buffer: %.1f s of audio lost",
                (gap.end_sample - gap.start_sample) / rate,
            )
            self._emit(self.captions.add_gap(gap.start_sample / rate, gap.end_sample / rate))
        self._audio_ready.set()

    @property
    def unconfirmed_seconds(self) -> float:
        """Audio sent or waiting to be sent that no final has covered yet."""
        pending = self.backlog.pending_samples + self.backlog.unacked_samples
        return pending / self.settings.sample_rate

    def _gave_up(self, outage: float) -> str:
        """Why retrying stopped, and what it cost."""
        text = f"Gave up after {outage:.0f} s without a transcript."
        lost = self.unconfirmed_seconds
        if lost > TAIL_SLACK_SECONDS:
            text += f" {lost:.1f} s of audio were not transcribed."
        return text

    def _conclude_stopped(self, *, interrupted: bool = False) -> SessionEnd:
        lost = self.unconfirmed_seconds
        if interrupted and lost > TAIL_SLACK_SECONDS:
            meaning = untranscribed_meaning(lost, "unreachable when the stream was stopped")
            note = (
                f"Stopped with the last {lost:.1f} s of audio not transcribed: the server was "
                "unreachable or did not confirm them."
            )
            self._set_status(State.STOPPED, note, meaning)
            return SessionEnd(ok=False, exit_code=EXIT_NETWORK, meaning=meaning, note=note)
        detail = "stopped while reconnecting" if interrupted else "finished"
        self._set_status(State.STOPPED, detail)
        return SessionEnd(ok=True, exit_code=0, detail=detail)

    def _fail(self, meaning: Meaning, detail: str, note: str = "") -> SessionEnd:
        self._set_status(State.ERROR, note or detail, meaning, reason=detail)
        return SessionEnd(
            ok=False, exit_code=meaning.exit_code, meaning=meaning, detail=detail, note=note
        )

    async def _stream(self, conn: Connection) -> tuple[ConnectionEnded | None, bool]:
        """Run send, receive and keepalive on one connection until it ends.

        Returns how the connection ended and whether it was drained (the server
        closed after our CloseStream, rather than our drain limit cutting it off).
        """
        clock = ConnectionClock(self.settings.sample_rate)
        self._close_stream_sent = False
        self._last_frame_sent = self._now()
        self._set_status(State.LIVE, self.source.description)
        receiver = asyncio.create_task(self._receive(conn, clock), name="receive")
        sender = asyncio.create_task(self._send(conn, clock), name="send")
        keeper = asyncio.create_task(self._keepalive(conn, clock), name="keepalive")
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not receiver.done():
                error = sender.exception()
                if error is not None and not isinstance(error, ConnectionEnded):
                    raise error
                if error is None:
                    self._set_status(State.STOPPING, "finishing the last captions")
                    limit = self.options.drain_timeout
                    done, _ = await asyncio.wait({receiver}, timeout=limit)
                    if not done:
                        log.warning("drain limit of %.1f s reached", limit)
                        conn.abort()
                        return None, False
            ended = await receiver
            return ended, self._close_stream_sent
        finally:
            for task in (receiver, sender, keeper):
                task.cancel()
            results = await asyncio.gather(receiver, sender, keeper, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError | ConnectionEnded
                ):
                    log.error("stream task failed", exc_info=result)

    async def _capture(self, chunker: Chunker) -> None:
        """Source -> chunker -> backlog. Runs from Start to Stop, across connections."""
        try:
            while not self._stop_requested.is_set():
                block = await self.source.read()
                if block is None:
                    break
                if self._next_frame is not None and block.frame_index > self._next_frame:
                    # the source lost time (device gone, then back): the clock runs on
                    skipped = block.frame_index - self._next_frame
                    rate_ratio = self.settings.sample_rate / self.source.sample_rate
                    self._capture_sample += round(skipped * rate_ratio)
                self._next_frame = block.frame_index + len(block.data)
                ready_at = block.captured_at
                for data in chunker.push(block.data):
                    self._enqueue(data, ready_at)
                await self._hand_over()
            tail = chunker.flush()
            if tail:
                self._enqueue(pad_to_minimum(tail, self.settings.sample_rate), self._now())
                await self._hand_over()
        finally:
            self._capture_done = True
            self._audio_ready.set()

    def _enqueue(self, data: bytes, ready_at: float) -> None:
        self.stats.last_chunk = data
        start = self._capture_sample
        self._capture_sample += len(data) // 2
        if self._muted:
            self.stats.chunks_muted += 1
            return
        self.backlog.add(AudioChunk(data, start, ready_at))

    async def _hand_over(self) -> None:
        """Send what capture just queued, from here if that cannot wait; else wake the sender.

        When the send task is idle (everything before is sent), the connection is open and
        unpaused, the rate limit has room and the socket would take the frame at once, the
        chunk goes out in this same event-loop turn: no hop to another task between a chunk
        existing and its bytes on the socket. Anything else (a backlog to replay, a pause,
        bytes still queued in the transport) is the send task's job, so capture still never
        waits on the network.
        """
        while (chunk := self.backlog.peek()) is not None:
            idle = self._idle_sender
            if (
                idle is None
                or not self._unpaused.is_set()
                or not idle.conn.writable
                or self._rate_excess(idle, chunk) > 0
            ):
                self._audio_ready.set()
                return
            self.backlog.take()
            try:
                await idle.conn.send_audio(chunk.data)
            except ConnectionEnded:
                return  # the receive task reports the end; the chunk is kept for replay
            self._note_sent(chunk, idle.clock)

    def _rate_excess(self, sender: _Sender, chunk: AudioChunk) -> float:
        """Seconds of audio by which sending `chunk` now would exceed `max_realtime`."""
        return self._pacer.excess(
            now=self._now(),
            opened=sender.opened,
            seconds_sent=sender.clock.seconds_sent,
            chunk=chunk.n_samples / self.settings.sample_rate,
        )

    def _note_sent(self, chunk: AudioChunk, clock: ConnectionClock) -> None:
        now = self._now()
        self._last_frame_sent = now
        clock.sent(chunk.capture_sample, chunk.n_samples)
        self.stats.chunks_sent += 1
        self.stats.bytes_sent += len(chunk.data)
        self.stats.send_latencies.append(now - chunk.ready_at)

    async def _next_chunk(self, sender: _Sender) -> AudioChunk | None:
        """The next chunk to send, or None once capture has ended and all is sent."""
        while True:
            chunk = self.backlog.take()
            if chunk is not None:
                return chunk
            if self._capture_done:
                return None
            self._audio_ready.clear()
            self._idle_sender = sender
            try:
                await self._audio_ready.wait()
            finally:
                self._idle_sender = None

    async def _send(self, conn: Connection, clock: ConnectionClock) -> None:
        """Backlog -> socket at no more than `max_realtime`; then Finalize/CloseStream."""
        sender = _Sender(conn, clock, self._now())
        while True:
            await self._unpaused.wait()
            chunk = await self._next_chunk(sender)
            if chunk is None:
                break
            wait = self._pacer.wait(self._rate_excess(sender, chunk))
            if wait > 0:
                await asyncio.sleep(wait)
            await conn.send_audio(chunk.data)
            self._note_sent(chunk, clock)
        if self.options.finalize_on_stop:
            self.captions.note_finalize_sent()
            await conn.send_control("Finalize")
        self._close_stream_sent = True
        await conn.send_control("CloseStream")
        self._last_frame_sent = self._now()

    async def _keepalive(self, conn: Connection, clock: ConnectionClock) -> None:
        """KeepAlive when no frame has gone out for a while; silence on a connection that
        never had audio (paused or muted from the start), which KeepAlive alone would not
        hold. `KeepaliveSchedule` decides; this task sleeps until something may be due, not
        on a fixed tick (each wake-up of an idle process costs CPU; see docs/performance.md).
        """
        schedule = self._keepalive_schedule
        opened = self._now()
        while not self._close_stream_sent:
            due = schedule.due(
                opened=opened, last_frame=self._last_frame_sent, samples_sent=clock.samples_sent
            )
            await asyncio.sleep(max(0.0, due - self._now()) + 0.001)
            if self._close_stream_sent:
                return
            action = schedule.action(
                now=self._now(),
                opened=opened,
                last_frame=self._last_frame_sent,
                samples_sent=clock.samples_sent,
            )
            if action is KeepaliveAction.SILENCE:
                silence = bytes(self.settings.sample_rate * self.settings.chunk_ms // 1000 * 2)
                await conn.send_audio(silence)
                clock.sent(self._capture_sample, len(silence) // 2)
                self._last_frame_sent = self._now()
            elif action is KeepaliveAction.KEEPALIVE:
                self._last_frame_sent = self._now()
                await conn.send_control("KeepAlive")
                self.stats.keepalives_sent += 1

    async def _receive(self, conn: Connection, clock: ConnectionClock) -> ConnectionEnded:
        """Socket -> parser -> caption model, until the connection ends."""
        while True:
            try:
                raw = await conn.recv()
            except ConnectionEnded as ended:
                return ended
            arrived = self._now()
            message = parse_message(raw)
            self.stats.messages_received += 1
            self._handle(message, clock)
            if isinstance(message, Results):
                self.stats.caption_latencies.append(self._now() - arrived)

    def _handle(self, message: ServerMessage, clock: ConnectionClock) -> None:
        if isinstance(message, Results):
            self.stats.results_received += 1
            if self.request_id is None:
                self.request_id = message.request_id
            moved = results_on_capture_clock(message, clock)
            self._emit(self.captions.on_results(moved))
            rate = self.settings.sample_rate
            # interims (empty ones too, during silence) show how far the server has heard
            self.stats.lag_seconds = max(0.0, self._capture_sample / rate - moved.end)
            self._policy.progress(self._now())
            if message.is_final:
                # a final can only confirm audio this connection actually sent
                end = min(message.end, clock.seconds_sent)
                self.backlog.ack(round(clock.to_capture(end) * rate))
            return
        if isinstance(message, UtteranceEnd):
            moved_end = utterance_end_on_capture_clock(message, clock)
            self._emit(self.captions.on_utterance_end(moved_end))
            return
        if isinstance(message, Metadata):
            self.last_metadata = message
            if clock.samples_sent and message.channels == 0 and message.duration == 0:
                log.warning("the server decoded no audio: check the encoding and sample rate")
            elif clock.samples_sent and message.duration >= clock.seconds_sent - 0.05:
                # the server's summary of a finished stream: it heard every second we sent
                rate = self.settings.sample_rate
                self.backlog.ack(round(clock.to_capture(clock.seconds_sent) * rate))
        elif isinstance(message, ErrorMessage):
            log.warning("server %s: %s %s", message.kind, message.description, message.message)
        elif isinstance(message, Unknown):
            self.stats.unknown_messages += 1
            log.warning("ignored a server message (%s): %.120s", message.reason, message.raw)
        elif isinstance(message, SpeechStarted):
            pass
        self.observer.message_received(message)

    def _on_source_event(self, event: SourceEvent) -> None:
        """The audio source lost or regained its device, or went digitally silent."""
        detail = event.message
        if event.kind == "lost":
            detail += " The connection is kept alive meanwhile."
        self._set_status(
            self._status.state, detail, self._status.meaning, reason=self._status.reason
        )
        self.observer.source_changed(event)

    def _emit(self, events: Sequence[CaptionEvent]) -> None:
        if events:
            self.observer.captions_changed(events)

    def _set_status(
        self, state: State, detail: str = "", meaning: Meaning | None = None, *, reason: str = ""
    ) -> None:
        self._status = Status(state, detail, meaning, self.request_id, reason)
        self.observer.status_changed(self._status)
