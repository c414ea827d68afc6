"""Where one chunk's time goes in our client: each segment of the event-loop turn in which a
chunk of a WAV file (real-time pace, 100 ms) comes due and leaves on the socket, timed against
the scripted emulator in its own process. The figures behind the profile notes in
docs/performance.md.

    .venv/bin/python bench/turn.py                  # 30 s of audio, a table of segments
    .venv/bin/python bench/turn.py --py-spy         # also a py-spy profile of bench/ours.py

The timing wraps the seams between the pieces from outside (the file source's sleep and read,
the chunker, the connection's send), so the code timed is the code that runs; each stamp costs
well under a microsecond. ``--py-spy`` (the ``profile`` extra) samples `bench/ours.py` at
1 kHz while it streams, and lists the functions that held the most samples, leaving out the
idle wait in epoll and the imports at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from compare import emulator  # noqa: E402

from captioner.audio import sources, wavfile  # noqa: E402
from captioner.core import chunker  # noqa: E402
from captioner.core.captions import CaptionEvent  # noqa: E402
from captioner.core.config import StreamSettings  # noqa: E402
from captioner.core.messages import ServerMessage  # noqa: E402
from captioner.net import client  # noqa: E402
from captioner.session import Session, Status  # noqa: E402
from testkit.audio_files import slot_wav  # noqa: E402

PY = sys.executable
SEGMENTS = (
    ("woke", "read", "the file source hands over the block it slept for"),
    ("read", "push0", "the capture loop"),
    ("push0", "push1", "the chunker"),
    ("push1", "send0", "the backlog and the hand-over checks"),
    ("send0", "send1", "the send (websockets framing, the socket write)"),
    ("send1", "sleep", "bookkeeping after the send, the next block read ahead"),
)
WARMUP = 10  # turns left out: connection set-up


class TurnTimer:
    """Stamps at the seams of one chunk's turn; one row of durations per turn."""

    def __init__(self) -> None:
        self.stamps: dict[str, float] = {}
        self.turns: list[dict[str, float]] = []

    def mark(self, name: str) -> None:
        self.stamps[name] = time.perf_counter()

    def end_turn(self) -> None:
        self.mark("sleep")
        if "woke" in self.stamps and all(a in self.stamps for a, _, _ in SEGMENTS):
            self.turns.append(dict(self.stamps))
        self.stamps = {}

    def install(self) -> None:
        """Wrap the seams; the wrapped code itself is unchanged."""
        timer = self
        sleep = wavfile.WavFileSource._sleep
        read = wavfile.WavFileSource.read
        push = chunker.Chunker.push
        send = client.Connection.send_audio

        async def timed_sleep(self: wavfile.WavFileSource, delay: float) -> None:
            timer.end_turn()
            await sleep(self, delay)
            timer.mark("woke")

        async def timed_read(self: wavfile.WavFileSource) -> sources.AudioBlock | None:
            block = await read(self)
            timer.mark("read")
            return block

        def timed_push(self: chunker.Chunker, block: Any) -> list[bytes]:
            timer.mark("push0")
            out = push(self, block)
            timer.mark("push1")
            return out

        async def timed_send(self: client.Connection, chunk: bytes) -> None:
            timer.mark("send0")
            await send(self, chunk)
            timer.mark("send1")

        wavfile.WavFileSource._sleep = timed_sleep  # type: ignore[method-assign]
        wavfile.WavFileSource.read = timed_read  # type: ignore[method-assign]
        chunker.Chunker.push = timed_push  # type: ignore[method-assign]
        client.Connection.send_audio = timed_send  # type: ignore[method-assign]


class Quiet:
    def status_changed(self, status: Status) -> None:
        pass

    def captions_changed(self, events: Sequence[CaptionEvent]) -> None:
        pass

    def message_received(self, message: ServerMessage) -> None:
        pass

    def source_changed(self, event: object) -> None:
        pass


def time_turns(url: str, wav: Path) -> list[dict[str, float]]:
    timer = TurnTimer()
    timer.install()
    source = wavfile.WavFileSource(wav, pacing="realtime", block_ms=100)
    session = Session(StreamSettings(url=url, api_key="bench"), source, Quiet())
    asyncio.run(session.run())
    return timer.turns[WARMUP:]


def turn_table(turns: list[dict[str, float]]) -> str:
    def us(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} | {np.percentile(values, 90):.1f}"

    lines = [
        f"Each segment of one chunk's turn, {len(turns)} turns, µs (median | p90):",
        "",
        "| segment | median | p90 |",
        "|---|---:|---:|",
    ]
    for start, end, label in SEGMENTS:
        lines.append(f"| {label} | {us([(t[end] - t[start]) * 1e6 for t in turns])} |")
    whole = [(t["sleep"] - t["woke"]) * 1e6 for t in turns]
    lines.append(f"| **the whole turn** | {us(whole)} |")
    return "\n".join(lines)


def spy_profile(url: str, wav: Path, folder: Path, top: int = 25) -> str:
    spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install -e '.[profile]'")
    out = folder / "ours.txt"
    subprocess.run(
        [spy, "record", "-r", "1000", "-f", "raw", "-o", str(out), "--", PY,
         str(ROOT / "bench" / "ours.py"), "--url", url, "--wav", str(wav)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return profile_table(out.read_text().splitlines(), top)


def profile_table(lines: list[str], top: int) -> str:
    def streaming(frames: list[str]) -> bool:
        idle = frames[-1].startswith("EpollSelector.select")
        return not idle and not any("importlib" in f for f in frames)

    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or not streaming(frames):
            continue
        total += int(count)
        for frame in set(frames):
            if frame:  # py-spy leaves a frame it cannot name empty
                inclusive[frame] += int(count)
    skip: Callable[[str], bool] = lambda f: "runners.py" in f or "(ours.py" in f  # noqa: E731
    rows = [(f, n) for f, n in inclusive.most_common() if not skip(f)][:top]
    out = [
        f"py-spy, 1 kHz, bench/ours.py streaming: {total} samples (1 ms each) off the idle "
        "wait and the imports; functions by inclusive samples:",
        "",
        "| samples | function |",
        "|---:|---|",
    ]
    out += [f"| {n} | `{f}` |" for f, n in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--py-spy", action="store_true", help="also profile with py-spy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="captioner-turn-") as tmp:
        folder = Path(tmp)
        # the audio and the emulator of bench/run's emulator rows
        wav = slot_wav(folder / "slots.wav", args.seconds * 2)
        with emulator() as emu:
            turns = time_turns(emu.url, wav)
            profile = spy_profile(emu.url, wav, folder) if args.py_spy else ""
    print(turn_table(turns))
    if profile:
        print()
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
