"""Two capture clocks kept on one: a device 0.1 % fast, over an hour of audio, stays within
20 ms of the reference clock and of a device that runs true."""

from __future__ import annotations

import numpy as np
import pytest

from captioner.core.alignment import ClockAligner

RATE = 16_000
HOUR = 3600


def device(
    speed: float, seed: int, seconds: int = HOUR, nominal: int = RATE, jitter: float = 0.002
) -> tuple[list[np.ndarray], list[float], list[float]]:
    """An hour of blocks from a device whose clock runs `speed` times the reference: 100 ms
    blocks of its own frames, each stamped (with 2 ms of jitter) on the reference clock, with
    a click at every reference minute. Returns (blocks, stamps, click times)."""
    rng = np.random.default_rng(seed)
    device_rate = nominal * speed
    block = nominal // 10
    total = int(seconds * device_rate)
    clicks = [60.0 * m + 0.5 for m in range(seconds // 60)]
    # digital silence between the clicks, as from a gated microphone
    signal = np.zeros(total, dtype=np.float32)
    for t in clicks:
        at = int(t * device_rate)
        signal[at : at + nominal // 200] = 1.0  # 5 ms
    blocks, stamps = [], []
    for start in range(0, total - block + 1, block):
        blocks.append(signal[start : start + block])
        stamps.append((start + block) / device_rate + rng.uniform(0, jitter))
    return blocks, stamps, clicks


def aligned_clicks(
    speed: float, seed: int, seconds: int = HOUR, nominal: int = RATE, jitter: float = 0.002
) -> tuple[list[float], list[float], ClockAligner]:
    blocks, stamps, clicks = device(speed, seed, seconds, nominal, jitter)
    stamps = list(np.maximum.accumulate(stamps))  # blocks arrive in order
    aligner = ClockAligner(nominal, start=0.0, out_rate=RATE)
    out = np.concatenate([aligner.push(b, t) for b, t in zip(blocks, stamps, strict=True)])
    found = []
    for t in clicks:
        around = int(t * RATE)
        lo = max(0, around - RATE // 2)
        window = out[lo : around + RATE // 2]
        found.append((lo + int(np.argmax(window > 0.5))) / RATE)
    return clicks, found, aligner


@pytest.mark.slow
def test_a_device_0_1_percent_fast_stays_within_20_ms_over_an_hour() -> None:
    clicks, fast, aligner = aligned_clicks(1.001, seed=1)
    _, true, _ = aligned_clicks(1.0, seed=2)
    # unaligned, the fast device's last click would be 3.6 s early; aligned it is on time
    late = [found - wanted for found, wanted in zip(fast, clicks, strict=True)]
    assert max(abs(x) for x in late[2:]) < 0.020, late  # after the first two minutes
    assert max(abs(a - b) for a, b in list(zip(fast, true, strict=True))[2:]) < 0.020
    assert abs(aligner.drift - 1.001) < 0.00005  # the drift it measured
    assert abs(aligner.position_error) < 0.020


def test_a_slow_device_is_stretched_the_same_way() -> None:
    clicks, slow, _ = aligned_clicks(0.999, seed=3, seconds=20 * 60)
    assert max(abs(f - c) for f, c in list(zip(slow, clicks, strict=True))[2:]) < 0.020


def test_a_48_khz_device_is_aligned_and_brought_to_16_khz_in_one_step() -> None:
    """A system-audio monitor runs at 48 kHz; it comes out at the stream's 16 kHz, on time."""
    clicks, found, aligner = aligned_clicks(1.001, seed=4, seconds=20 * 60, nominal=48_000)
    assert max(abs(f - c) for f, c in list(zip(found, clicks, strict=True))[2:]) < 0.020
    assert abs(aligner.drift - 1.001) < 0.00005
    assert abs(aligner.position_error) < 0.020


def test_blocks_handed_over_in_bursts_do_not_shake_the_alignment() -> None:
    """A sound server's callbacks come up to 60 ms late, at random: the alignment follows
    the fitted line, not each stamp."""
    clicks, found, _ = aligned_clicks(1.0005, seed=5, seconds=10 * 60, jitter=0.060)
    errors = [f - c for f, c in list(zip(found, clicks, strict=True))[1:]]
    assert max(errors) - min(errors) < 0.015, errors
    assert max(abs(e) for e in errors) < 0.045  # the mean lateness, about 30 ms, stays
