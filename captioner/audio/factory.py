"""The one place an audio source is made, for the window, the command line and the benchmarks.

Blocks are as long as a chunk: a chunk cannot leave before its last sample exists, so
shorter blocks would add wake-ups without making captions any sooner. A microphone is a
`ResilientMicrophone`: a device the person chose is kept to (and waited for when it is
lost); with no choice the system default is followed, wherever it moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from captioner.audio.call import CallSource
from captioner.audio.devices import DeviceError, InputDevice, choose_input_device
from captioner.audio.resilient import ResilientMicrophone
from captioner.audio.sources import AudioSource
from captioner.audio.wavfile import WavFileSource

__all__ = ["CALL_NAMES", "CallInputError", "build_call_source", "build_source", "find_device"]

CALL_NAMES = ("You", "Others")
"""The default names of a call's two inputs: the microphone, and what the computer plays."""


class CallInputError(DeviceError):
    """Two inputs that cannot make a call (the same device twice, no system audio)."""


def find_device(spec: str) -> InputDevice:
    """The capture device (microphone or system audio) named or numbered by `spec`;
    raises `DeviceError` saying what exists when none matches."""
    from captioner.audio.system import list_capture_devices

    return choose_input_device(spec, list_capture_devices())


def build_source(
    *,
    file: str | Path | None = None,
    device: InputDevice | str | None = None,
    chunk_ms: int,
    rate: int = 16000,
    fast: bool = False,
) -> AudioSource:
    """A WAV file played at real time (or as fast as it is read, with `fast`), or a microphone:
    `device` chosen (an `InputDevice`, or a name or index to look up), or None for the system
    default. Raises `AudioFileError`, `DeviceError` or `ValueError` with a sentence to show."""
    if file:
        return WavFileSource(file, pacing="fast" if fast else "realtime", block_ms=chunk_ms)
    chosen = find_device(device) if isinstance(device, str) else device
    return ResilientMicrophone(chosen, rate=rate, block_ms=chunk_ms)


def build_call_source(
    *,
    files: Sequence[str | Path] = (),
    devices: Sequence[InputDevice | str | None] = (),
    names: Sequence[str] = CALL_NAMES,
    chunk_ms: int,
    rate: int = 16000,
) -> CallSource:
    """Two inputs captioned at once, one channel each: two files (played at real time), or
    two devices, where None is the default microphone and "system" the default output's
    monitor (what `--call` asks for). Raises `DeviceError`, `AudioFileError` or `ValueError`."""
    if files:
        if len(files) != 2:
            raise ValueError("a call takes two inputs")
        sources: list[AudioSource] = [
            WavFileSource(f, pacing="realtime", block_ms=chunk_ms) for f in files
        ]
    else:
        if len(devices) != 2:
            raise ValueError("a call takes two inputs")
        chosen = [_call_device(d) for d in devices]
        if chosen[0] is not None and chosen[1] is not None and _same(chosen[0], chosen[1]):
            raise CallInputError(f"both inputs are {chosen[0].label}: choose two different inputs")
        sources = [ResilientMicrophone(d, rate=rate, block_ms=chunk_ms) for d in chosen]
    return CallSource(sources, names, rate=rate, block_ms=chunk_ms)


def _call_device(spec: InputDevice | str | None) -> InputDevice | None:
    if spec != "system":
        return find_device(spec) if isinstance(spec, str) else spec
    from captioner.audio.system import default_output_monitor, list_capture_devices

    found = default_output_monitor(list_capture_devices())
    if found is None:
        raise CallInputError(
            "no system audio to record: this computer offers no monitor of its output "
            "(on Linux it needs PulseAudio or PipeWire; on macOS a loopback driver)"
        )
    return found


def _same(a: InputDevice, b: InputDevice) -> bool:
    return (a.index, a.pulse_source) == (b.index, b.pulse_source)
