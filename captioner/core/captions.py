"""The caption model: committed lines, the open utterance and the interim.

The messages it reads are described in docs/protocol.md ("Receiving").

Deepgram restates the whole current window in every interim and settles windows one
final at a time; an utterance may span several finals and ends on `speech_final`,
on the answer to our `Finalize`, or, when endpointing never fires, on
`UtteranceEnd`. Each update touches only the channel it names and only that
channel's open utterance, so the cost does not grow with the transcript.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from captioner.core.messages import Results, UtteranceEnd, Word

__all__ = [
    "TIME_EPSILON",
    "CaptionEvent",
    "CaptionModel",
    "ChannelCaptions",
    "Committed",
    "LiveChanged",
    "Utterance",
    "format_gap",
    "majority_speaker",
    "separator_for",
]

TIME_EPSILON = 0.02
"""Seconds of slack when comparing server times, which are float32 sums (9.6 + 4.7599993)."""

_SPACELESS_LANGUAGES = frozenset({"ja", "zh"})


@dataclass(frozen=True, slots=True)
class Utterance:
    """One finished caption line; times are absolute capture seconds.

    `unconfirmed` marks interim text that no final ever confirmed (the stream ended
    first); `gap` marks the visible marker for audio that was never transcribed.
    """

    channel: int
    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    speaker: int | None
    unconfirmed: bool = False
    gap: bool = False


@dataclass(frozen=True, slots=True)
class Committed:
    """A line became permanent history."""

    utterance: Utterance


@dataclass(frozen=True, slots=True)
class LiveChanged:
    """The still-open text of one channel changed: settled finals, then the interim."""

    channel: int
    final_text: str
    interim_text: str


CaptionEvent = Committed | LiveChanged


def separator_for(language: str | None) -> str:
    """How finals are joined: nothing for Japanese and Chinese, a space otherwise."""
    if not language:
        return " "
    primary = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return "" if primary in _SPACELESS_LANGUAGES else " "


def majority_speaker(words: Iterable[Word]) -> int | None:
    """The most common speaker label, ties going to the one heard first; None if unlabelled."""
    counts = Counter(w.speaker for w in words if w.speaker is not None)
    if not counts:
        return None
    return counts.most_common(1)[0][0]


def format_gap(start: float, end: float) -> str:
    """The gap marker text, e.g. "[connection lost 0:12-1:27]".

    Both ends use h:mm:ss once either reaches an hour, so the pair reads as one clock.
    """
    first, last = _whole_seconds(start), _whole_seconds(end)
    with_hours = max(first, last) >= 3600
    return f"[connection lost {_clock(first, with_hours)}-{_clock(last, with_hours)}]"


def _whole_seconds(value: float) -> int:
    if not math.isfinite(value) or value <= 0:
        return 0
    return int(value)


def _clock(seconds: int, with_hours: bool) -> str:
    minutes, secs = divmod(seconds, 60)
    if not with_hours:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _shifted(words: tuple[Word, ...], offset: float) -> tuple[Word, ...]:
    if offset == 0:
        return words
    return tuple(dataclasses.replace(w, start=w.start + offset, end=w.end + offset) for w in words)


class ChannelCaptions:
    """The open utterance and the interim of one audio channel (absolute times)."""

    def __init__(self, index: int, separator: str = " ") -> None:
        self.index = index
        self.separator = separator
        self.final_end: float | None = None
        """End of the newest final's window: everything before it is settled."""
        self.finalize_answered = 0
        self._final_text = ""
        self._final_words: list[Word] = []
        self._first_segment_start = 0.0
        self._interim_text = ""
        self._interim_words: tuple[Word, ...] = ()
        self._interim_start = 0.0
        self._interim_end = 0.0
        self._shown = ("", "")

    @property
    def final_text(self) -> str:
        """Settled text of the open utterance."""
        return self._final_text

    @property
    def interim_text(self) -> str:
        return self._interim_text

    @property
    def has_pending(self) -> bool:
        """Whether the open utterance holds any settled text."""
        return bool(self._final_text)

    @property
    def pending_start(self) -> float | None:
        """Start of the first final window holding text in the open utterance."""
        return self._first_segment_start if self._final_text else None

    def set_interim(self, text: str, words: tuple[Word, ...], start: float, end: float) -> None:
        self._interim_text = text
        self._interim_words = words
        self._interim_start = start
        self._interim_end = end

    def clear_interim(self) -> None:
        self.set_interim("", (), 0.0, 0.0)

    def _keep_interim_after(self, end: float) -> None:
        later = tuple(w for w in self._interim_words if w.start >= end - TIME_EPSILON)
        if not later:
            self.clear_interim()
        elif len(later) < len(self._interim_words):
            text = self.separator.join(w.display for w in later)
            self.set_interim(text, later, max(self._interim_start, end), self._interim_end)

    def add_final(self, text: str, words: tuple[Word, ...], start: float, end: float) -> None:
        """Settle one window; its text joins the open utterance.

        The final supersedes the interim's words inside its window. Interim words after it
        belong to the next window, whose next interim restates them: they stay shown until
        then, so a final in the middle of speech never makes the words after it vanish for a
        moment (or, from a service that sends interims once a second, for a second)."""
        self._keep_interim_after(end)
        self.final_end = end
        if not text:
            return
        if self._final_text:
            self._final_text = self._final_text + self.separator + text
        else:
            self._final_text = text
            self._first_segment_start = start
        self._final_words.extend(words)

    def close(self) -> Utterance | None:
        """End the open utterance; the interim stays, it belongs to the next one."""
        if not self._final_text:
            return None
        words = tuple(self._final_words)
        start = words[0].start if words else self._first_segment_start
        end = words[-1].end if words else (self.final_end or start)
        utterance = Utterance(
            channel=self.index,
            text=self._final_text,
            start=start,
            end=max(start, end),
            words=words,
            speaker=majority_speaker(words),
        )
        self._final_text = ""
        self._final_words = []
        return utterance

    def take_interim(self) -> Utterance | None:
        """The interim as an unconfirmed line, for the end of a stream."""
        if not self._interim_text:
            self.clear_interim()
            return None
        words = self._interim_words
        start = words[0].start if words else self._interim_start
        end = words[-1].end if words else self._interim_end
        utterance = Utterance(
            channel=self.index,
            text=self._interim_text,
            start=start,
            end=max(start, end),
            words=words,
            speaker=majority_speaker(words),
            unconfirmed=True,
        )
        self.clear_interim()
        return utterance

    def live_changed(self) -> list[CaptionEvent]:
        """A LiveChanged event if the visible open text differs from what was last reported."""
        now = (self._final_text, self._interim_text)
        if now == self._shown:
            return []
        self._shown = now
        return [LiveChanged(self.index, *now)]


