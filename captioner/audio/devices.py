"""Input devices as plain values, and turning what a person typed into one of them.

sounddevice loads the PortAudio shared library when it is imported, so it is imported inside
functions only: the rest of the app (and every test that needs no microphone) keeps working
on a machine without PortAudio, and the failure surfaces as a `DeviceError` that says what to
install instead of an import-time crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = [
    "AudioError",
    "DeviceError",
    "InputDevice",
    "choose_input_device",
    "find_input_device",
    "format_input_devices",
    "list_input_devices",
]

_INSTALL_HINT = (
    "Install PortAudio (Debian/Ubuntu: `sudo apt-get install libportaudio2`; "
    "macOS: `brew install portaudio`) and start again."
)


class AudioError(Exception):
    """Base of the audio package's errors; the message is meant for a person to act on."""


class DeviceError(AudioError):
    """No usable input device: PortAudio missing, no devices, or a spec that matches none."""


@dataclass(frozen=True, slots=True)
class InputDevice:
    """One PortAudio device that can record, as it was when the device list was read."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool
    kind: str = "input"
    """"input" (a microphone or line in), or system audio: "monitor" (what a PulseAudio or
    PipeWire output plays) or "loopback" (what a Windows WASAPI output plays)."""
    pulse_source: str | None = None
    """The PulseAudio source to record through the ALSA "pulse" device at `index`, when this
    is a monitor that PortAudio does not list itself (see `captioner.audio.system`)."""

    @property
    def is_system_audio(self) -> bool:
        """What the computer plays rather than what a microphone hears."""
        return self.kind != "input"

    @property
    def label(self) -> str:
        """How the device is named to a person, e.g. ``USB Mic (ALSA)``, or
        ``Monitor of Speakers (system audio · PulseAudio)``."""
        if self.is_system_audio:
            return f"{self.name} (system audio · {self.hostapi})"
        return f"{self.name} ({self.hostapi})"


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into a `DeviceError` with advice."""
    try:
        import sounddevice
    except OSError as exc:  # the module raises OSError when PortAudio cannot be loaded
        raise DeviceError(f"Audio input is unavailable: {exc}. {_INSTALL_HINT}") from exc
    except ImportError as exc:
        raise DeviceError(
            f"Audio input is unavailable: the sounddevice package cannot be imported ({exc}). "
            "Reinstall Captioner with its dependencies."
        ) from exc
    module: ModuleType = sounddevice
    return module


def list_input_devices() -> list[InputDevice]:
    """Every device with at least one input channel, in PortAudio's order.

    PortAudio reads the device list once per process, so devices plugged in later appear only
    after a restart.
    """
    sd = load_sounddevice()
    try:
        devices: Sequence[dict[str, Any]] = list(sd.query_devices())
        hostapis: Sequence[dict[str, Any]] = list(sd.query_hostapis())
    except sd.PortAudioError as exc:
        raise DeviceError(f"Could not list audio devices: {exc}") from exc
    default_index = _default_input_index(sd, devices, hostapis)
    found = []
    for info in devices:
        channels = int(info.get("max_input_channels", 0))
        if channels <= 0:
            continue
        index = int(info["index"])
        hostapi_index = int(info.get("hostapi", -1))
        hostapi = (
            str(hostapis[hostapi_index]["name"])
            if 0 <= hostapi_index < len(hostapis)
            else "unknown host API"
        )
        found.append(
            InputDevice(
                index=index,
                name=str(info.get("name", f"device {index}")),
                hostapi=hostapi,
                max_input_channels=channels,
                default_samplerate=float(info.get("default_samplerate", 0.0)),
                is_default=index == default_index,
            )
        )
    return found


def _default_input_index(
    sd: ModuleType, devices: Sequence[dict[str, Any]], hostapis: Sequence[dict[str, Any]]
) -> int:
    """The system default input, falling back to the first host API that names one."""
    try:
        index = int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        index = -1
    if index < 0 or index >= len(devices):
        for api in hostapis:
            candidate = int(api.get("default_input_device", -1))
            if 0 <= candidate < len(devices):
                return candidate
        return -1
    return index


def find_input_device(spec: str | int | None = None) -> InputDevice:
    """Resolve a device given as an index, a digit string, part of a name, or None (default).

    A name matches case-insensitively; an exact name wins over names that merely contain it,
    so "pulse" picks "pulse" even when "pulse-echo" exists too.
    """
    return choose_input_device(spec, list_input_devices())


def choose_input_device(spec: str | int | None, devices: Sequence[InputDevice]) -> InputDevice:
    """`find_input_device` over a given device list (the CLI and tests hold one already)."""
    if not devices:
        raise DeviceError(
            "No audio input devices found. Connect a microphone, check that the audio server "
            "(PulseAudio or PipeWire) is running and that this user may record, then try again."
        )
    if isinstance(spec, bool):
        raise DeviceError(f"Not a device: {spec!r}. {_choose_hint(devices)}")
    text = spec.strip() if isinstance(spec, str) else spec
    if text is None or text == "":
        for device in devices:
            if device.is_default:
                return device
        raise DeviceError(f"There is no default input device. {_choose_hint(devices)}")
    if isinstance(text, int) or text.isdigit():
        index = int(text)
        for device in devices:
            if device.index == index:
                return device
        raise DeviceError(f"There is no input device with index {index}. {_choose_hint(devices)}")
    wanted = text.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in devices if wanted in d.name.casefold()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f'No input device name contains "{text}". {_choose_hint(devices)}')
    names = ", ".join(f"{d.index} {d.label}" for d in matches)
    raise DeviceError(
        f'"{text}" matches {len(matches)} input devices ({names}); '
        f"give more of the name or the index. {_choose_hint(devices)}"
    )


def format_input_devices(devices: Sequence[InputDevice]) -> str:
    """One line per device, the default marked with ``*``: for error messages and the CLI."""
    return "\n".join(
        f"{'*' if d.is_default else ' '} {d.index:>3}  {d.label}, "
        f"{d.max_input_channels} ch, {d.default_samplerate:g} Hz"
        for d in devices
    )


def _choose_hint(devices: Sequence[InputDevice]) -> str:
    return (
        "Choose one by index or by part of its name. Input devices (* = default):\n"
        + format_input_devices(devices)
    )


OPEN_STREAMS: set[object] = set()
"""Input streams open now (a call has two): PortAudio must not be re-initialised under them."""


def rescan_input_devices() -> list[InputDevice]:
    """Make PortAudio read the device list again, then list inputs.

    PortAudio reads devices once per initialisation, and re-initialising it ends every open
    stream. So while another input is still recording (the other side of a call), the list is
    read as PortAudio last saw it: a device that went away and came back under the sound
    server (PulseAudio, PipeWire) is still found, a new USB device only once nothing records.
    """
    sd = load_sounddevice()
    if not OPEN_STREAMS:
        sd._terminate()
        sd._initialize()
    return list_input_devices()


def best_capture_rate(device: InputDevice, wanted: int) -> int:
    """`wanted` when the device (or its audio server) accepts it, else the device's own rate.

    Capturing at the stream's rate lets the audio server resample once, instead of us
    resampling every block.
    """
    sd = load_sounddevice()
    try:
        sd.check_input_settings(device=device.index, samplerate=wanted, channels=1)
    except Exception:
        return round(device.default_samplerate)
    return wanted
