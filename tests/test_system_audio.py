"""System audio: monitors and loopbacks listed, labelled, and captioned like a microphone.

The end-to-end tests use a private PulseAudio daemon (testkit/virtual_mic.py) with one
more null sink, "captioner_speakers", standing for a computer's speakers: speech played
into it must be heard on its monitor and nowhere else, and the person's default source
must stay as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from captioner.audio.devices import InputDevice
from captioner.audio.system import (
    PulseSource,
    parse_pactl_json,
    parse_pactl_short,
    pulse_source_selected,
    system_audio_kind,
    with_system_audio,
)
from captioner.ui.device_picker import DevicePicker
from testkit.deepgram_emulator import DeepgramEmulator, Script
from testkit.virtual_mic import VirtualMic
from tests.support.fixtures_audio import _started_mic
from tests.test_cli import KEY

SPEAKERS = "captioner_speakers"
SPEAKERS_NAME = "CaptionerSpeakers"

PACTL_JSON = json.dumps(
    [
        {
            "index": 0,
            "name": "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
            "description": "Monitor of Built-in Audio Analog Stereo",
            "sample_specification": "s16le 2ch 48000Hz",
            "monitor_source": "alsa_output.pci-0000_00_1f.3.analog-stereo",
            "properties": {"device.class": "monitor"},
        },
        {
            "index": 1,
            "name": "alsa_input.pci-0000_00_1f.3.analog-stereo",
            "description": "Built-in Audio Analog Stereo",
            "sample_specification": "s16le 2ch 44100Hz",
            "monitor_source": "",
            "properties": {"device.class": "sound"},
        },
    ]
)


def device(index: int, name: str, hostapi: str = "ALSA", default: bool = False) -> InputDevice:
    return InputDevice(index, name, hostapi, 2, 44100.0, default)


# -- listing and labelling ------------------------------------------------------------------


def test_pactl_sources_are_read_in_both_forms() -> None:
    monitor, mic = parse_pactl_json(PACTL_JSON)
    assert monitor == PulseSource(
        "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
        "Monitor of Built-in Audio Analog Stereo",
        2,
        48000,
        True,
    )
    assert not mic.is_monitor and mic.rate == 44100
    with pytest.raises(ValueError):
        parse_pactl_json("pactl: unknown option")
    short = parse_pactl_short(
        "0\tsink.monitor\tmodule-null-sink.c\ts16le 1ch 16000Hz\tRUNNING\n"
        "1\tmic\tmodule-alsa-card.c\ts16le 2ch 44100Hz\tIDLE\n"
    )
    assert [(s.name, s.description, s.is_monitor, s.channels) for s in short] == [
        ("sink.monitor", "Monitor of sink", True, 1),
        ("mic", "mic", False, 2),
    ]


def test_monitors_are_added_through_the_pulse_device_and_labelled() -> None:
    devices = [
        device(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)"),
        device(7, "pulse", default=True),
    ]
    monitors = [s for s in parse_pactl_json(PACTL_JSON) if s.is_monitor]
    listed = with_system_audio(devices, monitors)
    assert listed[:2] == devices
    (added,) = listed[2:]
    assert (added.index, added.kind, added.is_default) == (7, "monitor", False)
    assert added.pulse_source == "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor"
    assert added.label == "Monitor of Built-in Audio Analog Stereo (system audio · PulseAudio)"
    assert added.default_samplerate == 48000.0
    assert not listed[0].is_system_audio
    # without an ALSA "pulse" device nothing could record them, so none is offered
    assert with_system_audio(devices[:1], monitors) == devices[:1]


def test_loopbacks_and_portaudio_monitors_are_marked_as_system_audio() -> None:
    assert system_audio_kind("Speakers (Realtek(R) Audio) [Loopback]", "Windows WASAPI") == (
        "loopback"
    )
    assert system_audio_kind("Speakers (Realtek(R) Audio)", "Windows WASAPI") == "input"
    assert system_audio_kind("Monitor of Built-in Audio", "PulseAudio") == "monitor"
    assert system_audio_kind("Microphone (USB)", "MME") == "input"
    listed = with_system_audio(
        [device(3, "Speakers [Loopback]", "Windows WASAPI"), device(4, "Mic", "Windows WASAPI")],
        [],
    )
    assert [d.kind for d in listed] == ["loopback", "input"]
    assert listed[0].label == "Speakers [Loopback] (system audio · Windows WASAPI)"


def test_the_picker_offers_system_audio_after_the_microphones(qtbot: QtBot) -> None:
    picker = DevicePicker()
    qtbot.addWidget(picker)
    monitors = [s for s in parse_pactl_json(PACTL_JSON) if s.is_monitor]
    picker.set_devices(with_system_audio([device(7, "pulse", default=True)], monitors))
    items = [picker.combo.itemText(i) for i in range(picker.combo.count())]
    assert items == [
        "pulse (ALSA)  — system default",
        "Monitor of Built-in Audio Analog Stereo (system audio · PulseAudio)",
    ]
    chosen = picker.select_spec("monitor of")
    assert chosen.is_system_audio and picker.current_device() == chosen


def test_the_source_variable_is_set_only_while_a_stream_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULSE_SOURCE", "the-users-own")
    with pulse_source_selected("speakers.monitor"):
        assert os.environ["PULSE_SOURCE"] == "speakers.monitor"
    assert os.environ["PULSE_SOURCE"] == "the-users-own"
    monkeypatch.delenv("PULSE_SOURCE")
    with pulse_source_selected("speakers.monitor"):
        pass
    assert "PULSE_SOURCE" not in os.environ
    with pulse_source_selected(None):
        assert "PULSE_SOURCE" not in os.environ


# -- a real sound server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def speakers() -> Iterator[VirtualMic]:
    """A private daemon of this module's, with one more output: the computer's "speakers"."""
    for mic in _started_mic():
        _add_speakers(mic)
        yield mic


def _add_speakers(mic: VirtualMic) -> None:
    env = mic.child_env()
    subprocess.run(
        [
            "pactl",
            "load-module",
            "module-null-sink",
            f"sink_name={SPEAKERS}",
            f"sink_properties=device.description={SPEAKERS_NAME}",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=10,
    )


def play_on_speakers(mic: VirtualMic, wav: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["paplay", f"--device={SPEAKERS}", str(wav)],
        env=mic.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


CAPTURE_BOTH = """
import asyncio, json, os, subprocess, sys, time
import numpy as np
from captioner.audio.resilient import ResilientMicrophone
from captioner.audio.sources import MicrophoneSource
from captioner.audio.system import list_capture_devices

