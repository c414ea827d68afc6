"""Recovery benchmark: 100 dropped connections, and how much audio went missing.

Every connection to the scripted emulator is dropped (TCP abort, no close frame) after a
random 1-3 s of audio. The audio is self-describing: every half second holds a constant
sample value (the slot number), so each connection's audio tells where on the capture
clock it starts. The bench rebuilds what the server received, compares it byte for byte
with what was captured, and counts the captured bytes that never reached any connection.

The source runs at --speed times real time (a microphone that runs fast) so 100 drops
fit in a few minutes; the session's replay pacing is scaled the same way. Each drop is
treated as an isolated one (the backoff schedule starts afresh after every successful
connection), so the figures are the recovery time of a single drop.

    .venv/bin/python bench/recovery.py [--drops 100] [--speed 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from captioner.audio.sources import AudioBlock  # noqa: E402
from captioner.core.config import StreamSettings  # noqa: E402
from captioner.session import Session  # noqa: E402
from testkit.deepgram_emulator import Accept, ConnectionRecord, DeepgramEmulator, Script  # noqa: E402

RATE = 16000
SLOT = RATE // 2


class FastSource:
    """A microphone whose clock runs `speed` times faster than the wall clock."""

    def __init__(self, samples: np.ndarray, speed: float, block: int = 1600) -> None:
        self.samples = samples
        self.speed = speed
        self.block = block
        self.sample_rate = RATE
        self.channels = 1
        self.description = "bench source"
        self.dropped_blocks = 0
        self._queue: asyncio.Queue[AudioBlock | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._produce())

    async def _produce(self) -> None:
        t0 = time.monotonic()
        for i in range(0, len(self.samples), self.block):
            due = t0 + i / RATE / self.speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            data = self.samples[i : i + self.block].reshape(-1, 1)
            self._queue.put_nowait(AudioBlock(data, i, time.monotonic()))
        self._queue.put_nowait(None)

    async def read(self) -> AudioBlock | None:
        return await self._queue.get()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._queue.put_nowait(None)


class Quiet:
    def status_changed(self, status: object) -> None: ...
    def captions_changed(self, events: Sequence[object]) -> None: ...
    def message_received(self, message: object) -> None: ...

    def source_changed(self, event: object) -> None: ...


def _captured_bytes(session: Session) -> int:
    """Bytes the session captured before Stop (what must have reached the server)."""
    return session.backlog.acked_sample * 2


def coverage(connections: list[ConnectionRecord], captured: bytes) -> tuple[int, int]:
    """(bytes never received, bytes received that differ from the capture)."""
    covered = np.zeros(len(captured) // 2, dtype=bool)
    mismatched = 0
    for conn in connections:
        audio = conn.audio_bytes
        if not audio:
            continue
        first = int(np.frombuffer(audio[:2], "<i2")[0])
        start = (first - 1) * SLOT
        end = min(start + len(audio) // 2, len(covered))
        expected = captured[start * 2 : end * 2]
        got = audio[: len(expected)]
        mismatched += sum(a != b for a, b in zip(got, expected, strict=True))
        covered[start:end] = True
    return int((~covered).sum()) * 2, mismatched


async def main_async(drops: int, speed: float, seed: int) -> None:
    rng = random.Random(seed)
    audio_seconds = drops * 30.0 + 10  # more than needed: the run stops after the drops
    slots = int(audio_seconds * 2)
    samples = np.repeat(np.arange(1, slots + 1, dtype=np.int16), SLOT)
    captured = samples.astype("<i2").tobytes()

    def plan(record: ConnectionRecord) -> Accept:
        if record.index >= drops:
            return Accept()
        # Within the buffer's reach: each connection lives long enough to replay what is
        # owed and then finalise 1-3 s of new audio before it is dropped.
        owed = (session.backlog.unacked_samples + session.backlog.pending_samples) / RATE
        return Accept(drop_after_audio=owed + rng.uniform(1.0, 3.0))

    script = Script(handshake_hook=plan, inactivity_timeout=None)
    async with DeepgramEmulator(script) as emu:
        settings = StreamSettings(url=emu.url, api_key="bench")
        session = Session(
            settings,
            FastSource(samples, speed),  # type: ignore[arg-type]
            Quiet(),  # type: ignore[arg-type]
            max_realtime=1.2 * speed,
            stable_after=0.0,  # each drop is an isolated one: backoff starts afresh
            replay_seconds=60.0,
        )
        started = time.monotonic()
        runner = asyncio.create_task(session.run())
        await emu.wait_for(lambda: len(emu.accepted) > drops, within=3600)
        await asyncio.sleep(2.0)
        session.request_stop()
        end = await runner
        took = time.monotonic() - started
        await emu.wait_idle()
    captured = captured[: session.stats.bytes_sent and _captured_bytes(session)]
    conns = emu.accepted
    recover_open = []
    recover_audio = []
    for before, after in itertools.pairwise(conns):
        if before.closed_at is None or after.opened_at is None or not after.binary_frames:
            continue
        recover_open.append(after.opened_at - before.closed_at)
        recover_audio.append(after.binary_frames[0].t - before.closed_at)
    missing, mismatched = coverage(conns, captured)
    dropped = sum(c.dropped for c in conns)

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) * 1000

    print(f"Recovery after injected drops (TCP abort, no close frame); source at {speed:g}x\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| drops injected / connections | {dropped} / {len(conns)} |")
    print(f"| session ended ok | {end.ok} ({took:.1f} s) |")
    print(
        f"| drop → new connection open, p50 / p95 (ms) | "
        f"{pct(recover_open, 50):.0f} / {pct(recover_open, 95):.0f} |"
    )
    print(
        f"| drop → first replayed audio on the wire, p50 / p95 (ms) | "
        f"{pct(recover_audio, 50):.0f} / {pct(recover_audio, 95):.0f} |"
    )
    print(f"| captured audio never received (bytes) | {missing} of {len(captured)} |")
    print(f"| received bytes differing from the capture | {mismatched} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drops", type=int, default=100)
    parser.add_argument("--speed", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main_async(args.drops, args.speed, args.seed))


if __name__ == "__main__":
    main()
