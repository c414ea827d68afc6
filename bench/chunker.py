"""Chunker throughput in multiples of real time, as a markdown table.

Run: ``.venv/bin/python bench/chunker.py [seconds-of-audio-per-case]``. The audio callback
path must stay far below real time; this shows how far, for the input shapes we meet:
a 16 kHz mono int16 stream (no resampling), a 48 kHz stereo float32 sound card in 10 ms
blocks, and a 44.1 kHz mono float32 device in 512-frame blocks.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from captioner.core.chunker import Chunker


@dataclass(frozen=True)
class Case:
    label: str
    rate: int
    channels: int
    dtype: type[np.generic]
    block_frames: int


CASES = [
    Case("16 kHz mono int16, 20 ms blocks", 16000, 1, np.int16, 320),
    Case("48 kHz stereo float32, 10 ms blocks", 48000, 2, np.float32, 480),
    Case("44.1 kHz mono float32, 512-frame blocks", 44100, 1, np.float32, 512),
]


def make_blocks(case: Case, seconds: float) -> list[npt.NDArray[Any]]:
    rng = np.random.default_rng(1)
    frames = int(case.rate * seconds)
    signal = rng.uniform(-0.5, 0.5, (frames, case.channels)).astype(np.float32)
    if case.dtype == np.int16:
        signal = (signal * 32767).astype(np.int16)
    if case.channels == 1:
        signal = signal[:, 0].copy()
    return [signal[i : i + case.block_frames] for i in range(0, frames, case.block_frames)]


def measure(case: Case, seconds: float, repeats: int = 5) -> tuple[float, float]:
    """Best of ``repeats`` runs (the least disturbed): x real time and microseconds per block."""
    blocks = make_blocks(case, seconds)
    best = float("inf")
    for _ in range(repeats):
        chunker = Chunker(case.rate, case.channels)
        started = time.perf_counter()
        for block in blocks:
            chunker.push(block)
        chunker.flush()
        best = min(best, time.perf_counter() - started)
    return seconds / best, best / len(blocks) * 1e6


def main(argv: list[str]) -> None:
    seconds = float(argv[0]) if argv else 30.0
    print(f"Chunker throughput, {seconds:g} s of audio per case, best of 5, output 16 kHz/100 ms")
    print()
    print("| input | x real time | µs per block |")
    print("| --- | ---: | ---: |")
    for case in CASES:
        speed, per_block = measure(case, seconds)
        print(f"| {case.label} | {speed:,.0f} | {per_block:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
