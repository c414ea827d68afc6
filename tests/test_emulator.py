"""Tests of the Deepgram emulator itself, driven by a raw ``websockets`` client (not ours)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from testkit.deepgram_emulator import (
    DATA0000_REASON,
    NET0000_REASON,
    NET0001_REASON,
    Accept,
    AfterAudio,
    Close,
    DeepgramEmulator,
    Hang,
    OnControl,
    Refuse,
    Script,
    SendBinary,
    SendText,
    Step,
    Wait,
    WordSlot,
    counting_words,
    number_word,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepgram"
KEY = "test-key-123"
AUTH = {"Authorization": f"Token {KEY}"}
PCM_QUERY = "?model=nova-3&language=en&encoding=linear16&sample_rate=16000&channels=1"
LIVE_QUERY = PCM_QUERY + "&interim_results=true&utterance_end_ms=1000&vad_events=true"
CHUNK = 3200  # 100 ms of 16 kHz mono int16
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def pcm(seconds: float, value: int = 1000, channels: int = 1) -> bytes:
    return np.full(round(seconds * 16000) * channels, value, dtype="<i2").tobytes()


def chunks(audio: bytes, size: int = CHUNK) -> list[bytes]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@asynccontextmanager
async def client(
    emu: DeepgramEmulator, query: str = PCM_QUERY, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    kwargs.setdefault("additional_headers", AUTH)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("open_timeout", 3)
    async with connect(emu.url + query, **kwargs) as ws:
        yield ws


async def refused(emu: DeepgramEmulator, query: str = PCM_QUERY, **kwargs: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with client(emu, query, **kwargs):
            pass
    return info.value


async def drain(ws: ClientConnection, within: float = 3.0) -> list[Any]:
    """Every message until the server closes (JSON parsed; binary kept as bytes)."""
    out: list[Any] = []
    async with asyncio.timeout(within):
        try:
            async for message in ws:
                out.append(json.loads(message) if isinstance(message, str) else message)
        except ConnectionClosedError:
            pass
    return out


async def nothing_within(ws: ClientConnection, seconds: float) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


def response_request_id(ws: ClientConnection) -> str:
    assert ws.response is not None
    return ws.response.headers["dg-request-id"]


def of_type(messages: list[Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if isinstance(m, dict) and m.get("type") == kind]


def words(result: dict[str, Any]) -> list[str]:
    return [w["word"] for w in result["channel"]["alternatives"][0]["words"]]


def transcript(result: dict[str, Any]) -> str:
    text = result["channel"]["alternatives"][0]["transcript"]
    assert isinstance(text, str)
    return text


# ----------------------------------------------------------------------------------------------
# Handshake


async def test_101_carries_request_id_and_nothing_is_sent_before_audio() -> None:
    async with DeepgramEmulator(Script(expected_key=KEY)) as emu:
        query = PCM_QUERY + "&keyterm=Captioner&keyterm=live%20captions&endpointing=300"
        async with client(emu, query) as ws:
            assert ws.response is not None
            request_id = ws.response.headers["dg-request-id"]
            assert str(uuid.UUID(request_id)) == request_id
            assert "dg-error" not in ws.response.headers
            assert await nothing_within(ws, 0.3)
        await emu.wait_idle()
    rec = emu.connections[0]
    assert rec.status == 101 and rec.plan == "accept"
    assert rec.request_id == request_id
    assert rec.response_headers["dg-request-id"] == request_id
    assert rec.path == "/v1/listen"
    assert rec.query["keyterm"] == ["Captioner", "live captions"]
    assert rec.query["endpointing"] == ["300"]
    assert rec.headers["authorization"] == f"Token {KEY}"
    assert (rec.auth_scheme, rec.auth_via) == ("token", "header")
    assert rec.sent == [] and rec.frames == []
    assert rec.close_received is not None and rec.close_received[0] == 1000  # client's close


@pytest.mark.parametrize(
    ("headers", "subprotocols", "scheme", "via"),
    [
        ({"Authorization": f"token {KEY}"}, None, "token", "header"),
        ({"Authorization": "bearer jwt-1"}, None, "bearer", "header"),
        ({"Authorization": "Bearer jwt-1"}, None, "bearer", "header"),
        ({}, ["token", KEY], "token", "subprotocol"),
        ({}, ["bearer", "jwt-1"], "bearer", "subprotocol"),
    ],
)
async def test_accepted_credentials(
    headers: dict[str, str], subprotocols: list[str] | None, scheme: str, via: str
) -> None:
    emu = DeepgramEmulator(Script(expected_key=KEY, expected_tokens={"jwt-1"}))
    async with emu, client(emu, additional_headers=headers, subprotocols=subprotocols) as ws:
        if subprotocols:
            assert ws.subprotocol == subprotocols[0]  # Deepgram echoes the scheme
    rec = emu.connections[0]
    assert rec.status == 101
    assert (rec.auth_scheme, rec.auth_via) == (scheme, via)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Token wrong-key"},
        {},
        {"Authorization": f"Bearer {KEY}"},  # an API key is not a JWT
        {"Authorization": "Bearer expired-jwt"},
        {"Authorization": KEY},  # no scheme
    ],
)
async def test_401_invalid_credentials(headers: dict[str, str]) -> None:
    async with DeepgramEmulator(Script(expected_key=KEY, expected_tokens={"jwt-1"})) as emu:
        exc = await refused(emu, additional_headers=headers)
    response = exc.response
    assert response.status_code == 401
    assert response.headers["dg-error"] == "Invalid credentials."
    assert response.headers["Content-Type"] == "application/json"
    request_id = response.headers["dg-request-id"]
    assert json.loads(response.body) == {
        "err_code": "INVALID_AUTH",
        "err_msg": "Invalid credentials.",
        "request_id": request_id,
    }
    rec = emu.connections[0]
    assert (rec.status, rec.request_id, rec.opened_at) == (401, request_id, None)


async def test_400_utterance_end_ms_matches_the_recorded_response() -> None:
    async with DeepgramEmulator(Script()) as emu:
        exc = await refused(emu, PCM_QUERY + "&utterance_end_ms=999")
    response = exc.response
    assert response.status_code == 400
    assert response.headers["dg-error"] == "Invalid 'utterance_end_ms' value of '999'."
    assert len(response.body) == 145  # Content-Length of the real response (python-sdk #279)
    body = json.loads(response.body)
    assert body["err_code"] == "INVALID_QUERY_PARAMETER"
    assert body["request_id"] == response.headers["dg-request-id"]


@pytest.mark.parametrize(
    ("extra", "dg_error"),
    [
        (
            "&keywords=captioner:2",
            "Keywords are not supported for Nova-3. Please use `keyterm` instead.",
        ),
        ("&language=english", "Invalid 'language' value of 'english'."),
        ("&interim_results=True", "Invalid 'interim_results' value of 'True'."),
        ("&endpointing=300.0", "Invalid 'endpointing' value of '300.0'."),
        ("&diarize_model=v2", "Invalid 'diarize_model' value of 'v2'."),
    ],
)
async def test_400_invalid_query(extra: str, dg_error: str) -> None:
    async with DeepgramEmulator(Script()) as emu:
        exc = await refused(emu, PCM_QUERY + extra)
    assert exc.response.status_code == 400
    assert exc.response.headers["dg-error"] == dg_error
    body = json.loads(exc.response.body)
    assert body["err_code"] == "INVALID_QUERY_PARAMETER" and body["err_msg"] == dg_error
    assert emu.connections[0].plan == "invalid"


async def test_400_encoding_without_sample_rate_and_404_wrong_path() -> None:
    async with DeepgramEmulator(Script()) as emu:
        exc = await refused(emu, "?model=nova-3&encoding=linear16")
        assert exc.response.status_code == 400
        assert "sample_rate" in exc.response.headers["dg-error"]
        with pytest.raises(InvalidStatus) as info:
            async with connect(emu.base_url + "/v1/listne", additional_headers=AUTH):
                pass
        assert info.value.response.status_code == 404
        # keywords are fine on Nova-2, and validation can be skipped per attempt
        async with client(emu, PCM_QUERY.replace("nova-3", "nova-2") + "&keywords=captioner:2"):
            pass
    emu = DeepgramEmulator(Script(handshakes=[Accept(validate=False)]))
    async with emu, client(emu, "?utterance_end_ms=10", additional_headers={}):
        pass
    assert emu.connections[0].status == 101


async def test_429_with_retry_after_three_times_then_accept() -> None:
    plans = [Refuse(429, retry_after=2)] * 3 + [Accept()]
    async with DeepgramEmulator(Script(handshakes=plans)) as emu:
        ids = []
        for _ in range(3):
            exc = await refused(emu)
            assert exc.response.status_code == 429
            assert exc.response.headers["Retry-After"] == "2"
            body = json.loads(exc.response.body)
            assert body["err_code"] == "TOO_MANY_REQUESTS"
            ids.append(body["request_id"])
        async with client(emu) as ws:
            ids.append(response_request_id(ws))
    assert [r.status for r in emu.connections] == [429, 429, 429, 101]
    assert [r.request_id for r in emu.connections] == ids and len(set(ids)) == 4
    times = [r.attempt_at for r in emu.connections]
    assert times == sorted(times)
    assert emu.max_concurrent == 1


async def test_terminal_refusals_and_handshake_hook() -> None:
    def hook(record: Any) -> Refuse | None:
        return Refuse(503) if record.index < 4 else None

    script = Script(
        handshakes=[
            Refuse(402, err_code="ASR_PAYMENT_REQUIRED"),
            Refuse(403),
            Refuse(400, body="", dg_error="Bad Request"),
        ],
        handshake_hook=hook,
    )
    async with DeepgramEmulator(script) as emu:
        payment = await refused(emu)
        forbidden = await refused(emu)
        empty = await refused(emu)
        unavailable = await refused(emu)
        async with client(emu):
            pass
    assert payment.response.status_code == 402
    assert json.loads(payment.response.body)["err_code"] == "ASR_PAYMENT_REQUIRED"
    assert forbidden.response.status_code == 403
    assert forbidden.response.headers["dg-error"] == (
        "Project does not have access to the requested model."
    )
    assert json.loads(forbidden.response.body)["err_code"] == "INSUFFICIENT_PERMISSIONS"
    assert empty.response.body == b"" and empty.response.headers["dg-error"] == "Bad Request"
    assert unavailable.response.status_code == 503
    assert "dg-request-id" in unavailable.response.headers
    assert [r.status for r in emu.connections] == [402, 403, 400, 503, 101]


async def test_hang_never_answers_the_upgrade() -> None:
    async with DeepgramEmulator(Script(handshakes=[Hang()])) as emu:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with client(emu, open_timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        await emu.wait_for(lambda: emu.connections[0].closed_at is not None)
        async with client(emu):
            pass
    hung = emu.connections[0]
    assert (hung.plan, hung.status, hung.opened_at) == ("hang", None, None)
    assert emu.connections[1].status == 101


# ----------------------------------------------------------------------------------------------
# Inactivity


async def test_net0001_after_the_inactivity_timeout() -> None:
    async with DeepgramEmulator(Script(inactivity_timeout=0.5)) as emu:
        async with client(emu) as ws:
            opened = time.monotonic()
            messages = await drain(ws)
            elapsed = time.monotonic() - opened
            assert (ws.close_code, ws.close_reason) == (1011, NET0001_REASON)
        await emu.wait_idle()
    assert 0.45 <= elapsed < 1.2
    [metadata] = messages
    assert metadata["type"] == "Metadata"
    assert metadata["transaction_key"] == "deprecated"
    assert metadata["request_id"] == emu.connections[0].request_id
    assert (metadata["duration"], metadata["channels"]) == (0.0, 0)
    assert metadata["sha256"] == EMPTY_SHA256
    assert emu.connections[0].close_sent == (1011, NET0001_REASON)


async def test_keepalive_resets_the_timer_but_pings_do_not() -> None:
    async with DeepgramEmulator(Script(inactivity_timeout=0.5)) as emu, client(emu) as ws:
        for _ in range(5):  # 1.0 s of KeepAlives, twice the timeout
            await ws.send('{"type":"KeepAlive"}')
            last_keepalive = time.monotonic()
            assert await nothing_within(ws, 0.2)  # and no reply to KeepAlive
        with pytest.raises(ConnectionClosed):
            for _ in range(30):
                pong = await ws.ping()
                await asyncio.wait_for(pong, 0.5)  # pings are answered...
                await asyncio.sleep(0.05)
        elapsed = time.monotonic() - last_keepalive
        assert (ws.close_code, ws.close_reason) == (1011, NET0001_REASON)  # ...but ignored
    rec = emu.connections[0]
    assert 0.4 <= elapsed < 1.0
    assert rec.control_types == ["KeepAlive"] * 5
    assert len(rec.pings) >= 3


async def test_keepalive_before_any_audio_can_be_required_not_to_count() -> None:
    async with DeepgramEmulator(
        Script(inactivity_timeout=0.5, require_audio_before_keepalive=True)
    ) as emu:
        async with client(emu) as ws:
            opened = time.monotonic()
            with pytest.raises(ConnectionClosed):
                for _ in range(10):
                    await ws.send('{"type":"KeepAlive"}')
                    await asyncio.sleep(0.15)
            assert time.monotonic() - opened < 1.0
            assert ws.close_reason == NET0001_REASON
        async with client(emu) as ws:
            await ws.send(pcm(0.1))
            for _ in range(6):  # 0.9 s: kept alive once audio arrived
                await ws.send('{"type":"KeepAlive"}')
                await asyncio.sleep(0.15)
            assert await nothing_within(ws, 0.05)
        await emu.wait_idle()
    assert emu.connections[1].close_received == (1000, "")


# ----------------------------------------------------------------------------------------------
# Generated transcripts and control messages


async def test_generated_results_metadata_and_close_stream() -> None:
    audio = pcm(5.0)
    async with DeepgramEmulator(Script()) as emu:
        async with client(emu, LIVE_QUERY) as ws:
            request_id = response_request_id(ws)
            for chunk in chunks(audio):
                await ws.send(chunk)
            await ws.send('{"type":"CloseStream"}')
            messages = await drain(ws)
            assert (ws.close_code, ws.close_reason) == (1000, "")
        await emu.wait_idle()
    rec = emu.connections[0]

    types = [m["type"] for m in messages]
    assert types == [
        "SpeechStarted",
        "Results",  # interim 0-1
        "Results",  # final 0-2
        "Results",  # interim 2-3
        "Results",  # final 2-4, speech_final
        "UtteranceEnd",
        "SpeechStarted",
        "Results",  # interim 4-5
        "Results",  # close flush 4-5, from_finalize
        "UtteranceEnd",
        "Metadata",
    ]
    results = of_type(messages, "Results")
    finals = [r for r in results if r["is_final"]]
    interims = [r for r in results if not r["is_final"]]
    # nothing lost, nothing duplicated, windows contiguous on this connection's clock
    assert [w for r in finals for w in words(r)] == counting_words(10)
    assert [(r["start"], r["duration"]) for r in finals] == [(0.0, 2.0), (2.0, 2.0), (4.0, 1.0)]
    assert [(r["speech_final"], r["from_finalize"]) for r in finals] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert [(r["start"], r["duration"], words(r)) for r in interims] == [
        (0.0, 1.0, ["one", "two"]),
        (2.0, 1.0, ["five", "six"]),
        (4.0, 1.0, ["nine", "ten"]),
    ]
    assert transcript(finals[0]) == "one two three four"  # no punctuate: raw words
    first_word = finals[0]["channel"]["alternatives"][0]["words"][0]
    assert (first_word["start"], first_word["end"]) == (0.025, 0.425)
    assert first_word["punctuated_word"] == "one" and 0 < first_word["confidence"] <= 1
    assert {r["metadata"]["request_id"] for r in results} == {request_id}
    assert {r["metadata"]["model_info"]["arch"] for r in results} == {"nova-3"}
    assert all(r["channel_index"] == [0, 1] for r in results)
    speech_started = of_type(messages, "SpeechStarted")
    assert [s["timestamp"] for s in speech_started] == [0.025, 4.025]
    assert [u["last_word_end"] for u in of_type(messages, "UtteranceEnd")] == [3.925, 4.925]

    metadata = messages[-1]
    assert metadata["request_id"] == request_id
    assert metadata["sha256"] == hashlib.sha256(audio).hexdigest()
    assert (metadata["duration"], metadata["channels"]) == (5.0, 1)
    model_uuid = metadata["models"][0]
    assert metadata["model_info"][model_uuid]["name"] == "general-nova-3"
    assert metadata["created"].endswith("Z")

    assert rec.control_types == ["CloseStream"]
    assert rec.audio_bytes == audio and rec.audio_seconds == 5.0
    assert [f.size for f in rec.binary_frames] == [CHUNK] * 50
    assert rec.sent_messages == messages  # the record holds exactly what was sent
    assert rec.close_sent == (1000, "") and rec.violations == []


@pytest.mark.parametrize("size", [640, 4410, 16000, 50_000])
async def test_chunking_does_not_change_the_transcript(size: int) -> None:
    audio = pcm(3.3)

    async def run(chunk_size: int) -> list[Any]:
        async with client(emu, LIVE_QUERY + "&punctuate=true") as ws:
            for chunk in chunks(audio, chunk_size):
                await ws.send(chunk)
            await ws.send('{"type":"Finalize"}')
            await ws.send('{"type":"CloseStream"}')
            messages = await drain(ws)
        for m in messages:
            m.get("metadata", {}).pop("request_id", None)
            m.pop("request_id", None)
            m.pop("created", None)
        return messages

    async with DeepgramEmulator(Script()) as emu:
        baseline = await run(CHUNK)
        other = await run(size)
    assert other == baseline
    finals = [r for r in of_type(baseline, "Results") if r["is_final"]]
    assert " ".join(transcript(r) for r in finals) == "One two three four five six."


async def test_finalize_flushes_the_open_window_only_when_audio_is_pending() -> None:
    emu = DeepgramEmulator(Script())
    async with emu, client(emu, PCM_QUERY + "&interim_results=true") as ws:
        for chunk in chunks(pcm(1.3)):
            await ws.send(chunk)
        interim = json.loads(await ws.recv())
        await ws.send('{"type":"Finalize"}')
        flushed = json.loads(await ws.recv())
        await ws.send('{"type":"Finalize"}')  # nothing pending now
        assert await nothing_within(ws, 0.3)
        for chunk in chunks(pcm(0.7)):  # the socket stays usable: 1.3 -> 2.0 s
            await ws.send(chunk)
        later = json.loads(await ws.recv())
        await ws.send('{"type":"CloseStream"}')
        tail = await drain(ws)
    assert (interim["is_final"], words(interim)) == (False, ["one", "two"])
    assert (flushed["is_final"], flushed["from_finalize"], flushed["speech_final"]) == (
        True,
        True,
        True,
    )
    assert (flushed["start"], flushed["duration"], words(flushed)) == (0.0, 1.3, ["one", "two"])
    assert (later["start"], later["duration"], later["from_finalize"]) == (1.3, 0.7, False)
    assert words(later) == ["three", "four"]
    assert [m["type"] for m in tail] == ["Metadata"]  # nothing pending at CloseStream
    assert emu.connections[0].control_types == ["Finalize", "Finalize", "CloseStream"]


async def test_empty_binary_frame_ends_the_stream_like_close_stream() -> None:
    async with DeepgramEmulator(Script()) as emu, client(emu) as ws:
        await ws.send(pcm(1.0))
        await ws.send(b"")
        messages = await drain(ws)
        assert ws.close_code == 1000
    [final, metadata] = messages
    assert (final["is_final"], final["from_finalize"], words(final)) == (
        True,
        True,
        ["one", "two"],
    )
    assert metadata["type"] == "Metadata" and metadata["duration"] == 1.0
    assert [f.size for f in emu.connections[0].binary_frames] == [32000, 0]


async def test_all_zero_audio_is_silence() -> None:
    async with DeepgramEmulator(Script()) as emu, client(emu, LIVE_QUERY) as ws:
        for chunk in chunks(pcm(2.5, value=0)):
            await ws.send(chunk)
        await ws.send('{"type":"CloseStream"}')
        messages = await drain(ws)
    assert [m["type"] for m in messages] == ["Results", "Results", "Results", "Metadata"]
    assert all(transcript(r) == "" and not r["speech_final"] for r in messages[:3])
    assert messages[0]["channel"]["alternatives"][0]["confidence"] == 0.0


async def test_scripted_words_and_word_callable() -> None:
    def word_for(slot: WordSlot) -> str | None:
        return None if slot.silent else f"w{slot.index}-{len(slot.audio)}"

    async with DeepgramEmulator(Script(words=["alpha", "beta", "gamma"], final_every=1.0)) as emu:
        async with client(emu) as ws:
            await ws.send(pcm(3.0))
            await ws.send('{"type":"CloseStream"}')
            listed = of_type(await drain(ws), "Results")
        emu.script = Script(words=word_for, final_every=1.0)
        async with client(emu) as ws:
            await ws.send(pcm(0.5) + pcm(0.5, value=0))
            await ws.send('{"type":"CloseStream"}')
            called = of_type(await drain(ws), "Results")
    assert [words(r) for r in listed] == [["alpha", "beta"], ["gamma"], []]
    assert [words(r) for r in called] == [["w0-12800"]]  # slot 1 was silent


async def test_multichannel_results_per_channel() -> None:
    stereo = np.zeros((16000, 2), dtype="<i2")
    stereo[:, 0] = 500  # left speaks, right is silent
    query = "?encoding=linear16&sample_rate=16000&channels=2&multichannel=true"
    async with DeepgramEmulator(Script(final_every=1.0)) as emu, client(emu, query) as ws:
        await ws.send(stereo.tobytes())
        messages = [json.loads(await ws.recv()), json.loads(await ws.recv())]
    assert [m["channel_index"] for m in messages] == [[0, 2], [1, 2]]
    assert [words(m) for m in messages] == [["one", "two"], []]
    assert emu.connections[0].audio_seconds == 1.0


# ----------------------------------------------------------------------------------------------
# Protocol violations and DATA-0000


async def test_violations_are_recorded_and_the_session_continues() -> None:
    async with DeepgramEmulator(Script()) as emu:
        async with client(emu) as ws:
            await ws.send(b'{"type": "KeepAlive" }')  # control JSON in a binary frame (22 B)
            await ws.send("not json")
            await ws.send('{"type":"Bogus"}')
            await ws.send(pcm(0.5) + b"\x00")  # odd length, tolerated without strict_frames
            await ws.send('{"type":"CloseStream"}')
            await ws.send(pcm(0.1))  # audio after CloseStream
            messages = await drain(ws)
            assert ws.close_code == 1000
        await emu.wait_idle()
    assert messages[-1]["type"] == "Metadata"
    violations = emu.connections[0].violations
    assert len(violations) == 5, violations
    assert "'KeepAlive' sent as a binary frame" in violations[0]
    assert "malformed JSON" in violations[1]
    assert "'Bogus'" in violations[2]
    assert "16001 B is not a multiple of 2 B" in violations[3]
    assert "after CloseStream" in violations[4]


async def test_data0000_on_an_odd_frame_with_strict_frames() -> None:
    async with DeepgramEmulator(Script(strict_frames=True)) as emu:
        async with client(emu) as ws:
            await ws.send(pcm(0.1))
            await ws.send(b"\x01\x02\x03")
            messages = await drain(ws)
            assert (ws.close_code, ws.close_reason) == (1008, DATA0000_REASON)
        await emu.wait_idle()
    assert messages == []
    assert emu.connections[0].violations == ["binary frame of 3 B is not a multiple of 2 B"]


async def test_data0000_for_raw_audio_without_encoding_and_decode_fail_after() -> None:
    async with DeepgramEmulator(Script()) as emu:
        async with client(emu, "?model=nova-3") as ws:
            await ws.send(pcm(0.1))
            assert await drain(ws) == []
            assert (ws.close_code, ws.close_reason) == (1008, DATA0000_REASON)
        async with client(emu, "?model=nova-3") as ws:  # a container header is accepted
            await ws.send(b"RIFF\x24\x00\x00\x00WAVEfmt " + pcm(0.1))
            await ws.send('{"type":"CloseStream"}')
            await drain(ws)
            assert ws.close_code == 1000
        emu.script = Script(decode_fail_after=0.5)
        async with client(emu) as ws:
            await ws.send(pcm(0.3))
            assert await nothing_within(ws, 0.1)
            await ws.send(pcm(0.3))
            await drain(ws)
            assert (ws.close_code, ws.close_reason) == (1008, DATA0000_REASON)


# ----------------------------------------------------------------------------------------------
# Fault injection


async def test_drop_mid_stream_is_seen_as_1006_then_reconnect_works() -> None:
    script = Script(handshakes=[Accept(drop_after_audio=0.5), Accept()])
    async with DeepgramEmulator(script) as emu:
        async with client(emu) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                for chunk in chunks(pcm(3.0)):
                    await ws.send(chunk)
                    await asyncio.sleep(0.01)
                await ws.recv()
            assert info.value.rcvd is None and info.value.sent is None  # no close frame
            assert ws.close_code == 1006
        async with client(emu) as ws:
            await ws.send(pcm(0.6))
            await ws.send('{"type":"CloseStream"}')
            results = of_type(await drain(ws), "Results")
            assert ws.close_code == 1000
        await emu.wait_idle()
    first, second = emu.connections
    assert first.dropped and first.close_sent is None and first.close_received is None
    assert first.close_code == 1006
    assert 0.5 <= first.audio_seconds < 1.0
    assert words(results[0]) == ["one"]  # the new connection's clock restarts at 0
    assert not second.dropped
    assert emu.max_concurrent == 1


async def test_close_all_and_drop_all_methods() -> None:
    async with DeepgramEmulator(Script()) as emu:
        async with client(emu) as ws:
            await ws.send(pcm(0.2))
            await emu.wait_for(lambda: emu.connections[0].frames)
            await emu.close_all(1011, NET0000_REASON)
            assert await drain(ws) == []
            assert (ws.close_code, ws.close_reason) == (1011, NET0000_REASON)
        async with client(emu) as ws:
            await emu.wait_for(lambda: len(emu.open_connections) == 1)
            emu.drop_all()
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.rcvd is None and ws.close_code == 1006
        async with client(emu) as ws:
            await ws.send(pcm(1.0))
            await emu.wait_for(lambda: emu.connections[2].frames)
            emu.end_stream_all()  # Metadata + 1000 without being asked
            messages = await drain(ws)
            assert ws.close_code == 1000
    assert [m["type"] for m in messages] == ["Results", "Metadata"]
    assert emu.connections[0].close_sent == (1011, NET0000_REASON)


async def test_close_and_end_after_audio_options() -> None:
    script = Script(
        handshakes=[Accept(close_after_audio=(0.5, 1011, NET0000_REASON)), Accept()],
        end_after_audio=1.0,
    )
    async with DeepgramEmulator(script) as emu:
        async with client(emu) as ws:
            await ws.send(pcm(0.6))
            assert await drain(ws) == []
            assert (ws.close_code, ws.close_reason) == (1011, NET0000_REASON)
        async with client(emu) as ws:
            await ws.send(pcm(0.6))
            await ws.send(pcm(0.4))
            messages = await drain(ws)
            assert ws.close_code == 1000
    [final, metadata] = messages
    assert (final["from_finalize"], final["duration"], words(final)) == (True, 1.0, ["one", "two"])
    assert (metadata["type"], metadata["duration"]) == ("Metadata", 1.0)


async def test_stall_withholds_pongs_and_messages() -> None:
    async with DeepgramEmulator(
        Script(handshakes=[Accept(), Accept(stall_after_audio=0.1)])
    ) as emu:
        async with client(emu, PCM_QUERY + "&interim_results=true") as ws:
            await asyncio.wait_for(await ws.ping(), 0.5)  # answered before the stall
            await emu.wait_for(lambda: emu.open_connections)
            emu.stall()
            unanswered = await ws.ping()
            await ws.send(pcm(1.0))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(unanswered), 0.4)
            assert await nothing_within(ws, 0.1)
            assert emu.connections[0].binary_frames  # still read and recorded
            emu.stall(False)
            await asyncio.wait_for(await ws.ping(), 0.5)
            interim = json.loads(await asyncio.wait_for(ws.recv(), 0.5))  # held, now sent
            assert interim["type"] == "Results"
        # the client library's own keepalive gives up: 1011 sent by the client, none received
        async with client(emu, ping_interval=0.1, ping_timeout=0.2) as ws:
            await ws.send(pcm(0.2))
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 2.0)
            assert info.value.rcvd is None
            assert info.value.sent is not None and info.value.sent.code == 1011
            assert info.value.sent.reason == "keepalive ping timeout"


async def test_reply_delay_does_not_slow_receiving() -> None:
    received: list[tuple[float, Any]] = []

    async def reader(ws: ClientConnection) -> None:
        async for message in ws:
            received.append((time.monotonic(), json.loads(message)))

    async with DeepgramEmulator(Script(reply_delay=0.6)) as emu:
        async with client(emu, PCM_QUERY + "&interim_results=true") as ws:
            task = asyncio.create_task(reader(ws))
            for chunk in chunks(pcm(3.0)):  # 30 x 100 ms, sent every 50 ms
                await ws.send(chunk)
                await asyncio.sleep(0.05)
            await ws.send('{"type":"CloseStream"}')
            closing = time.monotonic()
            await asyncio.wait_for(task, 3.0)
            closed = time.monotonic()
            assert ws.close_code == 1000
        await emu.wait_idle()
    rec = emu.connections[0]
    arrivals = [f.t for f in rec.frames]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 31
    assert max(gaps) < 0.25, gaps  # the receive side never waited for the delayed sends
    # the first interim is due once 1.0 s of audio (frame 10) arrived; it leaves 0.6 s later
    first_at, first = received[0]
    assert (first["is_final"], first["start"], first["duration"]) == (False, 0.0, 1.0)
    assert first_at - rec.frames[9].t >= 0.55
    # every message leaves reply_delay after the frame that caused it, not later: the delays
    # of earlier messages don't pile up (as they would if the receive loop slept them)
    latencies = []
    for sent in rec.sent:
        message = sent.json()
        if message["type"] == "Results" and not message["from_finalize"]:
            trigger = rec.frames[round((message["start"] + message["duration"]) * 10) - 1]
        else:
            trigger = rec.frames[30]  # CloseStream: flush and Metadata
        latencies.append(sent.t - trigger.t)
    assert len(latencies) == 5 and all(0.55 <= x < 0.72 for x in latencies), latencies
    assert [m["type"] for _, m in received] == ["Results"] * 4 + ["Metadata"]
    assert closed - closing >= 0.55  # the close is delayed too


async def test_timeline_replays_fixtures_and_junk_frames() -> None:
    interim_text = fixture_text("results_interim.json")
    finalize_text = fixture_text("results_from_finalize.json")
    timeline: list[Step] = [
        AfterAudio(0.5, send=interim_text),
        SendText("<html>502</html>"),
        SendBinary(b"\x00\xff"),
        OnControl("Finalize", send=[finalize_text, '{"type":"FutureEvent"}']),
        Wait(0.2),
        Close(1011, NET0000_REASON),
    ]
    emu = DeepgramEmulator(Script(timeline=timeline))
    async with emu, client(emu, LIVE_QUERY) as ws:
        await ws.send(pcm(0.3))
        assert await nothing_within(ws, 0.2)
        await ws.send(pcm(3.0))  # no generated Results in scripted mode
        assert await ws.recv() == interim_text
        assert await ws.recv() == "<html>502</html>"
        assert await ws.recv() == b"\x00\xff"
        assert await nothing_within(ws, 0.2)
        await ws.send('{"type":"Finalize"}')
        finalized = time.monotonic()
        assert await ws.recv() == finalize_text
        rest = await drain(ws)
        assert time.monotonic() - finalized >= 0.2
        assert (ws.close_code, ws.close_reason) == (1011, NET0000_REASON)
    assert rest == [{"type": "FutureEvent"}]
    sent = emu.connections[0].sent
    assert [f.kind for f in sent] == ["text", "text", "binary", "text", "text"]


async def test_timeline_answer_to_close_stream_precedes_metadata() -> None:
    final_text = fixture_text("results_final_speech_final.json")
    script = Script(timeline=[OnControl("CloseStream", send=final_text)])
    async with DeepgramEmulator(script) as emu, client(emu) as ws:
        await ws.send(pcm(0.2))
        await ws.send('{"type":"CloseStream"}')
        messages = await drain(ws)
        assert ws.close_code == 1000
    assert [m["type"] for m in messages] == ["Results", "Metadata"]
    assert messages[0] == json.loads(final_text)
    assert messages[1]["duration"] == 0.2


async def test_max_concurrent_counts_overlapping_sockets() -> None:
    async with DeepgramEmulator(Script()) as emu:
        async with client(emu), client(emu):
            await emu.wait_for(lambda: len(emu.open_connections) == 2)
        await emu.wait_idle()
        assert emu.open_connections == []
    assert emu.max_concurrent == 2


def test_number_words() -> None:
    assert counting_words(3) == ["one", "two", "three"]
    assert [number_word(n) for n in (13, 20, 21, 100, 342, 1000, 12005)] == [
        "thirteen",
        "twenty",
        "twenty-one",
        "one-hundred",
        "three-hundred-forty-two",
        "one-thousand",
        "twelve-thousand-five",
    ]
    assert len(set(counting_words(5000))) == 5000
    with pytest.raises(TypeError):
        Accept(no_such_option=1)
