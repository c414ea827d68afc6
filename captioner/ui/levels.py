"""Input level hints: too quiet, too loud, only silence (plain values, no Qt).

The session reports the level of the newest audio block in dBFS. One block says little:
speech has pauses, so "too quiet" is judged on the loudest block of the last few
seconds, and "too loud" on a short recent window. Digital silence (every sample zero)
from the start is what a muted or disconnected device delivers, and gets its own hint; once
the device has delivered any sound, zeros are a pause, not a fault.
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["SILENCE_DBFS", "LevelHint", "LevelHints"]

SILENCE_DBFS = -120.0
"""What the session reports for a block of zeros."""


class LevelHint(enum.Enum):
    NONE = ""
    TOO_QUIET = "Very quiet: speak closer to the microphone or raise its input volume"
    TOO_LOUD = "Too loud: the input clips; lower the input volume"
    ONLY_SILENCE = "This device delivers only silence: is it muted or switched off?"


class LevelHints:
    """Folds level readings over time into at most one hint."""

    def __init__(
        self,
        *,
        quiet_dbfs: float = -50.0,
        loud_dbfs: float = -6.0,
        quiet_seconds: float = 6.0,
        loud_seconds: float = 2.0,
        silence_seconds: float = 4.0,
    ) -> None:
        self.quiet_dbfs = quiet_dbfs
        self.loud_dbfs = loud_dbfs
        self.quiet_seconds = quiet_seconds
        self.loud_seconds = loud_seconds
        self.silence_seconds = silence_seconds
        self._readings: deque[tuple[float, float]] = deque()
        self._first_at: float | None = None
        self._last_loud_at: float | None = None
        self._heard_sound = False  # any block that was not digital silence, since the start

    def reset(self) -> None:
        self._readings.clear()
        self._first_at = self._last_loud_at = None
        self._heard_sound = False

    def update(self, dbfs: float, now: float) -> LevelHint:
        """Add one reading taken at `now` (seconds, any monotonic clock); return the hint."""
        if self._first_at is None:
            self._first_at = now
        if dbfs > SILENCE_DBFS:
            self._heard_sound = True
        if dbfs >= self.loud_dbfs:
            self._last_loud_at = now
        self._readings.append((now, dbfs))
        horizon = now - max(self.quiet_seconds, self.silence_seconds)
        while self._readings and self._readings[0][0] < horizon:
            self._readings.popleft()
        return self._judge(now)

    def _judge(self, now: float) -> LevelHint:
        assert self._first_at is not None
        if self._last_loud_at is not None and now - self._last_loud_at <= self.loud_seconds:
            return LevelHint.TOO_LOUD
        if not self._heard_sound and now - self._first_at >= self.silence_seconds:
            # only a device that has delivered nothing but zeros since the start: many
            # microphones (and noise suppressors) deliver exact zeros whenever speech pauses
            return LevelHint.ONLY_SILENCE
        if now - self._first_at >= self.quiet_seconds:
            # zeros are a gated pause, not a faint microphone
            recent = [
                d for t, d in self._readings if t >= now - self.quiet_seconds and d > SILENCE_DBFS
            ]
            if recent and max(recent) < self.quiet_dbfs:
                return LevelHint.TOO_QUIET
        return LevelHint.NONE
