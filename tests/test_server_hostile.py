"""Hostile clients against the offline engine's server (`ListenServer` with the test engine).

Whatever a client sends (odd characters in the query, JSON nested thousands deep, frames far
bigger than audio needs, audio far faster than it can be transcribed, more connections than a
laptop should serve), the server answers with a Deepgram-style status or close code and reason,
keeps its memory bounded, and stays responsive for everyone else.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from captioner.server.app import ListenServer, ServerConfig, control_type, header_safe
from captioner.server.fake_engine import TestEngine
from testkit.server_audio import Received, collect, pcm16, silence, tone

BASE = "encoding=linear16&sample_rate=16000"


@asynccontextmanager
async def running(**config: object) -> AsyncIterator[ListenServer]:
    engine = TestEngine(delay=float(config.pop("delay", 0.0)))  # type: ignore[arg-type]
    async with ListenServer(engine, ServerConfig(port=0, **config)) as server:  # type: ignore[arg-type]
        yield server


@pytest.mark.parametrize(
    "value",
    [
        "\u00e9\u00e8",  # Latin-1, which a header may carry but websockets refuses to write
        "日本語",
        "\x01\x02\x1b[2J",
        "a\r\nSet-Cookie: x=1",
        "x" * 5000,
        b"\xff\xfe\xed",  # not UTF-8 at all
    ],
)
async def test_odd_characters_in_a_query_value_are_a_400_not_a_500(value: str | bytes) -> None:
    async with running() as server:
        uri = f"{server.listen_url}?{BASE}&utterance_end_ms={quote(value, safe='')}"
        with pytest.raises(InvalidStatus) as info:
            async with connect(uri):
                pass
    response = info.value.response
    assert response.status_code == 400
    dg_error = response.headers["dg-error"]
    assert all(" " <= ch <= "~" for ch in dg_error) and len(dg_error) <= 300
    assert "utterance_end_ms" in dg_error
    assert json.loads(response.body)["err_code"] == "INVALID_QUERY_PARAMETER"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_header_values_built_from_client_text_are_always_safe(text: str) -> None:
    safe = header_safe(f"Invalid 'language' value of '{text}'.")
    assert all(ch in string.printable[:95] for ch in safe)
    assert len(safe) <= 300


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
async def test_deeply_nested_json_is_an_unknown_control_message(depth: int) -> None:
    assert control_type("[" * depth + "]" * depth) is None
    async with running() as server, connect(f"{server.listen_url}?{BASE}", max_size=None) as ws:
        await ws.send('{"type": ' * 20 + "[" * depth)
        await ws.send("[" * depth + "]" * depth)
        await ws.send(pcm16(np.concatenate([silence(0.3), tone(1.0), silence(0.5)])))
        await ws.send(json.dumps({"type": "CloseStream"}))
        received = await asyncio.wait_for(collect(ws, Received()), 10)
    assert received.close_code == 1000
    assert any(m["channel"]["alternatives"][0]["words"] for m in received.finals)


async def test_a_frame_over_the_limit_closes_1009_and_the_server_carries_on() -> None:
    async with running(max_message_bytes=64 * 1024) as server:
        async with connect(f"{server.listen_url}?{BASE}", max_size=None) as ws:
            await ws.send(bytes(200 * 1024))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
        async with connect(f"{server.listen_url}?{BASE}") as ws2:
            await ws2.send(pcm16(np.concatenate([silence(0.3), tone(1.0), silence(0.5)])))
            await ws2.send(json.dumps({"type": "CloseStream"}))
            received = await asyncio.wait_for(collect(ws2, Received()), 10)
        assert received.close_code == 1000


@pytest.mark.slow
async def test_a_flood_is_pushed_back_and_memory_stays_bounded() -> None:
    """A client sending 1 MiB frames as fast as it can: the server stops reading once 4 s of
    audio wait, so what it holds stays near that, and a second client is still served."""
    async with running(max_queued_seconds=4.0, delay=0.05) as server:
        limit = 4 * 16000 * 2
        peak = 0
        frame = pcm16(tone(32.0, amp=0.2))  # 1 MiB of audio
        async with connect(f"{server.listen_url}?{BASE}", max_size=None) as flood:

            async def send_forever() -> None:
                with pytest.raises((ConnectionClosed, asyncio.CancelledError)):
                    while True:
                        await flood.send(frame)

            sender = asyncio.create_task(send_forever())
            for _ in range(40):
                await asyncio.sleep(0.05)
                peak = max(peak, server.queued_bytes())
            # meanwhile another client gets its transcript
            async with connect(f"{server.listen_url}?{BASE}") as other:
                await other.send(pcm16(np.concatenate([silence(0.3), tone(1.0), silence(0.5)])))
                await other.send(json.dumps({"type": "CloseStream"}))
                received = await asyncio.wait_for(collect(other, Received()), 20)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        assert received.close_code == 1000
        assert any(m["channel"]["alternatives"][0]["words"] for m in received.finals)
        # the queue is capped at 4 s; one frame can land past the mark before reading stops
        assert 0 < peak <= limit + len(frame)


async def test_past_the_total_budget_a_flooding_stream_is_closed_1013() -> None:
    """Each stream may queue 2 s, all of them together 1.5 s: a stream that fills its own
    share while the whole budget is spent is closed with 1013 (try again later).

    Promptly: the server reads and drops what the flood still has in flight, so the closing
    handshake does not wait out the 10-second close timeout behind it."""
    budget = int(1.5 * 16000 * 2)
    async with running(max_queued_seconds=2.0, max_queued_bytes=budget, delay=1.0) as server:
        async with connect(f"{server.listen_url}?{BASE}", max_size=None) as ws:
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        await ws.send(pcm16(tone(1.0, amp=0.2)))
                        # a client elsewhere cannot starve the server's event loop; this one
                        # shares it, so it lets the server run between frames
                        await asyncio.sleep(0)
        assert ws.close_code == 1013
        assert "overloaded" in (ws.close_reason or "")


async def test_compression_is_not_offered_back() -> None:
    """A client that offers permessage-deflate (websockets does by default) gets plain frames:
    otherwise a second of a pure tone costs a few bytes to send and 32 kB for us to inflate."""
    async with running() as server, connect(f"{server.listen_url}?{BASE}") as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


async def test_more_streams_than_allowed_are_refused_with_429() -> None:
    async with running(max_connections=2) as server:
        uri = f"{server.listen_url}?{BASE}"
        async with connect(uri), connect(uri):
            await asyncio.sleep(0.1)
            with pytest.raises(InvalidStatus) as info:
                async with connect(uri):
                    pass
            assert info.value.response.status_code == 429
            assert "dg-error" in info.value.response.headers
        async with connect(uri) as again:  # a place is free again
            assert again.response is not None and again.response.status_code == 101
