"""Run the scripted Deepgram emulator in its own process, so benchmarks measure only the client.

Prints ``URL <ws url>`` when ready and serves until its stdin closes. ``--reply-delay S``
delays every server reply (a slow server). For `bench/run`:

* ``--words-from-audio``: each word slot's word is the number its first sample holds (the
  bench's self-describing audio holds the slot number in every sample), so a transcript
  tells which audio reached the server, across reconnects.
* ``--drop-after S``: the first connection of each client (told apart by the ``tag`` query
  parameter, else the User-Agent) is dropped (TCP abort, no close frame) after S seconds of
  audio; later connections are left alone.
* ``--report``: when stdin closes, print ``RECORDS <json>``: one record per connection with
  the arrival time of every audio frame (time.monotonic(), the same clock in every process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.deepgram_emulator import (
    Accept,
    ConnectionRecord,
    DeepgramEmulator,
    Script,
    WordSlot,
    number_word,
)


def client_of(record: ConnectionRecord) -> str:
    return record.param("tag") or record.headers.get("user-agent", "?")


def word_from_audio(slot: WordSlot) -> str | None:
    """The slot's number, read from its first sample (16-bit little-endian)."""
    if slot.silent or len(slot.audio) < 2:
        return None
    value = int.from_bytes(slot.audio[:2], "little", signed=True)
    return number_word(value) if 0 < value < 10**6 else None


def record_json(record: ConnectionRecord) -> dict[str, Any]:
    audio = record.audio_bytes
    return {
        "index": record.index,
        "client": client_of(record),
        "user_agent": record.headers.get("user-agent"),
        "status": record.status,
        "opened_at": record.opened_at,
        "closed_at": record.closed_at,
        "dropped": record.dropped,
        "close_code": record.close_code,
        "frames": [f.t for f in record.binary_frames],
        "audio_bytes": len(audio),
        "first_sample": int.from_bytes(audio[:2], "little", signed=True) if audio else None,
        "controls": record.control_types,
        "sent": len(record.sent),
        "violations": record.violations,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reply-delay", type=float, default=0.0)
    parser.add_argument("--words-from-audio", action="store_true")
    parser.add_argument("--drop-after", type=float, default=None)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    dropped: set[str] = set()

    def plan(record: ConnectionRecord) -> Accept | None:
        client = client_of(record)
        if args.drop_after is None or client in dropped:
            return None
        dropped.add(client)
        return Accept(drop_after_audio=args.drop_after)

    script = Script(
        reply_delay=args.reply_delay,
        words=word_from_audio if args.words_from_audio else None,
        handshake_hook=plan,
    )
    async with DeepgramEmulator(script) as emu:
        print(f"URL {emu.url}", flush=True)
        await asyncio.to_thread(sys.stdin.read)
        if args.report:
            with contextlib.suppress(TimeoutError):
                await emu.wait_idle(within=10)
            records = [record_json(r) for r in emu.connections]
            print("RECORDS " + json.dumps(records), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
