"""`captioner listen` and `captioner devices` as a user runs them: real processes.

The command runs as a child process; the scripted emulator (or the offline engine)
answers on loopback; audio comes from WAV files or the virtual microphone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
import pytest

from testkit.audio_files import noise_wav
from testkit.deepgram_emulator import (
    DATA0000_REASON,
    NET0001_REASON,
    Accept,
    DeepgramEmulator,
    Refuse,
    Script,
    counting_words,
)
from testkit.virtual_mic import VirtualMic

KEY = "cli-secret-key-0123456789abcdef"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DEEPGRAM_API_KEY"}
    env.update(extra)
    return env


async def captioner(
    *args: str,
    env: dict[str, str] | None = None,
    limit: float = 60,
    interrupt_after: float | None = None,
) -> Run:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "captioner.cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or child_env(),
    )
    if interrupt_after is not None:
        await asyncio.sleep(interrupt_after)
        proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def listen_live(
    mic: VirtualMic, *args: str, within: float = 90
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """`captioner listen ARGS` on the virtual microphone with no key (the offline engine),
    returned once it says Live (the model loaded, audio flowing), with what it said so far."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "captioner.cli",
        "listen",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=mic.child_env(child_env()),
    )
    assert proc.stderr is not None and proc.stdout is not None
    said: list[str] = []
    async with asyncio.timeout(within):
        while not any("Live" in line for line in said):
            line = (await proc.stderr.readline()).decode()
            assert line, "".join(said)
            said.append(line)
    return proc, said


def words_of(lines: list[str]) -> list[str]:
    """The words of caption lines, lowercase, without the punctuation around them: Whisper
    ends the same espeak sentence with "." one time and "!" another."""
    return [w.strip(string.punctuation).lower() for line in lines for w in line.split()]


async def test_listen_file_prints_one_line_per_utterance_and_nothing_else(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--fast", "--url", emu.url, "--api-key", KEY
        )
    assert run.code == 0, run.err
    # 2 words/s, finals every 2 s, speech_final on every 2nd: an 8-word utterance, then
    # the last 4 words committed by the CloseStream flush
    assert words_of(run.lines) == counting_words(12)
    assert len(run.lines) == 2
    assert "Live" in run.err and "Stopped" in run.err
    assert KEY not in run.out + run.err


async def test_listen_json_events(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 6.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--fast", "--json", "--url", emu.url, "--api-key", KEY
        )
    assert run.code == 0, run.err
    events = [json.loads(line) for line in run.lines]
    assert [e["type"] for e in events] == ["utterance", "utterance"]
    assert all(e["words"] and e["end"] > e["start"] for e in events)
    first_word = events[0]["words"][0]
    assert set(first_word) == {"word", "start", "end", "confidence", "speaker"}


async def test_interims_go_to_stderr(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--interim", "--url", emu.url, "--api-key", KEY
        )
    assert run.code == 0, run.err
    assert "… " in run.err
    assert "…" not in run.out


async def test_ctrl_c_stops_gracefully_and_drains(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 30.0)
    async with DeepgramEmulator(Script(final_every=10.0)) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--url", emu.url, "--api-key", KEY, interrupt_after=3.0
        )
        await emu.wait_idle()
    assert run.code == 0, run.err
    [conn] = emu.connections
    assert conn.control_types[-1] == "CloseStream"
    assert conn.close_code == 1000
    # no final had come (finals every 10 s of audio): the drain delivered the words
    assert len(words_of(run.lines)) >= 3


async def test_duration_stops_after_that_long(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 30.0)
    async with DeepgramEmulator(Script()) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--duration", "2", "--url", emu.url, "--api-key", KEY
        )
        await emu.wait_idle()
    assert run.code == 0, run.err
    assert 1.8 <= emu.connections[0].audio_seconds <= 2.6


@pytest.mark.parametrize(
    ("plan", "code", "needle"),
    [
        (Refuse(401), 3, "401"),
        (Refuse(403), 3, "403"),
        (Refuse(400, dg_error="Invalid 'language' value of 'xx-yy-zz'."), 4, "xx-yy-zz"),
        (Refuse(402), 4, "402"),
        (Refuse(404), 4, "404"),
        (Accept(decode_fail_after=0.5), 4, "DATA-0000"),
    ],
)
async def test_refusals_exit_codes_and_messages(
    tmp_path: Path, plan: Refuse | Accept, code: int, needle: str
) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    async with DeepgramEmulator(Script(handshakes=[plan])) as emu:
        run = await captioner(
            "listen", "--file", str(wav), "--url", emu.url, "--api-key", KEY, "-vv"
        )
    assert run.code == code, run.err
    assert needle in run.err
    assert run.out == ""
    assert len(emu.connections) == 1
    assert KEY not in run.err


async def test_network_failure_exits_5(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 3.0)
    async with DeepgramEmulator(Script()) as emu:
        url = emu.url  # closed again: nothing listens there now
    run = await captioner(
        "listen", "--file", str(wav), "--url", url, "--api-key", KEY, "--give-up-after", "1"
    )
    assert run.code == 5, run.err
    assert "refused" in run.err.lower()


