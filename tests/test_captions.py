"""The caption model (docs/protocol.md, "Receiving"): interims, finals, UtteranceEnd."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.core.captions import (
    TIME_EPSILON,
    CaptionEvent,
    Committed,
    LiveChanged,
    Utterance,
    format_gap,
    separator_for,
)
from captioner.core.captions import (
    CaptionModel as _Model,
)
from captioner.core.messages import Results, UtteranceEnd, Word, parse_message
from tests.fixtures import load_fixture

RUPERT = "My name was Rupert Pennace. I came of an old family and had plenty of money for my needs."


def fixture_results(name: str) -> Results:
    message = parse_message(load_fixture(name))
    assert isinstance(message, Results)
    return message


def fixture_utterance_end(name: str) -> UtteranceEnd:
    message = parse_message(load_fixture(name))
    assert isinstance(message, UtteranceEnd)
    return message


def make_results(
    text: str,
    start: float,
    duration: float,
    *,
    final: bool = True,
    speech_final: bool = False,
    from_finalize: bool = False,
    channel: int = 0,
    channels: int = 1,
    speakers: list[int] | None = None,
) -> Results:
    """A Results whose words are spread evenly over the window, like the server's."""
    tokens = text.split()
    step = duration / max(len(tokens), 1)
    words = tuple(
        Word(
            word=token.lower().strip(".,"),
            start=start + i * step,
            end=start + (i + 1) * step,
            confidence=0.9,
            punctuated_word=token,
            speaker=None if speakers is None else speakers[i],
        )
        for i, token in enumerate(tokens)
    )
    return Results(
        channel=channel,
        channels=channels,
        start=start,
        duration=duration,
        is_final=final,
        speech_final=speech_final,
        from_finalize=from_finalize,
        transcript=text,
        confidence=0.9 if text else 0.0,
        words=words,
        request_id="req",
        model_name="general-nova-3",
    )


def interim(text: str, start: float, duration: float, channel: int = 0) -> Results:
    return make_results(text, start, duration, final=False, channel=channel, channels=2)


class CaptionModel:
    """The model under test, and every line it committed, in commit order (the model keeps
    none itself: its events are the record)."""

    def __init__(self, offset: float = 0.0, language: str | None = None) -> None:
        self.model = _Model(offset, language)
        self.committed: list[Utterance] = []

    def _keep(self, events: list[CaptionEvent]) -> list[CaptionEvent]:
        self.committed += [e.utterance for e in events if isinstance(e, Committed)]
        return events

    def on_results(self, results: Results) -> list[CaptionEvent]:
        return self._keep(self.model.on_results(results))

    def on_utterance_end(self, message: UtteranceEnd) -> list[CaptionEvent]:
        return self._keep(self.model.on_utterance_end(message))

    def finish(self) -> list[CaptionEvent]:
        return self._keep(self.model.finish())

    def add_gap(self, start: float, end: float, channel: int = 0) -> list[CaptionEvent]:
        return self._keep(self.model.add_gap(start, end, channel))

    def set_offset(self, offset: float) -> list[CaptionEvent]:
        return self._keep(self.model.set_offset(offset))

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)


def texts(model: CaptionModel) -> list[str]:
    return [u.text for u in model.committed]


def committed(events: list[CaptionEvent]) -> list[Utterance]:
    return [e.utterance for e in events if isinstance(e, Committed)]


def live_events(events: list[CaptionEvent]) -> list[LiveChanged]:
    return [e for e in events if isinstance(e, LiveChanged)]


# E.24
def test_interims_replace_never_append() -> None:
    model = CaptionModel()
    first = model.on_results(interim("I was thirty years of", 0.0, 2.0))
    second = model.on_results(interim("Was thirty years of age and had led up", 0.0, 3.0))
    assert first == [LiveChanged(0, "", "I was thirty years of")]
    assert second == [LiveChanged(0, "", "Was thirty years of age and had led up")]
    assert model.live(0) == ("", "Was thirty years of age and had led up")
    assert model.committed == []


