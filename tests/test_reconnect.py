"""Never lose a word: reconnects with replay from the last final, against the emulator.

The WAV files here carry their own identity: every half-second slot holds a constant
sample value (slot k holds k + 1), and the emulator names each word after the value it
hears. A word that is lost, repeated or misplaced across a reconnect shows up by name.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from captioner.audio.wavfile import WavFileSource
from captioner.core.backoff import Backoff
from captioner.core.captions import Committed
from captioner.core.config import StreamSettings
from captioner.session import Session, SessionEnd, SessionOptions, State
from testkit.audio_files import slot_wav
from testkit.deepgram_emulator import (
    NET0001_REASON,
    Accept,
    AfterAudio,
    DeepgramEmulator,
    Hang,
    Refuse,
    Script,
    SendText,
    WordSlot,
)
from tests.test_session import KEY, Recorder

RATE = 16000
SLOT = 0.5  # the emulator's word slot at 2 words per second


def word_for(slot: WordSlot) -> str | None:
    """Name the word after the constant sample value of the slot's audio."""
    if len(slot.audio) < 2:
        return None
    values = np.frombuffer(slot.audio, dtype="<i2")
    return f"w{int(np.bincount(values.astype(np.int64) % 65536).argmax())}"


def expected_words(slots: int) -> list[str]:
    return [f"w{k}" for k in range(1, slots + 1)]


def committed_words(rec: Recorder) -> list[str]:
    words: list[str] = []
    for event in rec.events:
        if isinstance(event, Committed) and not event.utterance.gap:
            words.extend(w.strip(".,").lower() for w in event.utterance.text.split())
    return words


def fast_backoff() -> Backoff:
    return Backoff(first=0.1, cap=0.5)


async def run(
    emu: DeepgramEmulator, wav: Path, pacing: str = "realtime", **kwargs: object
) -> tuple[SessionEnd, Recorder, Session]:
    rec = Recorder()
    settings = StreamSettings(url=emu.url, api_key=KEY, smart_format=False)
    backoff = kwargs.pop("backoff", None) or fast_backoff()
    options = SessionOptions(**kwargs)  # type: ignore[arg-type]
    session = Session(settings, WavFileSource(wav, pacing=pacing), rec, options, backoff=backoff)  # type: ignore[arg-type]
    end = await asyncio.wait_for(session.run(), 60)
    await emu.wait_idle()
    return end, rec, session


async def test_drop_mid_stream_replays_from_the_last_final_without_loss_or_repeat(
    tmp_path: Path,
) -> None:
    slots = 16  # 8 s
    wav = slot_wav(tmp_path / "s.wav", slots)
    script = Script(words=word_for, handshakes=[Accept(drop_after_audio=3.2), Accept()])
    async with DeepgramEmulator(script) as emu:
        end, rec, session = await run(emu, wav)
    assert end.ok, end
    first, second = emu.accepted
    assert first.dropped
    assert committed_words(rec) == expected_words(slots)
    # replay starts exactly at the end of the last final (2.0 s: finals every 2 s)
    captured = soundfile.read(wav, dtype="int16")[0].tobytes()
    acked = int(2.0 * RATE) * 2
    assert second.audio_bytes[: len(captured) - acked] == captured[acked:]
    assert len(second.audio_bytes) - (len(captured) - acked) < 640  # at most the padded tail
    assert emu.max_concurrent == 1
    assert State.RECONNECTING in rec.states
    assert session.connections == 2


async def test_committed_times_run_on_across_connections(tmp_path: Path) -> None:
    slots = 12
    wav = slot_wav(tmp_path / "s.wav", slots)
    script = Script(words=word_for, handshakes=[Accept(drop_after_audio=2.6), Accept()])
    async with DeepgramEmulator(script) as emu:
        end, rec, _ = await run(emu, wav)
    assert end.ok
    words = [
        w
        for e in rec.events
        if isinstance(e, Committed) and not e.utterance.gap
        for w in e.utterance.words
    ]
    assert [w.display.strip(".,").lower() for w in words] == expected_words(slots)
    for k, word in enumerate(words):
        # slot k occupies [k*0.5, (k+1)*0.5) on the capture clock, on both connections
        assert k * SLOT <= word.start < word.end <= (k + 1) * SLOT, (k, word)