class CaptionModel:
    """Folds server messages into caption lines, one independent state per channel.

    Wire times are relative to the connection; `offset` (the capture time of the
    connection's first sample) turns them into absolute times. `language` decides how
    finals are joined.
    """

    def __init__(self, offset: float = 0.0, language: str | None = None) -> None:
        self.offset = _finite(offset)
        self.language = language
        self._separator = separator_for(language)
        self._channels: dict[int, ChannelCaptions] = {}
        self._finalize_requests = 0
        self._finalize_forgotten = 0

    @property
    def channels(self) -> Mapping[int, ChannelCaptions]:
        return MappingProxyType(self._channels)

    def live(self, channel: int) -> tuple[str, str]:
        """(settled text of the open utterance, interim text) for one channel."""
        state = self._channels.get(channel)
        if state is None:
            return "", ""
        return state.final_text, state.interim_text

    def set_offset(self, offset: float) -> list[CaptionEvent]:
        """Start a new connection: its times count from `offset`.

        The old connection's interims are dropped (the replayed audio will be
        recognised again) and an unanswered Finalize is forgotten: only the
        connection it was sent on could answer it. Settled finals stay open, so an
        utterance cut by a reconnect still ends up as one line.
        """
        self.offset = _finite(offset)
        self._finalize_forgotten = self._finalize_requests
        events: list[CaptionEvent] = []
        for state in self._sorted_channels():
            state.clear_interim()
            state.finalize_answered = self._finalize_requests
            events.extend(state.live_changed())
        return events

    def note_finalize_sent(self) -> None:
        """We sent Finalize: its `from_finalize` answer closes the utterance on each channel."""
        self._finalize_requests += 1

    def on_results(self, results: Results) -> list[CaptionEvent]:
        state = self._channel(results.channel)
        text = " ".join(results.transcript.split())
        words = _shifted(results.words, self.offset) if text else ()
        start = self.offset + results.start
        end = self.offset + results.end
        if not results.is_final:
            # speech_final on an interim (one docs example shows it) is not acted on:
            # only settled text may be committed, and the final for this window follows.
            state.set_interim(text, words, start, end)
            return state.live_changed()
        state.add_final(text, words, start, end)
        events: list[CaptionEvent] = []
        finalize_outstanding = state.finalize_answered < self._finalize_requests
        if results.from_finalize:
            state.finalize_answered = self._finalize_requests
        if results.speech_final or (results.from_finalize and finalize_outstanding):
            self._commit(state.close(), events)
        events.extend(state.live_changed())
        return events

    def on_utterance_end(self, message: UtteranceEnd) -> list[CaptionEvent]:
        """Close the open utterance unless the message is late or says there is nothing.

        A late UtteranceEnd names a word before the open utterance began: it concerns
        an utterance `speech_final` already closed, and acting on it would split a line.
        """
        if message.last_word_end < 0:
            return []
        state = self._channels.get(message.channel)
        if state is None:
            return []
        pending_start = state.pending_start
        if pending_start is None:
            return []
        if self.offset + message.last_word_end < pending_start - TIME_EPSILON:
            return []
        events: list[CaptionEvent] = []
        self._commit(state.close(), events)
        events.extend(state.live_changed())
        return events

    def finish(self) -> list[CaptionEvent]:
        """End of stream: commit every open utterance, then any interim as unconfirmed."""
        events: list[CaptionEvent] = []
        for state in self._sorted_channels():
            self._commit(state.close(), events)
            self._commit(state.take_interim(), events)
            events.extend(state.live_changed())
        return events

    def add_gap(self, start: float, end: float, channel: int = 0) -> list[CaptionEvent]:
        """Mark audio that will never be transcribed (an outage longer than the buffer).

        Open utterances are committed first: the words after the gap cannot continue
        a sentence whose middle was lost.
        """
        events: list[CaptionEvent] = []
        for state in self._sorted_channels():
            self._commit(state.close(), events)
            events.extend(state.live_changed())
        gap = Utterance(
            channel=channel,
            text=format_gap(start, end),
            start=start,
            end=max(start, end),
            words=(),
            speaker=None,
            gap=True,
        )
        self._commit(gap, events)
        return events

    def _channel(self, index: int) -> ChannelCaptions:
        state = self._channels.get(index)
        if state is None:
            state = ChannelCaptions(index, self._separator)
            state.finalize_answered = self._finalize_forgotten
            self._channels[index] = state
        return state

    def _sorted_channels(self) -> list[ChannelCaptions]:
        return [self._channels[i] for i in sorted(self._channels)]

    def _commit(self, utterance: Utterance | None, events: list[CaptionEvent]) -> None:
        if utterance is not None:
            events.append(Committed(utterance))


def _finite(offset: float) -> float:
    if not math.isfinite(offset):
        raise ValueError(f"offset must be a finite number of seconds, not {offset!r}")
    return float(offset)
