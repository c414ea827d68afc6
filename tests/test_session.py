"""The session against the scripted Deepgram emulator: what docs/protocol.md asks of a client.

The audio comes from real WAV files through WavFileSource (a fake at the boundary), and
the server is a real WebSocket server on 127.0.0.1; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from captioner.audio.wavfile import WavFileSource
from captioner.core.captions import CaptionEvent, Committed, LiveChanged
from captioner.core.config import SettingsError, StreamSettings
from captioner.core.messages import Metadata, ServerMessage, Unknown
from captioner.session import Session, SessionEnd, SessionOptions, State, Status
from testkit.audio_files import noise_wav
from testkit.deepgram_emulator import (
    NET0001_REASON,
    AfterAudio,
    Close,
    DeepgramEmulator,
    Refuse,
    Script,
    SendBinary,
    SendText,
    counting_words,
)
from tests.fixtures import load_fixture

KEY = "test-key-0123456789"


class Recorder:
    """A SessionObserver that keeps everything it is told."""

    def __init__(self) -> None:
        self.statuses: list[Status] = []
        self.events: list[CaptionEvent] = []
        self.messages: list[ServerMessage] = []
        self.source_events: list[object] = []

    def status_changed(self, status: Status) -> None:
        self.statuses.append(status)

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None:
        self.events.extend(events)

    def message_received(self, message: ServerMessage) -> None:
        self.messages.append(message)

    def source_changed(self, event: object) -> None:
        self.source_events.append(event)

    @property
    def states(self) -> list[State]:
        return [s.state for s in self.statuses]

    @property
    def committed_text(self) -> str:
        return " ".join(e.utterance.text for e in self.events if isinstance(e, Committed))

    @property
    def committed_words(self) -> list[str]:
        """Committed words, lowercased and without punctuation (smart_format adds both)."""
        return [w.strip(".,?!").lower() for w in self.committed_text.split()]


def write_wav(path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    """Quiet noise: not digital silence, so the emulator hears 'speech' in every slot."""
    return noise_wav(path, seconds, rate, channels)


def settings_for(emu: DeepgramEmulator, **changes: object) -> StreamSettings:
    base: dict[str, object] = {"url": emu.url, "api_key": KEY}
    base.update(changes)
    return StreamSettings(**base)  # type: ignore[arg-type]


async def run_session(
    settings: StreamSettings, source: WavFileSource, **kwargs: object
) -> tuple[SessionEnd, Recorder, Session]:
    recorder = Recorder()
    session = Session(settings, source, recorder, SessionOptions(**kwargs))  # type: ignore[arg-type]
    end = await asyncio.wait_for(session.run(), 30)
    return end, recorder, session


# -- A: connection setup and authentication ------------------------------------------


async def test_auth_header_path_query_and_request_id(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 1.0)
    async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
        settings = settings_for(emu, keyterms=("Captioner", "live captions"))
        end, rec, session = await run_session(
            settings, WavFileSource(wav, pacing="fast"), max_realtime=None
        )
    assert end.ok and end.exit_code == 0
    [conn] = emu.connections
    assert conn.headers["authorization"] == f"Token {KEY}"
    assert conn.subprotocols == []
    assert conn.path == "/v1/listen"
    assert conn.query["keyterm"] == ["Captioner", "live captions"]
    assert conn.param("encoding") == "linear16"
    assert conn.param("sample_rate") == "16000"
    assert conn.param("channels") == "1"
    assert conn.param("interim_results") == "true"
    assert conn.param("endpointing") == "300"
    # E.37: the request id from the upgrade is kept, and it is the one in Results.
    assert session.request_id == conn.request_id
    assert any(s.request_id == conn.request_id for s in rec.statuses if s.state is State.LIVE)


async def test_401_is_reported_with_its_meaning_and_not_retried(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 1.0)
    async with DeepgramEmulator(Script(expected_key="another-key")) as emu:
        end, rec, session = await run_session(settings_for(emu), WavFileSource(wav, pacing="fast"))
    assert not end.ok
    assert end.exit_code == 3
    assert end.meaning is not None and end.meaning.label == "HTTP 401"
    assert "Invalid credentials." in end.detail
    assert len(emu.connections) == 1
    assert rec.states[-1] is State.ERROR
    assert session.request_id == emu.connections[0].request_id
    assert KEY not in repr(end) and KEY not in repr(rec.statuses)


async def test_400_dg_error_shown_verbatim_and_not_retried(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 1.0)
    reason = "Invalid 'utterance_end_ms' value of '999'."
    script = Script(handshakes=[Refuse(400, dg_error=reason, err_msg=reason)])
    async with DeepgramEmulator(script) as emu:
        end, _, _ = await run_session(settings_for(emu), WavFileSource(wav, pacing="fast"))
    assert end.exit_code == 4
    assert end.detail == reason
    assert end.meaning is not None and reason in end.meaning.explanation
    assert len(emu.connections) == 1


@pytest.mark.parametrize(
    ("status", "exit_code", "kind"),
    [(402, 4, "refused"), (403, 3, "auth"), (404, 4, "refused")],
)
async def test_other_refusals_map_to_exit_codes(
    tmp_path: Path, status: int, exit_code: int, kind: str
) -> None:
    wav = write_wav(tmp_path / "a.wav", 0.5)
    async with DeepgramEmulator(Script(handshakes=[Refuse(status)])) as emu:
        end, _, _ = await run_session(settings_for(emu), WavFileSource(wav, pacing="fast"))
    assert end.exit_code == exit_code
    assert len(emu.connections) == 1  # retrying cannot fix these
    assert end.meaning is not None and end.meaning.kind == kind


async def test_unreachable_server_is_a_network_error(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 0.5)
    async with DeepgramEmulator(Script()) as emu:
        url = emu.url
    settings = StreamSettings(url=url, api_key=KEY)
    end, _, _ = await run_session(settings, WavFileSource(wav, pacing="fast"), give_up_after=0.0)
    assert end.exit_code == 5
    assert end.meaning is not None and end.meaning.retry


# -- B: local validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"utterance_end_ms": 500},
        {"utterance_end_ms": 1000, "interim_results": False},
        {"model": "nova-3", "keywords": ("Captioner:2",)},
        {"chunk_ms": 5},
    ],
)
async def test_invalid_settings_never_connect(tmp_path: Path, changes: dict[str, object]) -> None:
    wav = write_wav(tmp_path / "a.wav", 0.5)
    async with DeepgramEmulator(Script()) as emu:
        with pytest.raises(SettingsError) as info:
            await run_session(settings_for(emu, **changes), WavFileSource(wav, pacing="fast"))
    assert emu.connections == []
    named = {e.setting for e in info.value.errors}
    assert named & set(changes), (named, changes)


# -- C: audio framing and pacing ---------------------------------------------------------


async def test_frames_are_binary_sane_sized_and_complete(tmp_path: Path) -> None:
    seconds = 2.345  # not a whole number of chunks: the tail must still be sane
    wav = write_wav(tmp_path / "a.wav", seconds, rate=48000, channels=2)
    async with DeepgramEmulator(Script(strict_frames=True)) as emu:
        end, _, _ = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="fast"), max_realtime=None
        )
    assert end.ok
    [conn] = emu.connections
    sizes = [f.size for f in conn.binary_frames]
    assert sizes and all(640 <= s <= 8000 and s % 2 == 0 for s in sizes), sizes
    assert all(s == 3200 for s in sizes[:-1])
    assert conn.violations == []
    # resampled 48 kHz stereo -> 16 kHz mono: the duration survives (tail padded <= 20 ms)
    assert conn.audio_seconds == pytest.approx(seconds, abs=0.03)


async def test_control_messages_are_exact_text_frames_and_close_stream_is_last(
    tmp_path: Path,
) -> None:
    wav = write_wav(tmp_path / "a.wav", 1.0)
    async with DeepgramEmulator(Script()) as emu:
        end, _, _ = await run_session(
            settings_for(emu),
            WavFileSource(wav, pacing="fast"),
            max_realtime=None,
            finalize_on_stop=True,
        )
    assert end.ok
    [conn] = emu.connections
    texts = [f.text for f in conn.text_frames]
    assert texts == ['{"type":"Finalize"}', '{"type":"CloseStream"}']
    assert conn.frames[-1].kind == "text" and conn.frames[-1].text == '{"type":"CloseStream"}'
    assert conn.close_code == 1000


async def test_first_audio_is_sent_without_waiting_for_a_server_message(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 1.5)
    async with DeepgramEmulator(Script()) as emu:
        await run_session(settings_for(emu), WavFileSource(wav, pacing="realtime"))
    [conn] = emu.connections
    assert conn.opened_at is not None
    first = conn.binary_frames[0].t - conn.opened_at
    assert first < 1.0


async def test_sending_stays_even_while_the_server_delays_every_reply(tmp_path: Path) -> None:
    """Sending never waits on receiving: a server that answers 2 s late changes nothing."""
    wav = write_wav(tmp_path / "a.wav", 4.0)
    async with DeepgramEmulator(Script(reply_delay=2.0)) as emu:
        end, rec, _ = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="realtime"), drain_timeout=6.0
        )
    assert end.ok
    [conn] = emu.connections
    times = [f.t for f in conn.binary_frames]
    gaps = np.diff(times)
    assert len(times) >= 39
    assert gaps.max() < 0.25, gaps.max()
    span = times[-1] - times[0]
    assert span == pytest.approx(3.9, abs=0.3)
    # and the late replies were still received and folded in
    assert rec.committed_text


async def test_capture_runs_on_while_the_server_reads_nothing(tmp_path: Path) -> None:
    """Capture never waits on the network: once the socket backs up, only the send task waits.

    Capture sends a chunk itself when the send task is idle and the socket would take it at
    once; this checks that it stops doing so when writes queue up. 400 s of audio is more
    than the loopback socket buffers hold, so the server that stops reading stalls the
    writes, and capture must still read the whole file into the backlog.
    """
    wav = write_wav(tmp_path / "long.wav", 400.0)
    async with DeepgramEmulator(Script(deaf_after_audio=1.0)) as emu:
        source = WavFileSource(wav, pacing="fast", block_ms=100)
        session = Session(
            settings_for(emu),
            source,
            Recorder(),
            SessionOptions(max_realtime=None, ping_interval=None),
        )
        task = asyncio.create_task(session.run())
        try:
            # well inside the server's 10 s inactivity limit, which would end the stall
            deadline = time.monotonic() + 5
            while source.end_reason is None:
                assert not task.done(), task.result()
                assert time.monotonic() < deadline, "capture stopped with the network"
                await asyncio.sleep(0.05)
            assert source.end_reason == "end of file"
            [conn] = emu.connections
            received = sum(len(f.data) for f in conn.binary_frames) / 32000
            assert received < 300, f"the server took {received:.0f} s: nothing backed up"
            assert session.backlog.pending_samples > 0
            assert session.connections == 1
            assert session.status.state is State.LIVE
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_backlog_is_sent_no_faster_than_the_limit(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 6.0)
    async with DeepgramEmulator(Script()) as emu:
        await run_session(
            settings_for(emu),
            WavFileSource(wav, pacing="fast"),
            max_realtime=1.25,
            burst_seconds=1.0,
        )
    [conn] = emu.connections
    frames = conn.binary_frames
    elapsed = frames[-1].t - frames[0].t
    # 6 s of audio, 1 s burst allowed, the rest at 1.25x: at least 4 s on the wire
    assert elapsed >= (6.0 - 1.0) / 1.25 - 0.2


# -- D: keepalive ------------------------------------------------------------------------


async def test_keepalive_while_paused_then_audio_resumes_on_the_same_connection(
    tmp_path: Path,
) -> None:
    wav = write_wav(tmp_path / "a.wav", 3.0)
    async with DeepgramEmulator(Script(inactivity_timeout=1.0)) as emu:
        recorder = Recorder()
        session = Session(
            settings_for(emu),
            WavFileSource(wav, pacing="realtime"),
            recorder,
            SessionOptions(keepalive_interval=0.3),
        )
        runner = asyncio.create_task(session.run())
        await emu.wait_for(lambda: bool(emu.connections and emu.connections[0].binary_frames), 5)
        session.pause(True)
        await asyncio.sleep(2.5)  # far beyond the emulator's 1 s inactivity limit
        session.pause(False)
        end = await asyncio.wait_for(runner, 15)
    assert end.ok
    [conn] = emu.connections
    kinds = [(f.kind, f.text if f.kind == "text" else "") for f in conn.frames]
    keepalives = [i for i, (_, text) in enumerate(kinds) if text == '{"type":"KeepAlive"}']
    assert len(keepalives) >= 5
    # audio both before and after the KeepAlives
    assert any(k == "binary" for k, _ in kinds[: keepalives[0]])
    assert any(k == "binary" for k, _ in kinds[keepalives[-1] :])
    times = [f.t for f in conn.frames]
    assert max(np.diff(times)) < 0.8
    # the paused audio was held, not lost
    assert conn.audio_seconds == pytest.approx(3.0, abs=0.05)


async def test_mute_discards_audio_and_keeps_the_connection(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 3.0)
    async with DeepgramEmulator(Script(inactivity_timeout=1.0)) as emu:
        session = Session(
            settings_for(emu),
            WavFileSource(wav, pacing="realtime"),
            Recorder(),
            SessionOptions(keepalive_interval=0.3),
        )
        runner = asyncio.create_task(session.run())
        await asyncio.sleep(0.8)
        session.mute(True)
        await asyncio.sleep(1.5)
        session.mute(False)
        end = await asyncio.wait_for(runner, 15)
    assert end.ok
    [conn] = emu.connections
    assert "KeepAlive" in conn.control_types
    assert 1.0 < conn.audio_seconds < 2.0  # about 1.5 s of the 3 s were muted
    assert session.stats.chunks_muted >= 12


# -- E: results into captions ------------------------------------------------------------


async def test_generated_words_arrive_once_each_and_in_order(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 5.0)
    async with DeepgramEmulator(Script()) as emu:
        end, rec, session = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="fast"), max_realtime=None
        )
    assert end.ok
    expected = counting_words(10)  # 2 words per second of audio
    assert rec.committed_words == expected
    assert any(isinstance(e, LiveChanged) and e.interim_text for e in rec.events)
    assert isinstance(session.last_metadata, Metadata)
    assert session.last_metadata.request_id == emu.connections[0].request_id


async def test_junk_and_unknown_messages_are_tolerated(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 2.0)
    timeline = [
        AfterAudio(0.2),
        SendText("<html>502</html>"),
        SendText('{"type":"FutureEvent"}'),
        SendBinary(b"\x00\xffbinary"),
        SendText('{"type":"Error","description":"odd","variant":"SchemaError"}'),
        AfterAudio(0.6),
        SendText(load_fixture("results_final_not_speech_final.json")),
        SendText(load_fixture("results_final_speech_final.json")),
    ]
    async with DeepgramEmulator(Script(timeline=timeline)) as emu:
        end, rec, session = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="fast"), max_realtime=None
        )
    assert end.ok
    assert session.stats.unknown_messages >= 3
    assert sum(isinstance(m, Unknown) for m in rec.messages) >= 3
    assert rec.committed_text == (
        "My name was Rupert Pennace. I came of an old family and had plenty of money for my needs."
    )


# -- F: graceful stop ----------------------------------------------------------------------


async def test_stop_sends_close_stream_and_drains_the_last_finals(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 10.0)
    async with DeepgramEmulator(Script(final_every=5.0)) as emu:
        recorder = Recorder()
        session = Session(settings_for(emu), WavFileSource(wav, pacing="realtime"), recorder)
        runner = asyncio.create_task(session.run())
        await asyncio.sleep(1.6)
        session.request_stop()
        end = await asyncio.wait_for(runner, 10)
    assert end.ok and end.exit_code == 0
    [conn] = emu.connections
    assert conn.control_types[-1] == "CloseStream"
    after_close = conn.frames[[f.text for f in conn.frames].index('{"type":"CloseStream"}') + 1 :]
    assert after_close == []
    # no final had come before Stop (finals every 5 s); the drain delivered them all
    words = recorder.committed_words
    assert words == counting_words(len(words)) and len(words) >= 3
    assert recorder.states[-1] is State.STOPPED


@pytest.mark.slow
async def test_drain_limit_when_the_server_never_closes(tmp_path: Path) -> None:
    """A server that goes silent before confirming the end: the drain limit cuts each try
    short, the tail is sent again a few times, then the session ends saying what was lost
    (never "finished" over words that were not transcribed)."""
    wav = write_wav(tmp_path / "a.wav", 1.0)
    async with DeepgramEmulator(Script(stall_after_audio=0.5)) as emu:
        started = time.monotonic()
        end, _rec, session = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="fast"), drain_timeout=1.0
        )
        took = time.monotonic() - started
    assert not end.ok and end.exit_code == 5
    assert "not transcribed" in end.note
    assert len(emu.connections) == 1 + session.options.tail_attempts  # the stream, then the retries
    assert took < 10.0


# -- G: error closes, as reported when reconnecting is off (see test_reconnect.py) ----------


@pytest.mark.parametrize(
    ("code", "reason", "label", "exit_code"),
    [
        (1011, NET0001_REASON, "1011 NET-0001", 5),
        (1008, "DATA-0000", "1008 DATA-0000", 4),
        (
            1011,
            "Deepgram did not provide a response message within the timeout window. "
            "See https://dpgr.am/net0000",
            "1011 NET-0000",
            5,
        ),
    ],
)
async def test_error_closes_are_explained(
    tmp_path: Path, code: int, reason: str, label: str, exit_code: int
) -> None:
    wav = write_wav(tmp_path / "a.wav", 3.0)
    timeline = [AfterAudio(0.5), Close(code, reason, metadata=True)]
    async with DeepgramEmulator(Script(timeline=timeline)) as emu:
        end, rec, _ = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="realtime"), reconnect=False
        )
    assert not end.ok
    assert end.exit_code == exit_code
    assert end.meaning is not None and end.meaning.label == label
    assert rec.states[-1] is State.ERROR
    assert rec.statuses[-1].meaning == end.meaning


async def test_unasked_metadata_and_1000_is_an_unexpected_end(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 3.0)
    async with DeepgramEmulator(Script(end_after_audio=0.5)) as emu:
        end, _, session = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="realtime"), reconnect=False
        )
    assert not end.ok
    assert end.exit_code == 5
    assert isinstance(session.last_metadata, Metadata)


async def test_drop_without_close_frame_is_a_network_error(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 3.0)
    async with DeepgramEmulator(Script(drop_after_audio=0.5)) as emu:
        end, _, _ = await run_session(
            settings_for(emu), WavFileSource(wav, pacing="realtime"), reconnect=False
        )
    assert end.exit_code == 5
    assert end.meaning is not None and end.meaning.label == "1006"


async def test_client_ping_timeout_is_reported_as_connection_lost(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", 5.0)
    async with DeepgramEmulator(Script(stall_after_audio=0.3)) as emu:
        end, _, _ = await run_session(
            settings_for(emu),
            WavFileSource(wav, pacing="realtime"),
            ping_interval=0.3,
            ping_timeout=0.5,
            reconnect=False,
        )
    assert end.exit_code == 5
    assert end.meaning is not None and end.meaning.retry
    assert "ping" in (end.meaning.explanation + end.detail).lower()


def test_status_json_never_contains_the_key() -> None:
    settings = StreamSettings(api_key=KEY)
    assert KEY not in repr(settings)
    assert KEY not in settings.listen_url()
    assert KEY not in json.dumps(settings.query_params())


async def test_paused_from_the_start_sends_silence_so_keepalive_counts(tmp_path: Path) -> None:
    """A server ignores KeepAlive until it has had audio (CONFORMANCE D.21)."""
    wav = write_wav(tmp_path / "a.wav", 2.0)
    script = Script(inactivity_timeout=1.5, require_audio_before_keepalive=True)
    async with DeepgramEmulator(script) as emu:
        session = Session(
            settings_for(emu),
            WavFileSource(wav, pacing="realtime"),
            Recorder(),
            SessionOptions(keepalive_interval=0.4, first_audio_within=0.5),
        )
        session.pause(True)
        runner = asyncio.create_task(session.run())
        await asyncio.sleep(3.5)
        session.pause(False)
        end = await asyncio.wait_for(runner, 10)
    assert end.ok
    [conn] = emu.connections  # never closed for inactivity, never re-made
    first = conn.frames[0]
    assert first.kind == "binary" and first.data == bytes(3200)
    assert "KeepAlive" in conn.control_types