async def test_1011_net0001_reconnects(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 10)
    script = Script(
        words=word_for,
        handshakes=[Accept(close_after_audio=(2.2, 1011, NET0001_REASON)), Accept()],
    )
    async with DeepgramEmulator(script) as emu:
        end, rec, _ = await run(emu, wav)
    assert end.ok
    assert len(emu.accepted) == 2
    assert committed_words(rec) == expected_words(10)
    reconnecting = [s for s in rec.statuses if s.state is State.RECONNECTING and s.meaning]
    assert reconnecting and reconnecting[0].meaning is not None
    assert reconnecting[0].meaning.label == "1011 NET-0001"
    assert "audio kept" in reconnecting[0].detail


async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 4)
    plans = [Refuse(429, retry_after=1), Refuse(429, retry_after=1), Accept()]
    async with DeepgramEmulator(Script(words=word_for, handshakes=plans)) as emu:
        end, rec, _ = await run(emu, wav, pacing="fast", max_realtime=None)
    assert end.ok
    attempts = [c.attempt_at for c in emu.connections]
    assert [c.status for c in emu.connections] == [429, 429, 101]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(attempts))
    # audio captured while waiting was kept and sent once connected
    assert committed_words(rec) == expected_words(4)


async def test_503_then_recovery_with_backoff_and_one_attempt_in_flight(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 6)
    plans = [Refuse(503)] * 4 + [Accept()]
    async with DeepgramEmulator(Script(words=word_for, handshakes=plans)) as emu:
        end, rec, _ = await run(emu, wav, backoff=Backoff(first=0.1, cap=0.4))
    assert end.ok
    assert [c.status for c in emu.connections] == [503] * 4 + [101]
    gaps = [b.attempt_at - a.attempt_at for a, b in itertools.pairwise(emu.connections)]
    # exponential: each wait at least as long as the jittered schedule allows
    assert gaps[0] >= 0.07 and gaps[-1] >= 0.3 * 0.75
    assert committed_words(rec) == expected_words(6)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404])
async def test_refusals_retrying_cannot_fix_stop_at_once(tmp_path: Path, status: int) -> None:
    wav = slot_wav(tmp_path / "s.wav", 2)
    async with DeepgramEmulator(Script(handshakes=[Refuse(status), Accept()])) as emu:
        end, _, _ = await run(emu, wav)
    assert not end.ok and end.exit_code in (3, 4)
    assert len(emu.connections) == 1


async def test_1008_data0000_is_not_retried(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 6)
    script = Script(handshakes=[Accept(decode_fail_after=1.0), Accept()])
    async with DeepgramEmulator(script) as emu:
        end, _, _ = await run(emu, wav)
    assert not end.ok and end.exit_code == 4
    assert end.meaning is not None and end.meaning.label == "1008 DATA-0000"
    assert len(emu.connections) == 1


@pytest.mark.slow
async def test_outage_longer_than_the_buffer_leaves_a_visible_gap(tmp_path: Path) -> None:
    slots = 16
    wav = slot_wav(tmp_path / "s.wav", slots)
    started = time.monotonic()

    def plan(record: object) -> Refuse | Accept | None:
        # refuse for ~2.5 s of wall time after the drop: longer than the 1 s buffer
        return Refuse(503) if time.monotonic() - started < 5.0 else Accept()

    script = Script(
        words=word_for,
        handshakes=[Accept(drop_after_audio=2.4)],
        handshake_hook=plan,  # type: ignore[arg-type]
    )
    async with DeepgramEmulator(script) as emu:
        end, rec, _ = await run(emu, wav, replay_seconds=1.0)
    assert end.ok
    gaps = [e.utterance for e in rec.events if isinstance(e, Committed) and e.utterance.gap]
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.text.startswith("[connection lost 0:02-")
    words = committed_words(rec)
    # what was finalised before the drop, then a jump, then the rest in order, none repeated
    assert words[:4] == ["w1", "w2", "w3", "w4"]
    assert len(words) == len(set(words))
    numbers = [int(w[1:]) for w in words]
    assert numbers == sorted(numbers), words
    # the new connection's word slots start mid-slot (at the gap's end), so its last
    # word may fall on either of the two final slots
    assert numbers[-1] >= slots - 1, words
    missing = [w for w in expected_words(slots) if w not in words]
    assert (
        missing and gap.start == pytest.approx(2.0) and gap.end >= 2.0 + SLOT * len(missing) - 0.6
    )


