"""The send side of a session: queued audio to one connection's socket, and KeepAlive.

Capture hands each new chunk over (`hand_over`): when the send task is idle, the socket
would take the frame at once and the pace allows, the chunk leaves in that same event-loop
turn; otherwise the send task is woken. Either way capture never waits on the network.
How fast (`Pacer`) and when a KeepAlive is due (`KeepaliveSchedule`) are core/streaming's
rules; this module runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from captioner.core.backlog import AudioBacklog, AudioChunk
from captioner.core.captions import CaptionModel
from captioner.core.config import StreamSettings
from captioner.core.session_values import SessionOptions, SessionStats
from captioner.core.streaming import KeepaliveAction, KeepaliveSchedule, Pacer
from captioner.core.timeline import ConnectionClock
from captioner.net.client import Connection, ConnectionEnded

__all__ = ["AudioOut"]


@dataclass(frozen=True, slots=True)
class _Sender:
    """One connection's send task, as capture sees it when handing a chunk over."""

    conn: Connection
    clock: ConnectionClock
    opened: float


class AudioOut:
    """The backlog to the socket, at a bounded pace, across a session's connections."""

    def __init__(
        self,
        settings: StreamSettings,
        options: SessionOptions,
        backlog: AudioBacklog,
        stats: SessionStats,
        captions: CaptionModel,
        *,
        capture_sample: Callable[[], int],
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.backlog = backlog
        self.stats = stats
        self.captions = captions
        self.capture_sample = capture_sample
        """Where capture has got to (samples): the silence a quiet connection gets goes there."""
        self._now = clock
        self._finalize_on_stop = options.finalize_on_stop
        burst = options.burst_seconds
        self._pacer = Pacer(
            options.max_realtime, settings.chunk_ms / 1000 if burst is None else burst
        )
        self._schedule = KeepaliveSchedule(options.keepalive_interval, options.first_audio_within)
        self.audio_ready = asyncio.Event()
        """Set when there is audio to send (or capture has ended)."""
        self.unpaused = asyncio.Event()
        self.unpaused.set()
        self.capture_done = False
        self.last_frame_sent = 0.0
        self.close_stream_sent = False
        self._idle: _Sender | None = None  # the send task, while it waits for audio

    def connection_opened(self) -> None:
        self.close_stream_sent = False
        self.last_frame_sent = self._now()

    async def hand_over(self) -> None:
        """Send what capture just queued, from here if that cannot wait; else wake the sender.

        When the send task is idle (everything before is sent), the connection is open and
        unpaused, the rate limit has room and the socket would take the frame at once, the
        chunk goes out in this same event-loop turn: no hop to another task between a chunk
        existing and its bytes on the socket. Anything else (a backlog to replay, a pause,
        bytes still queued in the transport) is the send task's job, so capture still never
        waits on the network.
        """
        while (chunk := self.backlog.peek()) is not None:
            idle = self._idle
            if (
                idle is None
                or not self.unpaused.is_set()
                or not idle.conn.writable
                or self._rate_excess(idle, chunk) > 0
            ):
                self.audio_ready.set()
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
        self.last_frame_sent = now
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
            if self.capture_done:
                return None
            self.audio_ready.clear()
            self._idle = sender
            try:
                await self.audio_ready.wait()
            finally:
                self._idle = None

    async def send(self, conn: Connection, clock: ConnectionClock) -> None:
        """Backlog -> socket at no more than `max_realtime`; then Finalize/CloseStream."""
        sender = _Sender(conn, clock, self._now())
        while True:
            await self.unpaused.wait()
            chunk = await self._next_chunk(sender)
            if chunk is None:
                break
            wait = self._pacer.wait(self._rate_excess(sender, chunk))
            if wait > 0:
                await asyncio.sleep(wait)
            await conn.send_audio(chunk.data)
            self._note_sent(chunk, clock)
        if self._finalize_on_stop:
            self.captions.note_finalize_sent()
            await conn.send_control("Finalize")
        self.close_stream_sent = True
        await conn.send_control("CloseStream")
        self.last_frame_sent = self._now()

    async def keepalive(self, conn: Connection, clock: ConnectionClock) -> None:
        """KeepAlive when no frame has gone out for a while; silence on a connection that
        never had audio (paused or muted from the start), which KeepAlive alone would not
        hold. `KeepaliveSchedule` decides; this task sleeps until something may be due, not
        on a fixed tick (each wake-up of an idle process costs CPU; see docs/performance.md).
        """
        schedule = self._schedule
        opened = self._now()
        while not self.close_stream_sent:
            due = schedule.due(
                opened=opened, last_frame=self.last_frame_sent, samples_sent=clock.samples_sent
            )
            await asyncio.sleep(max(0.0, due - self._now()) + 0.001)
            if self.close_stream_sent:
                return
            action = schedule.action(
                now=self._now(),
                opened=opened,
                last_frame=self.last_frame_sent,
                samples_sent=clock.samples_sent,
            )
            if action is KeepaliveAction.SILENCE:
                fb = self.settings.frame_bytes
                silence = bytes(self.settings.sample_rate * self.settings.chunk_ms // 1000 * fb)
                await conn.send_audio(silence)
                clock.sent(self.capture_sample(), len(silence) // fb)
                self.last_frame_sent = self._now()
            elif action is KeepaliveAction.KEEPALIVE:
                self.last_frame_sent = self._now()
                await conn.send_control("KeepAlive")
                self.stats.keepalives_sent += 1