async def drain(source, seconds):
    blocks, started = [], time.monotonic()
    while time.monotonic() - started < seconds:
        block = await source.read()
        if block is None:
            break
        blocks.append(block.data)
    source.close()
    data = np.concatenate(blocks) if blocks else np.zeros((0, 1), np.int16)
    return float(np.abs(data.astype(np.float64)).max(initial=0.0)) / 32768.0, len(data)

async def main():
    devices = list_capture_devices()
    monitor = next(d for d in devices if d.name == "Monitor of CaptionerSpeakers")
    default = next(d for d in devices if d.is_default)
    system = ResilientMicrophone(monitor, rate=16000, block_ms=100)
    mic = MicrophoneSource(default, samplerate=16000, dtype="int16", stall_timeout=5.0)
    await system.start()
    await mic.start()
    left_over = os.environ.get("PULSE_SOURCE")
    print("READY", flush=True)
    (system_peak, system_frames), (mic_peak, _) = await asyncio.gather(
        drain(system, 3.0), drain(mic, 3.0)
    )
    default_source = subprocess.run(
        ["pactl", "get-default-source"], capture_output=True, text=True
    ).stdout.strip()
    print(json.dumps({
        "devices": [[d.label, d.kind, d.pulse_source] for d in devices],
        "description": system.description,
        "system_peak": system_peak, "system_frames": system_frames, "mic_peak": mic_peak,
        "left_over": left_over, "default_source": default_source,
    }))

asyncio.run(main())
"""


@pytest.mark.e2e
def test_a_monitor_records_what_the_speakers_play_and_nothing_else(
    speakers: VirtualMic, speech_wav: Path
) -> None:
    probe = subprocess.Popen(
        [sys.executable, "-c", CAPTURE_BOTH],
        env=speakers.child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert probe.stdout is not None
    line = probe.stdout.readline()
    if line.strip() != "READY":
        probe.kill()
        pytest.fail(f"the probe did not start: {line!r} {probe.communicate()[1]}")
    player = play_on_speakers(speakers, speech_wav)
    out, err = probe.communicate(timeout=30)
    player.kill()
    player.wait()
    assert probe.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert [
        "Monitor of CaptionerSpeakers (system audio · PulseAudio)",
        "monitor",
        f"{SPEAKERS}.monitor",
    ] in report["devices"]
    assert report["description"] == "System audio · Monitor of CaptionerSpeakers (PulseAudio)"
    assert report["system_peak"] > 0.1, "the speech played on the speakers was not heard"
    # an idle null sink renders in big late blocks, so less than 3 s may have arrived
    assert report["system_frames"] > 16000 * 0.5
    assert report["mic_peak"] < 0.01, "the default microphone heard the speakers too"
    assert report["left_over"] is None  # PULSE_SOURCE does not outlive the open
    assert report["default_source"] == "captioner_mic"  # the person's default is untouched


@pytest.mark.e2e
async def test_the_window_captions_system_audio(speakers: VirtualMic, speech_wav: Path) -> None:
    """The window, told `--device "Monitor of"`, streams what the speakers play."""
    env = speakers.child_env()
    env.update(QT_QPA_PLATFORM="offscreen", CAPTIONER_CONFIG_DIR=str(speech_wav.parent / "cfg"))
    async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
        window = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "captioner.cli",
            "--device",
            "Monitor of CaptionerSpeakers",
            "--start",
            "--url",
            emu.url,
            "--api-key",
            KEY,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await emu.wait_for(lambda: emu.connections and emu.connections[0].binary_frames, 20)
            player = play_on_speakers(speakers, speech_wav)
            conn = emu.connections[0]

            def loud() -> bool:
                data = b"".join(f.data for f in conn.binary_frames if isinstance(f.data, bytes))
                samples = np.frombuffer(data[: len(data) // 2 * 2], "<i2")
                return samples.size > 0 and int(np.abs(samples).max()) > 3000

            await emu.wait_for(loud, 15)
            player.kill()
            await asyncio.to_thread(player.wait)
        finally:
            if window.returncode is None:
                window.send_signal(signal.SIGTERM)  # as closing the window: ordered shutdown
            _, err = await asyncio.wait_for(window.communicate(), 30)
    assert window.returncode == 0, err.decode()
    assert conn.control_types[-1] == "CloseStream"