async def test_stop_while_reconnecting_ends_promptly(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 20)
    plans = [Accept(drop_after_audio=0.6), *[Refuse(503)] * 50]
    async with DeepgramEmulator(Script(handshakes=plans)) as emu:
        rec = Recorder()
        settings = StreamSettings(url=emu.url, api_key=KEY)
        session = Session(
            settings,
            WavFileSource(wav, pacing="realtime"),
            rec,
            backoff=Backoff(first=2.0, cap=5.0, jitter=0.0),
        )
        runner = asyncio.create_task(session.run())
        await emu.wait_for(lambda: len(emu.connections) >= 2, 10)
        stopped = time.monotonic()
        session.request_stop()
        end = await asyncio.wait_for(runner, 5)
        took = time.monotonic() - stopped
        count = len(emu.connections)
        await asyncio.sleep(0.3)
    # ended at once, nothing further attempted, and honest about the audio never transcribed
    assert not end.ok and end.exit_code == 5
    assert end.note.startswith("Stopped with the last") and "not transcribed" in end.note
    assert took < 1.0
    assert len(emu.connections) == count


async def test_client_gives_up_after_the_outage_budget(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 20)
    async with DeepgramEmulator(Script(handshakes=[Refuse(503)] * 100)) as emu:
        started = time.monotonic()
        end, rec, _ = await run(emu, wav, give_up_after=1.0)
        took = time.monotonic() - started
    assert not end.ok and end.exit_code == 5
    assert 1.0 <= took < 3.0
    assert rec.states[-1] is State.ERROR


async def test_a_server_that_never_answers_the_upgrade_is_retried(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 4)
    script = Script(words=word_for, handshakes=[Hang(), Accept()])
    async with DeepgramEmulator(script) as emu:
        end, rec, _ = await run(emu, wav, open_timeout=0.5)
    assert end.ok
    assert [c.plan for c in emu.connections] == ["hang", "accept"]
    assert committed_words(rec) == expected_words(4)
    meanings = [s.meaning for s in rec.statuses if s.state is State.RECONNECTING and s.meaning]
    assert meanings and meanings[0] is not None and meanings[0].retry


async def test_a_server_that_stalls_mid_stream_is_left_and_the_words_replayed(
    tmp_path: Path,
) -> None:
    wav = slot_wav(tmp_path / "s.wav", 12)
    script = Script(words=word_for, handshakes=[Accept(stall_after_audio=2.5), Accept()])
    async with DeepgramEmulator(script) as emu:
        end, rec, _ = await run(emu, wav, ping_interval=0.3, ping_timeout=0.6)
    assert end.ok
    assert len(emu.accepted) == 2
    assert committed_words(rec) == expected_words(12)


async def test_a_huge_server_message_ends_that_connection_only(tmp_path: Path) -> None:
    wav = slot_wav(tmp_path / "s.wav", 10)
    huge = '{"type":"Results","junk":"' + "x" * (2 << 20) + '"}'
    script = Script(
        words=word_for,
        handshakes=[Accept(timeline=[AfterAudio(2.2), SendText(huge)], generate=True), Accept()],
    )
    async with DeepgramEmulator(script) as emu:
        end, rec, _ = await run(emu, wav)
    assert end.ok
    assert len(emu.accepted) == 2
    assert committed_words(rec) == expected_words(10)
