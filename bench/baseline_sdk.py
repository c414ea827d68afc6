"""The baseline: what a user writes around Deepgram's official Python SDK (deepgram-sdk v7,
async v1 live client) to caption a WAV file, instrumented exactly like `bench/ours.py`.

    .venv/bin/python bench/baseline_sdk.py --url ws://127.0.0.1:PORT/v1/listen --wav FILE

`caption_file` is the user's code, as the SDK's documentation shows it (the SDK does not
reconnect: see docs/protocol.md): connect, register a MESSAGE callback, run `start_listening()`
in a task, send the file at real-time pace in 100 ms chunks with `send_media`, then
`send_close_stream()` and wait for the last finals; the "caption" is a list of final
transcripts. Lines marked `# probe` are the benchmark's instrumentation, at the same points as
in ours: a chunk ready / its send call returned; a Results message at the callback / the caption
updated (and, through a thin wrapper around the SDK's WebSocket, the moment the message left the
WebSocket library, the point where our client's own measurement starts). The SDK has no
reconnect of its own, so a dropped connection ends the run: the harness records what the SDK and
the user's code did.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import warnings
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK uses websockets.legacy

from deepgram import AsyncDeepgramClient  # noqa: E402
from deepgram.core.events import EventType  # noqa: E402
from deepgram.environment import DeepgramClientEnvironment  # noqa: E402
from probe import Probe, now  # noqa: E402

probe = Probe("deepgram-sdk")  # probe: CPU so far = interpreter start-up and imports


class StampedSocket:
    """Probe only: forwards to the SDK's WebSocket, noting when each message left it."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.send = ws.send  # sending goes straight to the SDK's socket, not through a lookup
        self.arrived = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    async def __aiter__(self) -> Any:
        async for message in self._ws:
            self.arrived = now()
            yield message


def environment(url: str) -> DeepgramClientEnvironment:
    """The SDK's documented base-URL override, pointed at the local server."""
    base = url.removesuffix("/v1/listen")
    http = base.replace("ws://", "http://").replace("wss://", "https://")
    return DeepgramClientEnvironment(base=http, production=base, agent=base, agent_rest=http)


async def caption_file(url: str, api_key: str, wav_path: str, tag: str) -> list[str]:
    client = AsyncDeepgramClient(api_key=api_key, environment=environment(url))
    finals: list[str] = probe.finals
    async with client.listen.v1.connect(
        model="nova-3", language="en", encoding="linear16", sample_rate=16000, channels=1,
        interim_results="true", smart_format="true", endpointing=300, utterance_end_ms=1000,
        vad_events="true", tag=tag,
    ) as conn:  # fmt: skip
        stamped = conn._websocket = StampedSocket(conn._websocket)  # probe

        def on_message(message: Any) -> None:
            arrived = now()  # probe
            if getattr(message, "type", None) != "Results":
                return
            if message.is_final and message.channel.alternatives[0].transcript:
                finals.append(message.channel.alternatives[0].transcript)
            probe.caption(arrived, now(), raw=stamped.arrived)  # probe

        conn.on(EventType.MESSAGE, on_message)
        conn.on(EventType.ERROR, lambda exc: probe.event(f"ERROR event: {exc!r}"))  # probe
        listener = asyncio.create_task(conn.start_listening())
        with wave.open(wav_path, "rb") as wav:
            started = time.monotonic()
            frames = 0
            while chunk := wav.readframes(1600):  # 100 ms of 16 kHz mono linear16
                frames += len(chunk) // 2
                await asyncio.sleep(max(0.0, started + frames / 16000 - time.monotonic()))
                ready = now()  # probe
                await conn.send_media(chunk)
                probe.sent(ready, now())  # probe
        await conn.send_close_stream()
        await listener
    return finals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", default="bench")
    parser.add_argument("--wav", required=True)
    parser.add_argument("--tag", default="baseline")
    args = parser.parse_args()
    code = 0
    try:
        asyncio.run(caption_file(args.url, args.api_key, args.wav, args.tag))
    except Exception as exc:  # what the user's program would die of
        probe.event(f"caption_file raised {type(exc).__name__}: {exc}")
        code = 1
    probe.report(exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
