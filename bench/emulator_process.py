"""Run the scripted Deepgram emulator in its own process, so benchmarks measure only the client.

Prints ``URL <ws url>`` when ready and serves until its stdin closes. ``--reply-delay S``
delays every server reply (a slow server).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.deepgram_emulator import DeepgramEmulator, Script


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reply-delay", type=float, default=0.0)
    args = parser.parse_args()
    async with DeepgramEmulator(Script(reply_delay=args.reply_delay)) as emu:
        print(f"URL {emu.url}", flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
