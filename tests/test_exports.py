"""Transcript exports, read back with independent parsers (srt, webvtt-py) and json."""

from __future__ import annotations

import html
import itertools
import json
import re
from dataclasses import dataclass

import srt
import webvtt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from captioner.core.captions import Utterance, format_gap
from captioner.core.exports import (
    FORMATS,
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    cues,
    render,
    to_json,
    to_srt,
    to_txt,
    to_vtt,
    utterance_from_record,
    utterance_record,
)
from captioner.core.messages import Word

LABEL = re.compile(r"^Speaker (\d+):\s")


def words_of(
    text: str, start: float, speaker: int | None = None, step: float = 0.5
) -> tuple[Word, ...]:
    return tuple(
        Word(
            word=w.lower().strip(".,?!"),
            start=start + i * step,
            end=start + i * step + step * 0.8,
            confidence=0.91,
            punctuated_word=w,
            speaker=speaker,
        )
        for i, w in enumerate(text.split())
    )


def said(text: str, start: float, speaker: int | None = None) -> Utterance:
    words = words_of(text, start, speaker)
    return Utterance(0, text, words[0].start, words[-1].end, words, speaker)


def meeting() -> list[Utterance]:
    """Two speakers, a lost stretch of audio, then the first speaker again."""
    return [
        said("Good morning, everyone. Let's look at the Q3 numbers first.", 1.0, 0),
        said("Revenue grew by 12% in Europe.", 6.0, 1),
        Utterance(0, format_gap(10.0, 75.0), 10.0, 75.0, (), None, gap=True),
        said("Thanks, Ana. Next item.", 76.0, 0),
    ]


@dataclass
class Parsed:
    start_ms: int
    end_ms: int
    lines: list[str]


def parse_srt(text: str) -> list[Parsed]:
    subs = list(srt.parse(text, ignore_errors=False))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    return [
        Parsed(
            s.start // srt.timedelta(milliseconds=1),
            s.end // srt.timedelta(milliseconds=1),
            s.content.split("\n"),
        )
        for s in subs
    ]


def parse_vtt(text: str) -> list[Parsed]:
    assert text.startswith("WEBVTT\n")
    return [
        Parsed(
            c.start_time.in_milliseconds(),
            c.end_time.in_milliseconds(),
            [html.unescape(x) for x in c.lines],
        )
        for c in webvtt.from_string(text, strict=True)
    ]


# Chinese and Japanese are written without spaces: the exports join two words at a boundary
# between such characters ("日 日" is shown "日日"), so each of them counts as a token of its own
TOKENS = re.compile(
    r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff]|[^\s\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+"
)


def tokens_of(text: str) -> list[str]:
    return TOKENS.findall(text)


def cue_tokens(parsed: list[Parsed]) -> list[str]:
    tokens: list[str] = []
    for cue in parsed:
        text = "\n".join(cue.lines)
        tokens.extend(tokens_of(LABEL.sub("", text)))
    return tokens


def transcript_tokens(utterances: list[Utterance]) -> list[str]:
    tokens: list[str] = []
    for u in utterances:
        if u.words:
            tokens.extend(t for w in u.words for t in tokens_of(w.display))
        else:
            tokens.extend(tokens_of(u.text))
    return tokens


# -- examples -----------------------------------------------------------------------


def test_srt_of_a_meeting_with_two_speakers_and_a_gap() -> None:
    text = to_srt(meeting())
    parsed = parse_srt(text)
    assert "1\n00:00:01,000 --> 00:00:05,900\n" in text
    assert parsed[0].lines[0].startswith("Speaker 1: Good morning, everyone.")
    firsts = [c.lines[0] for c in parsed]
    assert any(line.startswith("Speaker 2: Revenue grew by 12% in Europe.") for line in firsts)
    gap = next(c for c in parsed if c.lines == ["[connection lost 0:10-1:15]"])
    assert (gap.start_ms, gap.end_ms) == (10_000, 75_000)
    assert parsed[-1].lines[0].startswith("Speaker 1: Thanks, Ana.")
    assert cue_tokens(parsed) == transcript_tokens(meeting())


