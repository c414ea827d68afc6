"""Transcript exports: plain text, SRT, WebVTT and JSON from committed utterances.

Pure: utterances in, strings out; writing the files is the caller's business. Text keeps
the case the server gave (punctuated words, never upper-cased), gap markers stay in as
lines and cues so a reader sees where audio was lost, and diarized lines carry
"Speaker N:" labels counted from 1 (Deepgram counts speakers from 0).

Subtitle cues follow common caption practice: at most two lines of about 42 characters,
at most about 7 seconds on screen, timed by the words they hold, in order and never
overlapping (players drop or stack overlapping cues).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from captioner.core.captions import Utterance
from captioner.core.messages import Word
from captioner.core.untrusted import MAX_SECONDS
from captioner.core.voices import Voices, speaker_label

ONE_INPUT: Final = Voices()
"""Labels for a transcript of one input: by speaker, when diarized."""

__all__ = [
    "FORMATS",
    "MAX_CUE_SECONDS",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "SPEAKER_COLOURS",
    "Cue",
    "clock",
    "cues",
    "render",
    "shifted",
    "speaker_colour",
    "speaker_label",
    "to_json",
    "to_srt",
    "to_txt",
    "to_vtt",
    "utterance_from_record",
    "utterance_record",
]

FORMATS: Final = ("txt", "txt-timestamps", "srt", "vtt", "json")
"""Export format names as the command line spells them."""

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
MIN_CUE_SECONDS = 1.0
"""A cue that would flash by is held this long, unless the next cue starts sooner."""

JSON_FORMAT = "captioner-transcript"
JSON_VERSION = 1

_SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")


SPEAKER_COLOURS: Final = (
    "#7cc0ff",
    "#ff8a8a",
    "#7ee08a",
    "#c9a4ff",
    "#ffb35c",
    "#5fe3f0",
    "#ff9bd8",
    "#e0b9a0",
)
"""One colour per speaker (speaker n takes colour n modulo the list), readable on the dark
backgrounds subtitles are shown on; the window's overlay uses the same ones."""


def speaker_colour(speaker: int) -> str:
    return SPEAKER_COLOURS[speaker % len(SPEAKER_COLOURS)]


def render(
    fmt: str,
    utterances: Sequence[Utterance],
    *,
    info: Mapping[str, Any] | None = None,
    speaker_colours: bool = False,
    voices: Voices | None = None,
) -> str:
    """The text of one export; `fmt` is one of FORMATS, `info` goes into JSON; `voices`
    labels the lines (by default as `info` says: by channel for a call, else by speaker);
    `speaker_colours` colours each voice's cues in SRT and WebVTT."""
    voices = Voices.from_info(info) if voices is None else voices
    if fmt == "txt":
        return to_txt(utterances, voices=voices)
    if fmt == "txt-timestamps":
        return to_txt(utterances, timestamps=True, voices=voices)
    if fmt == "srt":
        return to_srt(utterances, speaker_colours=speaker_colours, voices=voices)
    if fmt == "vtt":
        return to_vtt(utterances, speaker_colours=speaker_colours, voices=voices)
    if fmt == "json":
        return to_json(utterances, info=info, voices=voices)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


# -- plain text ---------------------------------------------------------------------


def to_txt(
    utterances: Iterable[Utterance], *, timestamps: bool = False, voices: Voices = ONE_INPUT
) -> str:
    """One line per utterance, e.g. "[0:01:02] Speaker 1: Hello there." with timestamps."""
    lines = []
    for u in utterances:
        text = " ".join(u.text.split())
        if not text:
            continue
        label = None if u.gap else voices.label(u.channel, u.speaker)
        if label is not None:
            text = f"{label}: {text}"
        if timestamps:
            text = f"[{_clock(u.start)}] {text}"
        lines.append(text)
    return "".join(line + "\n" for line in lines)


def clock(seconds: float) -> str:
    """A transcript time as people read it, e.g. "0:01:02" (what TXT timestamps show)."""
    return _clock(seconds)


def shifted(utterance: Utterance, seconds: float) -> Utterance:
    """The same utterance `seconds` later, its words too (placing lines on another timeline)."""
    if seconds == 0:
        return utterance
    words = tuple(
        dataclasses.replace(w, start=w.start + seconds, end=w.end + seconds)
        for w in utterance.words
    )
    return dataclasses.replace(
        utterance, start=utterance.start + seconds, end=utterance.end + seconds, words=words
    )