# E.25
def test_two_fixture_finals_make_exactly_one_line() -> None:
    model = CaptionModel()
    first = model.on_results(fixture_results("results_final_not_speech_final"))
    assert committed(first) == []
    assert model.committed == []
    assert model.live(0) == ("My name was Rupert Pennace. I came of an old family", "")
    second = model.on_results(fixture_results("results_final_speech_final"))
    assert texts(model) == [RUPERT]
    [line] = committed(second)
    assert line.text == RUPERT
    assert line.channel == 0
    assert line.start == 9.92
    assert line.end == 16.279999
    assert len(line.words) == 19
    assert line.speaker == 0
    assert (line.unconfirmed, line.gap) == (False, False)
    assert second[-1] == LiveChanged(0, "", "")
    assert model.live(0) == ("", "")


# E.26
def test_final_with_a_shorter_window_supersedes_the_interim() -> None:
    model = CaptionModel()
    head = "the thing about them is that they"
    model.on_results(interim(head + " they", 0.0, 9.1))
    assert model.live(0) == ("", head + " they")
    events = model.on_results(make_results(head, 0.0, 8.49))
    assert events == [LiveChanged(0, head, "")]
    events = model.on_results(interim("they are", 8.49, 10.1 - 8.49))
    assert events == [LiveChanged(0, head, "they are")]
    final_text, interim_text = model.live(0)
    assert f"{final_text} {interim_text}" == head + " they are"
    assert model.committed == []


def test_a_final_mid_speech_leaves_the_interim_words_after_its_window_shown() -> None:
    """The service settles the start of the interim while the speaker goes on; the words after
    the final's window stay on screen until the next interim restates them (or changes them),
    instead of vanishing between the two messages."""
    model = CaptionModel()
    model.on_results(interim("we have a movement going on", 4.0, 3.0))  # 0.5 s a word
    events = model.on_results(make_results("we have a", 4.0, 1.5))
    assert events == [LiveChanged(0, "we have a", "movement going on")]
    events = model.on_results(interim("movement going on folks", 5.5, 2.0))
    assert events == [LiveChanged(0, "we have a", "movement going on folks")]
    # an interim wholly after the final's window is left as it is
    model.on_results(interim("and yet", 8.0, 1.0))
    assert model.on_results(make_results("movement going on folks", 5.5, 2.4)) == [
        LiveChanged(0, "we have a movement going on folks", "and yet")
    ]
    # a word that starts inside the window is the final's, even if the final heard it otherwise
    model.on_results(interim("the GOP machine", 10.0, 1.5))
    events = model.on_results(make_results("the GOP", 9.9, 0.7))
    assert events == [LiveChanged(0, model.live(0)[0], "machine")]
    assert model.committed == []


def test_a_final_keeps_only_interim_words_after_it_whatever_order_the_server_sent_them() -> None:
    """Hostile or sloppy servers send words out of time order; what stays shown after a final
    is exactly the interim words that start after its window, in the order they came."""
    model = CaptionModel()
    words = tuple(
        Word(word=w, start=start, end=start + 0.2, confidence=0.9, punctuated_word=w)
        for w, start in (("late", 9.0), ("early", 1.0), ("later", 9.5), ("inside", 2.0))
    )
    model.on_results(replace(interim("late early later inside", 0.0, 10.0), words=words))
    events = model.on_results(make_results("early inside", 0.0, 5.0))
    assert events == [LiveChanged(0, "early inside", "late later")]


# E.27
def test_empty_messages_with_nothing_pending_do_nothing() -> None:
    model = CaptionModel()
    assert model.on_results(fixture_results("results_interim_empty")) == []
    assert model.on_results(fixture_results("results_final_empty")) == []
    assert model.committed == []
    assert model.live(0) == ("", "")
    assert model.finish() == []


