"""WAV files that tests and benchmarks stream: quiet noise, and self-describing slots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile  # type: ignore[import-untyped]

__all__ = ["SLOT_SECONDS", "noise_wav", "slot_wav"]

SLOT_SECONDS = 0.5
"""The scripted emulator's word slot at its default 2 words per second."""


def noise_wav(
    path: Path, seconds: float, rate: int = 16000, channels: int = 1, *, seed: int = 7
) -> Path:
    """Quiet noise (about -26 dBFS), 16-bit: not digital silence, so the emulator hears a word
    in every slot and a level meter has something to show."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * rate)
    data = (rng.standard_normal((frames, channels)) * 0.05).astype(np.float32)
    soundfile.write(path, data if channels > 1 else data[:, 0], rate, subtype="PCM_16")
    return path


def slot_wav(path: Path, slots: int, rate: int = 16000) -> Path:
    """Self-describing audio: every half-second slot holds its number (1, 2, ...) in every
    sample, so the emulator's word for a slot says which audio reached it."""
    samples = np.repeat(np.arange(1, slots + 1, dtype=np.int16), int(SLOT_SECONDS * rate))
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path
