"""Keep a capture device on the session's clock, however fast or slow its own clock runs.

Two devices (a microphone and the system audio's monitor) each run on their own crystal.
Taken at their word, one runs ahead of the other: 0.1 % is 3.6 s an hour. To send them as the
two channels of one stream, each is resampled onto one reference clock (the session's
monotonic clock), with soxr's variable-rate resampler.

`ClockAligner` watches when each block arrives on the reference clock. A least-squares fit
over the last `window` seconds gives the device's true rate, free of callback jitter. The
resampling ratio follows that rate, plus a small correction that pulls the output's position
back onto the reference clock over a few seconds. So the aligned stream has exactly `rate`
frames per reference second, and its position stays within milliseconds of the clock.

Pure computation: time is an argument (the audio callback's timestamp, or a test's clock).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import soxr

__all__ = ["ClockAligner"]

MIN_FIT_SPAN = 5.0
"""Seconds of stamps before the fitted line stands in for each block's stamp."""
MAX_JITTER = 0.25
"""A stamp further than this from the fitted line is believed over the line."""

MAX_DRIFT = 0.005
"""A device more than 0.5 % off its nominal rate is believed no further: a crystal is not that
far out, a stalled or bursting callback is."""


class ClockAligner:
    def __init__(
        self,
        rate: int,
        start: float,
        *,
        window: float = 30.0,
        settle: float = 5.0,
        quality: str = "HQ",
        out_rate: int | None = None,
    ) -> None:
        """`start`: the reference time of the device's first frame. `settle`: seconds over which
        a position error is corrected (shorter pulls harder and wobbles the pitch more).
        `out_rate`: the aligned stream's rate, if not the device's (one resampling does both)."""
        self.rate = rate
        self.out_rate = rate if out_rate is None else out_rate
        self._start = start
        self._window = window
        self._settle = settle
        self._frames_in = 0
        self.frames_out = 0
        self._marks: deque[tuple[float, int]] = deque()
        self._resampler = soxr.ResampleStream(
            rate, self.out_rate, 1, dtype="float32", quality=quality, vr=True
        )
        self.ratio = 1.0
        """Device frames per reference frame in use now (1.001: the device runs 0.1 % fast)."""
        self._drift = 1.0
        self._fitted_at = float("-inf")
        self._line: tuple[float, float, float] | None = None
        """(mean stamp, mean frame count, frames per second) of the last fit."""
        self._dither = (np.random.default_rng(0).standard_normal(rate) * 1e-9).astype(np.float32)

    @property
    def drift(self) -> float:
        """The device's measured rate over its nominal rate (1.001: 0.1 % fast)."""
        return self._drift

    @property
    def position_error(self) -> float:
        """Seconds the aligned output is ahead of the reference clock (negative: behind),
        as of the last block."""
        return self._error

    _error = 0.0

    def push(self, block: np.ndarray, captured_at: float) -> np.ndarray:
        """Resample one block; `captured_at` is the reference time of its last frame.

        Returns the aligned frames (float32, at `out_rate`), as many as the reference clock
        asks for.
        """
        samples = np.asarray(block, dtype=np.float32)
        if not samples.any():
            # a gated or muted device sends exact zeros; the filter's decaying tail would
            # then become denormal numbers, which slow the resampler tenfold. A dither far
            # below one 16-bit step keeps every value normal.
            samples = (
                self._dither[: len(samples)]
                if len(samples) <= len(self._dither)
                else (np.full(len(samples), 1e-9, dtype=np.float32))
            )
        self._frames_in += len(samples)
        self._marks.append((captured_at, self._frames_in))
        while len(self._marks) > 2 and captured_at - self._marks[0][0] > self._window:
            self._marks.popleft()
        if captured_at - self._fitted_at >= 1.0:  # the fit moves slowly: once a second
            self._drift = self._device_ratio()
            self._fitted_at = captured_at
        drift = self._drift
        # where the output will stand once this block is through, against where it should:
        # on the fitted line rather than at this block's own stamp, whose jitter (a sound
        # server hands blocks over in bursts, tens of milliseconds late) would be chased
        when = self._fitted_time(captured_at)
        scale = self.out_rate / self.rate
        wanted = (when - self._start) * self.out_rate
        expected = self.frames_out + self._resampler.delay() + len(samples) * scale / self.ratio
        self._error = (expected - wanted) / self.out_rate
        correction = self._error / self._settle  # ahead: take more input per output frame
        ratio = drift * (1 + max(-MAX_DRIFT, min(MAX_DRIFT, correction)))
        self.ratio = max(1 - 2 * MAX_DRIFT, min(1 + 2 * MAX_DRIFT, ratio))
        self._resampler.set_io_ratio(self.ratio * self.rate, self.out_rate, len(samples))
        out = np.asarray(self._resampler.resample_chunk(samples), dtype=np.float32)
        self.frames_out += len(out)
        return out

    def _device_ratio(self) -> float:
        """Device frames per reference second over the window, divided by the nominal rate."""
        if len(self._marks) < 3:
            return 1.0
        times = np.fromiter((t for t, _ in self._marks), dtype=np.float64)
        frames = np.fromiter((f for _, f in self._marks), dtype=np.float64)
        span = times[-1] - times[0]
        if span < 1.0:
            return 1.0
        centred = times - times.mean()
        slope = float(np.dot(centred, frames - frames.mean()) / np.dot(centred, centred))
        ratio = slope / self.rate
        if span >= MIN_FIT_SPAN and slope > 0:
            self._line = (float(times.mean()), float(frames.mean()), slope)
        return max(1 - MAX_DRIFT, min(1 + MAX_DRIFT, ratio))

    def _fitted_time(self, captured_at: float) -> float:
        """When the frames so far were due by the fitted line (the stamp itself until the
        fit spans `MIN_FIT_SPAN`, or when the stamp strays from the line by far more than
        jitter: the device stalled or the stream restarted)."""
        if self._line is None:
            return captured_at
        t_mean, f_mean, slope = self._line
        when = t_mean + (self._frames_in - f_mean) / slope
        return when if abs(when - captured_at) < MAX_JITTER else captured_at