async def test_reconnects_through_a_net0001_close(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 5.0)
    plans = [Accept(close_after_audio=(2.2, 1011, NET0001_REASON)), Accept()]
    async with DeepgramEmulator(Script(handshakes=plans)) as emu:
        run = await captioner("listen", "--file", str(wav), "--url", emu.url, "--api-key", KEY)
    assert run.code == 0, run.err
    assert "NET-0001" in run.err and "audio kept" in run.err
    assert len(emu.accepted) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--chunk-ms", "5"], "chunk"),
        (["--url", "http://127.0.0.1:9/v1/listen"], "ws://"),
        (["--url", "wss://api.deepgram.com/v1/listen"], "API key"),
        (["--language", "english!"], "language"),
    ],
)
async def test_invalid_settings_exit_2_without_connecting(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    wav = noise_wav(tmp_path / "n.wav", 1.0)
    run = await captioner("listen", "--file", str(wav), *args)
    assert run.code == 2, run.err
    assert needle.lower() in run.err.lower()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"this is not audio at all", "n.wav"), (b"", "n.wav")],
)
async def test_bad_files_exit_2(tmp_path: Path, content: bytes, needle: str) -> None:
    bad = tmp_path / "n.wav"
    bad.write_bytes(content)
    run = await captioner("listen", "--file", str(bad), "--url", "ws://127.0.0.1:9/v1/listen")
    assert run.code == 2
    assert needle in run.err


async def test_missing_file_exits_2(tmp_path: Path) -> None:
    run = await captioner("listen", "--file", str(tmp_path / "absent.wav"))
    assert run.code == 2
    assert "absent.wav" in run.err


async def test_usage_errors_exit_2() -> None:
    assert (await captioner("listen", "--bogus")).code == 2
    # no display: the window says what is missing and how to run instead
    headless = {
        k: v
        for k, v in child_env().items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    no_window = await captioner(env=headless)
    assert no_window.code == 2
    assert "xvfb-run" in no_window.err and "captioner listen" in no_window.err
    version = await captioner("--version")
    assert version.code == 0 and version.out.startswith("captioner ")


async def test_key_from_environment_is_sent_and_never_printed(tmp_path: Path) -> None:
    wav = noise_wav(tmp_path / "n.wav", 1.0)
    async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
        run = await captioner(
            "-vv",
            "listen",
            "--file",
            str(wav),
            "--url",
            emu.url,
            env=child_env(DEEPGRAM_API_KEY=KEY),
        )
    assert run.code == 0, run.err
    assert emu.connections[0].headers["authorization"] == f"Token {KEY}"
    assert KEY not in run.out + run.err


# -- real input devices: the virtual microphone ----------------------------------------


async def test_devices_lists_the_virtual_microphone(virtual_mic: VirtualMic) -> None:
    run = await captioner("devices", env=virtual_mic.child_env())
    assert run.code == 0, run.err
    assert any(line.startswith("*") for line in run.lines)
    as_json = await captioner("devices", "--json", env=virtual_mic.child_env())
    devices = [json.loads(line) for line in as_json.lines]
    assert any(d["default"] for d in devices)
    # system audio: the sound server's monitor of the virtual sink is offered, labelled
    monitors = [d for d in devices if d["kind"] == "monitor"]
    assert monitors, devices
    assert "system audio" in run.out
    assert all(
        {"index", "name", "hostapi", "channels", "default_samplerate"} <= set(d) for d in devices
    )


async def test_listen_device_streams_the_microphone(
    virtual_mic: VirtualMic, speech_wav: Path
) -> None:
    async with DeepgramEmulator(Script()) as emu:
        proc = asyncio.create_task(
            captioner(
                "listen",
                "--device",
                "pulse",
                "--duration",
                "4",
                "--url",
                emu.url,
                "--api-key",
                KEY,
                env=virtual_mic.child_env(),
            )
        )
        await emu.wait_for(lambda: bool(emu.connections and emu.connections[0].binary_frames), 15)
        await asyncio.to_thread(virtual_mic.play, speech_wav)
        run = await proc
        await emu.wait_idle()
    assert run.code == 0, run.err
    [conn] = emu.connections
    assert conn.param("sample_rate") == "16000"
    sizes = {f.size for f in conn.binary_frames[:-1]}
    assert sizes == {3200}
    samples = np.frombuffer(conn.audio_bytes, dtype="<i2")
    assert np.abs(samples).max() > 1000  # the speech got through, not just silence
    assert 3.5 <= conn.audio_seconds <= 4.6
    assert run.lines  # the emulator turned the non-silent audio into words


async def test_listen_unknown_device_exits_2(virtual_mic: VirtualMic) -> None:
    run = await captioner("listen", "--device", "no such device 42", env=virtual_mic.child_env())
    assert run.code == 2
    assert "no such device 42" in run.err


def test_data0000_reason_constant_is_the_bare_code() -> None:
    # The exit-code test above relies on the emulator's DATA-0000 close carrying this text.
    assert "DATA-0000" in DATA0000_REASON


async def test_listen_with_no_key_uses_the_offline_engine_end_to_end(
    virtual_mic: VirtualMic, tmp_path: Path
) -> None:
    """No key, no URL: the microphone is captioned by the embedded Whisper engine."""
    from testkit.virtual_mic import make_speech_wav

    speech = make_speech_wav(
        tmp_path / "s.wav", "Good morning everyone. We will walk to the river after lunch."
    )
    proc, err_lines = await listen_live(virtual_mic, "--device", "pulse", "--duration", "30")
    async with asyncio.timeout(90):
        await asyncio.to_thread(virtual_mic.play, speech)
        await asyncio.sleep(2.0)  # the last words' endpoint
        proc.send_signal(signal.SIGINT)
        out, err = await proc.communicate()
    assert proc.returncode == 0, "".join(err_lines) + err.decode()
    assert any("offline engine" in line for line in err_lines)
    heard = " ".join(words_of(out.decode().splitlines()))
    reference = "good morning everyone we will walk to the river after lunch"
    # espeak through a virtual microphone: Whisper may mishear a word, never most of them
    assert jiwer.wer(reference, heard) <= 0.35, heard
    assert sum(w in heard.split() for w in ("morning", "everyone", "walk", "river", "lunch")) >= 3
