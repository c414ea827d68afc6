"""Two inputs as one multichannel stream, against the scripted Deepgram emulator.

The audio is a two-channel WAV whose every half-second slot holds a constant that names it
(left: 1, 2, ...; right: 101, 102, ...), so the emulator's word for a slot tells which
channel's audio reached it, and from where.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import soundfile

from captioner.audio.wavfile import WavFileSource
from captioner.core.backoff import Backoff
from captioner.core.captions import Committed
from captioner.core.config import StreamSettings
from captioner.session import Session, SessionEnd, SessionOptions
from testkit.deepgram_emulator import (
    Accept,
    AfterAudio,
    DeepgramEmulator,
    Drop,
    Script,
    SendText,
    WordSlot,
)
from tests.fixtures import load_fixture
from tests.test_session import KEY, Recorder

RATE = 16000
SLOT = 0.5


def word_for(slot: WordSlot) -> str | None:
    if slot.silent or len(slot.audio) < 2:
        return None
    values = np.frombuffer(slot.audio, dtype="<i2")
    return f"w{int(np.bincount(values.astype(np.int64) % 65536).argmax())}"


def call_wav(path: Path, slots: int, right_from: int = 0) -> Path:
    """Left speaks in every slot; right only from slot `right_from` on (silent before)."""
    n = int(SLOT * RATE)
    left = np.repeat(np.arange(1, slots + 1, dtype=np.int16), n)
    right = np.repeat(np.arange(101, 101 + slots, dtype=np.int16), n)
    right[: right_from * n] = 0
    soundfile.write(path, np.stack([left, right], axis=1), RATE, subtype="PCM_16")
    return path


def words_by_channel(rec: Recorder) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for event in rec.events:
        if isinstance(event, Committed) and not event.utterance.gap:
            words = [w.strip(".,").lower() for w in event.utterance.text.split()]
            found.setdefault(event.utterance.channel, []).extend(words)
    return found


async def run(emu: DeepgramEmulator, wav: Path) -> tuple[SessionEnd, Recorder]:
    rec = Recorder()
    settings = StreamSettings(
        url=emu.url, api_key=KEY, smart_format=False, channels=2, multichannel=True
    )
    source = WavFileSource(wav, pacing="realtime")
    session = Session(settings, source, rec, SessionOptions(), backoff=Backoff(first=0.1, cap=0.5))
    end = await asyncio.wait_for(session.run(), 60)
    await emu.wait_idle()
    return end, rec


async def test_two_inputs_go_as_one_interleaved_stream_and_come_back_by_channel(
    tmp_path: Path,
) -> None:
    wav = call_wav(tmp_path / "call.wav", 8, right_from=4)
    async with DeepgramEmulator(Script(words=word_for)) as emu:
        end, rec = await run(emu, wav)
    assert end.ok, end
    (conn,) = emu.accepted
    assert conn.param("channels") == "2" and conn.param("multichannel") == "true"
    assert not conn.violations
    captured = soundfile.read(wav, dtype="int16")[0].astype("<i2").tobytes()
    assert conn.audio_bytes[: len(captured)] == captured  # left, right, left, right, ...
    assert words_by_channel(rec) == {
        0: [f"w{k}" for k in range(1, 9)],
        1: [f"w{k}" for k in range(105, 109)],
    }


async def test_a_drop_replays_both_channels_from_where_both_were_final(tmp_path: Path) -> None:
    wav = call_wav(tmp_path / "call.wav", 12)
    script = Script(words=word_for, handshakes=[Accept(drop_after_audio=3.2), Accept()])
    async with DeepgramEmulator(script) as emu:
        end, rec = await run(emu, wav)
    assert end.ok, end
    first, _ = emu.accepted
    assert first.dropped
    assert words_by_channel(rec) == {
        0: [f"w{k}" for k in range(1, 13)],
        1: [f"w{k}" for k in range(101, 113)],
    }


def empty_final(channel: list[int], start: float, duration: float) -> str:
    message = json.loads(load_fixture("results_final_empty"))
    message.update(channel_index=channel, start=start, duration=duration)
    return json.dumps(message)


async def test_finals_of_one_channel_or_of_a_channel_never_sent_confirm_nothing(
    tmp_path: Path,
) -> None:
    """A hostile or partial server finalises channel 0 and a channel 7 that does not exist,
    then drops: the right channel's audio was never confirmed, so it is all sent again, and
    none of its words is lost."""
    wav = call_wav(tmp_path / "call.wav", 8)
    first = Accept(
        generate=False,
        timeline=[
            AfterAudio(2.0),
            SendText(empty_final([0, 2], 0.0, 2.0)),
            SendText(empty_final([7, 2], 0.0, 2.0)),
            Drop(),
        ],
    )
    async with DeepgramEmulator(Script(words=word_for, handshakes=[first, Accept()])) as emu:
        end, rec = await run(emu, wav)
    assert end.ok, end
    _, second = emu.accepted
    captured = soundfile.read(wav, dtype="int16")[0].astype("<i2").tobytes()
    assert second.audio_bytes[: len(captured)] == captured  # replayed from the very start
    assert words_by_channel(rec) == {
        0: [f"w{k}" for k in range(1, 9)],
        1: [f"w{k}" for k in range(101, 109)],
    }
