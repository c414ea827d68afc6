"""The rules of a live stream, without tasks or sockets: time is always an argument.

`session.py` owns the asyncio tasks; what they decide lives here, as plain objects that can be
tested table by table in microseconds:

* `ReconnectPolicy`: after a connection ends, try again when, or stop and say why. An outage is
  measured from the last time audio was known to flow (a result arrived), not from the last
  handshake, so a server that accepts and drops every connection is given up on like one that
  refuses them. Ending a stream (after Stop, or the end of a file) allows only a few more tries
  for the audio no final has covered yet.
* `Pacer`: how far ahead of `max_realtime` sending a chunk would be (the service takes at most
  1.25x real time, so a replayed backlog goes at 1.2x).
* `KeepaliveSchedule`: when the next KeepAlive (or the first chunk of silence on a connection
  that never had audio) is due.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from captioner.core.backoff import Backoff
from captioner.core.closecodes import Meaning

__all__ = [
    "GiveUp",
    "KeepaliveAction",
    "KeepaliveSchedule",
    "Pacer",
    "ReconnectPolicy",
    "Retry",
]


@dataclass(frozen=True, slots=True)
class Retry:
    """Connect again at `at` (seconds on the caller's clock); `attempt` counts from 1."""

    at: float
    attempt: int

    def delay(self, now: float) -> float:
        return max(0.0, self.at - now)


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop retrying. `note` says why in our words ("" when the ending's meaning says it all)."""

    note: str = ""


class ReconnectPolicy:
    """What to do after each connection ends; one per session.

    `reconnect=False` never retries. `give_up_after` bounds an outage (None: never give up).
    A connection that stayed up `stable_after` seconds resets the backoff. While the stream is
    finishing (Stop was asked, or the audio ran out), at most `tail_attempts` connections are
    tried for the audio still unconfirmed; when Stop was asked, nobody waits long between them.
    """

    def __init__(
        self,
        *,
        reconnect: bool = True,
        give_up_after: float | None = None,
        stable_after: float = 30.0,
        tail_attempts: int = 3,
        backoff: Backoff | None = None,
    ) -> None:
        self.reconnect = reconnect
        self.give_up_after = give_up_after
        self.stable_after = stable_after
        self.tail_attempts = tail_attempts
        self.backoff = backoff or Backoff(first=0.25)
        self.tail_tries = 0
        self._progress: float | None = None
        self._outage_since: float | None = None
        self._last_end: float | None = None
        self._opened: float | None = None

    def attempt(self, *, finishing: bool) -> None:
        """A connection attempt begins; while finishing, it counts against the tail budget."""
        self._opened = None
        if finishing:
            self.tail_tries += 1

    def opened(self, now: float) -> None:
        self._opened = now

    def progress(self, now: float) -> None:
        """A result arrived: audio is flowing and being transcribed."""
        self._progress = now

    def outage(self, now: float) -> float:
        """Seconds since audio last flowed (0 when it flows)."""
        return 0.0 if self._outage_since is None else max(0.0, now - self._outage_since)

    def ended(
        self,
        meaning: Meaning,
        *,
        now: float,
        retry_after: float | None = None,
        finishing: bool = False,
        stopping: bool = False,
        random: float = 0.5,
    ) -> Retry | GiveUp:
        """The connection ended as `meaning` says: when to retry, or why not."""
        if self._opened is not None and now - self._opened >= self.stable_after:
            self.backoff.reset()
        if self._progress is not None and (
            self._last_end is None or self._progress > self._last_end
        ):
            self._outage_since = self._progress
        elif self._outage_since is None:
            self._outage_since = now
        self._last_end = now
        if not (self.reconnect and meaning.retry):
            return GiveUp()
        outage = now - self._outage_since
        if self.give_up_after is not None and outage >= self.give_up_after:
            return GiveUp(f"Gave up after {outage:.0f} s without a transcript.")
        if finishing and self.tail_tries >= self.tail_attempts:
            return GiveUp(f"Gave up after {outage:.0f} s without a transcript.")
        delay = self.backoff.next_delay(random, retry_after)
        if stopping:
            delay = min(delay, 1.0)  # someone is waiting for the last words
        return Retry(now + delay, self.backoff.attempt)


class Pacer:
    """Sending at no more than `max_realtime` times real time, after a `burst` allowance.

    None sends as fast as the socket takes it (a file in --fast mode).
    """

    def __init__(self, max_realtime: float | None, burst_seconds: float) -> None:
        self.max_realtime = max_realtime
        self.burst_seconds = burst_seconds

    def excess(self, *, now: float, opened: float, seconds_sent: float, chunk: float) -> float:
        """Seconds of audio by which sending a `chunk`-second chunk now exceeds the limit."""
        if self.max_realtime is None:
            return 0.0
        allowed = self.burst_seconds + (now - opened) * self.max_realtime
        return seconds_sent + chunk - allowed

    def wait(self, excess: float) -> float:
        """How long to sleep before that chunk may go."""
        if self.max_realtime is None or excess <= 0:
            return 0.0
        return excess / self.max_realtime


class KeepaliveAction(enum.Enum):
    NOTHING = "nothing"
    KEEPALIVE = "keepalive"
    SILENCE = "silence"  # the connection never had audio: KeepAlive alone would not hold it


class KeepaliveSchedule:
    """A KeepAlive whenever no frame went out for `interval` seconds; on a connection with no
    audio yet, one chunk of silence once `first_audio_within` has passed (or the interval)."""

    def __init__(self, interval: float = 4.0, first_audio_within: float = 5.0) -> None:
        self.interval = interval
        self.first_audio_within = first_audio_within

    def due(self, *, opened: float, last_frame: float, samples_sent: int) -> float:
        """When something may next be due (sleep until then; nothing is due earlier)."""
        due = last_frame + self.interval
        if samples_sent == 0:
            due = min(due, opened + self.first_audio_within)
        return due

    def action(
        self, *, now: float, opened: float, last_frame: float, samples_sent: int
    ) -> KeepaliveAction:
        idle = now - last_frame
        if samples_sent == 0 and (now - opened >= self.first_audio_within or idle >= self.interval):
            return KeepaliveAction.SILENCE
        if idle >= self.interval:
            return KeepaliveAction.KEEPALIVE
        return KeepaliveAction.NOTHING