def _clock(seconds: float) -> str:
    whole = int(seconds) if math.isfinite(seconds) and seconds > 0 else 0
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


# -- subtitle cues ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle on screen: whole milliseconds, `start_ms < end_ms`, one to a few lines."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: int | None = None
    """The colour of who speaks in the cue (`Voices.colour`: cues are split where the
    speaker or the channel changes); None unlabelled."""


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: float
    end: float
    speaker: int | None
    channel: int = 0


def cues(
    utterances: Iterable[Utterance],
    *,
    max_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_seconds: float = MAX_CUE_SECONDS,
    min_seconds: float = MIN_CUE_SECONDS,
    voices: Voices = ONE_INPUT,
) -> list[Cue]:
    """Subtitle cues for a transcript, split by word times, in order and non-overlapping.

    A cue ends early at a sentence end when that keeps at least half of it together, so
    a new sentence tends to open a new cue. A word longer than a line gets a line of its
    own rather than being cut. Gap markers are one cue spanning the lost audio.
    """
    raw: list[tuple[float, float, list[str], int | None]] = []
    previous: tuple[int, int | None] | None = None
    for u in utterances:
        if u.gap:
            marker = u.text.split()
            if marker:
                lines = _layout(marker, max_chars, max_lines) or _wrap(marker, max_chars)
                raw.append((u.start, u.end, lines, None))
            previous = None
            continue
        for run in _speaker_runs(_tokens(u)):
            who = (run[0].channel, run[0].speaker)
            named = voices.label(*who)
            label = named + ":" if named is not None else None
            if who == previous:
                label = None
            previous = who
            colour = voices.colour(*who)
            for group in _group(run, label, max_chars, max_lines, max_seconds):
                prefix = [label] if label else []
                label = None
                words = prefix + [t.text for t in group]
                lines = _layout(words, max_chars, max_lines) or _wrap(words, max_chars)
                raw.append((group[0].start, group[-1].end, lines, colour))
    return _settle(raw, round(min_seconds * 1000))


def _tokens(u: Utterance) -> list[_Token]:
    """Timed words; an utterance without words has its text spread over its span."""
    tokens = [
        _Token(
            " ".join(w.display.split()),
            w.start,
            w.end,
            w.speaker if w.speaker is not None else u.speaker,
            u.channel,
        )
        for w in u.words
        if w.display.strip()
    ]
    if tokens or not u.text.strip():
        return tokens
    parts = u.text.split()
    total = sum(len(p) for p in parts)
    span = max(0.0, u.end - u.start)
    tokens, done = [], 0
    for part in parts:
        start = u.start + span * done / total
        done += len(part)
        tokens.append(_Token(part, start, u.start + span * done / total, u.speaker, u.channel))
    return tokens


def _speaker_runs(tokens: list[_Token]) -> list[list[_Token]]:
    runs: list[list[_Token]] = []
    for token in tokens:
        last = runs[-1][-1] if runs else None
        if last is not None and (last.speaker, last.channel) == (token.speaker, token.channel):
            runs[-1].append(token)
        else:
            runs.append([token])
    return runs


def _group(
    run: list[_Token], label: str | None, max_chars: int, max_lines: int, max_seconds: float
) -> list[list[_Token]]:
    """Split one speaker's words into cue-sized groups; only the first carries `label`."""
    groups: list[list[_Token]] = []
    current: list[_Token] = []

    def fits(tokens: list[_Token]) -> bool:
        if tokens[-1].end - tokens[0].start > max_seconds:
            return False
        prefix = [label] if label and not groups else []
        return _layout(prefix + [t.text for t in tokens], max_chars, max_lines) is not None

    for token in run:
        if current and not fits([*current, token]):
            cut = _sentence_cut(current)
            groups.append(current[:cut])
            current = current[cut:]
            if current and not fits([*current, token]):
                groups.append(current)
                current = []
        current.append(token)
    if current:
        groups.append(current)
    return groups


def _sentence_cut(tokens: list[_Token]) -> int:
    """Where to end a full cue: after its last sentence end if that keeps half, else at the end."""
    for i in range(len(tokens) - 2, -1, -1):
        if 2 * (i + 1) < len(tokens):
            break
        if tokens[i].text.endswith(_SENTENCE_ENDS):
            return i + 1
    return len(tokens)


_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3000, 0x30FF),  # CJK punctuation, Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # full-width forms and punctuation
    (0x20000, 0x2FFFF),  # CJK extensions B to F
)