def test_empty_finals_add_no_stray_spaces() -> None:
    model = CaptionModel()
    model.on_results(make_results("one two", 0.0, 1.0))
    model.on_results(make_results("", 1.0, 0.5))
    model.on_results(make_results("   ", 1.5, 0.5))
    model.on_results(make_results(" three ", 2.0, 1.0, speech_final=True))
    assert texts(model) == ["one two three"]


# E.28
def test_empty_speech_final_closes_the_pending_utterance() -> None:
    model = CaptionModel()
    model.on_results(make_results("Hello there.", 0.0, 1.5))
    model.on_results(make_results("How are you?", 1.5, 1.5))
    events = model.on_results(make_results("", 3.0, 0.7, speech_final=True))
    assert [u.text for u in committed(events)] == ["Hello there. How are you?"]
    assert model.live(0) == ("", "")


# E.29
def test_utterance_end_is_the_backstop_when_speech_final_never_comes() -> None:
    model = CaptionModel()
    model.on_results(make_results("It was noisy", 0.0, 2.0))
    model.on_results(make_results("in the cafe", 2.0, 2.0))
    last_word_end = model.channels[0].final_end
    assert last_word_end == 4.0
    events = model.on_utterance_end(UtteranceEnd(0, 1, last_word_end))
    assert [u.text for u in committed(events)] == ["It was noisy in the cafe"]
    assert events[-1] == LiveChanged(0, "", "")


# E.30
def test_late_utterance_end_does_not_split_the_utterance() -> None:
    model = CaptionModel()
    model.on_results(interim("My name", 9.6, 1.0))
    late = fixture_utterance_end("utterance_end_captured")
    assert late.last_word_end == 8.8
    assert model.on_utterance_end(late) == []
    model.on_results(interim("My name was Rupert", 9.6, 2.0))
    model.on_results(fixture_results("results_final_not_speech_final"))
    assert model.on_utterance_end(late) == []
    model.on_results(fixture_results("results_final_speech_final"))
    assert texts(model) == [RUPERT]


def test_late_utterance_end_while_finals_are_pending_is_ignored() -> None:
    model = CaptionModel()
    model.on_results(make_results("Earlier words.", 5.0, 3.8, speech_final=True))
    model.on_results(fixture_results("results_final_not_speech_final"))
    assert model.on_utterance_end(fixture_utterance_end("utterance_end_captured")) == []
    assert texts(model) == ["Earlier words."]
    assert model.live(0)[0] == "My name was Rupert Pennace. I came of an old family"


def test_utterance_end_minus_one_is_ignored() -> None:
    model = CaptionModel()
    model.on_results(make_results("pending words", 0.0, 2.0))
    assert model.on_utterance_end(UtteranceEnd(0, 1, -1.0)) == []
    assert model.committed == []
    assert model.live(0) == ("pending words", "")


# E.31
def test_utterance_end_with_only_an_interim_commits_nothing() -> None:
    model = CaptionModel()
    model.on_results(interim("still thinking", 0.0, 1.0))
    assert model.on_utterance_end(UtteranceEnd(0, 1, 5.0)) == []
    assert model.committed == []
    assert model.live(0) == ("", "still thinking")
    model.on_results(make_results("still thinking", 0.0, 1.2, speech_final=True))
    assert texts(model) == ["still thinking"]


def test_utterance_end_for_an_unknown_channel_does_nothing() -> None:
    model = CaptionModel()
    assert model.on_utterance_end(UtteranceEnd(3, 4, 5.0)) == []


def test_utterance_end_keeps_the_interim_of_the_next_window() -> None:
    model = CaptionModel()
    model.on_results(make_results("first part", 0.0, 2.0))
    model.on_results(interim("next", 2.0, 1.0))
    events = model.on_utterance_end(UtteranceEnd(0, 1, 1.9))
    assert [u.text for u in committed(events)] == ["first part"]
    assert model.live(0) == ("", "next")


