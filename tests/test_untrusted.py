"""Fuzzing what servers send: the message parser and the text cleaner (Hypothesis).

Whatever arrives (any JSON value in any field, numbers at the edges of floating point,
nesting deeper than Python's recursion limit, escape sequences, the API key), `parse_message`
never raises, every time it hands on is a finite number of seconds within a year, every
confidence lies in [0, 1], and no string it hands on holds a control character or a secret.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.core import untrusted
from captioner.core.exports import render
from captioner.core.messages import (
    ErrorMessage,
    Metadata,
    Results,
    SpeechStarted,
    Unknown,
    UtteranceEnd,
    parse_message,
)

SECRET = "hostile-test-key-7f3a9c"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(autouse=True)
def _secret() -> Iterator[None]:
    untrusted.remember_secret(SECRET)
    yield
    untrusted.forget_secrets()


EDGE_NUMBERS = st.sampled_from(
    [
        0,
        -0.0,
        -1,
        1e-320,
        1e308,
        -1e308,
        1.7976931348623157e308,
        float("inf"),
        float("-inf"),
        float("nan"),
        10**30,
        -(10**30),
        2**63,
        31_536_000,
        31_536_000.5,
    ]
)
NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "\x1b]0;title\x07",
            "\x1b[2J\x1b[H",
            "\x9b31m",
            "a\u202eb",
            f"key {SECRET} echoed",
            "\ud800",
            "\x00\x01\x7f",
        ]
    ),
)
SCALARS = st.one_of(st.none(), st.booleans(), EDGE_NUMBERS, st.floats(), NASTY_TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def word_like() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "word": SCALARS,
            "punctuated_word": SCALARS,
            "start": SCALARS,
            "end": SCALARS,
            "confidence": SCALARS,
            "speaker": SCALARS,
            "language": SCALARS,
        },
    )


def results_like() -> st.SearchStrategy[dict[str, object]]:
    alternative = st.fixed_dictionaries(
        {},
        optional={
            "transcript": SCALARS,
            "confidence": SCALARS,
            "words": st.one_of(VALUES, st.lists(word_like(), max_size=5)),
        },
    )
    return st.fixed_dictionaries(
        {"type": st.just("Results")},
        optional={
            "start": SCALARS,
            "duration": SCALARS,
            "is_final": SCALARS,
            "speech_final": SCALARS,
            "from_finalize": SCALARS,
            "channel_index": VALUES,
            "channel": st.one_of(
                VALUES, st.fixed_dictionaries({"alternatives": st.lists(alternative, max_size=2)})
            ),
            "metadata": VALUES,
        },
    )


def other_like() -> st.SearchStrategy[dict[str, object]]:
    kinds = st.sampled_from(["Metadata", "UtteranceEnd", "SpeechStarted", "Error", "Warning"])
    fields = ["duration", "channels", "last_word_end", "timestamp", "channel", "description",
              "message", "variant", "code", "request_id", "models", "sha256"]  # fmt: skip
    return st.builds(
        lambda kind, extra: {"type": kind, **extra},
        kinds,
        st.dictionaries(st.sampled_from(fields), VALUES, max_size=6),
    )


def dumps(obj: object) -> str:
    return json.dumps(obj, allow_nan=True, ensure_ascii=False)


def assert_safe(text: str | None) -> None:
    if text is None:
        return
    assert not CONTROL.search(text), repr(text)
    assert SECRET not in text


def assert_time(value: float, *, allow_negative_one: bool = False) -> None:
    assert math.isfinite(value)
    if allow_negative_one and value == -1:
        return
    assert 0 <= value <= untrusted.MAX_SECONDS


@settings(max_examples=400, deadline=None)
@given(st.one_of(results_like(), other_like(), VALUES))
def test_any_json_parses_without_raising_into_safe_values(obj: object) -> None:
    message = parse_message(dumps(obj))
    if isinstance(message, Results):
        assert_time(message.start)
        assert_time(message.duration)
        assert 0 <= message.confidence <= 1
        assert_safe(message.transcript)
        for word in message.words:
            assert_time(word.start)
            assert_time(word.end)
            assert word.start <= word.end
            assert 0 <= word.confidence <= 1
            assert_safe(word.word)
            assert_safe(word.punctuated_word)
        assert 0 <= message.channel < message.channels <= 1024
        # and the exports take it whatever it was
        from captioner.core.captions import CaptionModel

        model = CaptionModel()
        model.on_results(message)
        for fmt in ("txt", "srt", "vtt", "json"):
            render(fmt, [e.utterance for e in model.finish() if hasattr(e, "utterance")])
    elif isinstance(message, Metadata):
        assert_time(message.duration)
        assert_safe(message.request_id)
    elif isinstance(message, UtteranceEnd):
        assert_time(message.last_word_end, allow_negative_one=True)
    elif isinstance(message, SpeechStarted):
        assert_time(message.timestamp)
    elif isinstance(message, ErrorMessage):
        for text in (message.description, message.message, message.variant, message.code):
            assert_safe(text)
    else:
        assert isinstance(message, Unknown)
        assert_safe(message.raw)
        assert_safe(message.reason)


@pytest.mark.parametrize("depth", [64, 65, 1000, 100_000, 1_000_000])
def test_deep_nesting_is_refused_before_parsing(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        message = parse_message(text)
        if depth > 64:  # refused as nesting, or as a frame too big to read at all
            assert isinstance(message, Unknown)
            assert "not JSON" in message.reason or "a text frame of" in message.reason


def test_a_results_with_one_absurd_word_time_is_ignored_whole() -> None:
    good = {"word": "fine", "start": 0.1, "end": 0.2}
    bad = {"word": "evil", "start": 1e308, "end": 1e308}
    text = dumps(
        {
            "type": "Results",
            "start": 0.0,
            "duration": 1.0,
            "is_final": True,
            "channel": {"alternatives": [{"transcript": "fine evil", "words": [good, bad]}]},
        }
    )
    message = parse_message(text)
    assert isinstance(message, Unknown) and "out of range" in message.reason


@settings(max_examples=300, deadline=None)
@given(NASTY_TEXT, st.integers(min_value=1, max_value=60))
def test_cleaned_text_has_no_control_characters_no_secret_and_a_bound(
    text: str, limit: int
) -> None:
    cleaned = untrusted.clean(f"{text}{SECRET}{text}", limit)
    assert_safe(cleaned)
    assert len(cleaned) <= limit


def test_secrets_are_masked_longest_first() -> None:
    untrusted.remember_secret("abcdefgh")
    untrusted.remember_secret("abcdefgh-longer")
    assert untrusted.clean("x abcdefgh-longer y abcdefgh") == "x *** y ***"
