"""Audio sources: a microphone (here) or a file (`wavfile.py`), both read as a stream of
`AudioBlock` values.

Two rules shape this module. Capture never waits for the consumer: a microphone produces
blocks on its own clock into a bounded `BlockBuffer` (a file paced in real time, which stands
in for one, works out the same from the time), and what does not fit is counted, not
silently lost. And PortAudio's thread
never touches asyncio objects: the callback copies the block and hands it to the event loop
with ``call_soon_threadsafe``. A callback stream (not blocking reads) is used because a
blocking read can hang forever when the audio server goes away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

import numpy.typing as npt

from captioner.audio.devices import (
    OPEN_STREAMS,
    AudioError,
    DeviceError,
    InputDevice,
    find_input_device,
    load_sounddevice,
)
from captioner.audio.system import pulse_source_selected

__all__ = [
    "AudioBlock",
    "AudioFileError",
    "AudioSource",
    "BlockBuffer",
    "MicrophoneSource",
    "describe_device",
]

DEFAULT_MAX_BLOCKS: Final = 500
"""Room for 10 s of 20 ms blocks: rides out a stalled consumer without unbounded memory."""

MIN_FILE_RATE: Final = 8000
MAX_FILE_RATE: Final = 192000
_BLOCK_MS_RANGE: Final = (5, 1000)


class AudioFileError(AudioError):
    """A file that cannot be used as an audio source; the message names the file and why."""


@dataclass(frozen=True, slots=True, eq=False)
class AudioBlock:
    """Frames as captured, where they sit in the stream, and when they arrived.

    Compared by identity: element-wise array comparison has no single truth value.

    ``frame_index`` counts frames from the start of the source, so a gap between consecutive
    blocks shows exactly how much audio was dropped. ``captured_at`` is ``time.monotonic()``
    when the block became available.
    """

    data: npt.NDArray[Any]
    frame_index: int
    captured_at: float

    @property
    def frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def end_index(self) -> int:
        """Frame index just after this block: the next block's ``frame_index`` if none was lost."""
        return self.frame_index + self.frames


@runtime_checkable
class AudioSource(Protocol):
    """What a session needs from anything that produces audio."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def description(self) -> str: ...

    @property
    def dropped_blocks(self) -> int: ...

    async def start(self) -> None: ...

    async def read(self) -> AudioBlock | None:
        """The next block, or None once the source has ended (see its ``end_reason``)."""
        ...

    def close(self) -> None: ...


class BlockBuffer:
    """A bounded FIFO of blocks between a producer on its own clock and an async reader.

    Every method must be called on the event loop's thread (the microphone callback reaches
    ``put_nowait`` through ``call_soon_threadsafe``). When full, the incoming block is dropped
    and counted: what is already queued stays contiguous, and the reader sees the loss as a
    jump in ``frame_index`` at one place instead of audio missing from the middle of a run.
    After ``close`` the reader still gets what was queued, then None.
    """

    def __init__(self, max_blocks: int = DEFAULT_MAX_BLOCKS) -> None:
        check_max_blocks(max_blocks)
        self.max_blocks: Final = max_blocks
        self.dropped_blocks = 0
        self.dropped_frames = 0
        self._blocks: collections.deque[AudioBlock] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, block: AudioBlock) -> bool:
        """Queue a block; False if it was dropped (buffer full) or refused (buffer closed)."""
        if self._closed:
            return False
        if len(self._blocks) >= self.max_blocks:
            self.dropped_blocks += 1
            self.dropped_frames += block.frames
            return False
        self._blocks.append(block)
        self._wake_one()
        return True

    async def get(self) -> AudioBlock | None:
        """The oldest queued block; waits for one; None once closed and empty."""
        while not self._blocks:
            if self._closed:
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        block = self._blocks.popleft()
        if self._blocks:
            self._wake_one()
        return block

    def close(self) -> None:
        """Accept nothing more; readers drain what is queued and then get None."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def describe_device(device: InputDevice) -> str:
    """What a capture source says it records, e.g. "Microphone · USB Mic (ALSA)"."""
    if device.is_system_audio:
        return f"System audio · {device.name} ({device.hostapi})"
    return f"Microphone · {device.name} ({device.hostapi})"


def check_max_blocks(max_blocks: int) -> None:
    if isinstance(max_blocks, bool) or not isinstance(max_blocks, int) or max_blocks < 1:
        raise ValueError(f"max_blocks must be a whole number >= 1, got {max_blocks!r}")


def check_block_ms(block_ms: int) -> None:
    low, high = _BLOCK_MS_RANGE
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or not low <= block_ms <= high:
        raise ValueError(f"block_ms={block_ms!r} is outside the allowed range {low}..{high} ms")