# E.34 at the caption level: a Results without the optional fields still builds a line.
def test_results_without_optional_fields_commit_on_utterance_end() -> None:
    text = (
        '{"type":"Results","start":1.0,"duration":2.0,"is_final":true,'
        '"channel":{"alternatives":[{"transcript":"plain words","words":['
        '{"word":"plain","start":1.1,"end":1.5},{"word":"words","start":1.5,"end":2.0}]}]}}'
    )
    message = parse_message(text)
    assert isinstance(message, Results)
    model = CaptionModel()
    model.on_results(message)
    events = model.on_utterance_end(UtteranceEnd(0, 1, 2.0))
    [line] = committed(events)
    assert (line.text, line.start, line.end, line.speaker) == ("plain words", 1.1, 2.0, None)


# E.35
def test_channels_are_independent() -> None:
    model = CaptionModel()
    model.on_results(interim("left speaker talks", 0.0, 1.0, channel=0))
    events = model.on_results(interim("right speaker", 0.0, 1.0, channel=1))
    assert events == [LiveChanged(1, "", "right speaker")]
    assert model.live(0) == ("", "left speaker talks")
    assert model.live(1) == ("", "right speaker")

    model.on_results(make_results("left speaker talks", 0.0, 1.2, channel=0, channels=2))
    events = model.on_results(
        make_results("right speaker", 0.0, 1.1, channel=1, channels=2, speech_final=True)
    )
    assert [(u.channel, u.text) for u in committed(events)] == [(1, "right speaker")]
    assert model.live(0) == ("left speaker talks", "")

    model.on_results(interim("more from the right", 1.1, 1.0, channel=1))
    assert model.live(0) == ("left speaker talks", "")
    events = model.on_utterance_end(UtteranceEnd(0, 2, 1.2))
    assert [(u.channel, u.text) for u in committed(events)] == [(0, "left speaker talks")]
    assert model.live(1) == ("", "more from the right")
    assert [(u.channel, u.text) for u in model.committed] == [
        (1, "right speaker"),
        (0, "left speaker talks"),
    ]


# E.36
def test_float_timestamps_are_contiguous() -> None:
    first = fixture_results("results_final_not_speech_final")
    second = fixture_results("results_final_speech_final")
    assert first.end != second.start
    assert abs(first.end - second.start) < 0.001
    model = CaptionModel()
    model.on_results(first)
    assert model.channels[0].final_end == pytest.approx(14.36, abs=1e-6)
    assert model.channels[0].pending_start == 9.6
    model.on_results(second)
    assert model.channels[0].final_end == pytest.approx(17.04, abs=1e-5)
    assert [u.gap for u in model.committed] == [False]


def test_utterance_end_within_float_noise_of_the_pending_start_closes() -> None:
    model = CaptionModel()
    model.on_results(fixture_results("results_final_not_speech_final"))
    just_before = 9.6 - TIME_EPSILON / 2
    events = model.on_utterance_end(UtteranceEnd(0, 1, just_before))
    assert len(committed(events)) == 1


def test_from_finalize_closes_only_after_finalize_was_sent() -> None:
    model = CaptionModel()
    model.on_results(make_results("flushed by close", 0.0, 1.0, from_finalize=True))
    assert model.committed == []
    model.note_finalize_sent()
    events = model.on_results(make_results("and finalize", 1.0, 1.0, from_finalize=True))
    assert [u.text for u in committed(events)] == ["flushed by close and finalize"]
    model.on_results(make_results("after", 2.0, 1.0, from_finalize=True))
    assert texts(model) == ["flushed by close and finalize"]


def test_finalize_answer_fixture_commits_immediately() -> None:
    model = CaptionModel()
    model.note_finalize_sent()
    events = model.on_results(fixture_results("results_from_finalize"))
    assert [u.text for u in committed(events)] == ["Dying, come at once, s"]


def test_finalize_answers_close_every_channel() -> None:
    model = CaptionModel()
    model.note_finalize_sent()
    model.on_results(make_results("left", 0.0, 1.0, channel=0, channels=2, from_finalize=True))
    model.on_results(make_results("right", 0.0, 1.0, channel=1, channels=2, from_finalize=True))
    assert texts(model) == ["left", "right"]


