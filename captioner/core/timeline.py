"""Mapping a connection's audio clock onto the capture clock.

Deepgram's times count the audio sent on one connection, from 0. The capture clock
counts every sample the source produced since Start. They differ when audio was not
sent (mute) and across connections, so every chunk sent records where it came from,
and server times are translated back through those records.
"""

from __future__ import annotations

import bisect
import dataclasses

from captioner.core.messages import Results, UtteranceEnd, Word


class ConnectionClock:
    """Where each stretch of a connection's audio sits on the capture clock."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._conn_starts: list[int] = []
        self._capture_starts: list[int] = []
        self.samples_sent = 0
        self._next_capture: int | None = None

    def sent(self, capture_sample: int, n_samples: int) -> None:
        """Record that `n_samples` starting at capture sample `capture_sample` went out."""
        if n_samples <= 0:
            return
        if capture_sample != self._next_capture:
            self._conn_starts.append(self.samples_sent)
            self._capture_starts.append(capture_sample)
        self.samples_sent += n_samples
        self._next_capture = capture_sample + n_samples

    @property
    def seconds_sent(self) -> float:
        return self.samples_sent / self.sample_rate

    def to_capture(self, conn_seconds: float) -> float:
        """Capture time, in seconds, of a time on this connection's clock."""
        if not self._conn_starts:
            return conn_seconds
        position = conn_seconds * self.sample_rate
        i = max(0, bisect.bisect_right(self._conn_starts, position) - 1)
        return (self._capture_starts[i] + position - self._conn_starts[i]) / self.sample_rate

    def first_capture_seconds(self) -> float | None:
        """Capture time of the first sample sent on this connection."""
        if not self._capture_starts:
            return None
        return self._capture_starts[0] / self.sample_rate


def results_on_capture_clock(results: Results, clock: ConnectionClock) -> Results:
    """The same Results with its window and words moved onto the capture clock.

    The whole message moves by one offset (the one at its start), so words keep
    their spacing even when a window straddles a pause in sending.
    """
    delta = clock.to_capture(results.start) - results.start
    if delta == 0:
        return results
    words = tuple(_shift_word(w, delta) for w in results.words)
    return dataclasses.replace(results, start=results.start + delta, words=words)


def utterance_end_on_capture_clock(message: UtteranceEnd, clock: ConnectionClock) -> UtteranceEnd:
    if message.last_word_end < 0:
        return message
    return dataclasses.replace(message, last_word_end=clock.to_capture(message.last_word_end))


def _shift_word(word: Word, delta: float) -> Word:
    return dataclasses.replace(word, start=word.start + delta, end=word.end + delta)
