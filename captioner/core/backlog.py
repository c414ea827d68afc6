"""The audio backlog: what is waiting to be sent, and what was sent but not yet confirmed.

Capture never stops for the network. Chunks wait here until the sender takes them, and
stay here after sending until a final result covers them (the server "acknowledges"
audio by finalising words up to a time). When a connection is lost, everything after
the last acknowledged sample is rewound and sent again on the next connection, so no
word is lost and none is finalised twice. The backlog holds at most `window_seconds`
of audio; if an outage outlives it, the oldest audio goes and the loss is reported.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: Deepgram's advice is 20-250 ms of audio per message; shorter pieces are padded.
MIN_CHUNK_MS = 20


@dataclass(frozen=True)
class AudioChunk:
    """16-bit audio and where it starts on the capture clock (in frames: one sample of every
    channel). `frame_bytes` is 2 for mono, 4 for two interleaved channels."""

    data: bytes
    capture_sample: int
    ready_at: float = 0.0
    frame_bytes: int = 2

    @property
    def n_samples(self) -> int:
        return len(self.data) // self.frame_bytes

    @property
    def end_sample(self) -> int:
        return self.capture_sample + self.n_samples


@dataclass(frozen=True)
class Gap:
    """Captured audio that could not be kept for replay (capture samples, end exclusive)."""

    start_sample: int
    end_sample: int


def pad_to_minimum(data: bytes, sample_rate: int, frame_bytes: int = 2) -> bytes:
    """Pad with silence to the shortest sensible message (MIN_CHUNK_MS)."""
    minimum = sample_rate * MIN_CHUNK_MS // 1000 * frame_bytes
    return data if len(data) >= minimum else data + bytes(minimum - len(data))


class AudioBacklog:
    def __init__(
        self,
        sample_rate: int,
        chunk_samples: int,
        window_seconds: float = 60.0,
        *,
        frame_bytes: int = 2,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("the replay window must be positive")
        self.sample_rate = sample_rate
        self.frame_bytes = frame_bytes
        self.chunk_samples = chunk_samples
        self.window_samples = int(window_seconds * sample_rate)
        self._pending: deque[AudioChunk] = deque()
        self._sent: deque[AudioChunk] = deque()
        self._acked = 0
        self._newest = 0
        self._lost_start: int | None = None
        self._lost_end = 0

    # -- capture side ---------------------------------------------------------------

    def add(self, chunk: AudioChunk) -> None:
        """A newly captured chunk, waiting to be sent."""
        if not chunk.data:
            return
        self._pending.append(chunk)
        self._newest = max(self._newest, chunk.end_sample)
        self._trim()

    # -- send side ------------------------------------------------------------------

    def peek(self) -> AudioChunk | None:
        """The next chunk to send, left in place."""
        return self._pending[0] if self._pending else None

    def take(self) -> AudioChunk | None:
        """The next chunk to send; it is kept for replay until acknowledged."""
        if not self._pending:
            return None
        chunk = self._pending.popleft()
        self._sent.append(chunk)
        return chunk

    def ack(self, capture_sample: int) -> None:
        """A final result covered the audio up to `capture_sample`."""
        if capture_sample <= self._acked:
            return
        self._acked = capture_sample
        while self._sent and self._sent[0].end_sample <= capture_sample:
            self._sent.popleft()

    def rewind(self) -> Gap | None:
        """Put every unacknowledged chunk back in front of the queue, for a new connection.

        Returns the stretch of audio after the last acknowledgement that was lost because
        the outage outlived the window, if any.
        """
        chunks = [c for c in self._sent if c.end_sample > self._acked]
        chunks.extend(self._pending)
        self._sent.clear()
        self._pending = deque(self._rechunk(chunks))
        gap = None
        if self._lost_start is not None:
            start = max(self._lost_start, self._acked)
            if self._lost_end > start:
                gap = Gap(start, self._lost_end)
        self._lost_start = None
        return gap

    # -- state ----------------------------------------------------------------------

    @property
    def acked_sample(self) -> int:
        return self._acked

    @property
    def pending_samples(self) -> int:
        return sum(c.n_samples for c in self._pending)

    @property
    def unacked_samples(self) -> int:
        return sum(c.n_samples for c in self._sent if c.end_sample > self._acked)

    def __len__(self) -> int:
        return len(self._pending)

    # -- internals --------------------------------------------------------------------

    def _trim(self) -> None:
        oldest_kept = self._newest - self.window_samples
        for queue in (self._sent, self._pending):
            while queue and queue[0].end_sample <= oldest_kept:
                lost = queue.popleft()
                if lost.end_sample > self._acked:
                    start = max(lost.capture_sample, self._acked)
                    if self._lost_start is None or start < self._lost_start:
                        self._lost_start = start
                    self._lost_end = max(self._lost_end, lost.end_sample)
            if queue:
                return

    def _rechunk(self, chunks: list[AudioChunk]) -> list[AudioChunk]:
        """Contiguous runs from the acknowledged sample on, cut into whole chunks again."""
        out: list[AudioChunk] = []
        run = bytearray()
        run_start = 0
        run_ready = 0.0
        for chunk in chunks:
            data = chunk.data
            start = chunk.capture_sample
            if start < self._acked:
                data = data[(self._acked - start) * self.frame_bytes :]
                start = self._acked
            if not data:
                continue
            if run and start != run_start + len(run) // self.frame_bytes:
                out.extend(self._cut(bytes(run), run_start, run_ready))
                run = bytearray()
            if not run:
                run_start = start
                run_ready = chunk.ready_at
            run.extend(data)
        if run:
            out.extend(self._cut(bytes(run), run_start, run_ready))
        return out

    def _cut(self, data: bytes, start: int, ready_at: float) -> list[AudioChunk]:
        fb = self.frame_bytes
        size = self.chunk_samples * fb
        minimum = self.sample_rate * MIN_CHUNK_MS // 1000 * fb
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        if len(pieces) > 1 and len(pieces[-1]) < minimum:
            short = pieces.pop()
            pieces[-1] += short
        out = []
        position = start
        for piece in pieces:
            padded = pad_to_minimum(piece, self.sample_rate, fb)
            out.append(AudioChunk(padded, position, ready_at, fb))
            position += len(piece) // fb
        return out