def test_finalize_sent_on_an_old_connection_is_forgotten() -> None:
    model = CaptionModel()
    model.on_results(make_results("old", 0.0, 1.0))
    model.note_finalize_sent()
    model.set_offset(10.0)
    model.on_results(make_results("new", 0.0, 1.0, from_finalize=True))
    model.on_results(make_results("x", 0.0, 1.0, channel=1, channels=2, from_finalize=True))
    assert model.committed == []
    assert model.live(0) == ("old new", "")


def test_speech_final_on_an_interim_commits_nothing() -> None:
    model = CaptionModel()
    model.on_results(make_results("settled", 0.0, 1.0))
    odd = make_results("not yet", 1.0, 1.0, final=False, speech_final=True)
    assert committed(model.on_results(odd)) == []
    assert model.live(0) == ("settled", "not yet")


def test_times_are_absolute_with_an_offset() -> None:
    model = CaptionModel(offset=42.0)
    events = model.on_results(make_results("after the drop", 0.5, 1.5, speech_final=True))
    [line] = committed(events)
    assert line.start == 42.5
    assert line.end == 44.0
    assert [w.start for w in line.words] == [42.5, 43.0, 43.5]
    assert model.channels[0].final_end == 44.0


def test_set_offset_drops_the_old_interim_and_keeps_pending_finals() -> None:
    model = CaptionModel()
    model.on_results(make_results("settled before the drop", 0.0, 2.0))
    model.on_results(interim("lost hypothesis", 2.0, 1.0))
    events = model.set_offset(2.0)
    assert events == [LiveChanged(0, "settled before the drop", "")]
    assert model.live(0) == ("settled before the drop", "")
    model.on_results(make_results("lost hypothesis again", 0.0, 1.5, speech_final=True))
    [line] = model.committed
    assert line.text == "settled before the drop lost hypothesis again"
    assert line.end == 3.5
    with pytest.raises(ValueError):
        model.set_offset(math.nan)


def test_utterance_end_is_compared_on_the_absolute_clock() -> None:
    model = CaptionModel()
    model.on_results(make_results("before reconnect", 30.0, 2.0))
    model.set_offset(32.0)
    events = model.on_utterance_end(UtteranceEnd(0, 1, 0.0))
    assert [u.text for u in committed(events)] == ["before reconnect"]


def test_finish_commits_pending_then_interim_as_unconfirmed() -> None:
    model = CaptionModel()
    model.on_results(make_results("confirmed words", 0.0, 2.0))
    model.on_results(interim("maybe these", 2.0, 1.0))
    events = model.finish()
    lines = committed(events)
    assert [(u.text, u.unconfirmed) for u in lines] == [
        ("confirmed words", False),
        ("maybe these", True),
    ]
    assert (lines[1].start, lines[1].end) == (2.0, 3.0)
    assert events[-1] == LiveChanged(0, "", "")
    assert model.finish() == []


def test_finish_with_only_an_interim() -> None:
    model = CaptionModel()
    model.on_results(interim("unfinished", 4.0, 1.0))
    [line] = committed(model.finish())
    assert (line.text, line.unconfirmed, line.start) == ("unfinished", True, 4.0)


def test_add_gap_commits_open_utterances_then_the_marker() -> None:
    model = CaptionModel()
    model.on_results(make_results("before the outage", 10.0, 2.0))
    events = model.add_gap(12.0, 87.5)
    lines = committed(events)
    assert [u.text for u in lines] == ["before the outage", "[connection lost 0:12-1:27]"]
    gap = lines[1]
    assert (gap.gap, gap.start, gap.end, gap.words, gap.speaker) == (True, 12.0, 87.5, (), None)
    assert LiveChanged(0, "", "") in events


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (12.4, 87.9, "[connection lost 0:12-1:27]"),
        (0.0, 5.0, "[connection lost 0:00-0:05]"),
        (599.0, 725.0, "[connection lost 9:59-12:05]"),
        (3599.0, 3661.0, "[connection lost 0:59:59-1:01:01]"),
        (36000.0, 36061.0, "[connection lost 10:00:00-10:01:01]"),
        (-3.0, math.nan, "[connection lost 0:00-0:00]"),
    ],
)
def test_format_gap(start: float, end: float, expected: str) -> None:
    assert format_gap(start, end) == expected


