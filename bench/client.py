"""Client benchmark: CPU per second of streamed audio, and callback-to-socket latency.

The emulator runs in a child process, so the CPU figures are the client's alone (the
capture thread included). Sources: a WAV file paced like a microphone, and a real
PortAudio input (the virtual microphone, a private PulseAudio daemon).

    .venv/bin/python bench/client.py [--seconds 30]

Targets (issue: streaming core): CPU below 2 % of one core for 16 kHz mono; p99 from a
block leaving the audio callback to its bytes on the socket below 5 ms beyond the
chunk's own duration (the figure below is measured from the block that completes a chunk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Quiet:
    def status_changed(self, status: object) -> None: ...
    def captions_changed(self, events: Sequence[object]) -> None: ...
    def message_received(self, message: object) -> None: ...

    def source_changed(self, event: object) -> None: ...


async def stream(url: str, source_kind: str, seconds: float, wav: Path) -> dict[str, float]:
    from captioner.audio.factory import build_source
    from captioner.core.config import StreamSettings
    from captioner.session import Session

    source = build_source(
        file=None if source_kind == "mic" else str(wav), fast=False, device=None, chunk_ms=100
    )
    settings = StreamSettings(url=url, api_key="bench")
    session = Session(settings, source, Quiet())  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    marks: dict[str, tuple[float, float, int]] = {}

    def mark(name: str) -> None:
        marks[name] = (cpu_seconds(), time.monotonic(), session.stats.bytes_sent)

    # steady state: from 2 s in (imports, connection set-up and warm-up done) to Stop
    loop.call_later(2.0, mark, "start")
    loop.call_later(seconds, mark, "end")
    loop.call_later(seconds, session.request_stop)
    end = await session.run()
    (cpu0, wall0, sent0), (cpu1, wall1, sent1) = marks["start"], marks["end"]
    cpu, wall = cpu1 - cpu0, wall1 - wall0
    audio = (sent1 - sent0) / 2 / settings.sample_rate
    lat = np.array(session.stats.send_latencies) * 1000
    return {
        "ok": float(end.ok),
        "audio_s": audio,
        "wall_s": wall,
        "cpu_pct": 100 * cpu / max(audio, 1e-9),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "results": float(session.stats.results_received),
    }


def start_emulator(reply_delay: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "emulator_process.py"),
            "--reply-delay",
            str(reply_delay),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("URL "):
        raise SystemExit("the emulator did not start")
    return proc, line.split()[1]


def run_kind(kind: str, seconds: float, wav: Path) -> dict[str, float]:
    proc, url = start_emulator()
    try:
        return asyncio.run(stream(url, kind, seconds, wav))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-mic", action="store_true", help="skip the virtual microphone row")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="captioner-bench-"))
    wav = tmp / "noise.wav"
    rng = np.random.default_rng(1)
    soundfile.write(
        wav, rng.standard_normal(int(16000 * (args.seconds + 5))) * 0.05, 16000, "PCM_16"
    )
    rows: list[tuple[str, dict[str, float]]] = [
        ("WAV file, real-time pacing", run_kind("file", args.seconds, wav))
    ]
    if not args.no_mic:
        from testkit.virtual_mic import VirtualMic

        with VirtualMic(tmp / "vmic") as mic:
            os.environ.update(mic.env)
            rows.append(
                ("virtual microphone (PortAudio callback)", run_kind("mic", args.seconds, wav))
            )
    print(
        f"Client streaming, 16 kHz mono linear16, 100 ms chunks, {args.seconds:g} s per row; "
        "CPU measured in steady state (from 2 s in)\n"
    )
    print(
        "| source | audio sent (s) | CPU (% of one core) | callback→socket p50 (ms) "
        "| p99 (ms) | max (ms) | Results received |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['audio_s']:.1f} | {r['cpu_pct']:.2f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['results']:.0f} |"
        )


if __name__ == "__main__":
    main()
