"""Device loss with a real PortAudio input: the audio server dies and comes back mid-session.

The virtual microphone is a private PulseAudio daemon; stopping it is what unplugging a
USB microphone (or a crashing audio server) looks like to PortAudio. The session must
say so, hold the connection with KeepAlive, and resume on the same device.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from testkit.deepgram_emulator import DeepgramEmulator, Script
from testkit.virtual_mic import VirtualMic
from tests.test_cli import KEY, captioner


@pytest.mark.slow
async def test_device_lost_and_back_keeps_the_connection(
    private_virtual_mic: VirtualMic, speech_wav: object
) -> None:
    mic = private_virtual_mic
    async with DeepgramEmulator(Script()) as emu:
        run = asyncio.create_task(
            captioner(
                "listen",
                "--device",
                "pulse",
                "--duration",
                "16",
                "--url",
                emu.url,
                "--api-key",
                KEY,
                env=mic.child_env(),
                limit=60,
            )
        )
        await emu.wait_for(lambda: bool(emu.connections and emu.connections[0].binary_frames), 15)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(mic.stop)
        lost_at = time.monotonic()
        conn = emu.connections[0]
        frames_at_loss = len(conn.binary_frames)
        # wait until the client noticed: audio stops, KeepAlive holds the connection
        await emu.wait_for(lambda: "KeepAlive" in conn.control_types, 15)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(mic.start)
        restarted_at = time.monotonic()
        await emu.wait_for(lambda: len(conn.binary_frames) > frames_at_loss + 5, 15)
        await asyncio.to_thread(mic.play, speech_wav)
        result = await run
        await emu.wait_idle()
    assert result.code == 0, result.err
    assert "Microphone lost" in result.err
    assert "Microphone back" in result.err
    assert len(emu.connections) == 1  # the connection was kept, not re-made
    after = [f for f in conn.binary_frames if f.t > restarted_at]
    samples = np.frombuffer(b"".join(f.data for f in after if isinstance(f.data, bytes)), "<i2")
    assert samples.size and np.abs(samples).max() > 1000  # real sound after the return
    keepalives = [
        f.t for f in conn.text_frames if f.text == '{"type":"KeepAlive"}' and f.t > lost_at
    ]
    assert keepalives


async def test_digital_silence_is_reported(virtual_mic: VirtualMic) -> None:
    async with DeepgramEmulator(Script()) as emu:
        result = await captioner(
            "listen",
            "--device",
            "pulse",
            "--duration",
            "7",
            "--url",
            emu.url,
            "--api-key",
            KEY,
            env=virtual_mic.child_env(),
        )
    assert result.code == 0, result.err
    assert "only digital silence" in result.err
