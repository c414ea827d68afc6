"""Audio sources: the block buffer, file sources, and real capture through a virtual microphone.

Capture runs in a subprocess: PortAudio lists devices once, when sounddevice is imported, so
the capturing process must be pointed at the virtual microphone before that import.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from captioner.audio.devices import DeviceError, InputDevice, choose_input_device
from captioner.audio.sources import (
    AudioBlock,
    AudioFileError,
    AudioSource,
    BlockBuffer,
)
from captioner.audio.wavfile import WavFileSource
from testkit.virtual_mic import VirtualMic


def block(frame_index: int, frames: int = 320) -> AudioBlock:
    return AudioBlock(np.zeros((frames, 1), np.int16), frame_index, 0.0)


def write_wav(path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    """A ramp of int16 values, so each frame is recognisable after reading it back."""
    frames = round(seconds * rate)
    ramp = (np.arange(frames * channels) % 65536 - 32768).astype(np.int16)
    soundfile.write(path, ramp.reshape(frames, channels), rate, subtype="PCM_16")
    return path


def assert_contiguous(blocks: list[AudioBlock]) -> None:
    assert blocks, "no blocks"
    assert blocks[0].frame_index == 0
    for before, after in itertools.pairwise(blocks):
        assert after.frame_index == before.end_index, (before.frame_index, after.frame_index)


async def read_all(source: AudioSource) -> list[AudioBlock]:
    blocks = []
    while (got := await source.read()) is not None:
        blocks.append(got)
    return blocks


# --- BlockBuffer -------------------------------------------------------------------------


async def test_buffer_is_fifo_and_drops_incoming_blocks_when_full() -> None:
    buffer = BlockBuffer(max_blocks=3)
    accepted = [buffer.put_nowait(block(i * 320)) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert (buffer.dropped_blocks, buffer.dropped_frames) == (2, 640)
    got = [await buffer.get() for _ in range(3)]
    assert [b.frame_index for b in got if b] == [0, 320, 640]
    late = block(1600)
    assert buffer.put_nowait(late)
    assert (await buffer.get()) is late


async def test_buffer_get_waits_for_a_put_from_another_callback() -> None:
    buffer = BlockBuffer()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, buffer.put_nowait, block(0))
    started = time.monotonic()
    got = await asyncio.wait_for(buffer.get(), 2)
    assert got is not None and got.frame_index == 0
    assert time.monotonic() - started >= 0.04


async def test_buffer_close_drains_then_ends_and_wakes_waiting_readers() -> None:
    buffer = BlockBuffer()
    waiting = asyncio.ensure_future(buffer.get())
    await asyncio.sleep(0)
    buffer.close()
    assert await asyncio.wait_for(waiting, 1) is None

    buffer = BlockBuffer()
    first = block(0)
    buffer.put_nowait(first)
    buffer.close()
    assert not buffer.put_nowait(block(320))
    assert buffer.dropped_blocks == 0  # refused after close is not an overflow
    assert (await buffer.get()) is first
    assert await buffer.get() is None
    assert await buffer.get() is None


async def test_buffer_serves_several_readers() -> None:
    buffer = BlockBuffer()
    readers = [asyncio.ensure_future(buffer.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for i in range(3):
        buffer.put_nowait(block(i))
    got = await asyncio.wait_for(asyncio.gather(*readers), 1)
    assert sorted(b.frame_index for b in got if b) == [0, 1, 2]


@pytest.mark.parametrize("size", [0, -1, True, 2.5])
def test_buffer_size_must_be_a_positive_whole_number(size: Any) -> None:
    with pytest.raises(ValueError, match="max_blocks"):
        BlockBuffer(size)


# --- WavFileSource -----------------------------------------------------------------------


async def test_realtime_file_runs_on_the_wall_clock_while_nobody_reads(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "ramp.wav", seconds=1.6)
    source = WavFileSource(path, pacing="realtime", block_ms=20)
    assert isinstance(source, AudioSource)
    await source.start()
    started = time.monotonic()
    await asyncio.sleep(1.0)
    slept = time.monotonic() - started
    piled_up = source.buffered_blocks * 0.020
    assert piled_up == pytest.approx(slept, rel=0.1), (piled_up, slept)

    blocks = await read_all(source)
    took = time.monotonic() - started
    assert took == pytest.approx(1.6, rel=0.1)
    assert_contiguous(blocks)
    assert sum(b.frames for b in blocks) == source.frames_total == 25600
    assert {b.frames for b in blocks} == {320}
    assert source.dropped_blocks == 0
    assert source.end_reason == "end of file"
    lateness = [b.captured_at - started - b.end_index / 16000 for b in blocks]
    assert max(lateness) < 0.1, "a block was released late"
    assert min(lateness) > -0.02, "a block was released before its audio was due"
    assert abs(lateness[-1]) < 0.05, "lateness accumulated over the file"


async def test_realtime_file_drops_and_counts_what_does_not_fit(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "ramp.wav", seconds=0.4)
    source = WavFileSource(path, pacing="realtime", block_ms=20, max_blocks=5)
    await source.start()
    await asyncio.sleep(0.6)
    blocks = await read_all(source)
    assert [b.frame_index for b in blocks] == [0, 320, 640, 960, 1280]
    assert source.dropped_blocks == 15
    assert source.dropped_frames == 15 * 320
    assert source.frames_captured == 6400


async def test_realtime_file_reader_that_falls_behind_catches_up_with_true_times(
    tmp_path: Path,
) -> None:
    path = write_wav(tmp_path / "ramp.wav", seconds=1.0)
    source = WavFileSource(path, pacing="realtime", block_ms=100)
    await source.start()
    started = time.monotonic()
    first = await source.read()
    assert first is not None
    await asyncio.sleep(0.45)  # a busy reader: blocks 2 to 5 come due meanwhile
    late = [await source.read() for _ in range(4)]
    caught_up = time.monotonic()
    assert caught_up - started < 0.65, "waiting blocks must come at once"
    rest = await read_all(source)
    blocks = [first, *late, *rest]
    assert all(b is not None for b in blocks)
    assert_contiguous(blocks)  # type: ignore[arg-type]
    data = np.concatenate([b.data for b in blocks])  # type: ignore[union-attr]
    expected, _ = soundfile.read(path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(data, expected)
    for b in late:
        assert b is not None
        # a block that waited arrived when its audio was due, not when it was read
        assert b.captured_at == pytest.approx(started + b.end_index / 16000, abs=0.02)


async def test_closing_a_realtime_file_wakes_a_sleeping_reader(tmp_path: Path) -> None:
    source = WavFileSource(write_wav(tmp_path / "long.wav", seconds=5.0), block_ms=1000)
    await source.start()
    reader = asyncio.create_task(source.read())
    await asyncio.sleep(0.1)
    assert not reader.done()
    closed_at = time.monotonic()
    source.close()
    assert await asyncio.wait_for(reader, 0.5) is None
    assert time.monotonic() - closed_at < 0.1
    assert source.end_reason == "closed"


async def test_fast_file_reads_everything_at_once_and_exactly(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "stereo.wav", seconds=5.0, rate=48000, channels=2)
    source = WavFileSource(path, pacing="fast", block_ms=10)
    assert (source.sample_rate, source.channels) == (48000, 2)
    assert source.description == "file stereo.wav"
    await source.start()
    started = time.monotonic()
    blocks = await read_all(source)
    assert time.monotonic() - started < 1.0
    assert_contiguous(blocks)
    data = np.concatenate([b.data for b in blocks])
    expected, _ = soundfile.read(path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(data, expected)
    assert data.shape == (240000, 2)
    assert source.end_reason == "end of file"
    assert await source.read() is None


@pytest.mark.parametrize("pacing", ["fast", "realtime"])
async def test_a_file_that_is_not_whole_blocks_is_read_exactly(
    tmp_path: Path, pacing: Literal["fast", "realtime"]
) -> None:
    # 22.05 kHz, 2.37 s: many one-second reads, and a last block cut short by the file's end
    path = write_wav(tmp_path / "odd.wav", seconds=2.37, rate=22050)
    source = WavFileSource(path, pacing=pacing, block_ms=20)
    await source.start()
    blocks = await read_all(source)
    assert_contiguous(blocks)
    expected, _ = soundfile.read(path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(np.concatenate([b.data for b in blocks]), expected)
    assert {b.frames for b in blocks[:-1]} == {441}
    assert blocks[-1].frames == len(expected) % 441
    assert source.end_reason == "end of file"


async def test_float_files_are_read_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "float.wav"
    soundfile.write(path, np.full(1600, 0.25, np.float32), 16000, subtype="FLOAT")
    source = WavFileSource(path, pacing="fast")
    await source.start()
    blocks = await read_all(source)
    assert blocks[0].data.dtype == np.float32
    assert blocks[0].data.shape == (320, 1)
    assert float(blocks[0].data[0, 0]) == 0.25


async def test_closing_a_realtime_file_ends_it(tmp_path: Path) -> None:
    source = WavFileSource(write_wav(tmp_path / "long.wav", seconds=5.0))
    await source.start()
    await asyncio.sleep(0.1)
    source.close()
    blocks = await asyncio.wait_for(read_all(source), 1)
    assert len(blocks) <= 6
    assert source.end_reason == "closed"
    source.close()


async def test_speech_file_from_espeak(speech_wav: Path) -> None:
    source = WavFileSource(speech_wav, pacing="fast")
    await source.start()
    data = np.concatenate([b.data for b in await read_all(source)])
    assert source.sample_rate == 22050
    assert np.abs(data).max() > 3000


async def test_read_before_start_is_a_mistake(tmp_path: Path) -> None:
    source = WavFileSource(write_wav(tmp_path / "a.wav", 0.1), pacing="fast")
    with pytest.raises(RuntimeError, match="start"):
        await source.read()


def riff(fmt_tag: int, channels: int, rate: int, bits: int = 16) -> bytes:
    align = max(1, channels) * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * align, align, bits)
    data = b"\0" * 64
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.wav", b"these are my meeting notes\n", "not an audio file"),
        ("empty.wav", b"", "empty"),
        ("codec.wav", riff(0x1234, 1, 16000), "not an audio file"),
        ("nochannels.wav", riff(1, 0, 16000), "Channel count is zero"),
        ("norate.wav", riff(1, 1, 0), "not an audio file"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioFileError, match=message) as caught:
        WavFileSource(path)
    assert name in str(caught.value)


@pytest.mark.parametrize("rate", [4000, 384000])
def test_odd_sample_rates_are_refused(tmp_path: Path, rate: int) -> None:
    path = write_wav(tmp_path / f"odd{rate}.wav", seconds=0.1, rate=rate)
    with pytest.raises(AudioFileError, match=f"{rate} Hz is not supported"):
        WavFileSource(path)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"missing\.wav: no such file"):
        WavFileSource(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="folder"):
        WavFileSource(tmp_path)


async def test_file_gone_before_start_is_refused_at_start(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "gone.wav", 0.1)
    source = WavFileSource(path)
    path.unlink()
    with pytest.raises(AudioFileError, match=r"gone\.wav"):
        await source.start()


@pytest.mark.parametrize(
    "kwargs", [{"pacing": "slow"}, {"block_ms": 0}, {"block_ms": 5000}, {"max_blocks": 0}]
)
def test_bad_file_source_settings(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        WavFileSource(write_wav(tmp_path / "a.wav", 0.1), **kwargs)


# --- choosing a device (pure) ------------------------------------------------------------

DEVICES = [
    InputDevice(0, "USB Headset Mic", "ALSA", 1, 48000.0, False),
    InputDevice(3, "pulse", "ALSA", 32, 44100.0, False),
    InputDevice(4, "default", "ALSA", 32, 44100.0, True),
    InputDevice(7, "pulse-echo", "ALSA", 2, 16000.0, False),
]


@pytest.mark.parametrize(
    ("spec", "index"),
    [(None, 4), ("", 4), (3, 3), ("7", 7), (" 0 ", 0), ("usb", 0), ("PULSE", 3), ("echo", 7)],
)
def test_device_specs(spec: str | int | None, index: int) -> None:
    assert choose_input_device(spec, DEVICES).index == index


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("9", "no input device with index 9"),
        (1, "no input device with index 1"),
        ("bluetooth", 'No input device name contains "bluetooth"'),
        ("pul", '"pul" matches 2 input devices'),
    ],
)
def test_device_spec_errors_list_the_devices(spec: str | int, message: str) -> None:
    with pytest.raises(DeviceError, match=message) as caught:
        choose_input_device(spec, DEVICES)
    text = str(caught.value)
    for device in DEVICES:
        assert f"{device.index}  {device.name} (ALSA)" in text
    assert "*   4  default (ALSA), 32 ch, 44100 Hz" in text


def test_no_devices_at_all() -> None:
    with pytest.raises(DeviceError, match="No audio input devices found"):
        choose_input_device(None, [])


def test_no_default_device() -> None:
    without_default = [d for d in DEVICES if not d.is_default]
    with pytest.raises(DeviceError, match="no default input device"):
        choose_input_device(None, without_default)


# --- real devices, in subprocesses -------------------------------------------------------

DEVICES_PROBE = """
import asyncio, dataclasses, json
from captioner.audio.devices import DeviceError, find_input_device, list_input_devices
from captioner.audio.sources import MicrophoneSource
devices = [dataclasses.asdict(d) for d in list_input_devices()]
def attempt(spec):
    try:
        return find_input_device(spec).name
    except DeviceError as exc:
        return "DeviceError: " + str(exc)
