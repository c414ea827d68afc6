"""Audio sources: a microphone or a file, both read as a stream of `AudioBlock` values.

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
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import soundfile  # type: ignore[import-untyped]  # ships no type hints

from captioner.audio.devices import (
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
    "WavFileSource",
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
        _check_max_blocks(max_blocks)
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


def _check_max_blocks(max_blocks: int) -> None:
    if isinstance(max_blocks, bool) or not isinstance(max_blocks, int) or max_blocks < 1:
        raise ValueError(f"max_blocks must be a whole number >= 1, got {max_blocks!r}")


def _check_block_ms(block_ms: int) -> None:
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
        _check_block_ms(block_ms)
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
        try:
            stream.start()
        except sd.PortAudioError as exc:
            self._closing = True
            stream.close(ignore_errors=True)
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
        self._end("closed")
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


class WavFileSource:
    """Audio from a file (anything libsndfile reads: WAV, FLAC, ...), for tests and replays.

    ``pacing="realtime"`` behaves like a microphone: block ``k`` exists once its last frame is
    due by the wall clock, counted from one monotonic start (so lateness never accumulates),
    whether or not anyone reads. A reader that falls behind gets what piled up at once, and
    beyond ``max_blocks`` waiting, newer blocks are dropped and counted, as `BlockBuffer` does
    for a microphone. No task of its own runs the clock: ``read`` works out from the time what
    has been released; when nothing is waiting, it reads the next block from the file ahead of
    time and sleeps until that block is due, so the block reaches the reader in the very
    event-loop turn its audio comes to exist (see docs/performance.md). ``pacing="fast"`` hands
    out blocks as fast as ``read`` is called.

    Problems with the file raise `AudioFileError` when the source is made (and again in
    ``start`` if the file has changed since).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        pacing: Literal["realtime", "fast"] = "realtime",
        block_ms: int = 20,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
    ) -> None:
        if pacing not in ("realtime", "fast"):
            raise ValueError(f"pacing must be 'realtime' or 'fast', got {pacing!r}")
        _check_block_ms(block_ms)
        _check_max_blocks(max_blocks)
        self.path: Final = Path(path)
        self.pacing: Final = pacing
        self.block_ms: Final = block_ms
        self.max_blocks: Final = max_blocks
        info = _inspect_file(self.path)
        self._sample_rate: Final = int(info.samplerate)
        self._channels: Final = int(info.channels)
        self.frames_total: Final = int(info.frames)
        self._read_dtype: Final = "int16" if info.subtype in ("PCM_16", "PCM_U8") else "float32"
        self.blocksize: Final = max(1, round(self._sample_rate * block_ms / 1000))
        self._n_blocks: Final = -(-self.frames_total // self.blocksize)
        self.end_reason: str | None = None
        self._file: soundfile.SoundFile | None = None
        self._file_frame = 0  # where the file's read position is
        # read a second at a time, in whole blocks (see _read_frames)
        self._slab_frames: Final = self.blocksize * max(1, self._sample_rate // self.blocksize)
        self._slab: npt.NDArray[Any] = np.zeros((0, self._channels), dtype=self._read_dtype)
        self._slab_start = 0
        self._started = False
        self._closed = False
        self._ended = False
        # real-time pacing: the clock's state, worked out lazily from the time
        self._started_at = 0.0
        self._released = 0  # blocks released by the clock so far
        self._waiting: collections.deque[int] = collections.deque()  # released, not yet read
        self._left_over: collections.deque[AudioBlock] = collections.deque()  # read at close
        self._ahead: tuple[int, npt.NDArray[Any]] | None = None  # the next block, read early
        self._wake: asyncio.Future[None] | None = None
        self._dropped_blocks = 0
        self._dropped_frames = 0
        self._next_frame = 0  # fast pacing: frames handed out so far

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def description(self) -> str:
        return f"file {self.path.name}"

    @property
    def duration(self) -> float:
        return self.frames_total / self._sample_rate

    @property
    def dropped_blocks(self) -> int:
        self._advance(time.monotonic())
        return self._dropped_blocks

    @property
    def dropped_frames(self) -> int:
        self._advance(time.monotonic())
        return self._dropped_frames

    @property
    def frames_captured(self) -> int:
        """Frames produced so far (released by the clock, or read in fast pacing)."""
        if self.pacing == "fast":
            return self._next_frame
        self._advance(time.monotonic())
        return min(self._released * self.blocksize, self.frames_total)

    @property
    def buffered_blocks(self) -> int:
        """Blocks released by the clock and not read yet."""
        self._advance(time.monotonic())
        return len(self._waiting) + len(self._left_over)

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("a WavFileSource can be started once")
        self._started = True
        self._file = _open_file(self.path)
        if (self._file.samplerate, self._file.channels) != (self._sample_rate, self._channels):
            self._file.close()
            raise AudioFileError(f"{self.path}: the file changed since it was opened")
        self._started_at = time.monotonic()

    async def read(self) -> AudioBlock | None:
        if not self._started:
            raise RuntimeError("call start() before read()")
        if self.pacing == "realtime":
            return await self._read_realtime()
        await asyncio.sleep(0)  # fast pacing still lets other tasks run between blocks
        if self._closed or self._ended:
            return None
        data = self._read_frames(self._next_frame)
        if data is None:
            self._finish()
            return None
        block = AudioBlock(data, self._next_frame, time.monotonic())
        self._next_frame += len(data)
        return block

    def close(self) -> None:
        """Stop producing; ``read`` drains what was released, then returns None. Idempotent."""
        if self._closed:
            return
        if self._started and self.pacing == "realtime" and not self._ended:
            self._advance(time.monotonic())
            # what was released stays readable after the file is closed
            while self._waiting:
                block = self._block(self._waiting.popleft(), time.monotonic())
                if block is None:
                    break
                self._left_over.append(block)
        self._closed = True
        if self.end_reason is None:
            self.end_reason = "closed"
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        if self._file is not None:
            self._file.close()

    # -- real-time pacing ---------------------------------------------------------------

    def _due(self, k: int) -> float:
        """When block ``k`` exists: the moment its last frame is due."""
        end = min((k + 1) * self.blocksize, self.frames_total)
        return self._started_at + end / self._sample_rate

    def _advance(self, now: float) -> None:
        """Release every block due by ``now``: queued for the reader, or dropped when full."""
        if not self._started or self._closed or self._ended or self.pacing != "realtime":
            return
        frames_due = int((now - self._started_at) * self._sample_rate)
        due = self._n_blocks if frames_due >= self.frames_total else frames_due // self.blocksize
        while self._released < due:
            k = self._released
            self._released += 1
            if len(self._waiting) >= self.max_blocks:
                self._dropped_blocks += 1
                self._dropped_frames += min(self.blocksize, self.frames_total - k * self.blocksize)
            else:
                self._waiting.append(k)

    async def _read_realtime(self) -> AudioBlock | None:
        while True:
            if self._left_over:
                return self._left_over.popleft()
            if self._closed or self._ended:
                return None
            self._advance(time.monotonic())
            if self._waiting:
                k = self._waiting.popleft()
                block = self._block(k, self._due(k))  # it arrived when it was due
                if block is None:
                    self._finish()
                return block
            if self._released >= self._n_blocks:
                self._finish()
                return None
            k = self._released
            if self._ahead is None or self._ahead[0] != k:
                data = self._read_frames(k * self.blocksize)
                if data is None:
                    self._finish()
                    return None
                self._ahead = (k, data)
            await self._sleep(self._due(k) - time.monotonic())
            if self._closed or self._released != k:
                continue  # closed, or someone looked at the clock meanwhile: take it from the top
            # The block slept for exists now (even if the timer fired a hair early); hand it
            # over at once, and queue anything else that came due meanwhile behind it.
            woke = time.monotonic()
            self._released = k + 1
            self._advance(woke)
            block = self._block(k, woke)
            if block is None:
                self._finish()
            return block

    async def _sleep(self, delay: float) -> None:
        """Sleep for ``delay`` seconds, or until `close` (which must not wait for the timer)."""
        if delay <= 0:
            return
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        timer = loop.call_later(delay, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _block(self, k: int, captured_at: float) -> AudioBlock | None:
        ahead = self._ahead
        if ahead is not None and ahead[0] == k:
            self._ahead = None
            data: npt.NDArray[Any] | None = ahead[1]
        else:
            data = self._read_frames(k * self.blocksize)
        if data is None:
            return None
        return AudioBlock(data, k * self.blocksize, captured_at)

    # -- the file -----------------------------------------------------------------------

    def _read_frames(self, frame: int) -> npt.NDArray[Any] | None:
        """One block of frames from ``frame`` on; None at the end or when reading fails.

        The file is read a second at a time and blocks are handed out as views of that:
        each call into libsndfile costs far more than the copy, and a block per call was
        most of this source's CPU (docs/performance.md). A read is a whole number of blocks
        from a block's start, so a block is cut short only where the file ends.
        """
        in_slab = self._slab_start <= frame < self._slab_start + len(self._slab)
        if not in_slab and not self._read_slab(frame):
            return None
        offset = frame - self._slab_start
        return self._slab[offset : offset + self.blocksize]

    def _read_slab(self, frame: int) -> bool:
        assert self._file is not None
        try:
            if frame != self._file_frame:
                self._file.seek(frame)
            slab = self._file.read(self._slab_frames, dtype=self._read_dtype, always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
            self.end_reason = f"could not read {self.path.name}: {exc}"
            return False
        self._slab = slab
        self._slab_start = frame
        self._file_frame = frame + len(slab)
        return len(slab) > 0

    def _finish(self) -> None:
        if self.end_reason is None:
            self.end_reason = "end of file"
        self._ended = True
        self._waiting.clear()
        if self._file is not None:
            self._file.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(frozen=True, slots=True)
class _FileInfo:
    samplerate: int
    channels: int
    frames: int
    subtype: str


def _inspect_file(path: Path) -> _FileInfo:
    """What the source needs to know about ``path``, or an `AudioFileError` saying what is wrong."""
    with _open_file(path) as f:
        info = _FileInfo(int(f.samplerate), int(f.channels), int(f.frames), str(f.subtype))
    if info.channels < 1:
        raise AudioFileError(f"{path}: the file has no audio channels")
    if not MIN_FILE_RATE <= info.samplerate <= MAX_FILE_RATE:
        raise AudioFileError(
            f"{path}: sample rate {info.samplerate} Hz is not supported "
            f"(use {MIN_FILE_RATE}..{MAX_FILE_RATE} Hz)"
        )
    return info


def _open_file(path: Path) -> soundfile.SoundFile:
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a folder, not an audio file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioFileError(f"{path}: the file is empty")
    try:
        return soundfile.SoundFile(path)
    except soundfile.LibsndfileError as exc:
        raise AudioFileError(
            f"{path}: not an audio file in a supported format ({_libsndfile_reason(exc)})"
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise AudioFileError(f"{path}: cannot be read ({exc})") from exc


def _libsndfile_reason(exc: soundfile.LibsndfileError) -> str:
    return str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
