"""One connection's processing chain, from received bytes to outgoing JSON messages.

Pure and synchronous (no sockets, no asyncio) so the server can run it on its decoder thread
and tests can drive it directly. The chain: linear16 bytes -> float samples -> mono -> 16 kHz
(soxr, streaming) -> recogniser -> Deepgram-shaped dicts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import soxr

from captioner.server import wire
from captioner.server.engine import (
    Engine,
    EngineEvent,
    Recognizer,
    RecognizerOptions,
    SpeechStart,
    Transcript,
    UtteranceEnded,
)
from captioner.server.query import ListenParams
from captioner.server.vad import SAMPLE_RATE, Samples


class AudioDecodeError(ValueError):
    """The payload cannot be linear16 audio (the service closes with 1008 DATA-0000)."""


class PcmDecoder:
    """Interleaved little-endian int16 at any rate and channel count -> 16 kHz float32, mixed
    to mono, or with `separate` one row per channel (frames on the second axis).

    A message may end in the middle of a multi-channel frame (the service accepts arbitrary
    chunking), so an incomplete frame is held over to the next message.
    """

    def __init__(self, sample_rate: int, channels: int, *, separate: bool = False) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.separate = separate and channels > 1
        self._frame_bytes = 2 * channels
        self._pending = b""
        width = channels if self.separate else 1
        self._resampler = (
            None
            if sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(sample_rate, SAMPLE_RATE, width, dtype="float32", quality="HQ")
        )

    def push(self, data: bytes) -> Samples:
        """Mono samples, or with `separate` an array of shape (channels, frames)."""
        if len(data) % 2:
            raise AudioDecodeError(f"{len(data)} bytes is not a whole number of 16-bit samples")
        data = self._pending + data
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        pcm = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        if self.channels > 1:
            frames = pcm.reshape(-1, self.channels)
            if not self.separate:
                return self._resample(frames.mean(axis=1, dtype=np.float32), last=False)
            return self._resample(frames, last=False)
        return self._resample(pcm, last=False)

    def flush(self) -> Samples:
        """The resampler's delayed tail at the end of the stream."""
        empty = np.zeros((0, self.channels) if self.separate else 0, dtype=np.float32)
        return self._resample(empty, last=True)

    def _resample(self, pcm: Samples, *, last: bool) -> Samples:
        if self._resampler is not None:
            pcm = np.asarray(self._resampler.resample_chunk(pcm, last=last), dtype=np.float32)
        if self.separate:
            return np.ascontiguousarray(pcm.reshape(-1, self.channels).T)
        return pcm


class ListenPipeline:
    """Bytes in, wire messages out, for one `/v1/listen` connection.

    With `multichannel=true` each channel has its own recogniser (and so its own voice
    detector: a silent channel is gated and costs little), and its messages carry its
    index, as Deepgram's do; otherwise the channels are mixed and transcribed as one.
    """

    def __init__(self, params: ListenParams, engine: Engine, request_id: str) -> None:
        self.params = params
        self.request_id = request_id
        self.model = engine.model_info
        self._decoder = PcmDecoder(
            params.sample_rate, params.channels, separate=params.multichannel
        )
        options = RecognizerOptions(
            language=params.whisper_language,
            interim_results=params.interim_results,
            endpointing_ms=params.endpointing_ms,
            utterance_end_ms=params.utterance_end_ms,
        )
        count = params.channels if params.multichannel else 1
        self._recognizers: list[Recognizer] = [engine.recognizer(options) for _ in range(count)]
        self.audio_seconds = 0.0

    def push_audio(self, data: bytes) -> list[wire.JSON]:
        samples = self._decoder.push(data)
        self.audio_seconds += len(data) / (2 * self.params.channels * self.params.sample_rate)
        return self._feed(samples)

    def finalize(self) -> list[wire.JSON]:
        return self._each(lambda recognizer, _i: recognizer.finalize())

    def finish(self) -> list[wire.JSON]:
        """End of stream: the resampler tail, then everything still open, as finals."""
        out = self._feed(self._decoder.flush())
        return out + self.finalize()

    def close(self) -> None:
        for recognizer in self._recognizers:
            recognizer.close()

    def _feed(self, samples: Samples) -> list[wire.JSON]:
        if len(self._recognizers) == 1:
            return self._render(self._recognizers[0].feed(samples), 0)
        return self._each(lambda recognizer, i: recognizer.feed(samples[i]))

    def _each(self, step: Callable[[Recognizer, int], list[EngineEvent]]) -> list[wire.JSON]:
        out: list[wire.JSON] = []
        for index, recognizer in enumerate(self._recognizers):
            out += self._render(step(recognizer, index), index)
        return out

    def _render(self, events: list[EngineEvent], channel: int) -> list[wire.JSON]:
        channels = len(self._recognizers)
        out: list[wire.JSON] = []
        for event in events:
            if isinstance(event, Transcript):
                if not event.is_final and not self.params.interim_results:
                    continue
                out.append(
                    wire.results(
                        request_id=self.request_id,
                        model=self.model,
                        start=event.start,
                        end=event.end,
                        words=event.words,
                        is_final=event.is_final,
                        speech_final=event.speech_final,
                        from_finalize=event.from_finalize,
                        punctuate=self.params.punctuated_transcript,
                        channel=channel,
                        channels=channels,
                        extra=self.params.extra,
                    )
                )
            elif isinstance(event, SpeechStart) and self.params.vad_events:
                out.append(wire.speech_started(event.timestamp, channel, channels))
            elif isinstance(event, UtteranceEnded) and self.params.utterance_end_ms is not None:
                out.append(wire.utterance_end(event.last_word_end, channel, channels))
        return out