@pytest.mark.parametrize(
    ("language", "separator"),
    [
        ("en", " "),
        ("en-US", " "),
        ("multi", " "),
        (None, " "),
        ("ja", ""),
        ("zh-TW", ""),
        ("ZH", ""),
    ],
)
def test_separator_for(language: str | None, separator: str) -> None:
    assert separator_for(language) == separator


def test_japanese_finals_join_without_a_space() -> None:
    model = CaptionModel(language="ja")
    model.on_results(make_results("今日は", 0.0, 1.0))
    model.on_results(make_results("いい天気です。", 1.0, 1.0, speech_final=True))
    assert texts(model) == ["今日はいい天気です。"]


def test_speaker_is_the_most_common_word_speaker() -> None:
    model = CaptionModel()
    model.on_results(make_results("a b c", 0.0, 1.0, speakers=[1, 0, 1]))
    model.on_results(make_results("d", 1.0, 1.0, speakers=[0], speech_final=True))
    assert model.committed[0].speaker == 1
    model.on_results(fixture_results("results_final_speech_final_docs"))
    assert model.committed[1].speaker is None
    assert model.committed[1].text == "Tell me more about this."


def test_live_events_carry_only_the_open_utterance() -> None:
    model = CaptionModel()
    model.on_results(make_results("first line", 0.0, 1.0, speech_final=True))
    events = model.on_results(make_results("second", 1.0, 1.0))
    assert live_events(events) == [LiveChanged(0, "second", "")]
    assert model.on_results(interim("", 2.0, 1.0)) == []


# Property tests: any sequence of messages keeps every word exactly once.