def test_vtt_of_a_meeting_has_the_header_and_dotted_times() -> None:
    text = to_vtt(meeting())
    assert text.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:05.900\n")
    parsed = parse_vtt(text)
    assert [c.lines for c in parsed] == [c.lines for c in parse_srt(to_srt(meeting()))]
    assert cue_tokens(parsed) == transcript_tokens(meeting())


def test_txt_keeps_case_labels_speakers_and_marks_the_gap() -> None:
    assert to_txt(meeting()).splitlines() == [
        "Speaker 1: Good morning, everyone. Let's look at the Q3 numbers first.",
        "Speaker 2: Revenue grew by 12% in Europe.",
        "[connection lost 0:10-1:15]",
        "Speaker 1: Thanks, Ana. Next item.",
    ]
    stamped = to_txt(meeting(), timestamps=True).splitlines()
    assert stamped[0] == (
        "[0:00:01] Speaker 1: Good morning, everyone. Let's look at the Q3 numbers first."
    )
    assert stamped[2] == "[0:00:10] [connection lost 0:10-1:15]"
    late = said("Still here.", 3725.0)
    assert to_txt([late], timestamps=True) == "[1:02:05] Still here.\n"


def test_no_speaker_labels_without_diarization() -> None:
    plain = [said("Hello there.", 0.0), said("General Kenobi.", 2.0)]
    for fmt in FORMATS:
        assert "Speaker" not in render(fmt, plain), fmt


def test_json_has_words_times_confidence_speakers_and_the_gap() -> None:
    doc = json.loads(to_json(meeting(), info={"engine": "Deepgram", "source": "USB mic"}))
    assert doc["format"] == "captioner-transcript" and doc["engine"] == "Deepgram"
    first, second, gap, _ = doc["utterances"]
    assert first["text"].startswith("Good morning, everyone.")
    assert first["speaker"] == 0 and first["speaker_label"] == "Speaker 1"
    assert second["speaker_label"] == "Speaker 2"
    word = first["words"][0]
    assert word == {
        "word": "good",
        "punctuated_word": "Good",
        "start": 1.0,
        "end": 1.4,
        "confidence": 0.91,
        "speaker": 0,
    }
    assert gap["gap"] is True and gap["words"] == [] and "speaker_label" not in gap
    assert utterance_from_record(doc["utterances"][1]) == meeting()[1]


def test_record_round_trip_is_exact() -> None:
    u = Utterance(
        1,
        "Größe 日本 ok",
        0.1 + 0.2,
        1.0 / 3.0,
        (Word("größe", 0.1 + 0.2, 0.7, 0.123456789, "Größe", 2, "de"),),
        2,
        unconfirmed=True,
    )
    assert utterance_from_record(json.loads(json.dumps(utterance_record(u)))) == u


def test_long_utterance_is_split_into_short_readable_cues() -> None:
    text = " ".join(f"word{i}." if i % 9 == 8 else f"word{i}" for i in range(60))
    parsed = parse_srt(to_srt([said(text, 0.0)]))
    assert len(parsed) > 5
    for cue in parsed:
        assert 1 <= len(cue.lines) <= 2
        assert all(len(line) <= MAX_LINE_CHARS for line in cue.lines)
        assert cue.end_ms - cue.start_ms <= MAX_CUE_SECONDS * 1000
    # a full cue ends at a sentence end when one is in its second half
    assert sum(c.lines[-1].endswith(".") for c in parsed) >= len(parsed) // 2


def test_two_lines_are_balanced() -> None:
    [cue] = cues([said("one two three four five six seven eight nine ten eleven", 0.0)])
    assert cue.lines == ("one two three four five six", "seven eight nine ten eleven")


def test_words_without_times_share_the_utterance_span() -> None:
    text = "a line from a server that sent no words at all but kept talking for a good while"
    u = Utterance(0, text, 10.0, 24.0, (), None)
    parsed = parse_vtt(to_vtt([u]))
    assert len(parsed) >= 2
    assert parsed[0].start_ms == 10_000 and parsed[-1].end_ms == 24_000
    assert cue_tokens(parsed) == text.split()


def test_markup_characters_are_escaped_in_vtt() -> None:
    text = to_vtt([said("a <b> & c --> d", 0.0)])
    assert "<b>" not in text and "-->" not in text.split("\n", 3)[3]
    assert parse_vtt(text)[0].lines == ["a <b> & c --> d"]


