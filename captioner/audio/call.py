"""Two inputs at once, for both sides of a call: the microphone and what the computer plays.

Each input is captured by its own source, on its own device clock. `CallSource` puts both
on one clock, the session's monotonic clock, and hands the session one two-channel stream:
channel 0 is the first input ("You"), channel 1 the second ("Others"). The session sends it
as interleaved linear16 with `multichannel=true&channels=2` on one connection.

How the channels stay together:

* Every input is resampled by its own `ClockAligner` onto the reference clock and the
  stream's rate, so a device whose crystal runs 0.1 % fast does not run ahead.
* A channel's position is where the clock says it should be: when an input starts late, or
  comes back after it was lost (its frame count jumps), its channel is filled with silence up
  to the time its audio resumes.
* An input that stalls, vanishes or ends does not hold the other back: once its channel is
  `max_lag` behind the clock, it is filled with silence, and the other keeps captioning. When
  every input is silent that way, nothing is sent: the stream's frame count jumps ahead, as a
  lost microphone's does, and the session holds the connection with KeepAlive.
* The same sound on both inputs is found and gated (`captioner.audio.crosstalk`): the
  speakers' echo in the microphone, and a system-audio input that the sound server moved to
  the microphone when its own device went away (that input is then reported lost, and waits
  for its device like any lost input).

The stream ends when every input has ended (or on `close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from captioner.audio.crosstalk import Crosstalk
from captioner.audio.sources import AudioBlock, AudioSource
from captioner.core.alignment import ClockAligner

__all__ = ["CallChannel", "CallSource"]

log = logging.getLogger(__name__)

MAX_LAG: Final = 0.5
"""Seconds a channel may fall behind the clock before it is filled with silence."""

_MAX_BLOCK_SECONDS: Final = 1.0


@dataclass
class CallChannel:
    """One input's state: its aligned audio waiting to be interleaved, and its clock."""

    source: AudioSource
    name: str
    pending: npt.NDArray[np.float32]
    position: int = 0
    """Frames of this channel handed out or waiting, from the stream's start."""
    aligner: ClockAligner | None = None
    next_frame: int | None = None
    ended: bool = False
    skip: int = 0
    """Aligned frames still to discard: audio that arrived after its place was filled."""
    filled: int = 0
    """Frames of silence put in for this input while it was missing or stalled."""
    copy_of: int | None = None
    """The channel this input has been found to record a copy of (it is muted meanwhile)."""

    @property
    def available(self) -> int:
        return len(self.pending)


