"""Parsing server messages: the recorded fixtures, missing and mistyped fields, and junk."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.core.messages import (
    ErrorMessage,
    Metadata,
    Results,
    SpeechStarted,
    Unknown,
    UtteranceEnd,
    Word,
    parse_message,
)
from tests.fixtures import load_fixture

RESULTS_FIXTURES = [
    "results_interim",
    "results_interim_empty",
    "results_final_not_speech_final",
    "results_final_speech_final",
    "results_final_speech_final_docs",
    "results_final_speech_final_sdk_fixture",
    "results_final_empty",
    "results_from_finalize",
    "results_multilingual_docs",
]


def fixture_dict(name: str) -> dict[str, Any]:
    data = json.loads(load_fixture(name))
    assert isinstance(data, dict)
    return data


def parse_results(obj: dict[str, Any]) -> Results:
    message = parse_message(json.dumps(obj))
    assert isinstance(message, Results), message
    return message


@pytest.mark.parametrize("name", RESULTS_FIXTURES)
def test_every_results_fixture_parses_as_results(name: str) -> None:
    message = parse_message(load_fixture(name))
    assert isinstance(message, Results)
    assert (message.channel, message.channels) == (0, 1)
    assert message.transcript == fixture_dict(name)["channel"]["alternatives"][0]["transcript"]


def test_final_not_speech_final_fixture_values() -> None:
    message = parse_message(load_fixture("results_final_not_speech_final"))
    assert isinstance(message, Results)
    assert message.start == 9.6
    assert message.duration == 4.7599993
    assert message.end == pytest.approx(14.36, abs=1e-6)
    assert message.is_final is True
    assert message.speech_final is False
    assert message.from_finalize is False
    assert message.transcript == "My name was Rupert Pennace. I came of an old family"
    assert message.confidence == 1.0
    assert message.request_id == "01a07aad-cb1e-78c3-80ef-181d08b56576"
    assert message.model_name == "general-nova-3"
    assert len(message.words) == 11
    first = message.words[0]
    assert first == Word("my", 9.92, 10.240001, 1.0, "My", 0, None)
    assert first.display == "My"
    assert [w.display for w in message.words][3:5] == ["Rupert", "Pennace."]


def test_speech_final_and_from_finalize_flags() -> None:
    closing = parse_message(load_fixture("results_final_speech_final"))
    finalized = parse_message(load_fixture("results_from_finalize"))
    interim = parse_message(load_fixture("results_interim"))
    assert isinstance(closing, Results) and isinstance(finalized, Results)
    assert isinstance(interim, Results)
    assert (closing.is_final, closing.speech_final, closing.from_finalize) == (True, True, False)
    assert (finalized.is_final, finalized.from_finalize) == (True, True)
    assert (interim.is_final, interim.speech_final) == (False, False)
    assert interim.words[0].speaker == 0


def test_empty_final_fixture() -> None:
    message = parse_message(load_fixture("results_final_empty"))
    assert isinstance(message, Results)
    assert message.transcript == ""
    assert message.words == ()
    assert message.confidence == 0.0
    assert message.speech_final is True
    assert message.model_name == "general"


def test_multilingual_words_keep_language_and_fall_back_to_raw_word() -> None:
    message = parse_message(load_fixture("results_multilingual_docs"))
    assert isinstance(message, Results)
    assert [w.language for w in message.words] == ["es"] * 4
    assert [w.punctuated_word for w in message.words] == [None] * 4
    assert [w.display for w in message.words] == ["será", "el", "inglés", "muchos"]
    assert [w.speaker for w in message.words] == [None] * 4


def test_metadata_fixtures() -> None:
    full = parse_message(load_fixture("metadata"))
    assert full == Metadata(
        request_id="01a03ac3-92a1-79f0-ad85-2cee59754422",
        duration=44.259937,
        channels=1,
        created="2026-08-25T21:11:31.685Z",
        sha256="incomplete",
        models=("7e3b5bdf-85ed-4fd2-9f7a-7721bbcad97b",),
    )
    empty = parse_message(load_fixture("metadata_close_stream_docs"))
    assert isinstance(empty, Metadata)
    assert (empty.duration, empty.channels, empty.models) == (0.0, 0, ())
    no_audio = parse_message(load_fixture("metadata_no_audio"))
    assert isinstance(no_audio, Metadata)
    assert (no_audio.duration, no_audio.channels) == (0.0, 1)


def test_utterance_end_and_speech_started_fixtures() -> None:
    assert parse_message(load_fixture("utterance_end")) == UtteranceEnd(0, 1, 2.395)
    assert parse_message(load_fixture("utterance_end_captured")) == UtteranceEnd(0, 1, 8.8)
    assert parse_message(load_fixture("speech_started")) == SpeechStarted(0, 1, 9.54)


def test_utterance_end_minus_one_is_kept_for_the_caption_model_to_ignore() -> None:
    message = parse_message('{"type":"UtteranceEnd","channel":[0,1],"last_word_end":-1}')
    assert message == UtteranceEnd(0, 1, -1.0)


# E.34: missing optional fields are accepted with defaults.
def test_missing_optional_fields_take_defaults() -> None:
    obj = fixture_dict("results_final_not_speech_final")
    del obj["from_finalize"]
    del obj["speech_final"]
    del obj["metadata"]["model_info"]
    del obj["channel_index"]
    for word in obj["channel"]["alternatives"][0]["words"]:
        del word["punctuated_word"]
        del word["speaker"]
    message = parse_results(obj)
    assert (message.speech_final, message.from_finalize) == (False, False)
    assert message.model_name is None
    assert (message.channel, message.channels) == (0, 1)
    assert message.words[3].display == "rupert"
    assert message.words[3].punctuated_word is None
    assert message.transcript == "My name was Rupert Pennace. I came of an old family"


def test_missing_metadata_and_alternatives_still_give_a_results() -> None:
    message = parse_results({"type": "Results", "start": 1, "duration": 2, "is_final": True})
    assert message.transcript == ""
    assert message.words == ()
    assert message.request_id is None
    assert message.end == 3.0


def test_transcript_missing_is_rebuilt_from_words() -> None:
    obj = fixture_dict("results_final_speech_final")
    del obj["channel"]["alternatives"][0]["transcript"]
    assert parse_results(obj).transcript == "and had plenty of money for my needs."


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("is_final", "true", "is_final", True),
        ("is_final", "False", "is_final", False),
        ("is_final", 1, "is_final", True),
        ("speech_final", "true", "speech_final", True),
        ("speech_final", "maybe", "speech_final", False),
        ("speech_final", None, "speech_final", False),
        ("from_finalize", "TRUE", "from_finalize", True),
        ("from_finalize", [], "from_finalize", False),
        ("start", "9.6", "start", 9.6),
        ("duration", " 1.5 ", "duration", 1.5),
        ("duration", 2, "duration", 2.0),
    ],
)
def test_wrong_typed_fields_are_coerced_or_defaulted(
    field: str, value: object, attribute: str, expected: object
) -> None:
    obj = fixture_dict("results_final_not_speech_final")
    obj[field] = value
    assert getattr(parse_results(obj), attribute) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", None),
        ("start", "soon"),
        ("start", True),
        ("start", -1.0),
        ("duration", "NaN"),
        ("duration", "inf"),
        ("is_final", "yes"),
        ("is_final", None),
    ],
)
def test_unusable_required_results_fields_give_unknown(field: str, value: object) -> None:
    obj = fixture_dict("results_final_not_speech_final")
    obj[field] = value
    message = parse_message(json.dumps(obj))
    assert isinstance(message, Unknown)
    assert message.type == "Results"
    assert field in message.reason or "negative" in message.reason


def test_nan_literal_in_json_is_not_a_usable_number() -> None:
    text = load_fixture("results_final_not_speech_final").replace('"start": 9.6', '"start": NaN')
    assert isinstance(parse_message(text), Unknown)
    text = load_fixture("results_final_not_speech_final").replace(
        '"confidence": 1.0,\n        "words"', '"confidence": NaN,\n        "words"'
    )
    message = parse_message(text)
    assert isinstance(message, Results)
    assert message.confidence == 0.0


def test_mistyped_words_are_skipped_and_mistyped_word_fields_defaulted() -> None:
    obj = fixture_dict("results_final_speech_final")
    words = obj["channel"]["alternatives"][0]["words"]
    words[0]["start"] = "soon"
    words[1] = "had"
    words[2]["speaker"] = "0"
    words[3]["confidence"] = "high"
    words[4]["punctuated_word"] = 5
    words[5]["speaker"] = -3
    message = parse_results(obj)
    assert [w.word for w in message.words] == ["plenty", "of", "money", "for", "my", "needs"]
    assert message.words[0].speaker == 0
    assert message.words[1].confidence == 0.0
    assert message.words[2].display == "money"
    assert message.words[3].speaker is None


@pytest.mark.parametrize(
    ("channel_index", "expected"),
    [
        ([1, 2], (1, 2)),
        ([0, 1], (0, 1)),
        ([3], (3, 4)),
        ("0", (0, 1)),
        ([], (0, 1)),
        ([-1, 2], (0, 2)),
        ([True, 2], (0, 2)),
        ([2, 1], (2, 3)),
        (["1", "2"], (1, 2)),
    ],
)
def test_channel_index_variants(channel_index: object, expected: tuple[int, int]) -> None:
    obj = fixture_dict("results_interim")
    obj["channel_index"] = channel_index
    message = parse_results(obj)
    assert (message.channel, message.channels) == expected


def test_utterance_end_on_second_channel_and_unusable_time() -> None:
    assert parse_message(
        '{"type":"UtteranceEnd","channel":[1,2],"last_word_end":"3.5"}'
    ) == UtteranceEnd(1, 2, 3.5)
    bad = parse_message('{"type":"UtteranceEnd","channel":[0,1],"last_word_end":null}')
    assert isinstance(bad, Unknown)
    assert bad.type == "UtteranceEnd"
    assert "last_word_end" in bad.reason


def test_metadata_without_channels_is_unknown_rather_than_a_false_alarm() -> None:
    message = parse_message('{"type":"Metadata","duration":0.0}')
    assert isinstance(message, Unknown)
    assert message.type == "Metadata"


def test_error_and_warning_frames() -> None:
    closing = parse_message(
        '{"type":"Error","variant":"Closing","code":"NET-0001","description":"no audio"}'
    )
    assert closing == ErrorMessage("Error", "no audio", "", "Closing", "NET-0001")
    schema = parse_message(
        '{"type":"Error","variant":"SchemaError","description":"bad","message":"unknown type"}'
    )
    assert schema == ErrorMessage("Error", "bad", "unknown type", "SchemaError", "")
    warning = parse_message('{"type":"Warning","description":7}')
    assert warning == ErrorMessage("Warning", "", "", "", "")
    legacy = parse_message('{"type":"Error","err_code":"INVALID_AUTH","err_msg":"Invalid."}')
    assert legacy == ErrorMessage("Error", "Invalid.", "", "", "INVALID_AUTH")


# E.33: unknown types and junk are tolerated.
@pytest.mark.parametrize(
    ("text", "type_", "reason_part"),
    [
        ('{"type":"FutureEvent"}', "FutureEvent", "unknown type"),
        ('{"type":"results"}', "results", "unknown type"),
        ("<html>502</html>", None, "not JSON"),
        ("", None, "not JSON"),
        ("[1, 2]", None, "not an object"),
        ("null", None, "not an object"),
        ('"Results"', None, "not an object"),
        ('{"kind":"Results"}', None, "no type"),
        ('{"type":5}', None, "no type"),
        ("[" * 100_000, None, "not JSON"),
        ('{"type":"Results","start":' + "9" * 10_000 + "}", None, "not JSON"),
    ],
)
def test_junk_text_becomes_unknown(text: str, type_: str | None, reason_part: str) -> None:
    message = parse_message(text)
    assert isinstance(message, Unknown)
    assert message.type == type_
    assert reason_part in message.reason
    assert message.raw == text[:500]


def test_binary_frames_are_unknown_even_when_they_hold_json() -> None:
    message = parse_message(load_fixture("results_interim").encode())
    assert isinstance(message, Unknown)
    assert "binary" in message.reason
    invalid = parse_message(b"\xff\xfe\x00garbage")
    assert isinstance(invalid, Unknown)
    invalid.raw.encode("utf-8")


def test_lone_surrogates_are_replaced() -> None:
    obj = fixture_dict("results_interim")
    text = json.dumps(obj).replace("Paris at a moment", "Paris \udc80 moment")
    message = parse_message(text)
    assert isinstance(message, Results)
    message.transcript.encode("utf-8")
    assert message.transcript == "Paris ? moment"


def test_raw_is_truncated_to_500_characters() -> None:
    message = parse_message("x" * 5000)
    assert isinstance(message, Unknown)
    assert message.raw == "x" * 500


def test_messages_are_frozen() -> None:
    message = parse_message(load_fixture("utterance_end"))
    assert isinstance(message, UtteranceEnd)
    with pytest.raises(AttributeError):
        message.last_word_end = 3.0  # type: ignore[misc]


KNOWN_TYPES = ["Results", "Metadata", "UtteranceEnd", "SpeechStarted", "Error", "Warning"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["true", "false", "NaN", "1e999", "-1", "0"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def check_invariants(message: object) -> None:
    assert isinstance(
        message, Results | Metadata | UtteranceEnd | SpeechStarted | ErrorMessage | Unknown
    )
    if isinstance(message, Results):
        assert math.isfinite(message.start) and message.start >= 0
        assert math.isfinite(message.duration) and message.duration >= 0
        assert 0 <= message.channel < message.channels
        assert isinstance(message.transcript, str)
        assert isinstance(message.is_final, bool)
        assert isinstance(message.speech_final, bool)
        for word in message.words:
            assert isinstance(word.word, str)
            assert math.isfinite(word.start) and math.isfinite(word.end)
    if isinstance(message, UtteranceEnd | SpeechStarted):
        assert 0 <= message.channel < message.channels
    if isinstance(message, Unknown):
        assert len(message.raw) <= 500
        message.raw.encode("utf-8")


@settings(max_examples=300)
@given(st.text())
def test_any_text_parses_without_raising(text: str) -> None:
    check_invariants(parse_message(text))


@settings(max_examples=200)
@given(st.binary())
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Unknown)
    check_invariants(message)


field_names = st.sampled_from(
    [
        "start",
        "duration",
        "is_final",
        "channel_index",
        "channel",
        "last_word_end",
        "timestamp",
        "channels",
        "request_id",
        "models",
        "description",
        "code",
        "words",
    ]
) | st.text(max_size=6)


@settings(max_examples=150)
@given(st.sampled_from(KNOWN_TYPES), st.dictionaries(field_names, json_values, max_size=6))
def test_known_types_with_random_fields_never_raise(kind: str, fields: dict[str, Any]) -> None:
    check_invariants(parse_message(json.dumps({**fields, "type": kind})))


word_like = st.fixed_dictionaries(
    {
        "word": st.text(max_size=5),
        "start": st.floats(-5, 50),
        "end": st.floats(-5, 50),
    },
    optional={
        "confidence": st.floats(0, 1) | json_values,
        "punctuated_word": st.text(max_size=5) | json_values,
        "speaker": st.integers(-1, 3) | json_values,
        "language": st.sampled_from(["en", "es"]) | json_values,
    },
)
results_like = st.fixed_dictionaries(
    {
        "type": st.just("Results"),
        "start": st.floats(0, 100) | json_values,
        "duration": st.floats(0, 10) | json_values,
        "is_final": st.booleans() | json_values,
    },
    optional={
        "speech_final": st.booleans() | json_values,
        "from_finalize": st.booleans() | json_values,
        "channel_index": st.lists(st.integers(-2, 4) | json_values, max_size=3) | json_values,
        "channel": st.fixed_dictionaries(
            {
                "alternatives": st.lists(
                    st.fixed_dictionaries(
                        {"words": st.lists(word_like | json_values, max_size=4)},
                        optional={
                            "transcript": st.text(max_size=10) | json_values,
                            "confidence": st.floats() | json_values,
                        },
                    )
                    | json_values,
                    min_size=1,
                    max_size=2,
                )
            },
        )
        | json_values,
        "metadata": json_values,
    },
)


@settings(max_examples=150)
@given(results_like)
def test_results_shaped_payloads_never_raise(obj: dict[str, Any]) -> None:
    check_invariants(parse_message(json.dumps(obj)))


FIELD_PATHS = [
    ("start",),
    ("duration",),
    ("is_final",),
    ("speech_final",),
    ("from_finalize",),
    ("channel_index",),
    ("channel",),
    ("channel", "alternatives"),
    ("metadata",),
    ("metadata", "model_info"),
]


@settings(max_examples=150)
@given(
    st.sampled_from(RESULTS_FIXTURES),
    st.lists(st.tuples(st.sampled_from(FIELD_PATHS), json_values), max_size=3),
)
def test_mutated_fixtures_never_raise(
    name: str, mutations: list[tuple[tuple[str, ...], Any]]
) -> None:
    obj = fixture_dict(name)
    for path, value in mutations:
        target: Any = obj
        for key in path[:-1]:
            if not isinstance(target, dict):
                break
            target = target.setdefault(key, {})
        if isinstance(target, dict):
            target[path[-1]] = value
    check_invariants(parse_message(json.dumps(obj)))


@settings(max_examples=200)
@given(st.sampled_from(RESULTS_FIXTURES), st.data())
def test_truncated_fixtures_never_raise(name: str, data: st.DataObject) -> None:
    text = load_fixture(name)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    check_invariants(parse_message(text[:cut]))