def test_empty_transcript() -> None:
    assert to_srt([]) == "" and to_txt([]) == ""
    assert list(webvtt.from_string(to_vtt([]))) == []
    assert json.loads(to_json([]))["utterances"] == []


def test_render_rejects_an_unknown_format() -> None:
    try:
        render("docx", [])
    except ValueError as exc:
        assert "srt" in str(exc)
    else:
        raise AssertionError("no error")


# -- properties ---------------------------------------------------------------------

TOKEN = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789.,?!'&<>-éß日"),
    min_size=1,
    max_size=12,
) | st.text(alphabet="xyz", min_size=43, max_size=60)


@st.composite
def transcripts(draw: st.DrawFn) -> list[Utterance]:
    """Utterances in time order, as the caption model commits them on one channel."""
    now = draw(st.floats(0, 5000))
    diarized = draw(st.booleans())
    out: list[Utterance] = []
    for _ in range(draw(st.integers(0, 8))):
        now += draw(st.floats(0, 4))
        kind = draw(st.sampled_from(["words", "words", "words", "text", "gap"]))
        if kind == "gap":
            end = now + draw(st.floats(0.5, 200))
            out.append(Utterance(0, format_gap(now, end), now, end, (), None, gap=True))
            now = end
            continue
        tokens = draw(st.lists(TOKEN, min_size=1, max_size=40))
        if kind == "text":
            end = now + draw(st.floats(0, 30))
            speaker = draw(st.integers(0, 3)) if diarized else None
            out.append(Utterance(0, " ".join(tokens), now, end, (), speaker))
            now = end
            continue
        words = []
        for token in tokens:
            now += draw(st.floats(0, 1.5))
            length = draw(st.floats(0, 9))
            speaker = draw(st.integers(0, 2)) if diarized else None
            words.append(Word(token.lower(), now, now + length, 0.5, token, speaker))
            now += length
        text = " ".join(tokens)
        out.append(
            Utterance(0, text, words[0].start, words[-1].end, tuple(words), words[0].speaker)
        )
    return out


def check_cues(parsed: list[Parsed], count: int) -> None:
    assert len(parsed) == count
    for cue in parsed:
        assert cue.start_ms < cue.end_ms
        assert cue.lines and all(line.strip() for line in cue.lines)
    for before, after in itertools.pairwise(parsed):
        assert before.end_ms <= after.start_ms


@settings(max_examples=300, deadline=None)
@given(transcripts())
@example([Utterance(0, "日 日", 0.0, 0.0, (), None)])  # shown "日日": found in CI
def test_cues_parse_in_order_without_overlap_and_keep_every_word(
    utterances: list[Utterance],
) -> None:
    ours = cues(utterances)
    for parsed in (parse_srt(to_srt(utterances)), parse_vtt(to_vtt(utterances))):
        check_cues(parsed, len(ours))
        assert cue_tokens(parsed) == transcript_tokens(utterances)
    for cue in ours:
        spoken = LABEL.sub("", "\n".join(cue.lines)).split()
        if len(spoken) > 1 and not cue.lines[0].startswith("[connection"):
            assert len(cue.lines) <= 2
            assert all(len(line) <= MAX_LINE_CHARS or " " not in line for line in cue.lines)
            assert cue.end_ms - cue.start_ms <= MAX_CUE_SECONDS * 1000 + 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-10, 100, allow_nan=False),
            st.floats(-10, 100, allow_nan=False),
            st.integers(0, 1),
            st.lists(TOKEN, min_size=1, max_size=5),
        ),
        max_size=12,
    )
)
def test_overlapping_channels_still_give_ordered_cues(
    raw: list[tuple[float, float, int, list[str]]],
) -> None:
    utterances = [
        Utterance(channel, " ".join(tokens), start, end, (), None)
        for start, end, channel, tokens in raw
    ]
    for parsed in (parse_srt(to_srt(utterances)), parse_vtt(to_vtt(utterances))):
        check_cues(parsed, len(cues(utterances)))
        assert sorted(cue_tokens(parsed)) == sorted(transcript_tokens(utterances))