class CallSource:
    """An `AudioSource` of two (or more) inputs, one per channel, on one clock."""

    def __init__(
        self,
        sources: Sequence[AudioSource],
        names: Sequence[str] = ("You", "Others"),
        *,
        rate: int = 16000,
        block_ms: int = 100,
        max_lag: float = MAX_LAG,
        clock: Callable[[], float] = time.monotonic,
        crosstalk: bool = True,
    ) -> None:
        """`crosstalk` False: no echo or copy detection (for measuring the alignment with the
        same sound played into both inputs, which is exactly what it would gate)."""
        if len(sources) < 2:
            raise ValueError("a call needs at least two inputs")
        self._channels = [
            CallChannel(
                source,
                names[i] if i < len(names) else f"Input {i + 1}",
                np.zeros(0, dtype=np.float32),
            )
            for i, source in enumerate(sources)
        ]
        self._rate: Final = rate
        self._block = max(1, rate * block_ms // 1000)
        self._max_lag = max_lag
        self._clock = clock
        self._origin: float | None = None
        self._emitted = 0
        self._arrived = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self._closed = False
        self._listener: Callable[[Any], None] | None = None
        self._crosstalk = Crosstalk(rate) if crosstalk else None

    # -- AudioSource -----------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def channels(self) -> int:
        return len(self._channels)

    @property
    def description(self) -> str:
        return " + ".join(f"{c.name}: {c.source.description}" for c in self._channels)

    @property
    def dropped_blocks(self) -> int:
        return sum(c.source.dropped_blocks for c in self._channels)

    @property
    def names(self) -> tuple[str, ...]:
        """What each input is called, channel by channel ("You", "Others")."""
        return tuple(c.name for c in self._channels)

    @property
    def inputs(self) -> tuple[CallChannel, ...]:
        return tuple(self._channels)

    def set_listener(self, listener: Callable[[Any], None]) -> None:
        """Pass each input's device events on, naming the input they are about."""
        self._listener = listener
        for channel in self._channels:
            set_listener = getattr(channel.source, "set_listener", None)
            if callable(set_listener):
                set_listener(_Named(channel.name, listener))

    async def start(self) -> None:
        started: list[AudioSource] = []
        try:
            for channel in self._channels:
                await channel.source.start()
                started.append(channel.source)
        except BaseException:
            for source in started:
                source.close()
            raise
        self._origin = self._clock()
        self._readers = [
            asyncio.create_task(self._pump(c), name=f"capture {c.name}") for c in self._channels
        ]

    async def read(self) -> AudioBlock | None:
        """The next interleaved block, (frames, channels) float32; None once all inputs ended."""
        if self._origin is None:
            raise RuntimeError("call start() before read()")
        while True:
            block = self._take()
            if block is not None:
                return block
            if all(c.ended for c in self._channels):
                return self._take(final=True)
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), self._max_lag / 4)
            self._fill_lagging()

    def close(self) -> None:
        self._closed = True
        for channel in self._channels:
            channel.source.close()

    async def aclose(self) -> None:
        """Close, and wait for the inputs' readers to finish."""
        self.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    # -- internals ------------------------------------------------------------------

    async def _pump(self, channel: CallChannel) -> None:
        """One input: read, align, queue; mark the channel ended when its source ends."""
        try:
            while True:
                block = await channel.source.read()
                if block is None:
                    break
                self._add(channel, block)
                self._arrived.set()
        finally:
            channel.ended = True
            self._arrived.set()

    def _add(self, channel: CallChannel, block: AudioBlock) -> None:
        rate = channel.source.sample_rate
        frames = block.frames
        first_at = block.captured_at - frames / rate
        if channel.aligner is None or block.frame_index != channel.next_frame:
            # a new run of audio (the first, or after the device came back): it starts where
            # the clock says, and whatever the channel missed meanwhile is silence
            # (or, when its place was filled with silence meanwhile, the late audio is dropped)
            assert self._origin is not None
            due = round((first_at - self._origin) * self._rate)
            if due > channel.position:
                self._fill(channel, due - channel.position)
            channel.skip = max(0, channel.position - due)
            channel.aligner = ClockAligner(rate, start=first_at, out_rate=self._rate)
            if block.frame_index != channel.next_frame and channel.copy_of is not None:
                channel.copy_of = None  # reopened: judged afresh
                if self._crosstalk is not None:
                    self._crosstalk.forget_copy()
        channel.next_frame = block.frame_index + frames
        aligned = channel.aligner.push(_mono(block.data), block.captured_at)
        if channel.skip:
            dropped = min(channel.skip, len(aligned))
            aligned = aligned[dropped:]
            channel.skip -= dropped
        self._append(channel, aligned)

    def _fill(self, channel: CallChannel, frames: int) -> None:
        self._append(channel, np.zeros(frames, dtype=np.float32))
        channel.filled += frames

    @staticmethod
    def _append(channel: CallChannel, samples: npt.NDArray[np.float32]) -> None:
        if len(samples):
            channel.pending = np.concatenate([channel.pending, samples])
            channel.position += len(samples)

    def _fill_lagging(self) -> None:
        """A channel more than `max_lag` behind the clock gets silence up to the clock, so a
        stalled or missing input never holds the other back."""
        assert self._origin is not None
        now = round((self._clock() - self._origin) * self._rate)
        behind = round(self._max_lag * self._rate)
        lagging = [c for c in self._channels if c.position < now - behind]
        if len(lagging) == len(self._channels) and not any(c.available for c in lagging):
            # nothing is captured at all (every device lost or stalled): the stream's clock
            # jumps ahead instead of filling silence, as one lost microphone's does, so the
            # session holds the connection with KeepAlive rather than sending (and paying
            # for) silence, and nothing piles up to be sent late when a device returns
            for channel in self._channels:
                channel.position = now
                channel.aligner = None
            self._emitted = now
            return
        for channel in lagging:
            self._fill(channel, now - channel.position)
            channel.aligner = None  # what comes next is placed by its own time

    def _take(self, *, final: bool = False) -> AudioBlock | None:
        ready = min(c.available for c in self._channels)
        if final:
            ready = max(c.available for c in self._channels)
        elif ready < self._block:
            return None
        else:
            ready = min(ready, round(_MAX_BLOCK_SECONDS * self._rate))
        if ready == 0:
            return None
        out = np.zeros((ready, len(self._channels)), dtype=np.float32)
        for index, channel in enumerate(self._channels):
            part = channel.pending[:ready]
            out[: len(part), index] = part
            channel.pending = channel.pending[len(part) :]
            channel.position += ready - len(part)  # a short channel's tail is silence
        self._watch_crosstalk(out)
        block = AudioBlock(out, self._emitted, self._clock())
        self._emitted += ready
        return block

    def _watch_crosstalk(self, out: npt.NDArray[np.float32]) -> None:
        """Echo and copies between the first two inputs (see `captioner.audio.crosstalk`)."""
        if self._crosstalk is None:
            return
        for event in self._crosstalk.process(out):
            you, others = self._channels[0].name, self._channels[1].name
            if event.kind == "copy":
                self._found_copy(1, 0)
            elif event.kind == "copy-gone":
                self._channels[1].copy_of = None
                self._tell("restored", f"{others}: records its own sound again.")
            elif event.kind == "echo":
                self._tell(
                    "echo",
                    f"The microphone hears the speakers: {others}'s words are shown once, "
                    f"under {others}, and {you} is not captioned while they speak. "
                    "A headset would help.",
                )
            else:
                self._tell("no-echo", "The microphone no longer hears the speakers.")

    def _found_copy(self, index: int, other: int) -> None:
        channel = self._channels[index]
        channel.copy_of = other
        first = self._channels[other].name
        reason = (
            f"it records the same sound as {first} (its device went away and the sound "
            "server moved it)"
        )
        restart = getattr(channel.source, "restart", None)
        if callable(restart):
            restart(reason)  # the input says it is lost, and waits for its own device
        else:
            self._tell("lost", f"{channel.name}: {reason}; muted.")

    def _tell(self, kind: str, message: str) -> None:
        log.warning("%s", message)
        if self._listener is None:
            return
        from captioner.audio.resilient import SourceEvent

        self._listener(SourceEvent(kind, message))  # type: ignore[arg-type]


class _Named:
    """Puts the input's name in front of a device event's message ("Others: ...")."""

    def __init__(self, name: str, listener: Callable[[Any], None]) -> None:
        self._name = name
        self._listener = listener

    def __call__(self, event: Any) -> None:
        message = getattr(event, "message", None)
        if isinstance(message, str):
            with contextlib.suppress(TypeError, ValueError):
                event = type(event)(event.kind, f"{self._name}: {message}")
        self._listener(event)


def _mono(data: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """One input's block as float32 mono in [-1, 1], whatever its type and channel count."""
    samples = np.asarray(data)
    if samples.dtype == np.int16:
        scaled = samples.astype(np.float32) / np.float32(32768.0)
    elif samples.dtype.kind == "f":
        scaled = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    else:
        info = np.iinfo(samples.dtype)
        scaled = samples.astype(np.float32) / np.float32(max(abs(info.min), info.max))
    if scaled.ndim == 2:
        scaled = scaled.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(scaled.reshape(-1), dtype=np.float32)
