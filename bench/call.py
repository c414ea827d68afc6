"""Both sides of a call on real devices: how well two capture clocks stay together, and what
capturing two inputs costs the client.

Two PulseAudio sources stand in for a microphone and the system audio: a private daemon
(`testkit/virtual_mic.py`) with a "microphone" (a 16 kHz null sink's monitor, remapped) and
"speakers" (a 48 kHz stereo null sink, recorded through its monitor). A click every
`--every` seconds is played into both at once through one combine sink, so both devices hear
each click at the same instant. `CallSource` captures both, each on its own stream and clock,
aligned onto one (echo detection off: the same sound on both inputs is what it would gate);
the bench finds every click on each channel of the aligned stream and prints how far apart
the two channels put it, over `--minutes`.

Then the client's cost: `captioner listen` against the scripted emulator (which answers
instantly, so only the client is measured) for `--cost-seconds` with one input, and with both
(`--call`), reading the process's CPU time and peak resident memory.

    .venv/bin/python bench/call.py --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.virtual_mic import SINK, SPEAKERS, VirtualMic  # noqa: E402

RATE = 16000


def click_track(path: Path, minutes: float, every: float) -> list[float]:
    rate = 48000
    total = int(minutes * 60 * rate)
    data = np.zeros(total, dtype=np.float32)
    times = [t for t in np.arange(1.0, minutes * 60 - 0.5, every)]
    for t in times:
        at = int(t * rate)
        data[at : at + rate // 200] = 0.9  # 5 ms
    soundfile.write(path, data, rate, subtype="PCM_16")
    return times


def clicks(channel: np.ndarray, expected: int) -> list[float]:
    loud = np.flatnonzero(np.abs(channel) > 0.3)
    found: list[float] = []
    for index in loud:
        t = index / RATE
        if not found or t - found[-1] > 1.0:
            found.append(t)
    return found[:expected]


async def measure_drift(mic: VirtualMic, minutes: float, every: float) -> None:
    from captioner.audio.call import CallSource
    from captioner.audio.factory import build_call_source

    folder = Path(tempfile.mkdtemp(prefix="captioner-call-bench-"))
    track = folder / "clicks.wav"
    times = click_track(track, minutes, every)
    env = mic.child_env()
    made = build_call_source(devices=["pulse", "system"], chunk_ms=100)
    # the same clicks on both inputs are what echo detection gates: measure without it
    source = CallSource([c.source for c in made.inputs], crosstalk=False)
    await source.start()
    player = await asyncio.create_subprocess_exec("paplay", "--device=both", str(track), env=env)
    blocks = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < minutes * 60 + 2:
            block = await source.read()
            if block is None:
                break
            blocks.append(block.data)
    finally:
        await player.wait()
        await source.aclose()
    out = np.concatenate(blocks)
    left, right = clicks(out[:, 0], len(times)), clicks(out[:, 1], len(times))
    pairs = list(zip(left, right, strict=False))
    offsets = [(b - a) * 1000 for a, b in pairs]
    print(f"clicks found: {len(left)} on the microphone, {len(right)} on the speakers' monitor")
    print()
    print("| minute | microphone click at | monitor click at | monitor minus microphone |")
    print("|---|---|---|---|")
    per_minute = max(1, round(60 / every))
    for i in range(0, len(pairs), per_minute):
        a, b = pairs[i]
        print(f"| {a / 60:.1f} | {a:.3f} s | {b:.3f} s | {offsets[i]:+.1f} ms |")
    if offsets:
        a, b = pairs[-1]
        print(f"| {a / 60:.1f} | {a:.3f} s | {b:.3f} s | {offsets[-1]:+.1f} ms |")
        settled = offsets[len(offsets) // 10 :]
        print()
        print(
            f"offset: first {offsets[0]:+.1f} ms, last {offsets[-1]:+.1f} ms, "
            f"spread after the first tenth {max(settled) - min(settled):.1f} ms "
            f"(min {min(settled):+.1f}, max {max(settled):+.1f})"
        )
    for channel in source.inputs:
        aligner = channel.aligner
        if aligner is not None:
            print(
                f"{channel.name}: device clock {(aligner.drift - 1) * 1e6:+.0f} ppm against "
                f"the monotonic clock, position error {aligner.position_error * 1000:+.1f} ms"
            )


async def measure_cost(mic: VirtualMic, seconds: float) -> None:
    from testkit.deepgram_emulator import DeepgramEmulator, Script

    print()
    print(f"| client, {seconds:.0f} s of live capture | CPU s / audio s | peak memory |")
    print("|---|---|---|")
    async with DeepgramEmulator(Script()) as emu:
        for name, extra in (("one input", []), ("two inputs (--call)", ["--call"])):
            argv = [sys.executable, "-m", "captioner.cli", "listen", "--device", "pulse",
                    *extra, "--duration", str(seconds), "--url", emu.url,
                    "--api-key", "bench-key-0123456789", "--no-journal"]  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=mic.child_env(),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                stdin=asyncio.subprocess.DEVNULL,
            )
            peak = 0.0
            while proc.returncode is None:
                peak = max(peak, high_water_mb(proc.pid))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 1.0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(f"| {name} | {cpu / seconds:.3f} | {peak:.0f} MB |")


def high_water_mb(pid: int) -> float:
    """The process's peak resident size so far (VmHWM), in MB; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between clicks")
    parser.add_argument("--cost-seconds", type=float, default=60.0)
    parser.add_argument("--skip-drift", action="store_true")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="captioner-vmic-"))
    mic = VirtualMic(state, speakers=True)
    mic.start()
    try:
        mic.apply_to_environ()
        os.environ.pop("DEEPGRAM_API_KEY", None)
        if not args.skip_drift:
            subprocess.run(  # one stream into both sinks: both devices hear each click at once
                ["pactl", "load-module", "module-combine-sink", "sink_name=both",
                 f"slaves={SINK},{SPEAKERS}"],
                env=mic.child_env(), check=True, capture_output=True,
            )  # fmt: skip
            asyncio.run(measure_drift(mic, args.minutes, args.every))
        asyncio.run(measure_cost(mic, args.cost_seconds))
    finally:
        mic.stop()


if __name__ == "__main__":
    main()
