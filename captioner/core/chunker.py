"""Turn audio blocks of any shape into fixed-size linear16 chunks for the wire.

Capture devices and files hand us whatever they like: any rate, any channel count, any of the
common sample types, in blocks whose size has nothing to do with what the server wants. The
server wants mono 16-bit little-endian PCM at one rate, ideally 20-250 ms per message
(docs/protocol.md, "Sending"), and an empty binary message would end the stream. `Chunker`
bridges the two: it is pure (no I/O, no clock), so it can be tested exhaustively and run anywhere.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import soxr

__all__ = ["CHUNK_MS_MAX", "CHUNK_MS_MIN", "Chunker"]

CHUNK_MS_MIN: Final = 20
CHUNK_MS_MAX: Final = 250

_RESAMPLE_QUALITY: Final = "HQ"
_INT16_SCALE: Final = 32768.0
_OUT_DTYPE: Final = np.dtype("<i2")

_Float32Array = npt.NDArray[np.float32]

# Factor that maps each supported input type onto the int16 scale [-32768, 32768); working in
# that scale throughout saves a multiplication per block. uint8 is offset-binary (128 = silence).
_TO_INT16_SCALE: Final[dict[np.dtype[Any], float]] = {
    np.dtype(np.int16): 1.0,
    np.dtype(np.int32): 1.0 / 65536.0,
    np.dtype(np.uint8): 256.0,
    np.dtype(np.float32): _INT16_SCALE,
    np.dtype(np.float64): _INT16_SCALE,
}


class Chunker:
    """Downmix, resample and cut audio into chunks of exactly ``chunk_ms`` milliseconds.

    ``push`` returns only complete chunks, so every message on the wire has the same duration
    and is never empty; ``flush`` hands over the short tail (including what the resampler still
    holds back) at the end of a stream. After ``flush`` the chunker is finished: the resampler's
    state has been drained and cannot be resumed without a discontinuity, so ``push`` refuses.

    ``samples_in`` counts input frames (one per time step, whatever the channel count);
    ``samples_out`` counts output frames handed out, in chunks and in the tail.

    By default the channels are averaged into mono. With ``out_channels`` equal to the input's
    channel count every channel is kept, interleaved on the wire (two inputs of a call sent
    as one multichannel stream).

    When ``out_rate * chunk_ms / 1000`` is not a whole number (e.g. 44100 Hz and 25 ms) the
    chunk length is rounded to the nearest sample; ``chunk_samples`` tells the exact figure.
    """

    def __init__(
        self,
        in_rate: int,
        in_channels: int,
        out_rate: int = 16000,
        chunk_ms: int = 100,
        *,
        out_channels: int = 1,
    ) -> None:
        _require_positive_int("in_rate", in_rate)
        _require_positive_int("in_channels", in_channels)
        if out_channels not in (1, in_channels):
            raise ValueError(
                f"out_channels must be 1 (a downmix) or {in_channels} (every channel kept), "
                f"got {out_channels!r}"
            )
        _require_positive_int("out_rate", out_rate)
        if (
            isinstance(chunk_ms, bool)
            or not isinstance(chunk_ms, int)
            or not CHUNK_MS_MIN <= chunk_ms <= CHUNK_MS_MAX
        ):
            raise ValueError(
                f"chunk_ms={chunk_ms!r} is outside the allowed range "
                f"{CHUNK_MS_MIN}..{CHUNK_MS_MAX} ms (whole milliseconds)"
            )
        self.in_rate: Final = in_rate
        self.in_channels: Final = in_channels
        self.out_channels: Final = out_channels
        self.out_rate: Final = out_rate
        self.chunk_ms: Final = chunk_ms
        self.chunk_samples: Final = max(1, round(out_rate * chunk_ms / 1000))
        self.samples_in = 0
        self.samples_out = 0
        self.frame_bytes: Final = _OUT_DTYPE.itemsize * out_channels
        """Bytes per output frame: 2 for mono, 4 for two interleaved channels."""
        self._chunk_bytes = self.chunk_samples * self.frame_bytes
        # Block shapes that already are a chunk (mono int16 at the output rate): see push.
        self._chunk_shapes: Final = (
            ((self.chunk_samples,), (self.chunk_samples, 1))
            if in_rate == out_rate and in_channels == 1
            else ()
        )
        self._keep_channels = out_channels > 1
        self._pending = bytearray()
        self._flushed = False
        self._weights: dict[np.dtype[Any], _Float32Array] = {}
        self._resampler: Any = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(
                in_rate, out_rate, out_channels, dtype="float32", quality=_RESAMPLE_QUALITY
            )
        )

    def push(self, block: npt.NDArray[Any]) -> list[bytes]:
        """Take one block of shape (frames,) or (frames, channels); return the completed chunks."""
        if (
            block.__class__ is np.ndarray
            and block.dtype is _OUT_DTYPE
            and block.shape in self._chunk_shapes
            and not self._pending
            and not self._flushed
        ):
            # The common case (16 kHz int16 mono in chunk-sized blocks): the block is the
            # chunk. Checked first and with as few numpy calls as possible: this runs for
            # every chunk, on a cold cache after each 100 ms of idle (docs/performance.md).
            self.samples_in += self.chunk_samples
            self.samples_out += self.chunk_samples
            return [block.tobytes()]
        if self._flushed:
            raise RuntimeError("this Chunker has been flushed; create a new one for a new stream")
        frames = self._check_block(block)
        if frames == 0:
            return []
        self.samples_in += frames
        if self._keep_channels:
            scaled = self._channels_scaled(block)
            if self._resampler is not None:
                scaled = self._resampler.resample_chunk(scaled)
            self._pending += _to_int16_bytes(scaled)
        elif self._resampler is None and block.dtype == np.int16 and self._is_mono(block):
            self._pending += block.astype(_OUT_DTYPE, copy=False).tobytes()
        else:
            mono = self._to_mono_scaled(block)
            if self._resampler is not None:
                mono = self._resampler.resample_chunk(mono)
            self._pending += _to_int16_bytes(mono)
        return self._take_chunks()

    def flush(self) -> bytes | None:
        """End the stream: drain the resampler and return the tail, or None if nothing is left.

        What the drained resampler still produces joins the tail, so the tail can exceed one
        chunk by the resampler's delay (a few milliseconds). A caller that sends every ``push``
        result and then the tail has sent each sample exactly once.
        """
        if self._flushed:
            return None
        self._flushed = True
        if self._resampler is not None:
            shape = (0, self.out_channels) if self._keep_channels else (0,)
            rest = self._resampler.resample_chunk(np.zeros(shape, dtype=np.float32), last=True)
            if len(rest):
                self._pending += _to_int16_bytes(rest)
        if not self._pending:
            return None
        tail = bytes(self._pending)
        self._pending.clear()
        self.samples_out += len(tail) // self.frame_bytes
        return tail

    def _check_block(self, block: npt.NDArray[Any]) -> int:
        if not isinstance(block, np.ndarray):
            raise TypeError(f"expected a numpy array, got {type(block).__name__}")
        if block.dtype not in _TO_INT16_SCALE:
            raise TypeError(
                f"unsupported sample type {block.dtype}; "
                "use int16, int32, float32, float64 or uint8"
            )
        if block.ndim == 1:
            if self.in_channels != 1:
                raise ValueError(
                    f"a 1-D block is mono but this Chunker expects {self.in_channels} channels"
                )
        elif block.ndim == 2:
            if block.shape[1] != self.in_channels:
                raise ValueError(
                    f"block has {block.shape[1]} channels, this Chunker expects {self.in_channels}"
                )
        else:
            raise ValueError(f"block must be (frames,) or (frames, channels), got {block.shape}")
        return int(block.shape[0])

    @staticmethod
    def _is_mono(block: npt.NDArray[Any]) -> bool:
        return block.ndim == 1 or block.shape[1] == 1

    def _to_mono_scaled(self, block: npt.NDArray[Any]) -> _Float32Array:
        """Average the channels into a fresh float32 array on the int16 scale.

        float32 is what the resampler works in. The scale factor rides along in the averaging
        weights, so a multi-channel block costs one matrix-vector product.
        """
        dtype = block.dtype
        if dtype.kind == "f":
            return self._float_to_mono_scaled(block)
        scale = _TO_INT16_SCALE[dtype]
        mono = self._downmix(block, scale)
        if dtype == np.uint8:
            mono -= np.float32(_INT16_SCALE)
        return mono

    def _channels_scaled(self, block: npt.NDArray[Any]) -> _Float32Array:
        """Every channel kept, as a fresh C-ordered float32 (frames, channels) array on the
        int16 scale: row-major order is the wire's interleaving (left, right, left, ...)."""
        dtype = block.dtype
        if dtype.kind == "f":
            clipped = np.clip(block, -1.0, 1.0).astype(np.float32, copy=False)
            scaled = np.multiply(clipped, np.float32(_INT16_SCALE), dtype=np.float32)
            if not np.isfinite(scaled).all():
                np.nan_to_num(scaled, copy=False, nan=0.0)
            return np.ascontiguousarray(scaled)
        scaled = np.multiply(block, np.float32(_TO_INT16_SCALE[dtype]), dtype=np.float32)
        if dtype == np.uint8:
            scaled -= np.float32(_INT16_SCALE)
        return np.ascontiguousarray(scaled)

    def _float_to_mono_scaled(self, block: npt.NDArray[Any]) -> _Float32Array:
        """Float input is [-1, 1] by convention: clip it there, and turn NaN into silence.

        Clipping comes first, before any arithmetic, so absurd values (huge, infinite) cannot
        raise overflow warnings in the middle of a stream.
        """
        clipped = np.minimum(block, 1.0)
        np.maximum(clipped, -1.0, out=clipped)
        mono = self._downmix(clipped, _INT16_SCALE)
        if not math.isfinite(mono.dot(mono)):
            np.nan_to_num(mono, copy=False, nan=0.0)
        return mono

    def _downmix(self, block: npt.NDArray[Any], scale: float) -> _Float32Array:
        if block.ndim == 2 and block.shape[1] > 1:
            weights = self._weights.get(block.dtype)
            if weights is None:
                weights = np.full(block.shape[1], scale / block.shape[1], dtype=np.float32)
                self._weights[block.dtype] = weights
            mixed: _Float32Array = block.astype(np.float32, copy=False).dot(weights)
            return mixed
        if scale == 1.0:
            return block.reshape(-1).astype(np.float32)
        scaled: _Float32Array = np.multiply(block.reshape(-1), scale, dtype=np.float32)
        return scaled

    def _take_chunks(self) -> list[bytes]:
        size = self._chunk_bytes
        available = len(self._pending) // size
        if available == 0:
            return []
        view = memoryview(self._pending)
        chunks = [bytes(view[i * size : (i + 1) * size]) for i in range(available)]
        view.release()
        del self._pending[: available * size]
        self.samples_out += available * self.chunk_samples
        return chunks


def _to_int16_bytes(scaled: _Float32Array) -> bytes:
    """Round int16-scale floats (in place: callers pass arrays they own) to int16 LE bytes.

    Clipping here also covers the resampler's slight overshoot near full scale.
    """
    np.rint(scaled, out=scaled)
    np.minimum(scaled, np.float32(32767.0), out=scaled)
    np.maximum(scaled, np.float32(-32768.0), out=scaled)
    return scaled.astype(_OUT_DTYPE).tobytes()


def _require_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
