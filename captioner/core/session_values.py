"""What a session reports and how it is tuned: plain values, shared by the session, the
window and the command line."""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from captioner.core.closecodes import Meaning

__all__ = ["SessionEnd", "SessionOptions", "SessionStats", "State", "Status", "chunk_dbfs"]


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

    #: bytes per frame of `last_chunk`: 2 for mono, 4 for two interleaved channels
    frame_bytes: int = 2

    @property
    def channel_levels_dbfs(self) -> tuple[float, ...]:
        """Level of each channel of the newest chunk (one per input of a call)."""
        channels = max(1, self.frame_bytes // 2)
        if channels == 1:
            return (chunk_dbfs(self.last_chunk),)
        usable = len(self.last_chunk) // self.frame_bytes * self.frame_bytes
        frames = np.frombuffer(self.last_chunk[:usable], dtype="<i2").reshape(-1, channels)
        return tuple(chunk_dbfs(frames[:, c].tobytes()) for c in range(channels))

    @property
    def level_dbfs(self) -> float:
        """Level of the newest captured chunk, in dB below full scale.

        Computed when read: a meter polls a few times a second, chunks arrive ten times a
        second, and on a cold cache one computation cost nearly half of a chunk's capture
        path (see docs/performance.md).
        """
        return chunk_dbfs(self.last_chunk)


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