WORDS = ["alpha", "beta", "Gamma.", "delta,", "épsilon", "zeta?"]
transcripts = st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join) | st.sampled_from(
    ["", " ", "  alpha  beta "]
)
steps = st.one_of(
    st.tuples(st.just("interim"), st.integers(0, 1), transcripts, st.booleans(), st.booleans()),
    st.tuples(st.just("final"), st.integers(0, 1), transcripts, st.booleans(), st.booleans()),
    st.tuples(
        st.just("utterance_end"),
        st.integers(0, 1),
        st.floats(-1.0, 30.0, allow_nan=False),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(st.just("finalize"), st.integers(0, 1), st.none(), st.booleans(), st.booleans()),
    st.tuples(
        st.just("offset"),
        st.integers(0, 1),
        st.floats(0.0, 100.0, allow_nan=False),
        st.booleans(),
        st.booleans(),
    ),
)


def run_steps(
    model: CaptionModel, script: list[tuple[str, int, object, bool, bool]]
) -> dict[int, list[str]]:
    """Feed the script; returns the non-empty final texts per channel, in order."""
    cursor = {0: 0.0, 1: 0.0}
    finals: dict[int, list[str]] = {0: [], 1: []}
    for kind, channel, value, flag_a, flag_b in script:
        if kind in ("interim", "final"):
            assert isinstance(value, str)
            is_final = kind == "final"
            duration = 0.3 + 0.1 * len(value)
            message = make_results(
                value,
                cursor[channel],
                duration,
                final=is_final,
                speech_final=flag_a,
                from_finalize=flag_b and is_final,
                channel=channel,
                channels=2,
            )
            model.on_results(message)
            if is_final:
                cursor[channel] += duration
                if value.strip():
                    finals[channel].append(" ".join(value.split()))
        elif kind == "utterance_end":
            assert isinstance(value, float)
            model.on_utterance_end(UtteranceEnd(channel, 2, value))
        elif kind == "finalize":
            model.note_finalize_sent()
        else:
            assert isinstance(value, float)
            model.set_offset(value)
            cursor = {0: 0.0, 1: 0.0}
    return finals


@settings(max_examples=300)
@given(st.lists(steps, max_size=30))
def test_no_word_is_lost_or_duplicated(script: list[tuple[str, int, object, bool, bool]]) -> None:
    model = CaptionModel()
    finals = run_steps(model, script)
    before_finish = len(model.committed)
    for line in model.committed:
        assert line.text.strip() == line.text != ""
        assert not line.unconfirmed
    model.finish()
    for line in model.committed:
        assert line.text.strip() == line.text != ""
        assert "  " not in line.text
        assert line.start <= line.end
        assert not line.gap
    assert all(u.unconfirmed is False for u in model.committed[:before_finish])
    for channel in (0, 1):
        confirmed = [u.text for u in model.committed if u.channel == channel and not u.unconfirmed]
        assert " ".join(confirmed) == " ".join(finals[channel])
        assert sum(1 for u in model.committed if u.channel == channel and u.unconfirmed) <= 1
        assert model.live(channel) == ("", "")


@settings(max_examples=200)
@given(st.lists(steps, max_size=30))
def test_live_events_mirror_the_live_state(
    script: list[tuple[str, int, object, bool, bool]],
) -> None:
    model = CaptionModel()
    seen: dict[int, tuple[str, str]] = {}

    for step in script:
        events: list[CaptionEvent] = []
        kind, channel, value, flag_a, flag_b = step
        if kind in ("interim", "final") and isinstance(value, str):
            events = model.on_results(
                make_results(
                    value,
                    1.0,
                    0.5,
                    final=kind == "final",
                    speech_final=flag_a,
                    from_finalize=flag_b,
                    channel=channel,
                    channels=2,
                )
            )
        elif kind == "utterance_end" and isinstance(value, float):
            events = model.on_utterance_end(UtteranceEnd(channel, 2, value))
        elif kind == "finalize":
            model.note_finalize_sent()
        elif isinstance(value, float):
            events = model.set_offset(value)
        for event in live_events(events):
            seen[event.channel] = (event.final_text, event.interim_text)
        for index in (0, 1):
            assert seen.get(index, ("", "")) == model.live(index)


any_words = st.lists(
    st.builds(
        Word,
        word=st.text(max_size=4),
        start=st.floats(0, 1e4),
        end=st.floats(0, 1e4),
        confidence=st.floats(0, 1),
        punctuated_word=st.none() | st.text(max_size=4),
        speaker=st.none() | st.integers(0, 3),
        language=st.none() | st.just("en"),
    ),
    max_size=3,
).map(tuple)
any_results = st.builds(
    Results,
    channel=st.integers(0, 3),
    channels=st.just(4),
    start=st.floats(0, 1e5),
    duration=st.floats(0, 100),
    is_final=st.booleans(),
    speech_final=st.booleans(),
    from_finalize=st.booleans(),
    transcript=st.text(max_size=12),
    confidence=st.floats(0, 1),
    words=any_words,
    request_id=st.none(),
    model_name=st.none(),
)
any_message = any_results | st.builds(
    UtteranceEnd,
    channel=st.integers(0, 3),
    channels=st.just(4),
    last_word_end=st.floats(-1, 1e5),
)


@settings(max_examples=200)
@given(st.lists(any_message, max_size=25), st.sampled_from(["en", "ja", None]))
def test_arbitrary_messages_never_raise_or_commit_blank_lines(
    messages: list[Results | UtteranceEnd], language: str | None
) -> None:
    model = CaptionModel(offset=3.0, language=language)
    for message in messages:
        if isinstance(message, Results):
            model.on_results(message)
        else:
            model.on_utterance_end(message)
    model.finish()
    for line in model.committed:
        assert line.text.strip() == line.text != ""
        assert line.start <= line.end
    assert all(model.live(channel) == ("", "") for channel in range(4))