def unspaced(char: str) -> bool:
    """A character of a script written without spaces between words (Chinese, Japanese,
    Thai…): Deepgram and Whisper send its words as separate tokens that must not be spaced."""
    code = ord(char)
    return any(low <= code <= high for low, high in _UNSPACED)


def _separator(left: str, right: str) -> str:
    return "" if left and right and unspaced(left[-1]) and unspaced(right[0]) else " "


def _join(words: Sequence[str]) -> str:
    text = ""
    for word in words:
        text = word if not text else text + _separator(text, word) + word
    return text


def _wrap(words: Sequence[str], max_chars: int) -> list[str]:
    """Greedy line filling; a word longer than a line stands alone on it."""
    lines: list[str] = []
    for word in words:
        gap = _separator(lines[-1], word) if lines else ""
        if lines and len(lines[-1]) + len(gap) + len(word) <= max_chars:
            lines[-1] += gap + word
        else:
            lines.append(word)
    return lines


def _layout(words: Sequence[str], max_chars: int, max_lines: int) -> list[str] | None:
    """The lines of a cue, or None if the words need more than `max_lines`.

    Two lines are balanced (the split with the shorter longest line), which reads
    better than a full line over a stub.
    """
    lines = _wrap(words, max_chars)
    if len(lines) > max_lines:
        return None
    if len(lines) != 2:
        return lines
    best: tuple[int, list[str]] | None = None
    for cut in range(1, len(words)):
        top, bottom = _join(words[:cut]), _join(words[cut:])
        if len(top) > max_chars or len(bottom) > max_chars:
            continue
        longest = max(len(top), len(bottom))
        if best is None or longest < best[0]:
            best = (longest, [top, bottom])
    return best[1] if best is not None else lines


def _ms(seconds: float) -> int:
    """Whole milliseconds; anything not a sane time (NaN, negative, beyond a year) is clamped."""
    if not math.isfinite(seconds) or seconds <= 0:
        return 0
    return round(min(seconds, MAX_SECONDS) * 1000)


def _settle(raw: list[tuple[float, float, list[str], int | None]], min_ms: int) -> list[Cue]:
    """Whole milliseconds, sorted, each cue ending before the next begins.

    Times from several channels, or float noise across a reconnect, can overlap; a
    later cue then starts when the earlier one ends, and every cue lasts at least 1 ms.
    """
    ordered = sorted(((_ms(s), _ms(e), lines, who) for s, e, lines, who in raw), key=lambda c: c[0])
    settled: list[Cue] = []
    for i, (start, end, lines, who) in enumerate(ordered):
        if settled:
            start = max(start, settled[-1].end_ms)
        end = max(end, start + min_ms)
        if i + 1 < len(ordered) and end > ordered[i + 1][0]:
            end = ordered[i + 1][0]
        settled.append(Cue(start, max(end, start + 1), tuple(lines), who))
    return settled


