"""The offline engine's cost with two channels: one talker, two taking turns, two at once.

Two recordings of people (`testkit/speech_corpus.py`: the LibriVox sonnet and the Austen
sentences) are streamed through `captioner serve` at real-time pace, in 100 ms linear16
chunks, as one mono stream and as stereo with `multichannel=true&channels=2`:

- one talker: the sonnet alone, mono;
- one talker on two channels: the sonnet on the left, silence on the right;
- two taking turns: the sonnet on the left, then the Austen sentences on the right;
- two at once: the sonnet on the left and the Austen sentences on the right together.

It prints the server's CPU seconds per second of audio, the words each channel got back, and
their word error rate against the published texts.

    .venv/bin/python bench/multichannel.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stream_quality import RATE, Server, cpu_seconds  # noqa: E402

from testkit import speech_corpus  # noqa: E402
from testkit.stream_metrics import word_error  # noqa: E402

CHUNK_SECONDS = 0.1


def interleave(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    length = max(len(left), len(right))
    frames = np.zeros((length, 2), dtype=np.float32)
    frames[: len(left), 0] = left
    frames[: len(right), 1] = right
    return frames


async def stream(server: Server, frames: np.ndarray) -> tuple[dict[int, str], float, float]:
    """(final text per channel, server CPU seconds, audio seconds)."""
    from websockets.asyncio.client import connect

    channels = 1 if frames.ndim == 1 else frames.shape[1]
    params = {
        "encoding": "linear16",
        "sample_rate": str(RATE),
        "channels": str(channels),
        "interim_results": "true",
        "endpointing": "300",
        "utterance_end_ms": "1000",
        "punctuate": "true",
    }
    if channels > 1:
        params["multichannel"] = "true"
    pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(RATE * CHUNK_SECONDS) * 2 * channels
    texts: dict[int, list[str]] = {}
    cpu_before = cpu_seconds(server.process.pid)
    async with connect(f"{server.url}?{urlencode(params)}", max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "Results" and message["is_final"]:
                    channel = message["channel_index"][0]
                    text = message["channel"]["alternatives"][0]["transcript"]
                    if text:
                        texts.setdefault(channel, []).append(text)

        reader = asyncio.create_task(receive())
        started = time.monotonic()
        for offset in range(0, len(pcm), step):
            await ws.send(pcm[offset : offset + step])
            due = started + (offset + step) / (2 * channels * RATE)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send(json.dumps({"type": "CloseStream"}))
        await reader
    cpu = cpu_seconds(server.process.pid) - cpu_before
    return {k: " ".join(v) for k, v in texts.items()}, cpu, len(frames) / RATE


def main() -> None:
    sonnet, austen = speech_corpus.load("sonnet"), speech_corpus.load("austen")
    assert sonnet.text is not None and austen.text is not None
    gap = np.zeros(RATE, dtype=np.float32)
    cases = [
        ("one talker, mono", sonnet.audio, {0: sonnet.text}),
        (
            "one talker on two channels",
            interleave(sonnet.audio, np.zeros(len(sonnet.audio), dtype=np.float32)),
            {0: sonnet.text},
        ),
        (
            "two taking turns",
            interleave(
                sonnet.audio,
                np.concatenate([np.zeros(len(sonnet.audio), dtype=np.float32), gap, austen.audio]),
            ),
            {0: sonnet.text, 1: austen.text},
        ),
        ("two at once", interleave(sonnet.audio, austen.audio), {0: sonnet.text, 1: austen.text}),
    ]
    server = Server()
    try:
        rows = []
        for label, frames, references in cases:
            texts, cpu, seconds = asyncio.run(stream(server, frames))
            errors = ", ".join(
                f"ch {channel}: {100 * word_error(reference, texts.get(channel, '')):.1f} %"
                for channel, reference in references.items()
            )
            stray = sorted(set(texts) - set(references))
            rows.append((label, seconds, cpu / seconds, errors, stray))
    finally:
        server.close()
    print("| case | audio | server CPU / audio s | WER per channel | words on silent channels |")
    print("|---|---|---|---|---|")
    for label, seconds, per_second, errors, stray in rows:
        print(
            f"| {label} | {seconds:.0f} s | {per_second:.2f} s/s | {errors} | "
            f"{'channel ' + ', '.join(map(str, stray)) if stray else 'none'} |"
        )


if __name__ == "__main__":
    main()
