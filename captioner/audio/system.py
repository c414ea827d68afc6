"""System audio: what the computer plays, listed and recorded like a microphone.

Where each platform offers it:

- Linux with PulseAudio, or PipeWire through pipewire-pulse: every output has a monitor
  source. PortAudio's ALSA host API sees the sound server only as the single "pulse"
  device, which records the default source, so the monitors are listed with `pactl` and
  recorded through that "pulse" device with ``PULSE_SOURCE`` naming the monitor while the
  stream is opened: libpulse reads the variable when the ALSA plugin creates its context,
  once per stream. The person's default source is never changed, and nothing outlives the
  stream. (The ALSA plugin comes with libasound2-plugins; without a "pulse" device no
  monitor is offered, as none could be recorded.)
- Windows: PortAudio builds with WASAPI loopback list each output's loopback as an input
  named "... [Loopback]"; they are marked as system audio.
- A PortAudio with its own PulseAudio host API lists monitors itself ("Monitor of ...");
  they are marked, and `pactl` is not asked.
- macOS offers no system audio without a loopback driver (BlackHole, Loopback), which then
  appears as an ordinary input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from captioner.audio.devices import InputDevice, list_input_devices

__all__ = [
    "PulseSource",
    "default_output_monitor",
    "list_capture_devices",
    "list_pulse_monitors",
    "parse_pactl_json",
    "parse_pactl_short",
    "pulse_source_selected",
    "system_audio_kind",
    "with_system_audio",
]

log = logging.getLogger(__name__)

PACTL_TIMEOUT = 3.0
PULSE_SOURCE_ENV = "PULSE_SOURCE"
_SPEC = re.compile(r"(?P<channels>\d+)ch\s+(?P<rate>\d+)Hz")
_env_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class PulseSource:
    """One PulseAudio source as `pactl` describes it."""

    name: str
    description: str
    channels: int
    rate: int
    is_monitor: bool


def system_audio_kind(name: str, hostapi: str) -> str:
    """ "loopback", "monitor" or "input" for a device PortAudio lists."""
    api = hostapi.casefold()
    if "wasapi" in api and "[loopback]" in name.casefold():
        return "loopback"
    if "pulse" in api and name.casefold().startswith("monitor of "):
        return "monitor"
    return "input"


def _spec(text: str) -> tuple[int, int]:
    found = _SPEC.search(text or "")
    if found is None:
        return 2, 48000
    return int(found["channels"]), int(found["rate"])


def parse_pactl_json(text: str) -> list[PulseSource]:
    """`pactl --format=json list sources` (pactl 16 and later); ValueError if it is not that."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a list of sources")
    found = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        properties = item.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        description = item.get("description") or properties.get("device.description") or name
        monitor = (
            properties.get("device.class") == "monitor"
            or bool(item.get("monitor_source"))
            or name.endswith(".monitor")
        )
        channels, rate = _spec(str(item.get("sample_specification", "")))
        found.append(PulseSource(name, str(description), channels, rate, monitor))
    return found


def parse_pactl_short(text: str) -> list[PulseSource]:
    """`pactl list short sources`: tab-separated index, name, driver, spec, state."""
    found = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not fields[1]:
            continue
        name = fields[1]
        channels, rate = _spec(fields[3] if len(fields) > 3 else "")
        monitor = name.endswith(".monitor")
        description = f"Monitor of {name.removesuffix('.monitor')}" if monitor else name
        found.append(PulseSource(name, description, channels, rate, monitor))
    return found


def _pactl(*argv: str) -> str | None:
    try:
        done = subprocess.run(
            ["pactl", *argv],
            capture_output=True,
            text=True,
            timeout=PACTL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("pactl %s: %s", " ".join(argv), exc)
        return None
    if done.returncode != 0:
        log.debug("pactl %s failed: %s", " ".join(argv), done.stderr.strip())
        return None
    return done.stdout


def list_pulse_monitors() -> list[PulseSource]:
    """The monitor sources of the running PulseAudio (or pipewire-pulse); [] without one."""
    text = _pactl("--format=json", "list", "sources")
    sources: list[PulseSource] | None = None
    if text is not None:
        try:
            sources = parse_pactl_json(text)
        except ValueError:
            sources = None
    if sources is None:
        short = _pactl("list", "short", "sources")
        sources = parse_pactl_short(short) if short is not None else []
    return [s for s in sources if s.is_monitor]


def with_system_audio(
    devices: Sequence[InputDevice], monitors: Sequence[PulseSource] | None = None
) -> list[InputDevice]:
    """`devices` with system audio marked, and on Linux the sound server's monitors added.

    `monitors` None asks `pactl`; tests pass a list. Monitors are recorded through the ALSA
    "pulse" device, so without one none is added.
    """
    marked = [dataclasses.replace(d, kind=system_audio_kind(d.name, d.hostapi)) for d in devices]
    if any(d.kind == "monitor" for d in marked):
        return marked  # PortAudio lists them itself
    pulse = next((d for d in marked if d.name == "pulse" and d.hostapi == "ALSA"), None)
    if pulse is None:
        return marked
    if monitors is None:
        if not sys.platform.startswith("linux"):
            return marked
        monitors = list_pulse_monitors()
    taken = {d.name for d in marked}
    for monitor in monitors:
        name = monitor.description
        if name in taken:
            name = f"{monitor.description} [{monitor.name}]"
        taken.add(name)
        marked.append(
            InputDevice(
                index=pulse.index,
                name=name,
                hostapi="PulseAudio",
                max_input_channels=max(1, min(monitor.channels, 2)),
                default_samplerate=float(monitor.rate),
                is_default=False,
                kind="monitor",
                pulse_source=monitor.name,
            )
        )
    return marked


def default_output_monitor(devices: Sequence[InputDevice]) -> InputDevice | None:
    """The system-audio input that records the default output (what the person hears):
    on PulseAudio its sink's monitor; elsewhere the first system-audio input; None if none."""
    system = [d for d in devices if d.is_system_audio]
    if not system:
        return None
    sink = _default_sink()
    if sink is not None:
        for device in system:
            if device.pulse_source == f"{sink}.monitor" or device.name.endswith(f"{sink}.monitor]"):
                return device
    return system[0]


def _default_sink() -> str | None:
    text = _pactl("get-default-sink")
    if text is not None and text.strip():
        return text.strip()
    info = _pactl("info")  # pactl before 15 has no get-default-sink
    for line in (info or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Default Sink" and value.strip():
            return value.strip()
    return None


def list_capture_devices() -> list[InputDevice]:
    """Every input a person may caption: microphones, then system audio where offered."""
    return with_system_audio(list_input_devices())


@contextlib.contextmanager
def pulse_source_selected(source: str | None) -> Iterator[None]:
    """Make a PulseAudio stream opened inside this block record `source`.

    The variable is set only for the moment the stream is opened and restored right
    after; the lock keeps two opens from mixing their sources.
    """
    if source is None:
        yield
        return
    with _env_lock:
        previous = os.environ.get(PULSE_SOURCE_ENV)
        os.environ[PULSE_SOURCE_ENV] = source
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(PULSE_SOURCE_ENV, None)
            else:
                os.environ[PULSE_SOURCE_ENV] = previous
