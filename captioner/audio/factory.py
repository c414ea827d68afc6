"""The one place an audio source is made, for the window, the command line and the benchmarks.

Blocks are as long as a chunk: a chunk cannot leave before its last sample exists, so
shorter blocks would add wake-ups without making captions any sooner. A microphone is a
`ResilientMicrophone`: a device the person chose is kept to (and waited for when it is
lost); with no choice the system default is followed, wherever it moves.
"""

from __future__ import annotations

from pathlib import Path

from captioner.audio.devices import InputDevice, choose_input_device
from captioner.audio.resilient import ResilientMicrophone
from captioner.audio.sources import AudioSource
from captioner.audio.wavfile import WavFileSource

__all__ = ["build_source", "find_device"]


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