class MicrophoneSource:
    """Live capture from a PortAudio input device through a callback stream.

    The device is resolved when the source is made (so ``sample_rate``, ``channels`` and
    ``description`` are known before ``start``); the stream opens in ``start``. The source
    ends, and ``read`` returns None, when it is closed, when PortAudio finishes the stream on
    its own (device gone, server stopped), or when no block has arrived for
    ``stall_timeout`` seconds, which a running input stream never does. ``end_reason`` says
    which.
    """

    def __init__(
        self,
        device: InputDevice | str | int | None = None,
        samplerate: int | None = None,
        block_ms: int = 20,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
        *,
        dtype: Literal["float32", "int16"] = "float32",
        stall_timeout: float = 5.0,
    ) -> None:
        check_block_ms(block_ms)
        if dtype not in ("float32", "int16"):
            raise ValueError(f"dtype must be 'float32' or 'int16', got {dtype!r}")
        if not stall_timeout > 0:
            raise ValueError(f"stall_timeout must be positive, got {stall_timeout!r}")
        self.device: Final = (
            device if isinstance(device, InputDevice) else find_input_device(device)
        )
        rate = samplerate if samplerate is not None else round(self.device.default_samplerate)
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"samplerate must be a positive whole number, got {samplerate!r}")
        self._sample_rate: Final = rate
        self._channels: Final = max(1, min(self.device.max_input_channels, 2))
        self.block_ms: Final = block_ms
        self.blocksize: Final = max(1, round(rate * block_ms / 1000))
        self.dtype: Final = dtype
        self.stall_timeout: Final = stall_timeout
        self.end_reason: str | None = None
        self.overflows = 0
        """Callbacks whose status reported an input overflow (PortAudio lost audio)."""
        self.status_flags = 0
        """Callbacks whose status reported anything at all, overflows included."""
        self.callback_errors = 0
        """Callbacks that failed internally; counted, because raising would stop the stream."""
        self.lost_after_loop_closed = 0
        self._buffer = BlockBuffer(max_blocks)
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_frame = 0
        self._last_callback_at = 0.0
        self._closing = False

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def description(self) -> str:
        return describe_device(self.device)

    @property
    def dropped_blocks(self) -> int:
        return self._buffer.dropped_blocks

    @property
    def dropped_frames(self) -> int:
        return self._buffer.dropped_frames

    @property
    def frames_captured(self) -> int:
        """Frames PortAudio has delivered so far, dropped ones included."""
        return self._next_frame

    @property
    def buffered_blocks(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        """Open and start the input stream; a refusal becomes a `DeviceError` with advice."""
        if self._stream is not None or self._buffer.closed:
            raise RuntimeError("a MicrophoneSource can be started once")
        sd = load_sounddevice()
        self._loop = asyncio.get_running_loop()
        self._last_callback_at = time.monotonic()
        try:
            with pulse_source_selected(self.device.pulse_source):
                stream = sd.InputStream(
                    samplerate=self._sample_rate,
                    blocksize=self.blocksize,
                    device=self.device.index,
                    channels=self._channels,
                    dtype=self.dtype,
                    callback=self._on_audio,
                    finished_callback=self._on_finished,
                )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(
                f"Could not open {self.device.label} at {self._sample_rate} Hz, "
                f"{self._channels} channel(s): {exc}. Try another sample rate or device."
            ) from exc
        self._stream = stream
        OPEN_STREAMS.add(self)
        try:
            stream.start()
        except sd.PortAudioError as exc:
            self._closing = True
            stream.close(ignore_errors=True)
            OPEN_STREAMS.discard(self)
            self._end(f"could not start: {exc}")
            raise DeviceError(f"Could not start recording from {self.device.label}: {exc}") from exc

    async def read(self) -> AudioBlock | None:
        if self._stream is None and not self._buffer.closed:
            raise RuntimeError("call start() before read()")
        while True:
            if len(self._buffer) or self._buffer.closed:
                return await self._buffer.get()
            wait = self._last_callback_at + self.stall_timeout - time.monotonic()
            if wait <= 0:
                self._end(
                    f"no audio from {self.device.label} for {self.stall_timeout:g} s "
                    "(device unplugged or audio server stopped?)"
                )
                self._stop_stream()
                continue
            try:
                return await asyncio.wait_for(self._buffer.get(), wait)
            except TimeoutError:
                continue

    def close(self) -> None:
        """Stop capture; ``read`` drains what is buffered, then returns None. Idempotent."""
        self.end("closed")

    def end(self, reason: str) -> None:
        """Stop capture, giving `reason` as the `end_reason`."""
        self._end(reason)
        self._stop_stream()

    def _stop_stream(self) -> None:
        stream = self._stream
        if self._closing or stream is None:
            return
        self._closing = True
        try:
            stream.abort(ignore_errors=True)
        finally:
            stream.close(ignore_errors=True)
            OPEN_STREAMS.discard(self)

    def _end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._buffer.close()

    def _on_audio(self, indata: npt.NDArray[Any], frames: int, _time: Any, status: Any) -> None:
        """PortAudio thread: copy, stamp, hand over. Must never raise (that stops the stream)."""
        try:
            captured_at = time.monotonic()
            self._last_callback_at = captured_at
            if status:
                self.status_flags += 1
                if status.input_overflow:
                    self.overflows += 1
            block = AudioBlock(indata.copy(), self._next_frame, captured_at)
            self._next_frame += frames
            loop = self._loop
            if loop is None or loop.is_closed():
                self.lost_after_loop_closed += 1
                return
            try:
                loop.call_soon_threadsafe(self._buffer.put_nowait, block)
            except RuntimeError:  # the loop closed between the check and the call
                self.lost_after_loop_closed += 1
        except Exception:
            self.callback_errors += 1

    def _on_finished(self) -> None:
        """PortAudio thread, once the stream has stopped for whatever reason."""
        OPEN_STREAMS.discard(self)  # a finished stream no longer holds a rescan back
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        reason = (
            "closed"
            if self._closing
            else f"the audio stream from {self.device.label} stopped "
            "(device unplugged or audio server stopped?)"
        )
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody to tell
            loop.call_soon_threadsafe(self._end, reason)