mic = MicrophoneSource()
async def open_at(rate):
    try:
        await MicrophoneSource("pulse", samplerate=rate).start()
    except DeviceError as exc:
        return "DeviceError: " + str(exc)
    return "opened"
print(json.dumps({
    "bad_rate": asyncio.run(open_at(1)),
    "devices": devices,
    "default": attempt(None),
    "pulse": attempt("PULSE"),
    "nothing": attempt("no such microphone"),
    "ambiguous": attempt("ul"),
    "mic": [mic.description, mic.sample_rate, mic.channels],
}))
"""

NO_PORTAUDIO_PROBE = """
import ctypes.util, json
ctypes.util.find_library = lambda name: None  # as on a machine without libportaudio2
import captioner.audio.sources
from captioner.audio.devices import DeviceError, list_input_devices
try:
    captioner.audio.sources.MicrophoneSource()
except DeviceError as exc:
    print(json.dumps({"error": str(exc)}))
"""

CAPTURE_PROBE = """
import asyncio, json, sys, time
import numpy as np
from captioner.audio.sources import MicrophoneSource

async def main(seconds, samplerate, dtype):
    source = MicrophoneSource(None, samplerate=samplerate, dtype=dtype, stall_timeout=3.0)
    await source.start()
    print("READY", flush=True)
    started = time.monotonic()
    blocks = []
    while seconds == 0 or time.monotonic() - started < seconds:
        block = await source.read()
        if block is None:
            break
        blocks.append(block)
    ended = time.monotonic()
    source.close()
    data = np.concatenate([b.data for b in blocks]) if blocks else np.zeros((0, 1))
    full = 1.0 if data.dtype.kind == "f" else 32768.0
    print(json.dumps({
        "description": source.description,
        "rate": source.sample_rate,
        "channels": source.channels,
        "dtype": str(data.dtype),
        "shape": list(data.shape),
        "blocks": [[b.frame_index, b.frames] for b in blocks],
        "captured_at": [b.captured_at - started for b in blocks],
        "peak": float(np.abs(data.astype(np.float64)).max(initial=0.0)) / full,
        "dropped": source.dropped_blocks,
        "overflows": source.overflows,
        "callback_errors": source.callback_errors,
        "frames_captured": source.frames_captured,
        "end_reason": source.end_reason,
        "ended_at": ended,
    }))

