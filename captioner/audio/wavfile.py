"""A WAV (or any libsndfile format) file as an audio source, read as if it were a microphone.

`pacing="realtime"` hands blocks out on the file's own clock, so a file stands in for a
microphone (what it cannot keep up with is counted, as a microphone's overflow is);
`"fast"` hands them out as fast as they are read. A file that cannot be used is an
`AudioFileError` with a sentence to show, raised before anything starts.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import soundfile  # type: ignore[import-untyped]  # ships no type hints

from captioner.audio.sources import (
    DEFAULT_MAX_BLOCKS,
    MAX_FILE_RATE,
    MIN_FILE_RATE,
    AudioBlock,
    AudioFileError,
    check_block_ms,
    check_max_blocks,
)

__all__ = ["WavFileSource"]


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
        check_block_ms(block_ms)
        check_max_blocks(max_blocks)
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
