"""Benchmark the offline engine end to end and print a markdown table.

    .venv/bin/python bench/engine.py            # full run (about two minutes)
    .venv/bin/python bench/engine.py --vad      # also compare the two VADs under noise

It starts `python -m captioner.server serve` as a child (as the app does), streams espeak-ng
sentences to it over a raw WebSocket and measures, against the targets of the offline-engine
issue:

* WER of the finals (target <= 10 %), on everyday sentences spoken by espeak-ng (en-us, 150 wpm).
* Real-time factor (target <= 0.3): server CPU seconds per second of audio during the
  real-time run (interims included), and wall-clock seconds per audio second when the same
  audio is sent as fast as possible.
* Latency from the end of each sentence to the arrival of its final, real-time pacing
  (median target <= 1.0 s; it includes the 300 ms endpointing silence).
* Interim cadence: time between interims while someone speaks (about 1 s expected).
* Peak memory: the server process's peak RSS (VmHWM; target <= 700 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jiwer
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from captioner.server import models  # noqa: E402
from captioner.server.cli import LISTENING_PREFIX  # noqa: E402
from testkit.server_audio import (  # noqa: E402
    RATE,
    SENTENCES,
    Received,
    SpeechTrack,
    collect,
    normalise,
    pcm16,
    speech_track,
    stream,
)

PARAMS = {
    "encoding": "linear16",
    "sample_rate": str(RATE),
    "interim_results": "true",
    "punctuate": "true",
    "endpointing": "300",
    "utterance_end_ms": "1000",
    "vad_events": "true",
}


@dataclass
class Child:
    process: subprocess.Popen[str]
    url: str
    startup: float

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def start_server(extra: list[str]) -> Child:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "captioner.server", "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(LISTENING_PREFIX):
        process.wait()
        raise SystemExit(
            "the server did not start (is the model installed? captioner models fetch)"
        )
    return Child(process, line.removeprefix(LISTENING_PREFIX).strip(), time.monotonic() - started)


async def run(
    child: Child, track: SpeechTrack, speed: float | None
) -> tuple[Received, float, float, float]:
    """Stream the track; returns what came back, the send start time, wall and CPU seconds."""
    cpu_before = child.cpu_seconds()
    async with connect(f"{child.url}?{urlencode(PARAMS)}") as ws:
        received = Received()
        reader = asyncio.create_task(collect(ws, received))
        started = time.monotonic()
        await stream(ws, pcm16(track.audio), speed=speed)
        await ws.send(json.dumps({"type": "CloseStream"}))
        await reader
    wall = time.monotonic() - started
    return received, started, wall, child.cpu_seconds() - cpu_before


def word_error(track: SpeechTrack, received: Received) -> float:
    return float(jiwer.wer(normalise(" ".join(track.texts)), normalise(received.final_text())))


def latencies(track: SpeechTrack, received: Received, started: float) -> list[float]:
    """For each sentence: arrival of the final holding its last word minus when its last
    audio sample was sent."""
    out = []
    finals = [
        (m, t)
        for m, t in zip(received.messages, received.arrivals, strict=True)
        if m.get("type") == "Results" and m["is_final"] and m["channel"]["alternatives"][0]["words"]
    ]
    for _, end in track.spans:
        for message, arrival in finals:
            if message["start"] + message["duration"] >= end - 0.05:
                out.append(arrival - (started + end))
                break
    return out


def interim_gaps(track: SpeechTrack, received: Received) -> list[float]:
    """Wall time between consecutive interims inside one sentence."""
    gaps = []
    previous: tuple[float, float] | None = None
    for message, arrival in zip(received.messages, received.arrivals, strict=True):
        if message.get("type") != "Results":
            continue
        if message["is_final"]:
            previous = None
            continue
        if not message["channel"]["alternatives"][0]["words"]:
            continue
        if previous is not None:
            gaps.append(arrival - previous[1])
        previous = (message["start"], arrival)
    return gaps


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def vad_table(folder: Path) -> str:
    """Utterance segmentation of both VADs on espeak speech, clean and with noise."""
    from captioner.server.engine import (
        Hypothesis,
        RecognizerOptions,
        SpeechStart,
        Transcript,
    )
    from captioner.server.streaming import StreamingRecognizer
    from captioner.server.vad import EnergyVad, SileroVad

    track = speech_track(SENTENCES, folder, gap=0.8)
    rng = np.random.default_rng(1)
    level = float(np.sqrt(np.mean(track.audio[np.abs(track.audio) > 1e-3] ** 2)))

    def scaled(noise: np.ndarray, snr: float) -> np.ndarray:
        return (noise / np.sqrt(np.mean(noise**2)) * level / 10 ** (snr / 20)).astype(np.float32)

    n = len(track.audio)
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(4001) / 4001, mode="same")
    t = np.arange(n) / RATE
    conditions = {
        "clean": np.zeros(n, np.float32),
        "white noise, 20 dB SNR": scaled(rng.standard_normal(n), 20),
        "white noise, 10 dB SNR": scaled(rng.standard_normal(n), 10),
        "brown noise, 10 dB SNR": scaled(brown, 10),
        "mains hum, 10 dB SNR": scaled(
            np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t), 10
        ),
    }

    class NoWords:
        def decode(self, audio: Any, *, final: bool, language: str | None, **_: Any) -> Any:
            return Hypothesis(())

    rows = [
        "| condition | VAD | sentences segmented exactly | median end error | CPU / audio s |",
        "|---|---|---|---|---|",
    ]
    for name, noise in conditions.items():
        audio = track.audio + noise
        for vad in (EnergyVad(), SileroVad()):
            options = RecognizerOptions(endpointing_ms=300)
            recognizer = StreamingRecognizer(NoWords(), vad, options)
            started = time.process_time()
            events = []
            for i in range(0, n, 1600):
                events += recognizer.feed(audio[i : i + 1600])
            cpu = time.process_time() - started
            segments, onset = [], None
            for event in events:
                if isinstance(event, SpeechStart):
                    onset = event.timestamp
                elif isinstance(event, Transcript) and event.speech_final and onset is not None:
                    segments.append((onset, event.end - 0.3))
                    onset = None
            exact, errors = 0, []
            for begin, end in track.spans:
                hits = [s for s in segments if s[0] < end and s[1] > begin]
                if (
                    len(hits) == 1
                    and sum(1 for b, e in track.spans if b < hits[0][1] and e > hits[0][0]) == 1
                ):
                    exact += 1
                    errors.append(abs(hits[0][1] - end))
            error = f"{statistics.median(errors) * 1000:.0f} ms" if errors else "-"
            rows.append(
                f"| {name} | {vad.name} | {exact}/{len(track.spans)} ({len(segments)} found) | "
                f"{error} | {cpu / track.seconds * 1000:.1f} ms |"
            )
    return "\n".join(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--vad", action="store_true", help="also compare energy and Silero VADs")
    args = parser.parse_args()
    models.require_model_dir()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        track = speech_track(SENTENCES[: args.sentences], folder, gap=1.2, tail=1.5)
        extra = ["--threads", str(args.threads)] if args.threads else []
        child = start_server(extra)
        try:
            realtime, started, _, rt_cpu = await run(child, track, speed=1.0)
            fast, _, fast_wall, fast_cpu = await run(child, track, speed=None)
            peak = child.peak_rss_mb()
        finally:
            child.process.terminate()
            child.process.wait(10)
        vad = vad_table(folder) if args.vad else None

    lat = latencies(track, realtime, started)
    gaps = interim_gaps(track, realtime)
    rows = [
        ("Audio", f"{len(track.texts)} espeak-ng sentences, {track.seconds:.1f} s", ""),
        ("WER, real-time run", f"{word_error(track, realtime) * 100:.1f} %", "<= 10 %"),
        ("WER, as-fast-as-possible run", f"{word_error(track, fast) * 100:.1f} %", "<= 10 %"),
        (
            "RTF, real-time run (server CPU s / audio s, interims on)",
            f"{rt_cpu / track.seconds:.3f}",
            "<= 0.3",
        ),
        (
            "RTF, as fast as possible (wall s / audio s)",
            f"{fast_wall / track.seconds:.3f}",
            "<= 0.3",
        ),
        (
            "RTF, as fast as possible (server CPU s / audio s)",
            f"{fast_cpu / track.seconds:.3f}",
            "",
        ),
        ("Latency end of speech -> final, median", f"{statistics.median(lat):.2f} s", "<= 1.0 s"),
        ("Latency, 90th percentile / max", f"{pct(lat, 90):.2f} s / {max(lat):.2f} s", ""),
        ("Finals matched to sentences", f"{len(lat)}/{len(track.texts)}", ""),
        (
            "Interim cadence, median (p10-p90)",
            f"{statistics.median(gaps):.2f} s ({pct(gaps, 10):.2f}-{pct(gaps, 90):.2f})",
            "about 1 s",
        ),
        ("Peak memory (server RSS, VmHWM)", f"{peak:.0f} MB", "<= 700 MB"),
        ("Server start (load model, warm up, listen)", f"{child.startup:.1f} s", ""),
        ("CPU", f"{os.cpu_count()} cores", ""),
    ]
    print("| Measure | Result | Target |")
    print("|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    if vad:
        print()
        print(vad)


if __name__ == "__main__":
    asyncio.run(main())
