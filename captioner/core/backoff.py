"""Reconnect delays: exponential, jittered, capped, and respectful of Retry-After.

The random number is an argument so the schedule is a pure function of its inputs
and tests can pin it. Jitter only shortens a delay: the first retry and the cap are
promises (about half a second; never more than 30 s) that jitter must not break,
while still spreading out clients that failed together.
"""

from __future__ import annotations

import math

__all__ = ["MAX_RETRY_AFTER", "Backoff"]

MAX_RETRY_AFTER = 120.0
"""The longest server-requested wait we honour, so a bogus header cannot park the app."""


class Backoff:
    """Delays for successive attempts: `first`, `first*factor`, ... up to `cap`, minus jitter."""

    def __init__(
        self, first: float = 0.5, factor: float = 2.0, cap: float = 30.0, jitter: float = 0.25
    ) -> None:
        if not (math.isfinite(first) and first > 0):
            raise ValueError(f"first must be a positive number of seconds, not {first!r}")
        if not (math.isfinite(factor) and factor >= 1):
            raise ValueError(f"factor must be at least 1, not {factor!r}")
        if not (math.isfinite(cap) and cap >= first):
            raise ValueError(f"cap must be at least first ({first}), not {cap!r}")
        if not (0 <= jitter < 1):
            raise ValueError(f"jitter must be in [0, 1), not {jitter!r}")
        self.first = first
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.attempt = 0
        self._base = first

    def next_delay(self, random: float, retry_after: float | None = None) -> float:
        """The wait before the next attempt; `random` is a uniform draw from [0, 1).

        A server's Retry-After wins when it asks for longer, even beyond the cap, up
        to MAX_RETRY_AFTER.
        """
        draw = min(max(random, 0.0), 1.0) if math.isfinite(random) else 0.0
        delay = self._base * (1.0 - self.jitter * draw)
        self.attempt += 1
        self._base = min(self.cap, self._base * self.factor)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    def reset(self) -> None:
        """Start the schedule again from `first`, after a connection proved itself."""
        self.attempt = 0
        self._base = self.first
