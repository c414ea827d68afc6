"""Our side of `bench/run`: a Captioner `Session` captioning a WAV file at real-time pace in
100 ms chunks, as `captioner listen --file` does, instrumented like `bench/baseline_sdk.py`.

    .venv/bin/python bench/ours.py --url ws://127.0.0.1:PORT/v1/listen --wav FILE

The session measures itself (`SessionStats.send_latencies`: a chunk ready → its send call
returned; `caption_latencies`: a message returned by the WebSocket library → the caption
model updated and the observer told); this script hands each figure to the shared probe as
it is recorded, and collects committed lines as the "caption". Reconnects are the session's
own (default settings, as the command line and the window use them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from probe import Probe, now  # noqa: E402

from captioner.audio.factory import build_source  # noqa: E402
from captioner.core.captions import CaptionEvent, Committed  # noqa: E402
from captioner.core.config import StreamSettings  # noqa: E402
from captioner.core.messages import ServerMessage  # noqa: E402
from captioner.session import Session, State, Status  # noqa: E402

probe = Probe("captioner")  # CPU so far = interpreter start-up and imports


class Hooked(deque[float]):
    """A stats deque that also hands each figure to the probe (as the session appends it)."""

    def __init__(self, on_append: Callable[[float], None]) -> None:
        super().__init__(maxlen=100_000)
        self.on_append = on_append

    def append(self, latency: float) -> None:
        super().append(latency)
        self.on_append(latency)


class Captions:
    """The user's caption: committed lines."""

    def status_changed(self, status: Status) -> None:
        if status.state in (State.RECONNECTING, State.ERROR) and status.meaning is not None:
            probe.event(f"{status.state.value}: {status.meaning.label} {status.detail}")

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None:
        for event in events:
            if isinstance(event, Committed) and not event.utterance.gap:
                probe.finals.append(event.utterance.text)

    def message_received(self, message: ServerMessage) -> None:
        pass

    def source_changed(self, event: object) -> None:
        pass


def on_sent(latency: float) -> None:
    t = now()
    probe.sent(t - latency, t)


def on_caption(latency: float) -> None:
    t = now()
    probe.caption(t - latency, t, raw=t - latency)


async def caption_file(url: str, api_key: str, wav: str, tag: str) -> int:
    source = build_source(file=wav, fast=False, device=None, chunk_ms=100)
    settings = StreamSettings(url=url, api_key=api_key, extra_params=(("tag", tag),))
    session = Session(settings, source, Captions())
    session.stats.send_latencies = Hooked(on_sent)
    session.stats.caption_latencies = Hooked(on_caption)
    end = await session.run()
    probe.event(f"session ended: {end.detail} (exit {end.exit_code})")
    probe.extra = {"connections": session.connections, "dropped_blocks": source.dropped_blocks}
    return end.exit_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", default="bench")
    parser.add_argument("--wav", required=True)
    parser.add_argument("--tag", default="ours")
    args = parser.parse_args()
    code = asyncio.run(caption_file(args.url, args.api_key, args.wav, args.tag))
    probe.report(exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
