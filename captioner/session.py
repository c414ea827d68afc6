"""One captioning session: the only owner of asyncio tasks for a stream.

Capture runs from Start to Stop and feeds a backlog of chunks. Each connection runs three
independent tasks: send (backlog -> socket: `sending.AudioOut`), receive (socket -> parser
-> caption model) and keepalive. Sending never waits for a reply; receiving never waits
for a send. When the send task is idle and the socket would take a frame at once, capture
writes its new chunk itself, so live audio leaves in the event-loop turn it arrived in;
capture never waits on the network either way. Everything the outside world needs to know
flows through a plain observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

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
from captioner.core.session_values import (
    SessionEnd,
    SessionOptions,
    SessionStats,
    State,
    Status,
    chunk_dbfs,
)
from captioner.core.streaming import GiveUp, ReconnectPolicy
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
from captioner.sending import AudioOut

__all__ = [
    "Session",
    "SessionEnd",
    "SessionObserver",
    "SessionOptions",
    "SessionStats",
    "State",
    "Status",
    "chunk_dbfs",
]

log = logging.getLogger(__name__)

TAIL_SLACK_SECONDS = 0.25
"""Unconfirmed audio at the end that is not worth a reconnect: less than a word."""


class SessionObserver(Protocol):
    def status_changed(self, status: Status) -> None: ...

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None: ...

    def message_received(self, message: ServerMessage) -> None: ...

    def source_changed(self, event: SourceEvent) -> None:
        """The microphone was lost, came back, or went digitally silent (or sounds again)."""


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
        self._policy = ReconnectPolicy(
            reconnect=options.reconnect,
            give_up_after=options.give_up_after,
            stable_after=options.stable_after,
            tail_attempts=options.tail_attempts,
            backoff=backoff,
        )
        self._now = clock
        self.captions = CaptionModel(language=settings.language)
        self.stats = SessionStats()
        self.request_id: str | None = None
        self.last_metadata: Metadata | None = None
        self.connections = 0
        chunk_samples = settings.sample_rate * settings.chunk_ms // 1000
        self.backlog = AudioBacklog(
            settings.sample_rate,
            chunk_samples,
            options.replay_seconds,
            frame_bytes=settings.frame_bytes,
        )
        self.stats.frame_bytes = settings.frame_bytes
        # a final confirms audio on its own channel only: the backlog is acknowledged up to
        # where every channel has been finalised (per connection, on its clock)
        self._final_ends: dict[int, float] = {}
        self._stop_requested = asyncio.Event()
        self._muted = False
        self._capture_sample = 0
        self._out = AudioOut(
            settings,
            options,
            self.backlog,
            self.stats,
            self.captions,
            capture_sample=lambda: self._capture_sample,
            clock=clock,
        )
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
            self._out.unpaused.clear()
        else:
            self._out.unpaused.set()

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def paused(self) -> bool:
        return not self._out.unpaused.is_set()

    def request_stop(self) -> None:
        """Begin a graceful stop: no more capture, CloseStream, drain the last finals."""
        if not self._stop_requested.is_set():
            self._stop_requested.set()
            self._out.unpaused.set()
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
            out_channels=self.settings.channels if self.settings.multichannel else 1,
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
            policy.attempt(finishing=self._out.capture_done)
            meaning, detail, retry_after = await self._attempt()
            if meaning is None:  # the stream ended as asked, every second of it transcribed
                return self._conclude_stopped()
            now = self._now()
            decision = policy.ended(
                meaning,
                now=now,
                retry_after=retry_after,
                finishing=self._out.capture_done,
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
        if self._out.close_stream_sent:
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
        self._out.audio_ready.set()

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
        self._final_ends = {}
        self._out.connection_opened()
        self._set_status(State.LIVE, self.source.description)
        receiver = asyncio.create_task(self._receive(conn, clock), name="receive")
        sender = asyncio.create_task(self._out.send(conn, clock), name="send")
        keeper = asyncio.create_task(self._out.keepalive(conn, clock), name="keepalive")
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
            return ended, self._out.close_stream_sent
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
                await self._out.hand_over()
            tail = chunker.flush()
            if tail:
                padded = pad_to_minimum(tail, self.settings.sample_rate, self.settings.frame_bytes)
                self._enqueue(padded, self._now())
                await self._out.hand_over()
        finally:
            self._out.capture_done = True
            self._out.audio_ready.set()

    def _enqueue(self, data: bytes, ready_at: float) -> None:
        self.stats.last_chunk = data
        start = self._capture_sample
        frame_bytes = self.settings.frame_bytes
        self._capture_sample += len(data) // frame_bytes
        if self._muted:
            self.stats.chunks_muted += 1
            return
        self.backlog.add(AudioChunk(data, start, ready_at, frame_bytes))

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
                if self.settings.multichannel:
                    if not 0 <= message.channel < self.settings.channels:
                        return  # a channel we never sent confirms nothing
                    ends = self._final_ends
                    ends[message.channel] = max(end, ends.get(message.channel, 0.0))
                    if len(ends) < self.settings.channels:
                        return  # a channel not finalised at all yet confirms nothing
                    end = min(ends.values())
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
