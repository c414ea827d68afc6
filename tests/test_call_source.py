"""CallSource: two inputs on one clock, one channel each (WAV files stand in for devices)."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from captioner.audio.call import CallSource
from captioner.audio.factory import build_call_source
from captioner.audio.sources import AudioBlock
from captioner.audio.wavfile import WavFileSource

RATE = 16000


def wav(path: Path, rate: int, seconds: float, freq: float, click_at: float) -> Path:
    """A quiet tone with a loud 5 ms click at `click_at` seconds."""
    t = np.arange(int(seconds * rate)) / rate
    data = (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    at = int(click_at * rate)
    data[at : at + rate // 200] = 0.95
    soundfile.write(path, data, rate, subtype="PCM_16")
    return path


async def read_all(source: CallSource) -> np.ndarray:
    await source.start()
    blocks = []
    try:
        while (block := await asyncio.wait_for(source.read(), 5)) is not None:
            assert block.data.shape[1] == 2 and block.data.dtype == np.float32
            blocks.append(block.data)
    finally:
        await source.aclose()
    return np.concatenate(blocks)


def click(channel: np.ndarray) -> float:
    return int(np.argmax(np.abs(channel) > 0.6)) / RATE


def peak_hz(channel: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(channel))
    return float(np.argmax(spectrum) * RATE / len(channel))


async def test_two_inputs_at_different_rates_come_out_side_by_side_on_one_clock(
    tmp_path: Path,
) -> None:
    mic = WavFileSource(wav(tmp_path / "mic.wav", 16000, 3.0, 300, 1.5), block_ms=100)
    monitor = WavFileSource(wav(tmp_path / "out.wav", 48000, 3.0, 1200, 1.5), block_ms=20)
    source = CallSource([mic, monitor])
    assert (source.sample_rate, source.channels) == (RATE, 2)
    assert source.description == "You: file mic.wav + Others: file out.wav"
    out = await read_all(source)
    assert abs(len(out) / RATE - 3.0) < 0.15
    # the same instant on both devices lands on the same frame of the stream
    assert abs(click(out[:, 0]) - click(out[:, 1])) < 0.020
    assert abs(click(out[:, 0]) - 1.5) < 0.05
    quiet = slice(RATE // 4, RATE)  # before the clicks, past the resampler's ramp-in
    assert peak_hz(out[quiet, 0]) == pytest.approx(300, abs=3)
    assert peak_hz(out[quiet, 1]) == pytest.approx(1200, abs=3)


async def test_an_input_that_ends_early_leaves_silence_and_the_other_goes_on(
    tmp_path: Path,
) -> None:
    mic = WavFileSource(wav(tmp_path / "mic.wav", 16000, 3.0, 300, 2.5), block_ms=100)
    gone = WavFileSource(wav(tmp_path / "out.wav", 16000, 1.0, 1200, 0.5), block_ms=100)
    source = CallSource([mic, gone], max_lag=0.3)
    out = await read_all(source)
    assert abs(len(out) / RATE - 3.0) < 0.15
    assert abs(click(out[:, 0]) - 2.5) < 0.05  # the microphone's audio, all of it
    assert np.abs(out[int(1.5 * RATE) :, 1]).max() < 1e-3  # nothing after the other ended
    assert source.inputs[1].filled > RATE  # and that stretch was filled in, not dropped


def test_a_call_needs_two_inputs(tmp_path: Path) -> None:
    one = wav(tmp_path / "a.wav", 16000, 0.5, 300, 0.1)
    with pytest.raises(ValueError, match="two inputs"):
        build_call_source(files=[one], chunk_ms=100)
    with pytest.raises(ValueError, match="two inputs"):
        CallSource([WavFileSource(one)])


class PausableSource:
    """A device at the boundary: real-time blocks of a tone, except while `paused` (the
    device is gone), when nothing arrives; its frame count runs on meanwhile, as a
    reopened microphone's does."""

    def __init__(self, freq: float) -> None:
        self.sample_rate, self.channels, self.dropped_blocks = RATE, 1, 0
        self.description = f"tone {freq:g} Hz"
        self.freq = freq
        self.paused = asyncio.Event()
        self._frame = 0
        self._started = 0.0
        self._closed = False

    async def start(self) -> None:
        self._started = asyncio.get_running_loop().time()

    async def read(self) -> AudioBlock | None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            due = self._started + (self._frame + 1600) / RATE
            await asyncio.sleep(max(0.0, due - loop.time()))
            index, self._frame = self._frame, self._frame + 1600
            if self.paused.is_set():
                continue
            t = (index + np.arange(1600)) / RATE
            data = (0.2 * np.sin(2 * np.pi * self.freq * t)).astype(np.float32)
            return AudioBlock(data, index, time.monotonic())
        return None

    def close(self) -> None:
        self._closed = True


async def test_with_every_input_gone_nothing_is_sent_and_the_clock_jumps() -> None:
    """Silence is not sent for devices that are all away (it would be billed, and pile up to
    be sent late): the session holds the connection with KeepAlive, as for one lost device."""
    mic, speakers = PausableSource(300), PausableSource(1200)
    source = CallSource([mic, speakers], max_lag=0.3)
    await source.start()
    blocks: list[AudioBlock] = []

    async def pause_both() -> None:
        await asyncio.sleep(1.0)
        mic.paused.set()
        speakers.paused.set()
        await asyncio.sleep(2.0)
        mic.paused.clear()
        speakers.paused.clear()
        await asyncio.sleep(1.0)
        source.close()

    pauser = asyncio.ensure_future(pause_both())
    while (block := await asyncio.wait_for(source.read(), 5)) is not None:
        blocks.append(block)
    await pauser
    await source.aclose()
    sent = sum(b.frames for b in blocks) / RATE
    jumps = [
        (b.frame_index - (a.frame_index + a.frames)) / RATE
        for a, b in itertools.pairwise(blocks)
        if b.frame_index > a.frame_index + a.frames
    ]
    assert sent < 2.6  # about two seconds of sound, not four of audio with two of silence
    assert len(jumps) == 1 and 1.4 < jumps[0] < 2.2
