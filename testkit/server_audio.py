"""Audio and client helpers for the offline-server tests and the engine bench.

Speech comes from espeak-ng at test time (voice en-us, 150 words a minute: measured as the
espeak setting Whisper base understands best), resampled to 16 kHz mono int16 with sox.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

RATE = 16_000

# Everyday sentences without numbers (Whisper writes numbers as digits, which WER would count
# as errors that are really formatting).
SENTENCES = (
    "Good morning everyone, thank you for joining the meeting today.",
    "Let me share my screen so that you can see the latest results.",
    "The weather should be sunny this afternoon with a light breeze.",
    "Please remember to save your work before you close the program.",
    "I think the new design is much easier to use than the old one.",
    "She finished reading the book last night and loved the ending.",
    "Our team has been working hard to fix the remaining problems.",
    "If you have any questions, feel free to ask them at the end.",
    "He forgot his keys at home and had to wait outside for an hour.",
    "The doctor told him to drink more water and get plenty of sleep.",
    "Turn left at the next corner and the museum will be on your right.",
    "I would like a cup of coffee with a little milk, please.",
    "The children played in the garden until it started to rain.",
    "Thank you all for listening, and have a wonderful weekend.",
)


def tone(seconds: float, *, freq: float = 440.0, amp: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def pcm16(samples: np.ndarray, channels: int = 1) -> bytes:
    """Float samples -> little-endian int16 bytes, the same signal on every channel."""
    data = np.clip(samples, -1.0, 1.0)
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    return (data * 32767).astype("<i2").tobytes()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is required for the speech tests")
    return path


def espeak(
    text: str, folder: Path, name: str, *, speed: int = 150, voice: str = "en-us"
) -> np.ndarray:
    """Synthesise `text`, trimmed of espeak's own leading/trailing silence, as 16 kHz float32."""
    raw = folder / f"{name}.raw.wav"
    out = folder / f"{name}.wav"
    subprocess.run(
        [require_tool("espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [require_tool("sox"), "-q", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)],
        check=True,
        capture_output=True,
    )
    audio = read_wav(out)
    loud = np.nonzero(np.abs(audio) > 1e-3)[0]
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        assert handle.getsampwidth() == 2 and handle.getnchannels() == 1
        data = handle.readframes(handle.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


@dataclass
class SpeechTrack:
    """Sentences separated by pauses; `spans` are each sentence's (start, end) in seconds."""

    audio: np.ndarray
    texts: list[str]
    spans: list[tuple[float, float]]

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


def speech_track(
    texts: Sequence[str], folder: Path, *, lead: float = 0.5, gap: float = 1.0, tail: float = 1.0
) -> SpeechTrack:
    parts = [silence(lead)]
    spans = []
    position = lead
    for index, text in enumerate(texts):
        audio = espeak(text, folder, f"s{index}")
        spans.append((position, position + len(audio) / RATE))
        parts += [audio, silence(gap if index < len(texts) - 1 else tail)]
        position += len(audio) / RATE + (gap if index < len(texts) - 1 else tail)
    return SpeechTrack(np.concatenate(parts), list(texts), spans)


_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> str:
    """Lowercase words without punctuation, for WER."""
    return " ".join(_WORD.findall(text.lower().replace("-", " ")))


@dataclass
class Received:
    """Everything a client saw on one connection, with arrival times (monotonic seconds)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.of("Results") if m["is_final"]]

    @property
    def interims(self) -> list[dict[str, Any]]:
        return [m for m in self.of("Results") if not m["is_final"]]

    def final_text(self) -> str:
        texts = (m["channel"]["alternatives"][0]["transcript"] for m in self.finals)
        return " ".join(t for t in texts if t)


async def collect(ws: ClientConnection, into: Received) -> Received:
    """Read until the server closes; record messages and the close frame."""
    try:
        async for raw in ws:
            into.messages.append(json.loads(raw))
            into.arrivals.append(time.monotonic())
    except ConnectionClosed:  # an error close ends the iteration with an exception
        pass
    into.close_code = ws.close_code
    into.close_reason = ws.close_reason
    return into


async def stream(
    ws: ClientConnection,
    data: bytes,
    *,
    chunk_bytes: int = 3200,
    speed: float | None = None,
    bytes_per_second: int = 2 * RATE,
) -> None:
    """Send audio in chunks; `speed` = multiple of real time (None: as fast as possible)."""
    started = time.monotonic()
    sent = 0
    for piece in chunks(data, chunk_bytes):
        await ws.send(piece)
        sent += len(piece)
        if speed:
            due = started + sent / bytes_per_second / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
