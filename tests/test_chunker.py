"""The chunker: fixed, never-empty linear16 chunks from any block shape, rate and type."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from captioner.core.chunker import Chunker

DTYPES = [np.int16, np.int32, np.float32, np.float64, np.uint8]
RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000]


def as_int16(data: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(data, dtype="<i2")


def run(chunker: Chunker, blocks: list[npt.NDArray[Any]]) -> tuple[list[bytes], bytes | None]:
    chunks: list[bytes] = []
    for block in blocks:
        chunks.extend(chunker.push(block))
    return chunks, chunker.flush()


def split(signal: npt.NDArray[Any], sizes: list[int]) -> list[npt.NDArray[Any]]:
    """Cut ``signal`` into blocks of the given sizes, cycling through them; zero sizes allowed."""
    blocks, start, i = [], 0, 0
    while start < len(signal):
        size = sizes[i % len(sizes)]
        blocks.append(signal[start : start + size])
        start += size
        i += 1
        if size == 0 and all(s == 0 for s in sizes):
            break
    return blocks


def noise(frames: int, channels: int, dtype: type[np.generic], seed: int = 0) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    shape = (frames,) if channels == 1 else (frames, channels)
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1.2, 1.2, shape).astype(dtype)
    info = np.iinfo(dtype)  # type: ignore[type-var]
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


block_sizes = st.lists(st.integers(0, 3000), min_size=1, max_size=8).filter(any)


@settings(deadline=None)
@given(
    channels=st.integers(1, 3),
    dtype=st.sampled_from(DTYPES),
    rate=st.sampled_from([8000, 16000, 44100]),
    chunk_ms=st.integers(20, 250),
    frames=st.integers(0, 30000),
    sizes=block_sizes,
)
def test_same_rate_keeps_every_sample_in_exact_chunks(
    channels: int,
    dtype: type[np.generic],
    rate: int,
    chunk_ms: int,
    frames: int,
    sizes: list[int],
) -> None:
    chunker = Chunker(rate, channels, out_rate=rate, chunk_ms=chunk_ms)
    chunks, tail = run(chunker, split(noise(frames, channels, dtype), sizes))
    chunk_bytes = 2 * chunker.chunk_samples
    assert all(len(c) == chunk_bytes for c in chunks)
    assert tail is None or 0 < len(tail) < chunk_bytes
    total = sum(map(len, chunks)) + (len(tail) if tail else 0)
    assert total == 2 * frames
    assert chunker.samples_in == frames
    assert chunker.samples_out == frames


@settings(deadline=None)
@given(
    in_rate=st.sampled_from(RATES),
    out_rate=st.sampled_from([8000, 16000, 24000, 48000]),
    channels=st.integers(1, 2),
    frames=st.integers(0, 40000),
    sizes=block_sizes,
)
def test_resampling_keeps_the_duration_and_flush_drains_the_resampler(
    in_rate: int, out_rate: int, channels: int, frames: int, sizes: list[int]
) -> None:
    chunker = Chunker(in_rate, channels, out_rate=out_rate, chunk_ms=100)
    chunks, tail = run(chunker, split(noise(frames, channels, np.float32), sizes))
    assert all(len(c) == 2 * chunker.chunk_samples for c in chunks)
    assert tail is None or len(tail) > 0
    total = (sum(map(len, chunks)) + (len(tail) if tail else 0)) // 2
    expected = frames * out_rate / in_rate
    assert abs(total - expected) <= 1, (total, expected)
    assert chunker.samples_out == total
    assert chunker.samples_in == frames


def test_without_flush_the_resampler_holds_back_its_delay() -> None:
    chunker = Chunker(48000, 1, chunk_ms=20)
    sent = sum(len(c) for c in chunker.push(np.zeros(48000, np.float32))) // 2
    assert sent < 16000
    tail = chunker.flush()
    assert tail is not None
    assert sent + len(tail) // 2 == 16000


@settings(deadline=None)
@given(
    sizes=st.lists(st.integers(0, 10), min_size=1, max_size=20),
    dtype=st.sampled_from(DTYPES),
    channels=st.integers(1, 4),
    rate=st.sampled_from([16000, 48000]),
)
def test_tiny_and_empty_blocks_never_make_an_empty_chunk(
    sizes: list[int], dtype: type[np.generic], channels: int, rate: int
) -> None:
    chunker = Chunker(rate, channels, chunk_ms=20)
    blocks = [noise(n, channels, dtype, seed=i) for i, n in enumerate(sizes)]
    chunks, tail = run(chunker, blocks)
    assert b"" not in chunks
    assert tail != b""
    if sum(sizes) == 0:
        assert (chunks, tail) == ([], None)


def test_flush_on_nothing_is_none_and_push_after_flush_refuses() -> None:
    chunker = Chunker(16000, 1)
    assert chunker.flush() is None
    assert chunker.flush() is None
    with pytest.raises(RuntimeError, match="flushed"):
        chunker.push(np.zeros(160, np.int16))


@given(hnp.arrays(np.int16, st.integers(0, 5000)), block_sizes)
def test_int16_mono_passes_through_bit_exact(
    signal: npt.NDArray[np.int16], sizes: list[int]
) -> None:
    chunks, tail = run(Chunker(16000, 1), split(signal, sizes))
    out = as_int16(b"".join(chunks) + (tail or b""))
    np.testing.assert_array_equal(out, signal)


@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 2000), st.just(2))))
def test_stereo_int16_is_averaged(signal: npt.NDArray[np.int16]) -> None:
    chunks, tail = run(Chunker(16000, 2, chunk_ms=20), [signal])
    out = as_int16(b"".join(chunks) + (tail or b""))
    expected = np.rint(signal.astype(np.float64).mean(axis=1))
    np.testing.assert_array_equal(out, expected)


@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 2000), st.integers(1, 3))))
def test_uint8_is_offset_binary(signal: npt.NDArray[np.uint8]) -> None:
    chunks, tail = run(Chunker(8000, signal.shape[1], out_rate=8000), [signal])
    out = as_int16(b"".join(chunks) + (tail or b""))
    expected = np.rint((signal.astype(np.float64) - 128).mean(axis=1) * 256)
    assert np.abs(out - expected).max() <= 1


@given(hnp.arrays(np.int32, st.integers(1, 3000)))
def test_int32_keeps_the_top_sixteen_bits(signal: npt.NDArray[np.int32]) -> None:
    chunks, tail = run(Chunker(16000, 1), [signal])
    out = as_int16(b"".join(chunks) + (tail or b""))
    expected = np.clip(np.rint(signal / 65536.0), -32768, 32767)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1


@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        st.tuples(st.integers(1, 2000), st.integers(1, 2)),
        elements=st.floats(-4.0, 4.0, width=32),
    )
)
def test_float_is_clipped_then_scaled(signal: npt.NDArray[np.floating[Any]]) -> None:
    chunks, tail = run(Chunker(16000, signal.shape[1]), [signal])
    out = as_int16(b"".join(chunks) + (tail or b""))
    mono = np.clip(signal.astype(np.float64), -1, 1).mean(axis=1)
    expected = np.clip(np.rint(mono * 32768), -32768, 32767)
    assert np.abs(out - expected).max() <= 1


def test_known_values_for_each_sample_type() -> None:
    cases: list[tuple[npt.NDArray[Any], list[int]]] = [
        (np.array([0, 1000, -32768, 32767], np.int16), [0, 1000, -32768, 32767]),
        (np.array([0, 65536 * 1000, -(2**31), 2**31 - 1], np.int32), [0, 1000, -32768, 32767]),
        (np.array([128, 129, 0, 255], np.uint8), [0, 256, -32768, 32512]),
        (np.array([0.0, 0.5, -1.0, 1.0], np.float32), [0, 16384, -32768, 32767]),
        (np.array([0.0, -0.25, 3.0, -7.0], np.float64), [0, -8192, 32767, -32768]),
        (np.array([[1000, 3000], [-2, 4], [32767, 32767]], np.int16), [2000, 1, 32767]),
        (np.array([[0.5, -0.5, 0.25]], np.float32), [2731]),
        (np.array([np.nan, np.inf, -np.inf, 1e30], np.float32), [0, 32767, -32768, 32767]),
    ]
    for block, expected in cases:
        channels = 1 if block.ndim == 1 else block.shape[1]
        chunker = Chunker(16000, channels)
        assert chunker.push(block) == []
        got = chunker.flush()
        assert got is not None
        assert as_int16(got).tolist() == expected, block


def test_bytes_are_little_endian() -> None:
    chunker = Chunker(16000, 1, chunk_ms=20)
    chunk = chunker.push(np.full(320, 0x0102, np.int16))[0]
    assert chunk[:2] == b"\x02\x01"


def test_column_vector_and_1d_mono_are_the_same() -> None:
    signal = noise(5000, 1, np.float32)
    a = run(Chunker(44100, 1), [signal])
    b = run(Chunker(44100, 1), [signal.reshape(-1, 1)])
    assert a == b


def spectrum_peak(samples: npt.NDArray[Any], rate: int) -> tuple[float, float]:
    """Frequency of the strongest component and its amplitude (Hann window, corrected)."""
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window)) * 2 / window.sum()
    peak = int(np.argmax(spectrum))
    return peak * rate / len(samples), float(spectrum[peak])


def amplitude_at(samples: npt.NDArray[Any], rate: int, frequency: float) -> float:
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window)) * 2 / window.sum()
    bin_ = round(frequency * len(samples) / rate)
    return float(spectrum[max(0, bin_ - 3) : bin_ + 4].max())


def test_resampled_sine_keeps_frequency_and_amplitude() -> None:
    rate = 48000
    t = np.arange(rate * 2) / rate
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 1000 * t)] * 2, axis=1).astype(np.float32)
    chunker = Chunker(rate, 2)
    chunks, tail = run(chunker, [stereo[i : i + 480] for i in range(0, len(stereo), 480)])
    out = as_int16(b"".join(chunks) + (tail or b"")).astype(np.float64) / 32768
    assert len(out) == 32000
    steady = out[1600:-1600]
    frequency, amplitude = spectrum_peak(steady, 16000)
    assert frequency == pytest.approx(1000, abs=2)
    assert amplitude == pytest.approx(0.5, rel=0.01)


def test_resampling_filters_instead_of_decimating() -> None:
    """An 11 kHz tone cannot exist at 16 kHz; picking every third sample would fold it to 5 kHz."""
    rate = 48000
    t = np.arange(rate * 2) / rate
    signal = (0.4 * np.sin(2 * np.pi * 1000 * t) + 0.4 * np.sin(2 * np.pi * 11000 * t)).astype(
        np.float32
    )
    chunker = Chunker(rate, 1)
    chunks, tail = run(chunker, [signal[i : i + 441] for i in range(0, len(signal), 441)])
    out = as_int16(b"".join(chunks) + (tail or b"")).astype(np.float64) / 32768
    steady = out[1600:-1600]
    assert amplitude_at(steady, 16000, 1000) == pytest.approx(0.4, rel=0.01)
    folded = amplitude_at(steady, 16000, 5000)
    assert folded < 0.4 * 10 ** (-60 / 20), f"alias at 5 kHz: {20 * np.log10(folded / 0.4):.1f} dB"
    decimated = signal[::3].astype(np.float64)[1600:-1600]
    assert amplitude_at(decimated, 16000, 5000) > 0.3  # the check above would catch decimation


@pytest.mark.parametrize("chunk_ms", [19, 251, 0, -20, 1000])
def test_chunk_ms_out_of_range_is_refused(chunk_ms: int) -> None:
    with pytest.raises(ValueError, match=rf"chunk_ms={chunk_ms}\b.*20\.\.250"):
        Chunker(16000, 1, chunk_ms=chunk_ms)


@pytest.mark.parametrize("chunk_ms", [20, 250])
def test_chunk_ms_limits_are_allowed(chunk_ms: int) -> None:
    chunker = Chunker(16000, 1, chunk_ms=chunk_ms)
    assert chunker.chunk_samples == 16 * chunk_ms


def test_non_integral_chunk_length_rounds_to_a_whole_sample() -> None:
    chunker = Chunker(44100, 1, out_rate=44100, chunk_ms=25)
    assert chunker.chunk_samples == 1102
    assert {len(c) for c in chunker.push(np.zeros(44100, np.int16))} == {2204}


@pytest.mark.parametrize(
    ("block", "error"),
    [
        (np.zeros((10, 2), np.int16), ValueError),
        (np.zeros(10, np.int16).reshape(1, 10, 1), ValueError),
        (np.zeros(10, np.int8), TypeError),
        (np.zeros(10, np.complex64), TypeError),
        ([0, 1, 2], TypeError),
    ],
)
def test_bad_blocks_are_refused(block: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        Chunker(16000, 1).push(block)


def test_mono_block_for_a_stereo_chunker_is_refused() -> None:
    with pytest.raises(ValueError, match="2 channels"):
        Chunker(16000, 2).push(np.zeros(10, np.int16))


@pytest.mark.parametrize("kwargs", [{"in_rate": 0}, {"in_channels": 0}, {"out_rate": -1}])
def test_bad_rates_and_channels_are_refused(kwargs: dict[str, int]) -> None:
    args = {"in_rate": 16000, "in_channels": 1} | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Chunker(**args)


def test_input_block_is_not_modified() -> None:
    block = np.array([[2.0, -3.0], [np.nan, 0.5]] * 100, np.float32)
    before = block.copy()
    Chunker(48000, 2).push(block)
    np.testing.assert_array_equal(block, before)


# -- every channel kept (two inputs sent as one multichannel stream) ------------------


def tone(freq: float, seconds: float, rate: int) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: npt.NDArray[Any], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_kept_channels_come_out_interleaved_each_with_its_own_audio(rate: int, dtype: Any) -> None:
    left, right = tone(440, 2.0, rate), tone(1250, 2.0, rate)
    stereo = np.stack([left, right], axis=1)
    if dtype is np.int16:
        stereo = (stereo * 32767).astype(np.int16)
    chunker = Chunker(rate, 2, 16000, 100, out_channels=2)
    chunks, tail = run(chunker, split(stereo, [333, 1024, 7]))
    assert {len(c) for c in chunks} == {1600 * 4}  # 100 ms of two 16-bit channels
    data = as_int16(b"".join(chunks) + (tail or b"")).reshape(-1, 2)
    assert chunker.samples_out == len(data)
    assert abs(len(data) - 32000) <= 2
    body = slice(1600, 30400)  # away from the resampler's ramp-in and tail
    assert peak_hz(data[body, 0], 16000) == pytest.approx(440, abs=2)
    assert peak_hz(data[body, 1], 16000) == pytest.approx(1250, abs=2)
    # nothing leaks across: the left channel holds no 1250 Hz, the right no 440 Hz
    for channel, other in ((0, 1250), (1, 440)):
        spectrum = np.abs(np.fft.rfft(data[body, channel].astype(np.float64)))
        bin_hz = 16000 / len(data[body, channel])
        assert spectrum[round(other / bin_hz)] < 0.01 * spectrum.max()


def test_kept_channels_at_the_wire_rate_are_exact() -> None:
    stereo = np.arange(-3300, 3300, dtype=np.int16).reshape(-1, 2)
    chunker = Chunker(16000, 2, 16000, 100, out_channels=2)
    chunks, tail = run(chunker, [stereo])
    assert tail is not None and len(tail) == 100 * 4  # 3300 frames: two chunks and a tail
    assert b"".join(chunks) + tail == stereo.astype("<i2").tobytes()


def test_keeping_channels_needs_the_inputs_count() -> None:
    with pytest.raises(ValueError, match="out_channels"):
        Chunker(16000, 2, 16000, 100, out_channels=3)
    with pytest.raises(ValueError, match="channels"):
        Chunker(16000, 2, 16000, 100, out_channels=2).push(np.zeros(160, dtype=np.int16))