seconds, samplerate, dtype = float(sys.argv[1]), sys.argv[2], sys.argv[3]
asyncio.run(main(seconds, None if samplerate == "default" else int(samplerate), dtype))
"""


def run_probe(code: str, env: dict[str, str], *args: str, timeout: float = 30) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


class Capture:
    """A capture probe running in a subprocess; ``wait_ready`` returns once audio flows."""

    def __init__(self, env: dict[str, str], seconds: float, samplerate: str, dtype: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CAPTURE_PROBE, str(seconds), samplerate, dtype],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail(f"capture probe did not start: {line!r}\n{err}")

    def result(self, timeout: float = 30) -> Any:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])


@pytest.mark.e2e
def test_device_listing_shows_the_virtual_microphone(virtual_mic_env: dict[str, str]) -> None:
    report = run_probe(DEVICES_PROBE, virtual_mic_env)
    names = [d["name"] for d in report["devices"]]
    assert "pulse" in names and "default" in names
    defaults = [d for d in report["devices"] if d["is_default"]]
    assert len(defaults) == 1
    assert report["default"] == defaults[0]["name"]
    assert report["pulse"] == "pulse"
    assert report["nothing"].startswith('DeviceError: No input device name contains "no such')
    assert "pulse (ALSA)" in report["nothing"]
    assert report["ambiguous"].startswith('DeviceError: "ul" matches 2 input devices')
    description, rate, channels = report["mic"]
    assert description == f"Microphone · {defaults[0]['name']} ({defaults[0]['hostapi']})"
    assert rate == round(defaults[0]["default_samplerate"])
    assert channels == 2
    assert report["bad_rate"].startswith("DeviceError: Could not open pulse (ALSA) at 1 Hz")
    assert "Invalid sample rate" in report["bad_rate"]


def test_missing_portaudio_says_what_to_install() -> None:
    report = run_probe(NO_PORTAUDIO_PROBE, dict(os.environ))
    assert "PortAudio library not found" in report["error"]
    assert "apt-get install libportaudio2" in report["error"]


@pytest.mark.e2e
def test_microphone_captures_speech_continuously(
    virtual_mic: VirtualMic, virtual_mic_env: dict[str, str], speech_wav: Path
) -> None:
    capture = Capture(virtual_mic_env, 1.5, "default", "float32")
    capture.wait_ready()
    playing = virtual_mic.play(speech_wav, wait=False)
    report = capture.result()
    virtual_mic.stop_playing(playing)

    rate, channels = report["rate"], report["channels"]
    assert (report["dtype"], channels) == ("float32", 2)
    assert report["description"].startswith("Microphone · default (")
    blocksize = round(rate * 0.020)
    frames = [frames for _, frames in report["blocks"]]
    assert set(frames) == {blocksize}
    index = 0
    for frame_index, count in report["blocks"]:
        assert frame_index == index, "frame_index jumped: audio was lost"
        index += count
    assert index == pytest.approx(1.5 * rate, rel=0.1)
    assert report["dropped"] == 0
    assert report["overflows"] == 0
    assert report["callback_errors"] == 0
    assert report["peak"] > 0.1, "only silence arrived from the virtual microphone"
    stamps = report["captured_at"]
    assert all(b >= a for a, b in itertools.pairwise(stamps))
    assert stamps[-1] - stamps[0] == pytest.approx((len(stamps) - 1) * 0.020, abs=0.15)


@pytest.mark.e2e
def test_microphone_int16_at_16k(
    virtual_mic: VirtualMic, virtual_mic_env: dict[str, str], speech_wav: Path
) -> None:
    capture = Capture(virtual_mic_env, 1.0, "16000", "int16")
    capture.wait_ready()
    playing = virtual_mic.play(speech_wav, wait=False)
    report = capture.result()
    virtual_mic.stop_playing(playing)
    assert (report["rate"], report["dtype"]) == (16000, "int16")
    assert {frames for _, frames in report["blocks"]} == {320}
    assert report["dropped"] == 0
    assert report["peak"] > 0.1


@pytest.mark.e2e
def test_microphone_ends_when_the_audio_server_dies(private_virtual_mic: VirtualMic) -> None:
    capture = Capture(private_virtual_mic.child_env(), 0, "default", "float32")
    capture.wait_ready()
    time.sleep(0.5)
    private_virtual_mic.stop()
    stopped = time.monotonic()
    report = capture.result(timeout=20)
    assert report["end_reason"] and "audio server stopped?" in report["end_reason"]
    assert report["ended_at"] - stopped < 5
    assert report["blocks"], "nothing was captured before the server stopped"