def _timestamp(ms: int, decimal: str) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def to_srt(
    utterances: Iterable[Utterance], *, speaker_colours: bool = False, voices: Voices = ONE_INPUT
) -> str:
    """SubRip: numbered cues, `00:00:01,500 --> 00:00:03,000`, a blank line after each.

    `speaker_colours` wraps each speaker's lines in `<font color>`, which most players show.
    """

    def text(c: Cue) -> str:
        if not speaker_colours or c.speaker is None:
            return "\n".join(c.lines)
        colour = speaker_colour(c.speaker)
        return "\n".join(f'<font color="{colour}">{line}</font>' for line in c.lines)

    blocks = [
        f"{n}\n{_timestamp(c.start_ms, ',')} --> {_timestamp(c.end_ms, ',')}\n" + text(c) + "\n"
        for n, c in enumerate(cues(utterances, voices=voices), 1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    """WebVTT cue text is markup: &, < and > must be written as entities (this also
    keeps "-->" out of cue text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(
    utterances: Iterable[Utterance], *, speaker_colours: bool = False, voices: Voices = ONE_INPUT
) -> str:
    """WebVTT: the `WEBVTT` header, then cues timed `00:00:01.500 --> 00:00:03.000`.

    `speaker_colours` adds a STYLE block with one class per speaker (`.speaker1`, ...) and
    wraps each speaker's lines in `<c.speakerN>`; players without styles show plain text.
    """
    all_cues = cues(utterances, voices=voices)

    def text(c: Cue) -> str:
        lines = [_vtt_escape(line) for line in c.lines]
        if speaker_colours and c.speaker is not None:
            lines = [f"<c.speaker{c.speaker + 1}>{line}</c>" for line in lines]
        return "\n".join(lines)

    head = ["WEBVTT\n"]
    speakers = sorted({c.speaker for c in all_cues if c.speaker is not None})
    if speaker_colours and speakers:
        rules = "".join(
            f"::cue(.speaker{s + 1}) {{ color: {speaker_colour(s)}; }}\n" for s in speakers
        )
        head.append("STYLE\n" + rules)
    blocks = [
        f"{_timestamp(c.start_ms, '.')} --> {_timestamp(c.end_ms, '.')}\n" + text(c) + "\n"
        for c in all_cues
    ]
    return "\n".join([*head, *blocks])


# -- JSON ---------------------------------------------------------------------------


def utterance_record(u: Utterance, *, digits: int | None = None) -> dict[str, Any]:
    """The JSON form of an utterance (the journal's and the JSON export's).

    `digits` rounds times (confidence keeps one more digit) for people reading the
    file; None keeps floats exact, so the journal gives back exactly what it was given.
    """

    def t(value: float) -> float:
        return float(value) if digits is None else round(float(value), digits)

    def c(value: float) -> float:
        return float(value) if digits is None else round(float(value), digits + 1)

    def word(w: Word) -> dict[str, Any]:
        record: dict[str, Any] = {
            "word": w.word,
            "punctuated_word": w.punctuated_word,
            "start": t(w.start),
            "end": t(w.end),
            "confidence": c(w.confidence),
            "speaker": w.speaker,
        }
        if w.language is not None:
            record["language"] = w.language
        return record

    return {
        "text": u.text,
        "start": t(u.start),
        "end": t(u.end),
        "channel": u.channel,
        "speaker": u.speaker,
        "unconfirmed": u.unconfirmed,
        "gap": u.gap,
        "words": [word(w) for w in u.words],
    }


def utterance_from_record(record: Mapping[str, Any]) -> Utterance:
    """Read `utterance_record` output back; ValueError for anything malformed."""
    words = record.get("words", [])
    if not isinstance(words, list):
        raise ValueError("words must be a list")
    return Utterance(
        channel=_int(record.get("channel", 0), "channel"),
        text=_str(record.get("text"), "text"),
        start=_seconds(record.get("start"), "start"),
        end=_seconds(record.get("end"), "end"),
        words=tuple(_word(w) for w in words),
        speaker=_optional_int(record.get("speaker"), "speaker"),
        unconfirmed=_bool(record.get("unconfirmed", False), "unconfirmed"),
        gap=_bool(record.get("gap", False), "gap"),
    )


def _word(record: object) -> Word:
    if not isinstance(record, Mapping):
        raise ValueError("a word must be an object")
    punctuated = record.get("punctuated_word")
    language = record.get("language")
    return Word(
        word=_str(record.get("word"), "word"),
        start=_seconds(record.get("start"), "word start"),
        end=_seconds(record.get("end"), "word end"),
        confidence=_seconds(record.get("confidence", 0.0), "confidence"),
        punctuated_word=None if punctuated is None else _str(punctuated, "punctuated_word"),
        speaker=_optional_int(record.get("speaker"), "word speaker"),
        language=None if language is None else _str(language, "language"),
    )


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return float(value)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def _optional_int(value: object, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def to_json(
    utterances: Iterable[Utterance],
    *,
    info: Mapping[str, Any] | None = None,
    voices: Voices = ONE_INPUT,
) -> str:
    """A JSON document: `info` (session start, engine, source), then every utterance with
    its words, times (seconds, ms precision), confidence and speaker.

    `speaker` stays Deepgram's 0-based number and `channel` the input's index (0 for the
    microphone of a call); `speaker_label` is what the other formats print ("Speaker 1",
    or for a call "You", "Others", "Others 2").
    """
    records = []
    for u in utterances:
        record = utterance_record(u, digits=3)
        label = None if u.gap else voices.label(u.channel, u.speaker)
        if label is not None:
            record["speaker_label"] = label
        records.append(record)
    document: dict[str, Any] = {"format": JSON_FORMAT, "version": JSON_VERSION}
    document.update(info or {})
    if voices.by_channel:
        document["channel_names"] = list(voices.channel_names)
    document["utterances"] = records
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
