"""The same sound on both sides of a call: an echo, or an input that records the other.

A call's two inputs should hear different things: the person at the microphone, and the far
side coming out of the computer. Two things make them hear the same:

* **Echo.** Without a headset the speakers play into the microphone. The far side's words
  then reach the microphone too, a few tens of milliseconds *after* they reach the system
  audio (output latency, the air, input latency), and would be captioned twice, once under
  "You". Like a speakerphone, the microphone's channel is then gated while the far side
  speaks (and for a short tail after): each phrase is shown once, under "Others". The person
  is told that a headset would help: what they say while the far side speaks is lost.
* **A copy.** When the device behind the system audio goes away (unplugged speakers), the
  sound server moves its stream to the default source: the system-audio input now records
  the microphone, *after* the microphone does. That input is muted and reported.

Both are found the same way: the band levels (12 bands, 10 ms frames, in dB) of the last
second of both channels are compared at every lag up to 0.3 s. Different speech, even two
people talking at once, correlates weakly; the same speech, through a room or a resampler,
correlates strongly at one lag. Which side is *later* says which of the two it is. Levels,
not samples: the two inputs are resampled and clock-aligned separately, which smears the
sample-level match, while the levels survive that, the room and the speakers.

Pure computation on blocks of the aligned stream; `CallSource` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Crosstalk", "CrosstalkEvent"]

BANDS: Final = 12
"""Frequency bands (150 Hz to 4 kHz, log spaced) whose levels are compared."""
ACTIVE_DB: Final = -45.0
"""A 10 ms frame louder than this (dBFS) holds sound worth comparing."""
_FLOOR_DB: Final = -60.0
SAME: Final = 0.75
"""Band-level correlation at or above which two channels carry the same sound (an echo
through a room measures about 0.8; two voices at once rarely pass 0.6, never at one lag)."""
CERTAIN: Final = 0.9
DIFFERENT: Final = 0.5
CONFIRMATIONS: Final = 3
"""Consecutive findings (a quarter second apart, at one lag give or take 20 ms) before the
state changes."""
_LAG_SLACK: Final = 2


@dataclass(frozen=True, slots=True)
class CrosstalkEvent:
    kind: Literal["echo", "echo-gone", "copy", "copy-gone"]
    lag: float
    """Seconds the copy is behind the original."""
    correlation: float


class Crosstalk:
    """Watches channels 0 (the microphone) and 1 (the system audio) of a call's stream."""

    def __init__(
        self,
        rate: int,
        *,
        window: float = 1.0,
        every: float = 0.25,
        max_lag: float = 0.3,
        tail: float = 0.25,
    ) -> None:
        self.frame = rate // 100
        self._window = round(window * 100)
        self._every = round(every * 100)
        self._max_lag = round(max_lag * 100)
        self._tail = round(tail * 100)
        self._keep = self._window + self._max_lag + self._tail
        self._envelopes = np.full((0, 2), _FLOOR_DB)
        self._bands = np.zeros((0, 2, BANDS))
        edges = np.geomspace(150, min(4000, rate / 2), BANDS + 1) * self.frame / rate
        self._band_edges = np.round(edges).astype(int)
        self._since = 0
        self._leftover = np.zeros((0, 2), dtype=np.float32)
        self.echo_lag: int | None = None
        """Frames the microphone's echo trails the system audio by, while an echo is heard."""
        self.copy = False
        """The system-audio input records the microphone (it is muted meanwhile)."""
        self._votes: list[tuple[str, int, float]] = []
        self._misses = 0
        self.last_correlation = 0.0
        self.last_lag = 0

    def forget_copy(self) -> None:
        """The system-audio input was reopened: judge it afresh."""
        self.copy = False
        self._votes.clear()

    def process(self, block: npt.NDArray[np.float32]) -> list[CrosstalkEvent]:
        """Look at one block of the stream (frames, channels) and gate it in place: the
        microphone while the far side's echo is heard, the system audio while it is a copy."""
        events: list[CrosstalkEvent] = []
        if block.ndim != 2 or block.shape[1] < 2 or not len(block):
            return events
        pair = np.concatenate([self._leftover, block[:, :2]])
        whole = len(pair) // self.frame * self.frame
        self._leftover = pair[whole:].copy()
        if whole:
            frames = pair[:whole].reshape(-1, self.frame, 2).astype(np.float64)
            power = np.mean(frames**2, axis=1)
            envelope = np.maximum(10 * np.log10(power + 1e-12), _FLOOR_DB)
            self._envelopes = np.concatenate([self._envelopes, envelope])[-self._keep :]
            spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins, channels)
            bands = np.stack(
                [
                    spectrum[:, lo : max(hi, lo + 1), :].sum(axis=1)
                    for lo, hi in zip(self._band_edges[:-1], self._band_edges[1:], strict=True)
                ],
                axis=2,
            )  # (frames, channels, bands)
            level = np.maximum(10 * np.log10(bands + 1e-12), _FLOOR_DB + 10 * np.log10(self.frame))
            self._bands = np.concatenate([self._bands, level])[-self._keep :]
            self._since += len(envelope)
            if self._since >= self._every and len(self._envelopes) >= self._window:
                self._since = 0
                events.extend(self._judge())
        self._gate(block)
        return events

    # -- finding --------------------------------------------------------------------------

    def _judge(self) -> list[CrosstalkEvent]:
        found = best_lag(
            self._envelopes[:, 0],
            self._envelopes[:, 1],
            self._window,
            self._max_lag,
            self._bands[:, 0, :],
            self._bands[:, 1, :],
        )
        if found is None:
            return []  # one side is quiet: nothing to compare
        correlation, lag = found
        self.last_correlation, self.last_lag = correlation, lag
        if correlation >= SAME:
            vote = "copy" if lag >= 0 else "echo"
            self._misses = 0
        elif correlation < DIFFERENT:
            vote = "different"
        else:
            return []
        self._votes = [*self._votes[-(CONFIRMATIONS - 1) :], (vote, lag, correlation)]
        # near-certain matches (a resampled copy measures over 0.9) need one finding less
        sure = all(c >= CERTAIN for _, _, c in self._votes[-(CONFIRMATIONS - 1) :])
        recent = self._votes[-(CONFIRMATIONS - 1) :] if sure else self._votes
        if len(recent) < (CONFIRMATIONS - 1 if sure else CONFIRMATIONS):
            return []
        if len({v for v, _, _ in recent}) != 1:
            return []
        lags = [v_lag for _, v_lag, _ in recent]
        if vote != "different" and max(lags) - min(lags) > 2 * _LAG_SLACK:
            return []  # the same sound stays at one lag; chance resemblance wanders
        seconds = abs(lag) / 100
        if vote == "echo" and self.echo_lag is None:
            self.echo_lag = -lag
            return [CrosstalkEvent("echo", seconds, correlation)]
        if vote == "echo":
            self.echo_lag = -lag  # follows the path as latencies settle
        if vote == "copy" and not self.copy:
            self.copy = True
            return [CrosstalkEvent("copy", seconds, correlation)]
        if vote == "different":
            events = []
            if self.copy:
                self.copy = False
                events.append(CrosstalkEvent("copy-gone", 0.0, correlation))
            if self.echo_lag is not None:
                self._misses += 1
                if self._misses >= 2 * CONFIRMATIONS:  # a second or two of talk told apart
                    self.echo_lag = None
                    events.append(CrosstalkEvent("echo-gone", 0.0, correlation))
            return events
        return []

    # -- gating ---------------------------------------------------------------------------

    def _gate(self, block: npt.NDArray[np.float32]) -> None:
        if self.copy:
            block[:, 1] = 0.0
        lag = self.echo_lag
        if lag is None:
            return
        # the far side's loudness history, one value per frame, up to this block's end
        theirs = self._envelopes[:, 1] > ACTIVE_DB
        count = -(-len(block) // self.frame)
        end = len(theirs)  # frame index just past the block (the leftover is ignored)
        for i in range(count):
            at = end - count + i  # this frame's index in the history
            first, last = at - lag - self._tail, at - lag + 1
            if last > 0 and theirs[max(0, first) : max(0, last)].any():
                block[i * self.frame : (i + 1) * self.frame, 0] = 0.0


def best_lag(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    window: int,
    max_lag: int,
    a_bands: npt.NDArray[np.float64],
    b_bands: npt.NDArray[np.float64],
) -> tuple[float, int] | None:
    """(correlation, lag) of the best match of `b` against the last `window` frames of `a`
    shifted by up to `max_lag` either way (lag > 0: `b` is later); None when either side
    has too little sound in the window.

    `a` and `b` are loudness envelopes (they decide whether there is sound); the match is
    made on the band levels (frames x bands), each band's mean removed: the same speech keeps
    its pattern in time *and* pitch through a room (which only tilts the bands), while two
    voices that merely pause at the same moments do not."""
    n = len(a)
    if n < window + max_lag:
        max_lag = max(0, n - window)
    ref = a[n - window - max_lag : n - max_lag] if max_lag else a[n - window :]
    if np.mean(ref > ACTIVE_DB) < 0.2:
        return None
    best: tuple[float, int] | None = None
    start = n - window - max_lag
    ref_bands = a_bands[start : start + window]
    ref_active = ref > ACTIVE_DB
    for lag in range(-max_lag, max_lag + 1):
        lo = start + lag
        if lo < 0 or lo + window > n:
            continue
        # only where both sides have sound: shared pauses say nothing about the words
        both = ref_active & (b[lo : lo + window] > ACTIVE_DB)
        if np.mean(both) < 0.3:
            continue
        mine = ref_bands[both]
        other = b_bands[lo : lo + window][both]
        mine_c = (mine - mine.mean(axis=0)).ravel()
        other_c = (other - other.mean(axis=0)).ravel()
        norm = float(np.sqrt(np.dot(mine_c, mine_c) * np.dot(other_c, other_c)))
        if norm <= 0:
            continue
        r = float(np.dot(mine_c, other_c)) / norm
        if best is None or r > best[0]:
            best = (r, lag)
    return best
